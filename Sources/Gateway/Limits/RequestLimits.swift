import Atomics
import H2Transport

/// Which limit refused a call or request: the `limit` label of `switchyard_rate_limited_total`.
public enum LimitKind: Int, CaseIterable, Sendable {
    /// The principal's rate over all its inference requests.
    case principal
    /// The model's rate, every caller together.
    case model
    /// The principal's rate for one model.
    case principalModel
    /// The principal's calls in flight.
    case concurrency

    public var label: String {
        switch self {
        case .principal: return "principal"
        case .model: return "model"
        case .principalModel: return "principal_model"
        case .concurrency: return "concurrency"
        }
    }
}

/// Refusals by limit, for one principal, counted from every event loop (an atomic add on the
/// refusal path only).
final class LimitRefusals: Sendable {
    private let counts = (0..<LimitKind.allCases.count).map { _ in ManagedAtomic<UInt64>(0) }

    func count(_ kind: LimitKind) { counts[kind.rawValue].wrappingIncrement(ordering: .relaxed) }
    func value(_ kind: LimitKind) -> UInt64 { counts[kind.rawValue].load(ordering: .relaxed) }
}

/// A request or call over a limit: how long until it would be allowed, and the status to send.
struct LimitRefusal: Error {
    let kind: LimitKind
    let retryAfterNanos: UInt64
    let message: String

    /// RESOURCE_EXHAUSTED with `grpc-retry-pushback-ms` (what gRPC clients' retry throttling
    /// reads) and `retry-after` in whole seconds (as HTTP has it), in the trailers.
    var error: RPCError {
        let milliseconds = max(1, (retryAfterNanos + 999_999) / 1_000_000)
        var trailers = GRPCMetadata()
        trailers.add("grpc-retry-pushback-ms", "\(milliseconds)")
        trailers.add("retry-after", "\(max(1, (milliseconds + 999) / 1000))")
        return RPCError(code: .resourceExhausted, message: "\(message); retry in \(milliseconds) ms", trailers: trailers)
    }
}

extension CompiledAuthPolicy {
    /// Takes one inference request of `principal` to `model` at `now` (monotonic nanoseconds)
    /// from every bucket that applies: the principal's, the model's, the principal's for the
    /// model. Either all take it or none does (a bucket that took it gives it back when a later
    /// one refuses). No lock, no allocation unless refused.
    func admitRequest(of principal: Principal, to model: String, now: UInt64) -> LimitRefusal? {
        let own = principal.rateBucket
        if let own, let wait = own.take(now: now) {
            principal.refusals.count(.principal)
            return LimitRefusal(
                kind: .principal, retryAfterNanos: wait,
                message: "principal '\(principal.name)' is over its rate limit of \(Self.describe(own))")
        }
        let shared = modelBuckets.isEmpty ? nil : modelBuckets[model]
        if let shared, let wait = shared.take(now: now) {
            own?.giveBack(now: now)
            principal.refusals.count(.model)
            return LimitRefusal(kind: .model, retryAfterNanos: wait, message: "model '\(model)' is over its rate limit of \(Self.describe(shared))")
        }
        let pair = principal.modelBuckets.isEmpty ? nil : principal.modelBuckets[model]
        if let pair, let wait = pair.take(now: now) {
            own?.giveBack(now: now)
            shared?.giveBack(now: now)
            principal.refusals.count(.principalModel)
            return LimitRefusal(
                kind: .principalModel, retryAfterNanos: wait,
                message: "principal '\(principal.name)' is over its rate limit for model '\(model)' of \(Self.describe(pair))")
        }
        return nil
    }

    /// "10 requests/s (burst 20)".
    static func describe(_ bucket: RateBucket) -> String {
        let rate = bucket.rate == bucket.rate.rounded() ? "\(Int(bucket.rate))" : "\(bucket.rate)"
        return "\(rate) requests/s (burst \(bucket.burst))"
    }

    /// Every principal of the policy, sorted by name (for metrics).
    var allPrincipals: [Principal] { principals.values.sorted { $0.name < $1.name } }
}
