import NIOCore
import NIOPosix

/// How one shadowed call's comparison ended: the `result` label of
/// `switchyard_shadow_comparisons_total`.
enum ShadowComparisonResult: Int, CaseIterable, Sendable {
    /// Both answered and every output agrees.
    case match
    /// Both answered and some output differs (names, datatypes, shapes or elements).
    case differ
    /// The primary failed (or never answered within the wait after the shadow did).
    case primaryFailed
    /// The shadow failed.
    case shadowFailed
    /// The primary answered and the shadow did not within the wait.
    case shadowTimeout
    /// No copy was sent: the shadow's workers were all busy (shadow load is shed first).
    case shadowShed
    /// Not compared: the loop already had its maximum of comparisons pending, or the model is
    /// decoupled (many answers per request).
    case skipped

    var label: String {
        switch self {
        case .match: "match"
        case .differ: "differ"
        case .primaryFailed: "primary_failed"
        case .shadowFailed: "shadow_failed"
        case .shadowTimeout: "shadow_timeout"
        case .shadowShed: "shadow_shed"
        case .skipped: "skipped"
        }
    }
}

/// A primary variant and the shadow that copies its calls: the labels of the shadow metrics,
/// all from configuration.
struct ShadowPairKey: Hashable, Sendable {
    var model: String
    var version: String
    var shadowVersion: String
}

/// Counts per bucket (not cumulative) of non-negative values, with fixed upper bounds.
struct DifferenceHistogram: Sendable {
    /// 1e-9, 1e-8 … 1e3: from float noise to answers that have nothing in common.
    static let upperBounds: [Double] = (-9...3).map { Double("1e\($0)")! }

    var counts = [UInt64](repeating: 0, count: upperBounds.count + 1)
    var sum = 0.0

    mutating func record(_ value: Double) {
        counts[Self.upperBounds.firstIndex(where: { value <= $0 }) ?? Self.upperBounds.count] &+= 1
        sum += value
    }

    static func + (a: Self, b: Self) -> Self {
        var total = a
        for index in total.counts.indices { total.counts[index] &+= b.counts[index] }
        total.sum += b.sum
        return total
    }
}

/// The comparison counters of one shadow pair, on one loop or summed.
struct ShadowPairStatistics: Sendable {
    /// By `ShadowComparisonResult.rawValue`.
    var results = [UInt64](repeating: 0, count: ShadowComparisonResult.allCases.count)
    var comparedElements: UInt64 = 0
    var mismatchedElements: UInt64 = 0
    /// The largest absolute element difference of each compared pair with numeric outputs.
    var maxAbsoluteDifference = DifferenceHistogram()
    /// Successful answers of each side of shadowed calls that were paired.
    var primaryDuration: LatencyHistogram
    var shadowDuration: LatencyHistogram

    init(buckets: LatencyBuckets) {
        primaryDuration = LatencyHistogram(buckets: buckets)
        shadowDuration = LatencyHistogram(buckets: buckets)
    }

    func count(_ result: ShadowComparisonResult) -> UInt64 { results[result.rawValue] }

    mutating func record(_ comparison: ShadowComparison) {
        results[(comparison.matches ? ShadowComparisonResult.match : .differ).rawValue] &+= 1
        comparedElements &+= comparison.comparedElements
        mismatchedElements &+= comparison.mismatchedElements
        if let difference = comparison.maxAbsoluteDifference { maxAbsoluteDifference.record(difference) }
    }

    static func + (a: Self, b: Self) -> Self {
        var total = a
        for index in total.results.indices { total.results[index] &+= b.results[index] }
        total.comparedElements &+= b.comparedElements
        total.mismatchedElements &+= b.mismatchedElements
        total.maxAbsoluteDifference = a.maxAbsoluteDifference + b.maxAbsoluteDifference
        total.primaryDuration = a.primaryDuration + b.primaryDuration
        total.shadowDuration = a.shadowDuration + b.shadowDuration
        return total
    }
}

/// The rules of one shadowed call's pairing, without I/O: which answer came first, what to do
/// when the other arrives, fails or never comes.
struct ShadowPairState {
    private enum State {
        case waiting
        case primaryAnswered(ByteBuffer)
        case shadowAnswered(ByteBuffer)
        case finished
    }

