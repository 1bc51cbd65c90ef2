#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// When the calls of an open-loop run are meant to start: a fixed interval (`constant`) or
/// exponentially distributed gaps with the same mean (`poisson`), as perf_analyzer's
/// `--request-distribution` names them.
///
/// A value type with its own seeded generator, so a run (and a test) can be replayed; each
/// connection of a run owns one, with the rate divided among them. Not thread-safe; no
/// allocation.
public struct ArrivalSchedule: Sendable {
    /// How the gaps between calls are drawn.
    public enum Distribution: String, Sendable, Codable, CaseIterable {
        /// Every gap is 1/rate.
        case constant
        /// Gaps drawn from an exponential distribution with mean 1/rate: a Poisson process.
        case poisson
    }

    /// Calls per second.
    public let rate: Double
    /// How gaps are drawn.
    public let distribution: Distribution
    private let meanGapNanoseconds: Double
    private var random: SplitMix64
    /// Keeps the fractional nanoseconds of constant gaps, so that 3 calls/s averages exactly.
    private var carry: Double = 0

    /// A schedule of `rate` calls per second (> 0), its random gaps seeded with `seed`.
    public init(rate: Double, distribution: Distribution, seed: UInt64 = 0x5EED) {
        precondition(rate > 0, "an arrival rate must be positive")
        self.rate = rate
        self.distribution = distribution
        self.meanGapNanoseconds = 1e9 / rate
        self.random = SplitMix64(seed: seed)
    }

    /// The gap to the next call, in nanoseconds (at least 1 for poisson; constant gaps add up
    /// to exactly 1/rate on average).
    public mutating func nextGap() -> UInt64 {
        switch distribution {
        case .constant:
            let exact = meanGapNanoseconds + carry
            let whole = exact.rounded(.down)
            carry = exact - whole
            return UInt64(whole)
        case .poisson:
            // Inverse transform sampling; u in (0, 1] so the logarithm is finite.
            let u = Double(random.next() >> 11 &+ 1) * 0x1.0p-53
            return max(1, UInt64((-log(u) * meanGapNanoseconds).rounded()))
        }
    }
}

/// SplitMix64: a small, fast, seedable generator (Steele, Lea and Flood 2014), good enough for
/// arrival gaps and random tensor data.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    /// A generator that yields the same sequence for the same seed.
    public init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
