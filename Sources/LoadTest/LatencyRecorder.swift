import Histogram

/// Latencies and outcomes recorded on one event loop: an HdrHistogram of the whole step, one of
/// the current one-second interval, and counts by gRPC status code.
///
/// Confined to its event loop (the driver keeps one per loop, shared by that loop's
/// connections); recording neither locks nor allocates. The driver takes the interval part
/// once per second and merges the loops' recorders at the end.
public struct LatencyRecorder: Sendable {
    /// Largest latency recorded exactly: one hour, in microseconds. Longer ones are clamped.
    public static let highestTrackableMicroseconds: UInt64 = 3_600_000_000

    /// A latency histogram in microseconds, 3 significant digits.
    public static func makeHistogram() -> Histogram<UInt64> {
        Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: highestTrackableMicroseconds, numberOfSignificantValueDigits: .three)
    }

    /// Latencies of calls that ended OK, over the whole step.
    public private(set) var total = LatencyRecorder.makeHistogram()
    /// Latencies of calls that ended OK since the last `takeInterval`.
    public private(set) var interval = LatencyRecorder.makeHistogram()
    /// Calls ended, by gRPC status code (index = code, 0 = OK), over the whole step.
    public private(set) var callsByStatus = [UInt64](repeating: 0, count: 17)
    /// Calls ended with any status since the last `takeInterval`.
    public private(set) var intervalCalls: UInt64 = 0
    /// Calls ended with an error since the last `takeInterval`.
    public private(set) var intervalErrors: UInt64 = 0

    /// An empty recorder.
    public init() {}

    /// Records one call that ended with `statusCode` after `nanoseconds` (measured from its
    /// intended start in an open loop). Only OK calls enter the latency histograms: a call
    /// refused at once would make latency look better than it is.
    @inline(__always)
    public mutating func record(nanoseconds: UInt64, statusCode: Int) {
        let code = statusCode >= 0 && statusCode < 17 ? statusCode : 2
        callsByStatus[code] &+= 1
        intervalCalls &+= 1
        if code == 0 {
            let micros = Swift.min(Swift.max(nanoseconds / 1000, 1), Self.highestTrackableMicroseconds)
            total.record(micros)
            interval.record(micros)
        } else {
            intervalErrors &+= 1
        }
    }

    /// The interval's histogram and counts, which start again from zero.
    public mutating func takeInterval() -> IntervalSample {
        let sample = IntervalSample(latencies: interval, calls: intervalCalls, errors: intervalErrors)
        interval.reset()
        intervalCalls = 0
        intervalErrors = 0
        return sample
    }

    /// Starts again from nothing (after the warm-up, and between steps).
    public mutating func reset() {
        total.reset()
        interval.reset()
        for index in callsByStatus.indices { callsByStatus[index] = 0 }
        intervalCalls = 0
        intervalErrors = 0
    }

    /// Adds `other`'s counts and histograms to this one.
    public mutating func merge(_ other: LatencyRecorder) {
        total.add(other.total)
        interval.add(other.interval)
        for index in callsByStatus.indices { callsByStatus[index] &+= other.callsByStatus[index] }
        intervalCalls &+= other.intervalCalls
        intervalErrors &+= other.intervalErrors
    }
}

/// What one event loop recorded in one interval (about a second).
public struct IntervalSample: Sendable {
    /// Latencies of the OK calls, in microseconds.
    public var latencies: Histogram<UInt64>
    /// Calls ended, whatever their status.
    public var calls: UInt64
    /// Calls ended with an error.
    public var errors: UInt64

    /// An empty sample.
    public init() {
        self.init(latencies: LatencyRecorder.makeHistogram(), calls: 0, errors: 0)
    }

    /// A sample from its parts.
    public init(latencies: Histogram<UInt64>, calls: UInt64, errors: UInt64) {
        self.latencies = latencies
        self.calls = calls
        self.errors = errors
    }

    /// Adds another loop's sample of the same interval.
    public mutating func merge(_ other: IntervalSample) {
        latencies.add(other.latencies)
        calls &+= other.calls
        errors &+= other.errors
    }
}
