import Foundation
import H2Transport
import NIOCore

/// An `AuthPolicy` prepared for the hot path: one `Principal` object per name, the keys' digests,
/// the method group of every method path. Immutable; a reload makes a new one (with a new
/// `generation`), published with the model catalog, so each call reads it without a lock.
public final class CompiledAuthPolicy: Sendable {
    public let policy: AuthPolicy
    /// Changes with every policy a reload installs.
    public let generation: Int
    /// Every principal of the policy by name.
    let principals: [String: Principal]
    private let keys: [(digest: [UInt8], principal: Principal)]
    private let certificates: [(rule: AuthPolicy.CertificateRule, principal: Principal)]
    /// Verifies bearer JWTs; nil without `auth.jwt`.
    let jwt: JWTVerifier?
    private let jwtRules: [(match: AuthPolicy.JWT.Rule.Match, principal: Principal)]
    let anonymous: Principal
    /// Calls without credentials on the TLS listener: as configured, else only while nobody
    /// can authenticate at all.
    let anonymousOnTLS: Bool
    /// Buckets of the models' own limits (every caller together), by model name.
    let modelBuckets: [String: RateBucket]

    /// `jwt`: the verifier of `policy.jwt` (its keys loaded); required when `policy.jwt` is set.
    public init(_ policy: AuthPolicy, generation: Int, jwt: JWTVerifier? = nil) {
        precondition((policy.jwt == nil) == (jwt == nil), "a policy with auth.jwt needs its loaded JWTVerifier")
        self.policy = policy
        self.generation = generation
        self.jwt = jwt
        self.anonymousOnTLS = policy.anonymousOnTLS ?? (policy.apiKeys.isEmpty && policy.certificates.isEmpty && policy.jwt == nil)
        self.modelBuckets = policy.modelRateLimits.mapValues { RateBucket(rate: $0.requestsPerSecond, burst: $0.burst) }
        var principals: [String: Principal] = [:]
        func principal(_ name: String) -> Principal {
            if let known = principals[name] { return known }
            // The anonymous principal without permissions of its own may do everything.
            let permissions = policy.principals[name] ?? (name == AuthPolicy.anonymous ? AuthPolicy.Permissions() : nil)
            let made = Principal(name: name, permissions: permissions, generation: generation)
            principals[name] = made
            return made
        }
        self.anonymous = principal(AuthPolicy.anonymous)
        self.keys = policy.apiKeys.map { ($0.sha256, principal($0.principal)) }
        self.certificates = policy.certificates.map { ($0, principal($0.principal)) }
        self.jwtRules = (policy.jwt?.rules ?? []).map { ($0.match, principal($0.principal)) }
        for name in policy.principals.keys { _ = principal(name) }
        self.principals = principals
    }

    /// The principal called `name` (configured, or named by a key or certificate rule, or
    /// `anonymous`); nil for a name the policy does not know.
    public func principal(named name: String) -> Principal? { principals[name] }

    /// The principal of an API key: its SHA-256 compared with every configured digest in
    /// constant time (no early exit, so the time does not tell which or how many matched).
    func principal(forKey key: String) -> Principal? {
        let digest = Digest.sha256(key.utf8)
        var found: Principal?
        for entry in keys where Digest.constantTimeEquals(entry.digest, digest) && found == nil { found = entry.principal }
        return found
    }

    /// The principal of a verified client certificate: the first rule that matches.
    func principal(for peer: PeerIdentity) -> Principal? {
        for (rule, principal) in certificates {
            switch rule.field {
            case .uri: if peer.uris.contains(where: { Glob.matches(rule.pattern, $0) }) { return principal }
            case .dns: if peer.dnsNames.contains(where: { Glob.matches(rule.pattern, $0) }) { return principal }
            case .commonName: if let name = peer.commonName, Glob.matches(rule.pattern, name) { return principal }
            }
        }
        return nil
    }

    /// The principal of a verified token: the first rule its claims match.
    func principal(for claims: TokenClaims) -> Principal? {
        jwtRules.first { claims.satisfies($0.match) }?.principal
    }

    /// The method group of a method path; nil for methods open to everyone (health checks).
    static func methodGroup(path: String) -> AuthPolicy.MethodGroup? {
        if path.hasPrefix("/grpc.health.v1.Health/") { return nil }
        switch path {
        case "/inference.GRPCInferenceService/ModelInfer", "/inference.GRPCInferenceService/ModelStreamInfer": return .inference
        case "/inference.GRPCInferenceService/ModelStatistics": return .statistics
        case "/inference.GRPCInferenceService/ServerLive", "/inference.GRPCInferenceService/ServerReady",
            "/inference.GRPCInferenceService/ServerMetadata", "/inference.GRPCInferenceService/ModelReady",
            "/inference.GRPCInferenceService/ModelMetadata", "/inference.GRPCInferenceService/ModelConfig":
            return .metadata
        default:
            if path.hasPrefix("/inference.GRPCInferenceService/") { return .repository }  // repository control and Triton's other controls
            return .metadata  // reflection, diagnostics
        }
    }
}

