import H2Transport

/// A caller as the gateway knows it: a name from the configuration and what it may do, compiled
/// for the hot path. Shared by reference: the calls of one principal all point at one object,
/// which a call carries in `GRPCServerCall.principal`.
public final class Principal: Sendable {
    public let name: String
    /// The policy generation this principal was resolved under; a reload that changes the policy
    /// makes calls (and open streams) resolve their principal again.
    let generation: Int
    private let models: [(model: String, version: String?)]
    private let methods: Set<AuthPolicy.MethodGroup>
    let allowOverride: Bool
    /// False for a name that keys or certificates give but the policy has no permissions for.
    let isConfigured: Bool
    /// Its inference requests over all its calls; nil: no limit.
    let rateBucket: RateBucket?
    /// Its requests to one model, by model name.
    let modelBuckets: [String: RateBucket]
    /// Its calls in flight; nil: no limit.
    let concurrency: ConcurrencyLimit?
    /// Its calls and requests refused by each limit.
    let refusals = LimitRefusals()

    init(name: String, permissions: AuthPolicy.Permissions?, generation: Int) {
        self.name = name
        self.generation = generation
        self.isConfigured = permissions != nil
        let permissions = permissions ?? AuthPolicy.Permissions(models: [], methods: [], allowOverride: false)
        self.models = permissions.models.map { pattern in
            guard let colon = pattern.firstIndex(of: ":") else { return (pattern, nil) }
            return (String(pattern[..<colon]), String(pattern[pattern.index(after: colon)...]))
        }
        self.methods = permissions.methods
        self.allowOverride = permissions.allowOverride
        self.rateBucket = permissions.rateLimit.map { RateBucket(rate: $0.requestsPerSecond, burst: $0.burst) }
        self.modelBuckets = permissions.modelRateLimits.mapValues { RateBucket(rate: $0.requestsPerSecond, burst: $0.burst) }
        self.concurrency = permissions.maxConcurrentCalls.map { ConcurrencyLimit(maximum: $0) }
    }

    /// Whether this principal may call methods of `group`.
    func mayCall(_ group: AuthPolicy.MethodGroup) -> Bool { methods.contains(group) }

    /// Whether this principal may use `model` at `version`.
    func mayUse(model: String, version: String) -> Bool {
        for pattern in models where Glob.matches(pattern.model, model) {
            guard let versionPattern = pattern.version else { return true }
            if Glob.matches(versionPattern, version) { return true }
        }
        return false
    }

    /// Whether this principal may use some version of `model`.
    func mayUseSomeVersion(of model: String) -> Bool {
        models.contains { Glob.matches($0.model, model) }
    }

    /// PERMISSION_DENIED for a method group this principal may not call.
    func deniedMethod(_ group: AuthPolicy.MethodGroup, path: String) -> RPCError {
        let method = path.split(separator: "/").last.map(String.init) ?? path
        return RPCError(
            code: .permissionDenied,
            message: "principal '\(name)' may not call \(method) (method group '\(group.rawValue)'); its permissions list \(methods.isEmpty ? "no method group" : methods.sorted().map(\.rawValue).joined(separator: ", "))")
    }

    /// PERMISSION_DENIED for a model (or one version of it) this principal may not use.
    func deniedModel(_ model: String, version: String?) -> RPCError {
        let which = version.map { "version \($0) of model '\(model)'" } ?? "model '\(model)'"
        return RPCError(code: .permissionDenied, message: "principal '\(name)' may not use \(which)")
    }
}

/// `*` matches any run of characters, everything else matches itself; no allocation.
enum Glob {
    static func matches(_ pattern: String, _ text: String) -> Bool {
        if pattern == "*" { return true }
        if !pattern.utf8.contains(UInt8(ascii: "*")) { return pattern == text }
        let inPlace = pattern.utf8.withContiguousStorageIfAvailable { p in text.utf8.withContiguousStorageIfAvailable { t in matches(p, t) } }
        return (inPlace ?? nil) ?? matches(Array(pattern.utf8), Array(text.utf8))  // bridged strings only
    }

    /// Iterative wildcard matching with one backtrack point (linear in practice).
    private static func matches<P: RandomAccessCollection<UInt8>, T: RandomAccessCollection<UInt8>>(_ p: P, _ t: T) -> Bool
    where P.Index == Int, T.Index == Int {
        var pi = p.startIndex
        var ti = t.startIndex
        var star: Int?
        var resume = t.startIndex
        while ti < t.endIndex {
            if pi < p.endIndex, p[pi] == UInt8(ascii: "*") {
                star = pi
                pi += 1
                resume = ti
            } else if pi < p.endIndex, p[pi] == t[ti] {
                pi += 1
                ti += 1
            } else if let star {
                pi = star + 1
                resume += 1
                ti = resume
            } else {
                return false
            }
        }
        while pi < p.endIndex, p[pi] == UInt8(ascii: "*") { pi += 1 }
        return pi == p.endIndex
    }
}
