import Atomics

/// A token bucket (rate and burst) shared by every event loop, exact under concurrency and
/// without a lock: the generic cell rate algorithm (GCRA) over one atomic word.
///
/// The state is the "theoretical arrival time" (TAT): when the bucket would be full again. A
/// request at `now` is allowed when `TAT - now <= tolerance`, where tolerance = (burst - 1) ×
/// interval and interval = 1 s / rate; it then moves TAT to `max(TAT, now) + interval`. One
/// compare-and-exchange per request; a lost race retries with the value it saw. Time comes from
/// the caller (a monotonic clock in nanoseconds, or a simulated one in tests), so a wall-clock
/// jump changes nothing.
public final class RateBucket: Sendable {
    /// Requests per second and the burst, as configured.
    public let rate: Double
    public let burst: Int
    let intervalNanos: UInt64
    let toleranceNanos: UInt64
    private let theoreticalArrival: ManagedAtomic<UInt64>

    /// `rate` > 0 requests per second; `burst` ≥ 1 requests at once.
    public init(rate: Double, burst: Int) {
        self.rate = rate
        self.burst = max(1, burst)
        let interval = max(1, UInt64((1e9 / rate).rounded()))
        self.intervalNanos = interval
        self.toleranceNanos = interval &* UInt64(max(1, burst) - 1)
        self.theoreticalArrival = ManagedAtomic(0)
    }

    /// Takes one request at `now` (nanoseconds of a monotonic clock): nil when allowed, else
    /// how long until one would be (nanoseconds, at least 1).
    @inline(__always)
    public func take(now: UInt64) -> UInt64? {
        var tat = theoreticalArrival.load(ordering: .relaxed)
        while true {
            let base = max(tat, now)
            if base - now > toleranceNanos { return max(1, base - now - toleranceNanos) }
            let (exchanged, original) = theoreticalArrival.compareExchange(
                expected: tat, desired: base + intervalNanos, ordering: .relaxed)
            if exchanged { return nil }
            tat = original
        }
    }

    /// Gives back a request taken at `now` that was then refused by another limit (so that a
    /// call refused by its model's bucket does not also use up its principal's).
    @inline(__always)
    public func giveBack(now: UInt64) {
        var tat = theoreticalArrival.load(ordering: .relaxed)
        while true {
            // Never below `now`: a refund cannot create more burst than the bucket holds.
            guard tat > now else { return }
            let lowered = max(now, tat > intervalNanos ? tat - intervalNanos : 0)
            let (exchanged, original) = theoreticalArrival.compareExchange(expected: tat, desired: lowered, ordering: .relaxed)
            if exchanged { return }
            tat = original
        }
    }
}

/// Calls in flight for one principal, across every event loop: an atomic counter with a ceiling.
public final class ConcurrencyLimit: Sendable {
    public let maximum: Int
    private let current = ManagedAtomic<Int>(0)

    public init(maximum: Int) {
        self.maximum = max(1, maximum)
    }

    /// Takes a slot; false when all `maximum` are taken.
    @inline(__always)
    public func acquire() -> Bool {
        var value = current.load(ordering: .relaxed)
        while value < maximum {
            let (exchanged, original) = current.compareExchange(expected: value, desired: value + 1, ordering: .relaxed)
            if exchanged { return true }
            value = original
        }
        return false
    }

    @inline(__always)
    public func release() {
        current.wrappingDecrement(ordering: .relaxed)
    }

    /// Calls in flight now.
    public var inFlight: Int { current.load(ordering: .relaxed) }
}