/// Finds a call's principal: the credential in its metadata, else its client certificate, else
/// the anonymous principal where the listener allows it. Errors never repeat a secret.
struct Authenticator {
    /// Resolved credentials of one event loop, by the metadata value as sent, so that a key is
    /// hashed once, not per call, and a call that repeats a known credential allocates nothing.
    /// Bounded: emptied when full (a client cycling through made-up keys costs a hash per call,
    /// no more). Emptied too when the policy changes.
    final class KeyCache {
        private var generation = -1
        private var byAPIKey: [String: Principal] = [:]
        private var byAuthorization: [String: Principal] = [:]
        /// Verified JWTs by the metadata value: the principal, until the token expires (leeway
        /// included) or the JWKS changes.
        private var byToken: [String: (principal: Principal, expires: Double, keys: Int)] = [:]
        static let capacity = 4096

        func principal(for credential: Credential, in policy: CompiledAuthPolicy) -> Principal? {
            clearIfChanged(policy)
            let known = credential.isBearer ? byAuthorization[credential.value] : byAPIKey[credential.value]
            if let known { return known }
            guard let principal = policy.principal(forKey: credential.key) else { return nil }
            if byAPIKey.count + byAuthorization.count >= Self.capacity {
                byAPIKey.removeAll(keepingCapacity: true)
                byAuthorization.removeAll(keepingCapacity: true)
            }
            if credential.isBearer { byAuthorization[credential.value] = principal } else { byAPIKey[credential.value] = principal }
            return principal
        }

        /// The principal of a bearer JWT: from the cache while the token is valid and the keys
        /// unchanged, else verified (and cached when it maps to a principal).
        func principal(forToken value: String, verifier: JWTVerifier, in policy: CompiledAuthPolicy) -> Result<Principal, RPCError> {
            clearIfChanged(policy)
            if let known = byToken[value] {
                if known.keys == verifier.keysVersion, verifier.now().timeIntervalSince1970 < known.expires { return .success(known.principal) }
                byToken[value] = nil
            }
            let result = Authenticator.verify(token: value, verifier: verifier, in: policy)
            guard case .success(let found) = result else { return result.map(\.principal) }
            if byToken.count >= Self.capacity { byToken.removeAll(keepingCapacity: true) }
            byToken[value] = found
            return .success(found.principal)
        }

        private func clearIfChanged(_ policy: CompiledAuthPolicy) {
            guard generation != policy.generation else { return }
            byAPIKey.removeAll(keepingCapacity: true)
            byAuthorization.removeAll(keepingCapacity: true)
            byToken.removeAll(keepingCapacity: true)
            generation = policy.generation
        }
    }

    /// Verifies a bearer JWT (`value` is the metadata value, "Bearer " included) and maps its
    /// claims to a principal: UNAUTHENTICATED for a token that does not verify, PERMISSION_DENIED
    /// for a valid one no rule maps. On success, also until when the principal may be cached.
    static func verify(token value: String, verifier: JWTVerifier, in policy: CompiledAuthPolicy)
        -> Result<(principal: Principal, expires: Double, keys: Int), RPCError>
    {
        let keys = verifier.keysVersion
        let token = value.dropFirst(7).drop { $0 == " " }
        switch verifier.verify(Substring(token)) {
        case .failure(let rejection):
            return .failure(RPCError(code: .unauthenticated, message: rejection.message))
        case .success(let claims):
            guard let principal = policy.principal(for: claims) else {
                let subject = claims.subject.map { " (sub '\($0.value)')" } ?? ""
                return .failure(
                    RPCError(code: .permissionDenied, message: "the bearer token\(subject) is valid, but its claims match no rule under auth.jwt.principals"))
            }
            let expires = (claims.expiration?.value.timeIntervalSince1970 ?? 0) + Double(verifier.settings.clockLeewaySeconds)
            return .success((principal, expires, keys))
        }
    }

    /// An API key as the call sent it: `x-api-key: KEY`, or `authorization: Bearer KEY`.
    struct Credential {
        /// The metadata value as sent.
        var value: String
        var isBearer: Bool

        /// The key itself (allocates for a bearer value; only on a cache miss).
        var key: String {
            guard isBearer else { return value }
            return String(value.utf8.dropFirst(7)).map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        }

        /// True when `value` starts with "Bearer " in any case, with something after it.
        static func isBearerValue(_ value: String) -> Bool {
            var bytes = value.utf8.makeIterator()
            for expected in "bearer ".utf8 {
                guard let byte = bytes.next(), byte | (expected == UInt8(ascii: " ") ? 0 : 0x20) == expected else { return false }
            }
            return bytes.next() != nil
        }
    }

