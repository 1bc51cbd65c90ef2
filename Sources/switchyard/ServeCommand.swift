import ArgumentParser
import ConfigFile
import Dispatch
import Foundation
import Gateway
import H2Transport
import Logging
import Metrics
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Prometheus
import ServiceLifecycle
import Worker

/// `switchyard serve`: run the gateway.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the gateway (embedded defaults: TLS on 0.0.0.0:8443, h2c on 127.0.0.1:8001, admin on 127.0.0.1:8002).",
        discussion: """
            With no options, serves TLS on 0.0.0.0:8443 with dev certificates from Certs/dev/ \
            (generated on first run; client certificates verified when presented) and plaintext \
            h2c on 127.0.0.1:8001, and the admin listener on 127.0.0.1:8002 (HTTP/1.1: /healthz, \
            /readyz, /metrics, /workers, /routes, drain, restart, /config). SIGTERM or SIGINT: readiness 503 at once, then (after \
            --shutdown-delay) GOAWAY, calls in flight finish within --drain-timeout, streams are \
            told to reconnect, workers stop last; a second SIGTERM or SIGINT stops at once.
            With --config FILE, the YAML file's keys (docs/configuration.md) replace these \
            defaults, and the flags given on the command line override the file.
            """
    )

    @Option(
        name: .customLong("config"),
        help: "A YAML configuration file (see docs/configuration.md and switchyard.yaml); flags given override its keys. A file with mistakes is refused before anything is bound.")
    var configFile: String?

    @Option(
        name: .customLong("watch-config"),
        help: "With --config: read the file this often (e.g. 2s) and reload it when its content changes, as POST /config/reload does; suits a mounted Kubernetes ConfigMap. 'off' (default): reload on SIGHUP or POST /config/reload only.")
    var watchConfig = DurationArgument(nil, "off")

    @Option(name: .customLong("plaintext-address"), help: "host:port of the plaintext h2c listener; 'none' disables it.")
    var plaintextAddress = "127.0.0.1:8001"

    @Option(name: .customLong("tls-address"), help: "host:port of the TLS listener; 'none' disables it.")
    var tlsAddress = "0.0.0.0:8443"

    @Option(
        name: .customLong("admin-address"),
        help: "host:port of the admin listener (HTTP/1.1: /healthz, /readyz, /workers, /config, drain, restart, /tls/reload); 'none' disables it. Beyond loopback it needs --admin-token-file.")
    var adminAddress = "127.0.0.1:8002"

    @Option(
        name: .customLong("admin-token-file"),
        help: "A file holding the bearer token the admin listener requires (Authorization: Bearer <token>) on every endpoint but /healthz and /readyz; surrounding whitespace is ignored. Required when --admin-address is not a loopback address.")
    var adminTokenFile: String?

    @Option(name: .customLong("dev-certs-dir"), help: "Where dev certificates are kept (and generated when missing).")
    var devCertsDirectory = "Certs/dev"

    @Option(name: .customLong("tls-cert"), help: "PEM certificate chain of the TLS listener (default: the dev certificate).")
    var tlsCertificate: String?

    @Option(name: .customLong("tls-key"), help: "PEM private key of the TLS listener (default: the dev key).")
    var tlsKey: String?

    @Option(name: .customLong("tls-client-ca"), help: "PEM CA bundle for client certificates (default: the dev CA).")
    var tlsClientCA: String?

    @Option(name: .customLong("client-auth"), help: "Client certificates: none, optional or required.")
    var clientAuth = "optional"

    @Flag(name: .customLong("enable-echo-service"), help: "Serve switchyard.diagnostics.Echo (a transport diagnostic).")
    var enableEchoService = false

    @Flag(
        name: .customLong("enable-diagnostic-models"),
        help: "Let --model name the diagnostic models (diagnostic_crash, diagnostic_stall, diagnostic_stateful), which crash or stall their workers on purpose (for tests); see `switchyard worker --help`.")
    var enableDiagnosticModels = false

    @Option(
        name: .customLong("model"),
        help: "A model to serve as NAME or NAME:VERSION (repeatable; several versions of one model run side by side, each with its own workers; default: the built-in simple, simple_string, simple_identity, repeat_int32 at version 1).")
    var models: [String] = []

    @Option(
        name: .customLong("model-repository"),
        help: "A Triton model repository: DIR/NAME/config.pbtxt (optional for ONNX models) and DIR/NAME/VERSION/model.onnx, served by the native ONNX runtime; its version policies choose the versions. Without --model or a file's models, only the repository's models are served.")
    var modelRepository: String?

    @Option(
        name: .customLong("model-control-mode"),
        help: "none: load every model at start (default); explicit: load only the --load-model models, the others with RepositoryModelLoad (Triton's modes).")
    var modelControlMode = "none"

    @Option(name: .customLong("load-model"), help: "With --model-control-mode explicit: a model to load at start (repeatable).")
    var loadModels: [String] = []

    @Option(name: .customLong("workers-per-model"), help: "Worker processes per model.")
    var workersPerModel = 2

    @Option(name: .customLong("max-inflight-per-worker"), help: "Requests in flight on one worker before others queue.")
    var maxInFlightPerWorker = 64

    @Option(name: .customLong("max-queued-requests"), help: "Requests queued per model before RESOURCE_EXHAUSTED.")
    var maxQueuedRequests = 1024

    @Option(
        name: .customLong("max-stream-requests-in-flight"),
        help: "Requests of one ModelStreamInfer stream inside the gateway at once; beyond that the stream is not read until one finishes.")
    var maxStreamRequestsInFlight = GatewayConfiguration().maxStreamRequestsInFlight

    @Option(
        name: .customLong("max-stream-buffered-bytes"),
        help: "Response bytes one ModelStreamInfer stream may leave unread by its client before it is ended with RESOURCE_EXHAUSTED.")
    var maxStreamBufferedBytes = GatewayConfiguration().maxStreamBufferedBytes

    @Option(name: .customLong("handshake-timeout"), help: "How long a new connection has for the TLS handshake and the HTTP/2 preface.")
    var handshakeTimeout = DurationArgument(.seconds(10), "10s")

    /// The earlier spelling, in milliseconds; still accepted, not shown.
    @Option(name: .customLong("handshake-timeout-ms"), help: ArgumentHelp("Deprecated: --handshake-timeout in milliseconds.", visibility: .hidden))
    var handshakeTimeoutMilliseconds: Int64?

    // HTTP/2 settings and connection management (the README's "Command line" has the details).

    @Option(name: .customLong("max-concurrent-streams"), help: "SETTINGS_MAX_CONCURRENT_STREAMS: calls in flight per connection.")
    var maxConcurrentStreams = 100

    @Option(name: .customLong("initial-window-size"), help: "HTTP/2 flow-control window per stream, in bytes.")
    var initialWindowSize = 1 << 20

    @Option(name: .customLong("connection-window-size"), help: "HTTP/2 flow-control window per connection, in bytes.")
    var connectionWindowSize = 4 << 20

    @Option(name: .customLong("max-frame-size"), help: "SETTINGS_MAX_FRAME_SIZE in bytes (16384 to 16777215).")
    var maxFrameSize = 16_384

    @Option(name: .customLong("max-header-list-size"), help: "Largest request header block in bytes (name + value + 32 per field).")
    var maxHeaderListSize = 16_384

    @Option(name: .customLong("max-receive-message-size"), help: "Largest request message in bytes (RESOURCE_EXHAUSTED above it).")
    var maxReceiveMessageSize = 64 * 1024 * 1024

    @Option(name: .customLong("keepalive-interval"), help: "PING a connection that has been quiet this long ('off' disables).")
    var keepaliveInterval = DurationArgument(.hours(2), "2h")

    @Option(name: .customLong("keepalive-timeout"), help: "Close a connection whose keepalive PING is not acknowledged within this.")
    var keepaliveTimeout = DurationArgument(.seconds(20), "20s")

    @Option(
        name: .customLong("min-client-ping-interval"),
        help: "Clients may PING this often at most (more often earns GOAWAY too_many_pings, as grpc-core).")
    var minClientPingInterval = DurationArgument(.minutes(5), "5m")

    @Option(name: .customLong("idle-timeout"), help: "Close a connection with no call in flight for this long ('off' disables).")
    var idleTimeout = DurationArgument(.minutes(30), "30m")

    @Option(
        name: .customLong("max-connection-age"),
        help: "Send GOAWAY to connections older than this, so clients spread over instances ('off' disables).")
    var maxConnectionAge = DurationArgument(nil, "off")

    @Option(name: .customLong("drain-timeout"), help: "How long calls in flight may finish after GOAWAY (max age or shutdown).")
    var drainTimeout = DurationArgument(.seconds(30), "30s")

    @Option(
        name: .customLong("shutdown-delay"),
        help: "After SIGTERM, keep serving this long with /readyz already 503 (so a load balancer takes the gateway out) before GOAWAY; 0s for none.")
    var shutdownDelay = DurationArgument(.zero, "0s")

    @Option(
        name: .customLong("log-level"),
        help: ArgumentHelp(
            "trace, debug, info, notice, warning, error or critical; optionally per subsystem, e.g. info,transport=debug,pool=warning,access=off.",
            discussion: "Subsystems: transport (connections, TLS, HTTP/2, calls), pool (worker supervision and dispatch), worker (lines the workers write), admin, access (the access log; 'off' turns it off)."))
    var logLevel = "info"

    @Option(
        name: .customLong("access-log"),
        help: "Where the access log (one JSON line per call) goes: stdout, stderr, a file path (appended to), or off.")
    var accessLog = "stdout"

    @Option(
        name: .customLong("access-log-sample-rate"),
        help: "Fraction (0 to 1) of successful calls written to the access log; failed calls are always written.")
    var accessLogSampleRate = 1.0

    @Option(
        name: .customLong("metrics-latency-buckets"),
        help: "Upper bounds in seconds of the latency histograms' buckets on /metrics, comma-separated (default 0.0001 ... 10).")
    var metricsLatencyBuckets: String?

    @Option(
        name: .customLong("log-format"),
        help: "text (one line per event for people) or json (one JSON object per line, written off the event loops, for log pipelines).")
    var logFormat = "text"

    @Option(
        name: .customLong("otlp-endpoint"),
        help: "Export traces of inference requests over OTLP/HTTP to this collector (a base URL such as http://127.0.0.1:4318; /v1/traces is appended). Default: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT; none of them: tracing off.")
    var otlpEndpoint: String?

    @Option(
        name: .customLong("trace-sampling-ratio"),
        help: "Share of requests without a client traceparent that start a trace, 0 to 1 (a client's sampled flag is always honoured).")
    var traceSamplingRatio = 1.0

    @Option(name: .customLong("threads"), help: "Event-loop threads (default: one per core).")
    var threads: Int?

    func validate() throws {
        _ = try http2Configuration()
        _ = try handshakeTimeout.required("--handshake-timeout")
        if try watchConfig.optional("--watch-config") != nil, configFile == nil {
            throw ValidationError("--watch-config watches the --config file; give --config FILE too")
        }
        if let handshakeTimeoutMilliseconds, handshakeTimeoutMilliseconds <= 0 { throw ValidationError("--handshake-timeout-ms must be positive") }
        guard maxReceiveMessageSize > 0 else { throw ValidationError("--max-receive-message-size must be positive") }
        guard ["text", "json"].contains(logFormat) else { throw ValidationError("--log-format must be text or json, not '\(logFormat)'") }
        do {
            _ = try LogLevels(parsing: logLevel)
        } catch {
            throw ValidationError("--log-level: \(error)")
        }
        guard (0...1).contains(accessLogSampleRate) else {
            throw ValidationError("--access-log-sample-rate must be between 0 and 1, not \(accessLogSampleRate)")
        }
        _ = try latencyBuckets()
        guard maxStreamRequestsInFlight > 0 else { throw ValidationError("--max-stream-requests-in-flight must be at least 1") }
        guard maxStreamBufferedBytes >= 65_536 else { throw ValidationError("--max-stream-buffered-bytes must be at least 65536") }
        guard (0...1).contains(traceSamplingRatio) else { throw ValidationError("--trace-sampling-ratio must be 0 to 1, not \(traceSamplingRatio)") }
        if let otlpEndpoint, !(otlpEndpoint.hasPrefix("http://") || otlpEndpoint.hasPrefix("https://")) {
            throw ValidationError("--otlp-endpoint must be an http:// or https:// URL, not '\(otlpEndpoint)'")
        }
        let variants = try modelVariants()
        if let diagnostic = variants.map(\.model).first(where: { DiagnosticModels.names.contains($0) }), !enableDiagnosticModels {
            throw ValidationError(
                "model '\(diagnostic)' is a diagnostic model (it crashes or stalls its workers on purpose); add --enable-diagnostic-models")
        }
    }

    /// The `--model` values as (model, version) pairs; the built-in models when none is given.
    func modelVariants() throws -> [ModelVariantKey] {
        guard !models.isEmpty else { return GatewayConfiguration.builtinModels.map { ModelVariantKey(model: $0, version: "1") } }
        var seen: Set<ModelVariantKey> = []
        return try models.map { text in
            let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            let key = ModelVariantKey(model: parts[0], version: parts.count == 2 ? parts[1] : "1")
            guard !key.model.isEmpty, !key.version.isEmpty, !key.version.contains(where: { $0 == "/" || $0.isWhitespace }) else {
                throw ValidationError("--model '\(text)' is not NAME or NAME:VERSION (for example simple or simple:2)")
            }
            guard seen.insert(key).inserted else { throw ValidationError("--model '\(text)' is given twice") }
            return key
        }
    }

    func run() async throws {
        let settings = try settings(given: Self.givenOptions(CommandLine.arguments.dropFirst()))
        let logLevel = settings.logLevel
        let logFormat = settings.logFormat
        let levels: LogLevels
        do {
            levels = try LogLevels(parsing: logLevel)
        } catch {
            throw ValidationError("--log-level: \(error)")
        }
        // Handlers let the lowest level through; each subsystem's logger applies its own.
        let level = levels.lowestLevel
        // Both formats write through one bounded writer thread: an event loop that logs never
        // waits for the terminal, a pipe or a disk. Its last lines go out before the process ends.
        let logWriter = LogLineWriter()
        switch logFormat {
        case "text":
            LoggingSystem.bootstrap { label in
                var handler = WriterLogHandler(label: label, writer: logWriter, format: .text)
                handler.logLevel = level
                return handler
            }
        case "json":
            LoggingSystem.bootstrap { label in
                var handler = WriterLogHandler(label: label, writer: logWriter, format: .json)
                handler.logLevel = level
                return handler
            }
        default:
            throw ValidationError("--log-format must be text or json, not '\(logFormat)'")
        }
        defer { logWriter.shutdown() }
        var logger = Logger(label: "switchyard")
        logger.logLevel = levels.defaultLevel
        var configuration = GatewayConfiguration()
        configuration.logLevels = levels
        configuration.metrics.diagnosticLogWriter = logWriter
        if let buckets = settings.latencyBuckets { configuration.metrics.latencyBucketsSeconds = buckets }
        if settings.accessLog != "off", levels.accessLogEnabled {
            configuration.metrics.accessLog = AccessLogConfiguration(destination: settings.accessLog, sampleRate: settings.accessLogSampleRate)
        }
        configuration.plaintextListener = settings.plaintextListener
        configuration.tlsListener = settings.tlsListener
        configuration.adminListener = settings.adminListener
        if let adminTokenFile = settings.adminTokenFile { configuration.adminToken = try readAdminToken(adminTokenFile) }
        configuration.shutdownDelay = settings.shutdownDelay
        configuration.logFormat = logFormat
        configuration.logLevel = logLevel
        configuration.threads = max(1, threads ?? System.coreCount)
        do {
            try configuration.validate()
        } catch {
            throw ValidationError(error.description)
        }
        configuration.enableEchoService = enableEchoService
        configuration.handshakeTimeout = settings.handshakeTimeout
        configuration.enableDiagnosticModels = enableDiagnosticModels
        configuration.http2 = settings.http2
        configuration.maxReceiveMessageSize = settings.maxReceiveMessageSize
        configuration.maxStreamRequestsInFlight = settings.maxStreamRequestsInFlight
        configuration.maxStreamBufferedBytes = settings.maxStreamBufferedBytes
        // Workers log at the gateway's level (their lines come into its log).
        configuration.models = Self.deployments(settings, levels: levels)
        configuration.routes = settings.routes
        configuration.auth = settings.auth
        switch modelControlMode {
        case "none":
            guard loadModels.isEmpty else { throw ValidationError("--load-model needs --model-control-mode explicit") }
        case "explicit":
            let known = Set(configuration.models.map(\.model))
            if let unknown = loadModels.first(where: { !known.contains($0) }) {
                throw ValidationError("--load-model \(unknown): no such model (known: \(known.sorted().joined(separator: ", ")))")
            }
            configuration.modelsLoadedAtStart = Set(loadModels)
        default:
            throw ValidationError("--model-control-mode must be none or explicit, not '\(modelControlMode)'")
        }
        if !settings.routesDroppedByFlags.isEmpty {
            logger.warning(
                "--model replaces the file's models: routes naming a version it does not serve are not used",
                metadata: ["models": "\(settings.routesDroppedByFlags.joined(separator: ", "))"])
        }
        if configFile != nil {
            let command = self
            let given = Self.givenOptions(CommandLine.arguments.dropFirst())
            configuration.reloadSource = { try command.reloaded(given: given, startedWith: settings, levels: levels) }
        }
        configuration.clientCertificateVerification = settings.clientAuth
        if configuration.tlsListener != nil {
            if settings.tlsCertificate == nil || settings.tlsPrivateKey == nil {
                let files = try DevCertificates.generateIfMissing(in: devCertsDirectory)
                logger.info("using dev certificates", metadata: ["directory": "\(devCertsDirectory)", "ca": "\(files.caCertificate)"])
            }
            var files = GatewayConfiguration.TLSFiles.dev(in: devCertsDirectory)
            if let tlsCertificate = settings.tlsCertificate { files.certificateChain = tlsCertificate }
            if let tlsKey = settings.tlsPrivateKey { files.privateKey = tlsKey }
            if let tlsClientCA = settings.tlsClientCA { files.clientCABundle = tlsClientCA }
            configuration.tlsFiles = files
        }

        var services: [any Service] = []
        let environment = ProcessInfo.processInfo.environment
        if let url = TraceExport.tracesURL(flag: otlpEndpoint, environment: environment) {
            let export = try TraceExport.start(url: url, samplingRatio: traceSamplingRatio, environment: environment, logger: logger)
            configuration.tracing = export.tracing
            services.append(export.service)  // first: it stops after the gateway and flushes its spans
            logger.info("exporting traces over OTLP/HTTP", metadata: ["endpoint": "\(url)", "sampling_ratio": "\(traceSamplingRatio)"])
        }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads ?? System.coreCount))
        let gateway = try GatewayServer(configuration: configuration, group: group, logger: logger)
        // What is counted through swift-metrics lands in the registry that /metrics serves.
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: gateway.metrics.registry))
        // SIGHUP re-reads the TLS certificate, key and client CA bundle without dropping
        // connections, and with --config the file's routes.
        signal(SIGHUP, SIG_IGN)
        let reloadSignal = DispatchSource.makeSignalSource(signal: SIGHUP)
        let reloadsConfiguration = configFile != nil
        reloadSignal.setEventHandler {
            _ = try? gateway.reloadTLS(requestedBy: "SIGHUP")  // logs the outcome
            if reloadsConfiguration { Task { _ = try? await gateway.reloadConfiguration(requestedBy: "SIGHUP") } }
        }
        reloadSignal.resume()
        defer { reloadSignal.cancel() }
        // The first SIGTERM or SIGINT drains (the service group); a second one stops at once,
        // killing the workers so that none is left behind.
        let signals = NIOLockedValueBox(0)
        let stopSignals = [SIGTERM, SIGINT].map { (number: Int32) -> DispatchSourceSignal in
            _ = signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number)
            source.setEventHandler {
                guard signals.withLockedValue({ count in
                    count += 1
                    return count
                }) >= 2 else { return }
                gateway.stopNow()
                logWriter.shutdown()
                Foundation.exit(1)
            }
            source.resume()
            return source
        }
        defer { for source in stopSignals { source.cancel() } }
        services.append(GatewayService(gateway: gateway))
        if let configFile, let interval = try watchConfig.optional("--watch-config") {
            services.append(ConfigFileWatcher(path: configFile, interval: interval, gateway: gateway, logger: logger))
        }
        let serviceGroup = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await serviceGroup.run()
        try await group.shutdownGracefully()
    }

    /// What to serve: the `--config` file over the defaults (every mistake in it printed to
    /// standard error, and the command ends with exit code 1 before anything is bound), then
    /// the flags in `given` over the file. Without a file every flag applies, defaults included.
    func settings(given: Set<String>) throws -> ServeSettings {
        var settings = ServeSettings()
        if let configFile {
            do {
                settings = try ServeSettings.load(path: configFile)
            } catch {
                FileHandle.standardError.write(Data((error.description + "\n").utf8))
                throw ExitCode(1)
            }
        }
        do {
            return try overlayFlags(on: settings, given: given)
        } catch let error as ModelRepositoryDirectory.ScanError {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode(1)
        }
    }

    /// The models a settings value serves, with the workers' log level (workers log at the
    /// gateway's level: their lines come into its log): a flag for `switchyard worker`, an
    /// environment variable for a command backend.
    static func deployments(_ settings: ServeSettings, levels: LogLevels) -> [ModelDeployment] {
        (settings.models ?? []).map {
            var deployment = $0
            let level = levels.level("worker").rawValue
            switch deployment.backend {
            case .builtin:
                deployment.workerArguments += ["--log-level", level]
            case .command(var command):
                command.environment[ExternalWorkerCommand.Variable.logLevel] = level
                deployment.backend = .command(command)
            }
            return deployment
        }
    }

    /// The `--config` file as it reads now, with the command line's flags over it as at the
    /// start (POST /config/reload, SIGHUP): its models and routes, and the settings that changed
    /// from `startedWith` but apply only at a restart. Throws the file's mistakes, one per line.
    func reloaded(given: Set<String>, startedWith: ServeSettings, levels: LogLevels) throws -> GatewayConfiguration.Reloaded {
        guard let configFile else { throw ConfigReloadError(message: "the gateway was started without --config; there is no file to reload") }
        let loaded: ServeSettings
        do {
            loaded = try ServeSettings.load(path: configFile)
        } catch {
            throw ConfigReloadError(message: error.description)
        }
        let settings = try overlayFlags(on: loaded, given: given)
        return GatewayConfiguration.Reloaded(
            models: Self.deployments(settings, levels: levels), routes: settings.routes, auth: settings.auth,
            needsRestart: settings.keysNeedingRestart(comparedWith: startedWith))
    }

    /// `settings` (from a file, or the defaults) with the flags in `given` over it; without a
    /// file every flag applies, defaults included.
    private func overlayFlags(on settings: ServeSettings, given: Set<String>) throws -> ServeSettings {
        var settings = settings
        func flag(_ name: String) -> Bool { configFile == nil || given.contains(name) }
        if flag("--plaintext-address") { settings.plaintextListener = try address(plaintextAddress, option: "--plaintext-address") }
        if flag("--tls-address") { settings.tlsListener = try address(tlsAddress, option: "--tls-address") }
        if flag("--admin-address") { settings.adminListener = try address(adminAddress, option: "--admin-address") }
        if let adminTokenFile { settings.adminTokenFile = adminTokenFile }
        if let tlsCertificate { settings.tlsCertificate = tlsCertificate }
        if let tlsKey { settings.tlsPrivateKey = tlsKey }
        if let tlsClientCA { settings.tlsClientCA = tlsClientCA }
        if flag("--client-auth") {
            switch clientAuth {
            case "none": settings.clientAuth = .none
            case "optional": settings.clientAuth = .optional
            case "required": settings.clientAuth = .required
            default: throw ValidationError("--client-auth must be none, optional or required, not '\(clientAuth)'")
            }
        }
        if flag("--log-level") { settings.logLevel = logLevel }
        if flag("--log-format") { settings.logFormat = logFormat }
        if flag("--access-log") { settings.accessLog = accessLog }
        if flag("--access-log-sample-rate") { settings.accessLogSampleRate = accessLogSampleRate }
        if let buckets = try latencyBuckets() { settings.latencyBuckets = buckets }
        if flag("--handshake-timeout") { settings.handshakeTimeout = try handshakeTimeout.required("--handshake-timeout") }
        if let handshakeTimeoutMilliseconds { settings.handshakeTimeout = .milliseconds(handshakeTimeoutMilliseconds) }
        if flag("--shutdown-delay") { settings.shutdownDelay = shutdownDelay.amount ?? .zero }
        if flag("--max-receive-message-size") { settings.maxReceiveMessageSize = maxReceiveMessageSize }
        if flag("--max-stream-requests-in-flight") { settings.maxStreamRequestsInFlight = maxStreamRequestsInFlight }
        if flag("--max-stream-buffered-bytes") { settings.maxStreamBufferedBytes = maxStreamBufferedBytes }
        let http2 = try http2Configuration()
        if flag("--max-concurrent-streams") { settings.http2.maxConcurrentStreams = http2.maxConcurrentStreams }
        if flag("--initial-window-size") { settings.http2.initialWindowSize = http2.initialWindowSize }
        if flag("--connection-window-size") { settings.http2.connectionWindowSize = http2.connectionWindowSize }
        if flag("--max-frame-size") { settings.http2.maxFrameSize = http2.maxFrameSize }
        if flag("--max-header-list-size") { settings.http2.maxHeaderListSize = http2.maxHeaderListSize }
        if flag("--keepalive-interval") { settings.http2.keepaliveInterval = http2.keepaliveInterval }
        if flag("--keepalive-timeout") { settings.http2.keepaliveTimeout = http2.keepaliveTimeout }
        if flag("--min-client-ping-interval") { settings.http2.minimumPingInterval = http2.minimumPingInterval }
        if flag("--idle-timeout") { settings.http2.idleTimeout = http2.idleTimeout }
        if flag("--max-connection-age") { settings.http2.maxConnectionAge = http2.maxConnectionAge }
        if flag("--drain-timeout") { settings.http2.drainTimeout = http2.drainTimeout }
        // A repository alone serves its models only, as Triton does (not the built-in ones too).
        let repositoryOnly = modelRepository != nil && !given.contains("--model") && settings.models == nil
        if !repositoryOnly && (settings.models == nil || given.contains("--model")) {
            settings.models = try modelVariants().map { ModelDeployment(model: $0.model, version: $0.version) }
            // The file's routes stay only where every version they name is still served.
            let served = Set(try modelVariants())
            let (kept, dropped) = settings.routes.reduce(into: ([ModelRoute](), [ModelRoute]())) { split, route in
                let servedAll = (route.variants.map(\.version) + (route.shadow.map { [$0.version] } ?? [])).allSatisfy {
                    served.contains(ModelVariantKey(model: route.model, version: $0))
                }
                if servedAll { split.0.append(route) } else { split.1.append(route) }
            }
            settings.routes = kept
            settings.routesDroppedByFlags = dropped.map(\.model)
        }
        if let modelRepository {
            let scanned: [ModelDeployment]
            do {
                scanned = try ModelRepositoryDirectory.scan(modelRepository)
            } catch {
                // Printed by `settings(given:)` at start; a reload's answer carries it.
                throw ModelRepositoryDirectory.ScanError(mistakes: ["the model repository cannot be served:"] + error.mistakes)
            }
            let named = Set((settings.models ?? []).map(\.model))
            if let clash = scanned.first(where: { named.contains($0.model) }) {
                throw ValidationError("model '\(clash.model)' is both in the model repository and configured otherwise; rename one")
            }
            settings.models = (settings.models ?? []) + scanned
        }
        settings.models = settings.models?.map { deployment in
            var deployment = deployment
            if flag("--workers-per-model") { deployment.workers = max(1, workersPerModel) }
            if flag("--max-inflight-per-worker") { deployment.maxInFlightPerWorker = max(1, maxInFlightPerWorker) }
            if flag("--max-queued-requests") { deployment.maxQueuedRequests = max(0, maxQueuedRequests) }
            return deployment
        }
        return settings
    }

    /// The long options on `arguments` (`--name` and `--name=value` both count as `--name`);
    /// what follows a bare `--` is not an option.
    static func givenOptions(_ arguments: some Sequence<String>) -> Set<String> {
        var given: Set<String> = []
        for argument in arguments {
            if argument == "--" { break }
            guard argument.hasPrefix("--") else { continue }
            given.insert(String(argument.split(separator: "=", maxSplits: 1)[0]))
        }
        return given
    }

    /// `--metrics-latency-buckets` as seconds; nil when not given.
    func latencyBuckets() throws -> [Double]? {
        guard let metricsLatencyBuckets else { return nil }
        let values = metricsLatencyBuckets.split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ ($0 ?? 0) > 0 }) else {
            throw ValidationError("--metrics-latency-buckets must be positive numbers of seconds separated by commas, such as 0.001,0.01,0.1,1")
        }
        return values.compactMap { $0 }
    }

    /// The HTTP/2 settings from the flags, each checked against what the protocol allows.
    func http2Configuration() throws -> HTTP2Configuration {
        var http2 = HTTP2Configuration()
        guard (1...Int(UInt32.max)).contains(maxConcurrentStreams) else {
            throw ValidationError("--max-concurrent-streams must be at least 1, not \(maxConcurrentStreams)")
        }
        http2.maxConcurrentStreams = maxConcurrentStreams
        guard (65_535...Int(Int32.max)).contains(initialWindowSize) else {
            throw ValidationError("--initial-window-size must be 65535 to 2147483647 bytes (RFC 9113), not \(initialWindowSize)")
        }
        http2.initialWindowSize = initialWindowSize
        guard (65_535...Int(Int32.max)).contains(connectionWindowSize) else {
            throw ValidationError("--connection-window-size must be 65535 to 2147483647 bytes, not \(connectionWindowSize)")
        }
        http2.connectionWindowSize = connectionWindowSize
        guard (16_384...16_777_215).contains(maxFrameSize) else {
            throw ValidationError("--max-frame-size must be 16384 to 16777215 bytes (RFC 9113), not \(maxFrameSize)")
        }
        http2.maxFrameSize = maxFrameSize
        guard (1024...Int(UInt32.max)).contains(maxHeaderListSize) else {
            throw ValidationError("--max-header-list-size must be at least 1024 bytes, not \(maxHeaderListSize)")
        }
        http2.maxHeaderListSize = maxHeaderListSize
        http2.keepaliveInterval = try keepaliveInterval.optional("--keepalive-interval")
        http2.keepaliveTimeout = try keepaliveTimeout.required("--keepalive-timeout")
        http2.minimumPingInterval = try minClientPingInterval.required("--min-client-ping-interval")
        http2.idleTimeout = try idleTimeout.optional("--idle-timeout")
        http2.maxConnectionAge = try maxConnectionAge.optional("--max-connection-age")
        http2.drainTimeout = try drainTimeout.required("--drain-timeout")
        return http2
    }

    /// The admin token from its file, without surrounding whitespace.
    private func readAdminToken(_ path: String) throws -> String {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ValidationError("--admin-token-file \(path) cannot be read")
        }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard !token.isEmpty else { throw ValidationError("--admin-token-file \(path) is empty; put the bearer token in it") }
        return token
    }

    private func address(_ text: String, option: String) throws -> GatewayConfiguration.Address? {
        if text == "none" { return nil }
        guard let address = GatewayConfiguration.Address(parsing: text) else {
            throw ValidationError("\(option) must be host:port or 'none', not '\(text)'")
        }
        return address
    }
}