    enum Action {
        /// Nothing (a late or repeated event).
        case none
        /// One answer is held: start the wait for the other.
        case startWaiting
        /// Both answered: compare them.
        case compare(primary: ByteBuffer, shadow: ByteBuffer)
        /// Finished without a comparison.
        case record(ShadowComparisonResult)
    }

    private var state = State.waiting

    var isFinished: Bool {
        if case .finished = state { return true }
        return false
    }

    mutating func primaryAnswered(_ bytes: ByteBuffer) -> Action {
        switch state {
        case .waiting:
            state = .primaryAnswered(bytes)
            return .startWaiting
        case .shadowAnswered(let shadow):
            state = .finished
            return .compare(primary: bytes, shadow: shadow)
        case .primaryAnswered, .finished:
            return .none
        }
    }

    mutating func shadowAnswered(_ bytes: ByteBuffer) -> Action {
        switch state {
        case .waiting:
            state = .shadowAnswered(bytes)
            return .startWaiting
        case .primaryAnswered(let primary):
            state = .finished
            return .compare(primary: primary, shadow: bytes)
        case .shadowAnswered, .finished:
            return .none
        }
    }

    mutating func primaryFailed() -> Action {
        switch state {
        case .waiting, .shadowAnswered:
            state = .finished
            return .record(.primaryFailed)
        case .primaryAnswered, .finished:
            return .none
        }
    }

    mutating func shadowFailed() -> Action {
        switch state {
        case .waiting, .primaryAnswered:
            state = .finished
            return .record(.shadowFailed)
        case .shadowAnswered, .finished:
            return .none
        }
    }

    /// The wait for the second answer ran out.
    mutating func timedOut() -> Action {
        switch state {
        case .primaryAnswered:
            state = .finished
            return .record(.shadowTimeout)
        case .shadowAnswered:
            state = .finished
            return .record(.primaryFailed)
        case .waiting, .finished:
            return .none
        }
    }
}

/// One shadowed call's pairing of the primary's final answer with the shadow's: both report
/// here, on the call's event loop (the shadow shard is that loop's), so it takes no lock. It
/// holds the answers' buffers (shared storage, no copy) until both have arrived, and at most
/// `ShadowComparisons.answerWait` after the first.
final class ShadowPairing {
    private var state = ShadowPairState()
    private let comparisons: ShadowComparisons
    private let key: ShadowPairKey
    private let tolerance: ShadowTolerance
    private var timer: Scheduled<Void>?

    fileprivate init(comparisons: ShadowComparisons, key: ShadowPairKey, tolerance: ShadowTolerance) {
        self.comparisons = comparisons
        self.key = key
        self.tolerance = tolerance
    }

    /// The primary's final answer, after it went to the client.
    func primaryAnswered(_ bytes: ByteBuffer, nanoseconds: UInt64) {
        guard !state.isFinished else { return }
        comparisons.recordDuration(nanoseconds, side: .primary, for: key)
        perform(state.primaryAnswered(bytes))
    }

    func primaryFailed() { perform(state.primaryFailed()) }

    func shadowAnswered(_ bytes: ByteBuffer, nanoseconds: UInt64) {
        guard !state.isFinished else { return }
        comparisons.recordDuration(nanoseconds, side: .shadow, for: key)
        perform(state.shadowAnswered(bytes))
    }

    func shadowFailed() { perform(state.shadowFailed()) }

    private func perform(_ action: ShadowPairState.Action) {
        switch action {
        case .none:
            return
        case .startWaiting:
            timer = comparisons.eventLoop.assumeIsolated().scheduleTask(in: comparisons.answerWait) { self.perform(self.state.timedOut()) }
            return
        case .compare(let primary, let shadow):
            comparisons.compare(primary: primary, shadow: shadow, tolerance: tolerance, for: key)
        case .record(let result):
            comparisons.finish(result, for: key)
        }
        timer?.cancel()
        timer = nil
    }
}