    static func authenticate(
        metadata: GRPCMetadata, connection: HTTP2ConnectionInfo, policy: CompiledAuthPolicy, cache: KeyCache?
    ) -> Result<Principal, RPCError> {
        var credential: Credential?
        for field in metadata.fields {
            guard case .string(let text) = field.value else { continue }
            if field.name == "x-api-key" {
                credential = Credential(value: text, isBearer: false)
                break
            }
            if field.name == "authorization" {
                guard Credential.isBearerValue(text) else {
                    return .failure(
                        RPCError(
                            code: .unauthenticated,
                            message: "the authorization metadata is not 'Bearer <API key or token>'; send a key as authorization: Bearer KEY or x-api-key: KEY, a token as authorization: Bearer JWT"))
                }
                if let verifier = policy.jwt, JWTVerifier.looksLikeJWT(text) {
                    if let cache { return cache.principal(forToken: text, verifier: verifier, in: policy) }
                    return verify(token: text, verifier: verifier, in: policy).map(\.principal)
                }
                credential = Credential(value: text, isBearer: true)
                break
            }
        }
        if let credential {
            let found = cache?.principal(for: credential, in: policy) ?? policy.principal(forKey: credential.key)
            guard let found else {
                return .failure(RPCError(code: .unauthenticated, message: "the API key is not valid (it matches no key in the gateway's configuration)"))
            }
            return .success(found)
        }
        if let peer = connection.tls?.peer {
            if let found = policy.principal(for: peer) { return .success(found) }
        }
        let allowed = connection.isSecure ? policy.anonymousOnTLS : policy.policy.anonymousOnPlaintext
        guard allowed else {
            let certificate = connection.tls?.peer == nil ? "" : " (the client certificate presented maps to no principal)"
            return .failure(
                RPCError(
                    code: .unauthenticated,
                    message: "this listener requires credentials: send an API key as x-api-key: KEY or authorization: Bearer KEY, or connect with a client certificate the gateway maps to a principal\(certificate)"))
        }
        return .success(policy.anonymous)
    }

    /// The principal the router should use for a call, under the policy in `catalog`: the one
    /// the gate found, or a fresh one when a reload changed the policy since (so that a revoked
    /// key or narrowed permission takes effect on an open stream's next message). Nil without
    /// a policy.
    static func currentPrincipal(of call: GRPCServerCall, catalog: ModelCatalog) -> Result<Principal?, RPCError> {
        guard let policy = catalog.auth else { return .success(nil) }
        if let principal = call.principal as? Principal, principal.generation == policy.generation { return .success(principal) }
        // Only the inference methods ask (ModelInfer, each ModelStreamInfer message).
        return admit(call, to: .inference, under: policy, cache: nil).map { $0 }
    }

    /// Authenticates `call` under `policy`, names its principal in the access log, and checks that
    /// the principal may call methods of `group`; on success the call carries the principal. What
    /// the call gate does for every call, and a stream again after a policy change.
    static func admit(
        _ call: GRPCServerCall, to group: AuthPolicy.MethodGroup, under policy: CompiledAuthPolicy, cache: KeyCache?
    ) -> Result<Principal, RPCError> {
        switch authenticate(metadata: call.head.metadata, connection: call.connection, policy: policy, cache: cache) {
        case .failure(let error):
            return .failure(error)
        case .success(let principal):
            call.annotations.principal = principal.name
            guard principal.mayCall(group) else { return .failure(principal.deniedMethod(group, path: call.head.path)) }
            call.principal = principal
            return .success(principal)
        }
    }
}

/// The call gate of one event loop: authenticates every call and checks its method group
/// before any handler runs. Loop-confined; the policy comes with the loop's model catalog.
final class GatewayCallGate: GRPCServerCallGate {
    private let repository: ModelRepository
    private let eventLoop: EventLoop
    private let keys = Authenticator.KeyCache()
    /// Method groups by method index (nil entry: not yet looked up; .some(nil): open).
    private var groups: [AuthPolicy.MethodGroup??] = []

    init(repository: ModelRepository, eventLoop: EventLoop) {
        self.repository = repository
        self.eventLoop = eventLoop
    }

    func admit(_ call: GRPCServerCall) -> RPCError? {
        guard let policy = repository.catalog(on: eventLoop).auth, let method = call.method else { return nil }
        if method.index >= groups.count { groups += Array(repeating: nil, count: method.index + 1 - groups.count) }
        let group: AuthPolicy.MethodGroup?
        if let known = groups[method.index] {
            group = known
        } else {
            group = CompiledAuthPolicy.methodGroup(path: method.path)
            groups[method.index] = .some(group)
        }
        guard let group else { return nil }  // health: open
        let principal: Principal
        switch Authenticator.admit(call, to: group, under: policy, cache: keys) {
        case .failure(let error): return error
        case .success(let admitted): principal = admitted
        }
        guard let concurrency = principal.concurrency else { return nil }
        guard concurrency.acquire() else {
            principal.refusals.count(.concurrency)
            return LimitRefusal(
                kind: .concurrency, retryAfterNanos: 100_000_000,
                message: "principal '\(principal.name)' has \(concurrency.maximum) calls in flight, its limit (max_concurrent_calls)"
            ).error
        }
        call.gateToken = concurrency
        return nil
    }

    func admittedCallEnded(_ call: GRPCServerCall) {
        guard let token = call.gateToken else { return }
        call.gateToken = nil
        unsafeDowncast(token, to: ConcurrencyLimit.self).release()
    }
}
