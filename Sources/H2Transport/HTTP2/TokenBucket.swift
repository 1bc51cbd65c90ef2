import NIOCore

/// A token bucket for rate limits on one connection: `burst` events at once, refilled at
/// `ratePerSecond`. Lives on the connection's event loop; not thread-safe.
struct TokenBucket {
    let burst: Double
    let ratePerSecond: Double
    private var tokens: Double
    private var lastRefill: NIODeadline

    init(burst: Int, ratePerSecond: Int, now: NIODeadline = .now()) {
        self.burst = Double(burst)
        self.ratePerSecond = Double(ratePerSecond)
        self.tokens = Double(burst)
        self.lastRefill = now
    }

    /// Takes one token; false when the bucket is empty (the limit is exceeded).
    mutating func take(now: NIODeadline = .now()) -> Bool {
        let elapsed = Double((now - lastRefill).nanoseconds) / 1e9
        if elapsed > 0 {
            tokens = min(burst, tokens + elapsed * ratePerSecond)
            lastRefill = now
        }
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
