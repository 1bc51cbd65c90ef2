import H2Transport
import NIOCore

/// Everything the gateway process needs to serve, with the embedded defaults of DESIGN.md:
/// TLS on 0.0.0.0:8443 (client certificates verified when presented), plaintext h2c on
/// 127.0.0.1:8001, dev certificates under Certs/dev/.
public struct GatewayConfiguration: Sendable {
    /// A host and port to listen on.
    public struct Address: Sendable, Hashable, CustomStringConvertible {
        public var host: String
        public var port: Int

        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }

        /// Parses "host:port" (IPv6 hosts in brackets: "[::1]:8001").
        public init?(parsing text: String) {
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65_535).contains(port) else {
                return nil
            }
            var host = String(text[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            guard !host.isEmpty else { return nil }
            self.init(host: host, port: port)
        }

        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }

        /// True for addresses only this machine can reach: 127.0.0.0/8, ::1 and `localhost`.
        public var isLoopback: Bool {
            let lowered = host.lowercased()
            if lowered == "localhost" || lowered == "::1" || lowered == "0:0:0:0:0:0:0:1" { return true }
            let octets = lowered.split(separator: ".", omittingEmptySubsequences: false)
            return octets.count == 4 && octets[0] == "127" && octets.allSatisfy { UInt8($0) != nil }
        }
    }

    /// Certificate files of the TLS listener.
    public struct TLSFiles: Sendable, Hashable {
        /// PEM chain, leaf first.
        public var certificateChain: String
        /// PEM private key of the leaf.
        public var privateKey: String
        /// PEM CA bundle that client certificates must chain to.
        public var clientCABundle: String?

        public init(certificateChain: String, privateKey: String, clientCABundle: String?) {
            self.certificateChain = certificateChain
            self.privateKey = privateKey
            self.clientCABundle = clientCABundle
        }

        /// The dev certificates in `directory` (server.pem, server-key.pem, ca.pem).
        public static func dev(in directory: String) -> TLSFiles {
            let files = DevCertificates.Files(directory: directory)
            return TLSFiles(certificateChain: files.serverCertificate, privateKey: files.serverKey, clientCABundle: files.caCertificate)
        }
    }

    /// The plaintext (h2c, prior knowledge) listener; nil for none. Default 127.0.0.1:8001.
    public var plaintextListener: Address? = Address(host: "127.0.0.1", port: 8001)
    /// The TLS listener; nil for none. Default 0.0.0.0:8443.
    public var tlsListener: Address? = Address(host: "0.0.0.0", port: 8443)
    /// The admin listener (HTTP/1.1: probes, workers, drain, restart, config, TLS reload; see
    /// `AdminHTTPServer`); nil for none. Default 127.0.0.1:8002: whoever reaches it can operate
    /// the gateway, so keep it on loopback or a management network (beyond loopback it needs
    /// `adminToken`).
    public var adminListener: Address? = Address(host: "127.0.0.1", port: 8002)
    /// The bearer token the admin listener requires on every endpoint but `/healthz` and
    /// `/readyz` (`serve --admin-token-file`); nil for none, which `validate()` allows only on a
    /// loopback admin address. Never logged, never shown (`GET /config` writes "***").
    public var adminToken: String?
    /// After SIGTERM, how long the gateway keeps serving with readiness already 503, so that a
    /// load balancer takes it out before connections get GOAWAY (as Envoy's drain time). Default 0.
    public var shutdownDelay: TimeAmount = .zero
    /// The log settings as the command line gave them, reported by `GET /config` (logging is
    /// set up by the process, not the gateway). Defaults "text" and "info".
    public var logFormat = "text"
    public var logLevel = "info"
    /// Event-loop threads serving calls, reported by `GET /config`; nil when not known.
    public var threads: Int?
    /// The TLS listener's certificates. Default: the dev set in Certs/dev/.
    public var tlsFiles = TLSFiles.dev(in: "Certs/dev")
    /// Client certificates: none, optional (verified when presented) or required. Default optional.
    public var clientCertificateVerification: TLSConfiguration.ClientCertificateVerification = .optional
    /// HTTP/2 settings and protections.
    public var http2 = HTTP2Configuration()
    /// How long a new connection has for the TLS handshake and the HTTP/2 preface. Default 10 s.
    public var handshakeTimeout: TimeAmount = .seconds(10)
    /// The largest request message accepted. Default 64 MiB (tensors are large).
    public var maxReceiveMessageSize = 64 * 1024 * 1024
    /// Requests of one ModelStreamInfer stream inside the gateway at once; beyond this the
    /// stream is not read (HTTP/2 flow control holds the client) until one finishes. Default 32.
    public var maxStreamRequestsInFlight = 32
    /// Response bytes one ModelStreamInfer stream may leave unread by its client before the
    /// gateway ends it with RESOURCE_EXHAUSTED. Well before that, the stream stops being read
    /// and workers are asked to pause its streamed responses. Default 8 MiB.
    public var maxStreamBufferedBytes = 8 * 1024 * 1024
    /// The routing seam every inference request passes through (see `InferenceRouter`).
    /// Default: `VersionRouter`, the version a request names or the newest.
    public var router: any InferenceRouter = WeightedRouter()
    /// Routes by model name: weighted variants, sticky keys, overrides, shadows (see
    /// `ModelRoute`). A model without a route gets the version a request names, or its newest.
    public var routes: [ModelRoute] = []
    /// Who may call what: API keys, client certificates, principals and their permissions.
    /// Nil (the default): no authentication, every caller may do everything.
    public var auth: AuthPolicy?
    /// Reads the models and routes again from where they came from (the `--config` file, with
    /// the flags over it), for `POST /config/reload` and SIGHUP; throws the file's mistakes.
    /// Nil: there is nothing to reload.
    public var reloadSource: (@Sendable () throws -> Reloaded)?

    /// A configuration as a reload reads it again: what the gateway applies while it serves,
    /// and what changed but waits for a restart.
    public struct Reloaded: Sendable {
        /// The variants to serve (before `enableDiagnosticModels` adds its flag, as `models`).
        public var models: [ModelDeployment]
        public var routes: [ModelRoute]
        /// The `auth` and `principals` sections; nil: none.
        public var auth: AuthPolicy?
        /// The keys of settings that differ from those in use and apply only at the next start
        /// (listeners, TLS file paths, logging, HTTP/2 and limits), e.g. `listeners.tls.address`.
        public var needsRestart: [String]

        public init(models: [ModelDeployment], routes: [ModelRoute], auth: AuthPolicy? = nil, needsRestart: [String] = []) {
            self.models = models
            self.routes = routes
            self.auth = auth
            self.needsRestart = needsRestart
        }
    }
    /// Traces of ModelInfer and ModelStreamInfer requests (W3C trace context in, spans out
    /// through its tracer). Default nil: off, and no cost per call but a nil check.
    public var tracing: InferenceTracing?
    /// Serve the `switchyard.diagnostics.Echo` transport diagnostic. Default off.
    public var enableEchoService = false
    /// Levels per subsystem (`--log-level`); nil: the logger given to the server, as it is.
    public var logLevels: LogLevels?
    /// Metrics, the access log and request ids.
    public var metrics = MetricsConfiguration()
    /// The models to serve and their workers. Default: the built-in example models
    /// (simple, simple_string, simple_identity, repeat_int32), 2 workers each.
    public var models: [ModelDeployment] = GatewayConfiguration.builtinModels.map { ModelDeployment(model: $0, workers: 2) }
    /// The models loaded when the gateway starts; nil: all of them. The others wait for
    /// RepositoryModelLoad (Triton's explicit model control).
    public var modelsLoadedAtStart: Set<String>?
    /// The built-in example models' names.
    public static let builtinModels = ["simple", "simple_string", "simple_identity", "repeat_int32"]
    /// How workers are started; nil uses this binary's own `switchyard worker`.
    public var workerLauncher: WorkerLauncher?
    /// Start every worker with `--enable-diagnostic-models`, so that the diagnostic models
    /// (`diagnostic_crash`, `diagnostic_stall`, `diagnostic_stateful`: they crash or stall their
    /// worker on purpose, for tests) can be among `models`. Default off; never in the defaults.
    public var enableDiagnosticModels = false

    /// `models` as the workers are started: with the worker arguments that settings such as
    /// `enableDiagnosticModels` add.
    public var effectiveModels: [ModelDeployment] {
        models.map { deployment in
            var deployment = deployment
            guard case .builtin = deployment.backend else { return deployment }  // a flag of `switchyard worker` only
            if enableDiagnosticModels && !deployment.workerArguments.contains(Self.diagnosticModelsWorkerFlag) {
                deployment.workerArguments.append(Self.diagnosticModelsWorkerFlag)
            }
            return deployment
        }
    }

    /// The `switchyard worker` flag that `enableDiagnosticModels` adds.
    public static let diagnosticModelsWorkerFlag = "--enable-diagnostic-models"

    public init() {}

    /// Refuses configurations that would expose the gateway: an admin listener beyond loopback
    /// without a bearer token.
    public func validate() throws(GatewayConfigurationError) {
        if let admin = adminListener, !admin.isLoopback, adminToken == nil {
            throw GatewayConfigurationError(
                "--admin-address \(admin) is not a loopback address, and the admin API operates the gateway: give --admin-token-file "
                    + "(a file holding a bearer token), or keep --admin-address on 127.0.0.1")
        }
        if let token = adminToken, token.isEmpty || token.contains(where: { $0.isWhitespace || $0.isNewline }) {
            throw GatewayConfigurationError("the admin token must be one word without spaces (the file's surrounding whitespace is ignored)")
        }
    }
}

/// A configuration the gateway refuses to run with; the message names the flag to change.
public struct GatewayConfigurationError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