/// One serving loop's shadow comparisons: the pairings pending on it (at most `maxPending`)
/// and the counters of every shadow pair, summed over the loops at scrape time.
///
/// Confined to `eventLoop`. Comparisons of small answers run inline; answers larger together
/// than `inlineLimit` are compared on `threadPool` and the result is recorded back on the loop.
final class ShadowComparisons {
    enum Side {
        case primary, shadow
    }

    /// Pairings a loop keeps at once; beyond it a shadowed call is counted as `skipped` and
    /// nothing of it is kept.
    static let defaultMaxPending = 256
    /// How long after one side's answer the other's is waited for.
    static let defaultAnswerWait = TimeAmount.seconds(10)

    let eventLoop: EventLoop
    private let threadPool: NIOThreadPool
    let maxPending: Int
    let answerWait: TimeAmount
    let inlineLimit: Int
    private let buckets: LatencyBuckets
    /// Pairings started and not finished (comparisons on the thread pool included).
    private(set) var pending = 0
    private(set) var statistics: [ShadowPairKey: ShadowPairStatistics] = [:]

    init(
        eventLoop: EventLoop, threadPool: NIOThreadPool, buckets: LatencyBuckets = .default, maxPending: Int = ShadowComparisons.defaultMaxPending,
        answerWait: TimeAmount = ShadowComparisons.defaultAnswerWait, inlineLimit: Int = InspectedInferRequest.inlineLimit
    ) {
        self.eventLoop = eventLoop
        self.threadPool = threadPool
        self.buckets = buckets
        self.maxPending = maxPending
        self.answerWait = answerWait
        self.inlineLimit = inlineLimit
    }

    /// A pairing for a call whose copy went to the shadow; nil (counted as `skipped`) when the
    /// loop already has `maxPending` of them.
    func startPairing(_ key: ShadowPairKey, tolerance: ShadowTolerance) -> ShadowPairing? {
        guard pending < maxPending else {
            record(.skipped, for: key)
            return nil
        }
        pending += 1
        return ShadowPairing(comparisons: self, key: key, tolerance: tolerance)
    }

    /// Counts a shadowed call that had no pairing (shed, skipped).
    func record(_ result: ShadowComparisonResult, for key: ShadowPairKey) {
        statistics[key, default: ShadowPairStatistics(buckets: buckets)].results[result.rawValue] &+= 1
    }

    fileprivate func recordDuration(_ nanoseconds: UInt64, side: Side, for key: ShadowPairKey) {
        switch side {
        case .primary: statistics[key, default: ShadowPairStatistics(buckets: buckets)].primaryDuration.record(nanoseconds, buckets: buckets)
        case .shadow: statistics[key, default: ShadowPairStatistics(buckets: buckets)].shadowDuration.record(nanoseconds, buckets: buckets)
        }
    }

    fileprivate func finish(_ result: ShadowComparisonResult, for key: ShadowPairKey) {
        pending -= 1
        record(result, for: key)
    }

    fileprivate func compare(primary: ByteBuffer, shadow: ByteBuffer, tolerance: ShadowTolerance, for key: ShadowPairKey) {
        guard primary.readableBytes + shadow.readableBytes > inlineLimit else {
            finish(ShadowComparison.compare(primary: primary, shadow: shadow, tolerance: tolerance), for: key)
            return
        }
        threadPool.runIfActive(eventLoop: eventLoop) {
            ShadowComparison.compare(primary: primary, shadow: shadow, tolerance: tolerance)
        }.assumeIsolated().whenComplete { result in
            switch result {
            case .success(let comparison): self.finish(comparison, for: key)
            case .failure: self.finish(.skipped, for: key)  // the thread pool has stopped
            }
        }
    }

    private func finish(_ comparison: ShadowComparison, for key: ShadowPairKey) {
        pending -= 1
        statistics[key, default: ShadowPairStatistics(buckets: buckets)].record(comparison)
    }

    /// Sums the counters of several loops.
    static func merge(_ a: [ShadowPairKey: ShadowPairStatistics], _ b: [ShadowPairKey: ShadowPairStatistics]) -> [ShadowPairKey: ShadowPairStatistics] {
        a.merging(b, uniquingKeysWith: +)
    }
}
