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
    /// The admin listener (HTTP/1.1: `GET /healthz`, `GET /readyz`, `POST /tls/reload`; see
    /// `AdminHTTPServer`); nil for none. Default 127.0.0.1:8002: whoever reaches it can operate
    /// the gateway, so keep it on loopback or a management network.
    public var adminListener: Address? = Address(host: "127.0.0.1", port: 8002)
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
    public var router: any InferenceRouter = VersionRouter()
    /// Traces of ModelInfer and ModelStreamInfer requests (W3C trace context in, spans out
    /// through its tracer). Default nil: off, and no cost per call but a nil check.
    public var tracing: InferenceTracing?
    /// Serve the `switchyard.diagnostics.Echo` transport diagnostic. Default off.
    public var enableEchoService = false
    /// The models to serve and their workers. Default: the built-in example models
    /// (simple, simple_string, simple_identity, repeat_int32), 2 workers each.
    public var models: [ModelDeployment] = GatewayConfiguration.builtinModels.map { ModelDeployment(model: $0, workers: 2) }
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
            if enableDiagnosticModels && !deployment.workerArguments.contains(Self.diagnosticModelsWorkerFlag) {
                deployment.workerArguments.append(Self.diagnosticModelsWorkerFlag)
            }
            return deployment
        }
    }

    /// The `switchyard worker` flag that `enableDiagnosticModels` adds.
    public static let diagnosticModelsWorkerFlag = "--enable-diagnostic-models"

    public init() {}
}
