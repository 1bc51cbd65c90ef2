import H2Transport

/// Who may call the gateway, and what each caller may do: the `auth` and `principals` sections
/// of the configuration file, as a value. `CompiledAuthPolicy` is its form for the hot path.
///
/// A call's principal comes from, in order: an API key (`x-api-key: KEY` or
/// `authorization: Bearer KEY`) or an OAuth2 access token (`authorization: Bearer JWT`), the
/// verified client certificate of an mTLS connection, or no
/// credential at all (the anonymous principal, where the listener allows it). Health checks
/// (`grpc.health.v1.Health`) are always open, so that load balancers and probes need nothing.
public struct AuthPolicy: Sendable, Hashable {
    /// An API key, stored as the SHA-256 of its UTF-8 bytes (`switchyard hash-key` prints it).
    public struct APIKey: Sendable, Hashable {
        public var principal: String
        /// 32 bytes.
        public var sha256: [UInt8]

        public init(principal: String, sha256: [UInt8]) {
            self.principal = principal
            self.sha256 = sha256
        }
    }

    /// Maps a verified client certificate to a principal: the first rule whose pattern matches
    /// one of the certificate's names of its kind wins. Patterns match exactly, or with `*`
    /// standing for any run of characters (`spiffe://example.org/ns/*`).
    public struct CertificateRule: Sendable, Hashable {
        public enum Field: String, Sendable, Hashable, CaseIterable {
            /// A URI subject alternative name (SPIFFE IDs are URIs).
            case uri
            /// A DNS subject alternative name.
            case dns
            /// The subject's common name.
            case commonName = "common_name"
        }

        public var principal: String
        public var field: Field
        public var pattern: String

        public init(principal: String, field: Field, pattern: String) {
            self.principal = principal
            self.field = field
            self.pattern = pattern
        }
    }

    /// The groups of methods a permission names.
    public enum MethodGroup: String, Sendable, Hashable, CaseIterable, Comparable {
        /// ModelInfer, ModelStreamInfer.
        case inference
        /// ServerLive, ServerReady, ServerMetadata, ModelReady, ModelMetadata, ModelConfig,
        /// server reflection (health is open to everyone).
        case metadata
        /// RepositoryIndex, RepositoryModelLoad, RepositoryModelUnload and Triton's other
        /// control methods.
        case repository
        /// ModelStatistics.
        case statistics

        public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    }

    /// A token bucket: `requestsPerSecond` on average, up to `burst` at once.
    public struct RateLimit: Sendable, Hashable {
        public var requestsPerSecond: Double
        public var burst: Int

        public init(requestsPerSecond: Double, burst: Int) {
            self.requestsPerSecond = requestsPerSecond
            self.burst = burst
        }
    }

    /// What one principal may do.
    public struct Permissions: Sendable, Hashable {
        /// Models it may use, as `NAME` (every version) or `NAME:VERSION`, `*` allowed in either.
        /// Default `["*"]`: every model.
        public var models: [String] = ["*"]
        /// Method groups it may call. Default: all.
        public var methods: Set<MethodGroup> = Set(MethodGroup.allCases)
        /// Whether it may force a variant with `x-switchyard-variant` (where the route allows
        /// overrides at all). Default false.
        public var allowOverride = false
        /// Inference requests (ModelInfer calls, ModelStreamInfer messages) per second over all
        /// its calls; nil: no limit.
        public var rateLimit: RateLimit?
        /// Per model name, its inference requests to that model; on top of `rateLimit`.
        public var modelRateLimits: [String: RateLimit] = [:]
        /// Calls in flight at once (a stream counts as one call for its life); nil: no limit.
        public var maxConcurrentCalls: Int?

        public init(
            models: [String] = ["*"], methods: Set<MethodGroup> = Set(MethodGroup.allCases), allowOverride: Bool = false,
            rateLimit: RateLimit? = nil, modelRateLimits: [String: RateLimit] = [:], maxConcurrentCalls: Int? = nil
        ) {
            self.models = models
            self.methods = methods
            self.allowOverride = allowOverride
            self.rateLimit = rateLimit
            self.modelRateLimits = modelRateLimits
            self.maxConcurrentCalls = maxConcurrentCalls
        }
    }

    /// The principal a call without credentials gets, where its listener allows anonymous calls;
    /// its permissions are those of a principal of this name when one is configured, else all.
    public static let anonymous = "anonymous"

    public var apiKeys: [APIKey] = []
    public var certificates: [CertificateRule] = []
    /// OAuth2 access tokens (JWTs) and the rules that map their claims to principals; nil: none.
    public var jwt: JWT?
    /// Permissions by principal name. A principal named by a key or a certificate rule but
    /// absent here may call nothing (every call PERMISSION_DENIED).
    public var principals: [String: Permissions] = [:]
    /// Whether calls without credentials are let in on the plaintext listener. Default true
    /// (it listens on loopback by default).
    public var anonymousOnPlaintext = true
    /// The same on the TLS listener. Default (nil): false once any key or certificate rule
    /// exists (callers from the network must say who they are), else true.
    public var anonymousOnTLS: Bool?
    /// Per model name, inference requests to it from every caller together; nil: no limit.
    public var modelRateLimits: [String: RateLimit] = [:]

    public init() {}
}
