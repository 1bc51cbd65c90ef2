import ArgumentParser
import Logging
import ServiceLifecycle
import Worker

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `switchyard worker`: run one inference worker process (the gateway starts these).
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run one inference worker on a Unix socket (the gateway starts these).",
        discussion: """
            Listens on --socket and speaks the worker protocol (docs/worker-protocol.md) to each \
            gateway connection: HELLO first, then requests, pings and cancels. Built-in models: \
            \(BuiltinModels.names.joined(separator: ", ")). Logs go to stderr, one line per event, \
            prefixed with the worker id. Exits when its parent process dies; SIGTERM or SIGINT \
            finishes the requests in flight (at most 5 s) and exits 0.

            Diagnostic models, served only with --enable-diagnostic-models, misbehave on purpose \
            to test the gateway's supervision. Each takes INT32 IN [1] and optional UINT32 \
            SLEEP_MS [1] and answers OUT = IN after SLEEP_MS milliseconds, requests running \
            concurrently, except: diagnostic_crash with IN=42 kills the worker (SIGKILL on \
            itself); diagnostic_stall with IN=7 blocks the worker's event loop for good (alive \
            but answering nothing, not even pings); diagnostic_stateful is diagnostic_crash with \
            parameter switchyard.idempotent "false" in its config, so the gateway never retries it.
            """
    )

    @Option(name: .customLong("socket"), help: "Path of the Unix socket to listen on (a stale socket file is replaced).")
    var socket: String

    @Option(name: .customLong("model"), help: "A model to serve; repeat for several.")
    var models: [String] = []

    @Option(
        name: .customLong("onnx-model"),
        help: "Serve the (single) --model from this .onnx file with the native ONNX runtime instead of as a built-in model.")
    var onnxModel: String?

    @Option(name: .customLong("worker-id"), help: "Name in HELLO and in logs (default: worker-<pid>).")
    var workerID: String?

    @Option(
        name: .customLong("model-version"),
        help: "The version the models are served as: HELLO lists it, responses carry it, requests for another version get NOT_FOUND.")
    var modelVersion = ServedModel.defaultVersion

    @Option(name: .customLong("max-batch-size"), help: "max_batch_size of the batching models.")
    var maxBatchSize: Int32 = BuiltinModels.defaultMaxBatchSize

    @Option(name: .customLong("max-queue-delay-us"), help: "How long the dynamic batcher waits for a batch to fill, in microseconds.")
    var maxQueueDelayMicroseconds: UInt64 = BuiltinModels.defaultMaxQueueDelayMicroseconds

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    @Option(
        name: .customLong("parent-pid"),
        help: "The parent's pid (the gateway passes its own): exit at once if the parent is already gone when the worker starts.")
    var parentPID: Int32?

    @Flag(
        name: .customLong("enable-diagnostic-models"),
        help: "Also serve the diagnostic models \(DiagnosticModels.names.joined(separator: ", ")), which crash or stall the worker on purpose (for tests).")
    var enableDiagnosticModels = false

    @Option(
        name: .customLong("diagnostic-output-offset"),
        help: ArgumentHelp(
            "Test aid: add N to every INT32/UINT32 output element of the batched built-in models (so a shadow version answers differently).",
            visibility: .hidden))
    var diagnosticOutputOffset: Int32 = 0

    func validate() throws {
        guard !models.isEmpty else {
            throw ValidationError("name at least one --model (\(BuiltinModels.names.joined(separator: ", ")))")
        }
        if let diagnostic = models.first(where: { DiagnosticModels.names.contains($0) }), !enableDiagnosticModels {
            throw ValidationError(
                "model '\(diagnostic)' is a diagnostic model (it crashes or stalls the worker on purpose); add --enable-diagnostic-models")
        }
        if onnxModel != nil {
            guard models.count == 1 else { throw ValidationError("--onnx-model serves one --model; name exactly one") }
        }
        let known = BuiltinModels.names + (enableDiagnosticModels ? DiagnosticModels.names : [])
        if onnxModel == nil, let unknown = models.first(where: { !known.contains($0) }) {
            throw ValidationError("unknown model '\(unknown)'; the built-in models are \(known.joined(separator: ", "))")
        }
        guard !modelVersion.isEmpty else { throw ValidationError("--model-version must not be empty") }
        guard maxBatchSize >= 1 else { throw ValidationError("--max-batch-size must be at least 1") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level '\(logLevel)'") }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        let id = workerID ?? "worker-\(getpid())"
        LoggingSystem.bootstrap { _ in WorkerLogHandler(workerID: id, logLevel: level) }
        let logger = Logger(label: "switchyard.worker")

        var configuration = WorkerConfiguration(socketPath: socket, modelNames: models, workerID: id)
        configuration.modelVersion = modelVersion
        configuration.maxBatchSize = maxBatchSize
        configuration.maxQueueDelayMicroseconds = maxQueueDelayMicroseconds
        configuration.exitWithParent = true
        configuration.parentPID = parentPID
        configuration.enableDiagnosticModels = enableDiagnosticModels
        configuration.diagnosticOutputOffset = diagnosticOutputOffset
        if let onnxModel { configuration.onnxModelFiles[models[0]] = onnxModel }
        let serviceGroup = ServiceGroup(
            configuration: .init(
                services: [WorkerService(configuration: configuration, logger: logger)],
                gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await serviceGroup.run()
    }
}

/// Starts the worker, serves until graceful shutdown is requested, then drains it.
///
/// The socket is bound here, inside the service group, because the group traps SIGTERM before
/// it runs its services: a gateway that connects and at once sends SIGTERM gets a graceful exit,
/// not the default action of the signal.
struct WorkerService: Service, CustomStringConvertible {
    let configuration: WorkerConfiguration
    let logger: Logger

    var description: String { "WorkerService(\(configuration.socketPath))" }

    func run() async throws {
        let server = try await WorkerServer.start(configuration: configuration, logger: logger)
        try? await gracefulShutdown()
        await server.shutdown()
    }
}