/// Runs the gateway until graceful shutdown is requested, then drains it.
struct GatewayService: Service {
    let gateway: GatewayServer

    func run() async throws {
        try await gateway.start()
        try? await gracefulShutdown()
        await gateway.shutdown()
    }
}

/// Reloads the configuration when its file's content changes (`--watch-config`): it reads the
/// file every `interval` and compares the bytes (not the modification time, so a ConfigMap's
/// symlink swap counts, and a touch does not). A refused file is logged once and tried again
/// only when its content changes again.
struct ConfigFileWatcher: Service {
    let path: String
    let interval: TimeAmount
    let gateway: GatewayServer
    let logger: Logger

    func run() async throws {
        logger.info("watching the configuration file for changes", metadata: ["file": "\(path)", "interval": "\(interval)"])
        try? await cancelWhenGracefulShutdown {
            var last = FileManager.default.contents(atPath: path)
            while !Task.isCancelled {
                try await Task.sleep(for: .nanoseconds(interval.nanoseconds))
                let now = FileManager.default.contents(atPath: path)
                guard let now, now != last else { continue }  // unchanged, or missing for a moment (being replaced)
                last = now
                _ = try? await gateway.reloadConfiguration(requestedBy: "file watch")  // logs and counts the outcome
            }
        }
    }
}

/// A configuration reload that was refused: the file's mistakes, or why there is nothing to reload.
struct ConfigReloadError: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
