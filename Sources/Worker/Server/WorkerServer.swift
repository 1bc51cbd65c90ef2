import InferenceProtocol
import Logging
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One worker process's server: listens on the Unix socket, serves every gateway connection
/// with the shared `WorkerRuntime`, and shuts down gracefully.
///
/// I/O runs on a single event loop that also owns the runtime's state; model execution runs on
/// a thread pool of `configuration.executionThreads` threads.
public final class WorkerServer: Sendable {
    /// Why the worker could not start with the configuration it was given.
    public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    public let configuration: WorkerConfiguration
    /// The request engine, for statistics.
    public let runtime: WorkerRuntime
    private let group: MultiThreadedEventLoopGroup
    private let threadPool: NIOThreadPool
    private let serverChannel: any Channel
    private let parentWatch: ParentProcessWatch?
    private let logger: Logger

    private init(
        configuration: WorkerConfiguration, runtime: WorkerRuntime, group: MultiThreadedEventLoopGroup,
        threadPool: NIOThreadPool, serverChannel: any Channel, parentWatch: ParentProcessWatch?, logger: Logger
    ) {
        self.configuration = configuration
        self.runtime = runtime
        self.group = group
        self.threadPool = threadPool
        self.serverChannel = serverChannel
        self.parentWatch = parentWatch
        self.logger = logger
    }

    /// The models `configuration` names, built.
    ///
    /// - Throws: `ConfigurationError` for no models, an unknown name, a diagnostic model without
    ///   `enableDiagnosticModels`, a batch size below 1, or an empty model version.
    public static func models(for configuration: WorkerConfiguration) throws -> [ServedModel] {
        guard !configuration.modelNames.isEmpty else {
            throw ConfigurationError(description: "no model to serve; name at least one of \(BuiltinModels.names.joined(separator: ", "))")
        }
        guard configuration.maxBatchSize >= 1 else {
            throw ConfigurationError(description: "the max batch size must be at least 1, not \(configuration.maxBatchSize)")
        }
        guard !configuration.modelVersion.isEmpty else {
            throw ConfigurationError(description: "the model version must not be empty")
        }
        var models: [ServedModel] = []
        for name in configuration.modelNames where !models.contains(where: { $0.name == name }) {
            if let file = configuration.onnxModelFiles[name] {
                var model = try ServedModel.onnx(
                    named: name, file: file, maxBatchSize: configuration.maxBatchSize,
                    maxQueueDelayMicroseconds: configuration.maxQueueDelayMicroseconds)
                model.version = configuration.modelVersion
                models.append(model)
                continue
            }
            if DiagnosticModels.names.contains(name) {
                guard configuration.enableDiagnosticModels, var model = DiagnosticModels.model(named: name) else {
                    throw ConfigurationError(
                        description: "model '\(name)' is a diagnostic model (it crashes or stalls the worker on purpose); "
                            + "it is served only with --enable-diagnostic-models")
                }
                model.version = configuration.modelVersion
                models.append(model)
                continue
            }
            guard var model = BuiltinModels.model(
                named: name, maxBatchSize: configuration.maxBatchSize,
                maxQueueDelayMicroseconds: configuration.maxQueueDelayMicroseconds)
            else {
                throw ConfigurationError(
                    description: "unknown model '\(name)'; the built-in models are \(BuiltinModels.names.joined(separator: ", "))")
            }
            model.version = configuration.modelVersion
            if configuration.diagnosticOutputOffset != 0, case .batched(let base) = model.backend {
                model.backend = .batched(OutputOffsetModel(base: base, offset: configuration.diagnosticOutputOffset))
            }
            models.append(model)
        }
        return models
    }

    /// Builds the models, binds the socket (removing a stale socket file first) and starts
    /// serving.
    ///
    /// - Throws: `ConfigurationError`, also when the socket cannot be bound (path too long, not
    ///   a socket, permission), with the reason.
    public static func start(configuration: WorkerConfiguration, logger: Logger) async throws -> WorkerServer {
        let models = try Self.models(for: configuration)
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let threadPool = NIOThreadPool(numberOfThreads: max(1, configuration.executionThreads))
        threadPool.start()
        let eventLoop = group.next()
        let parentWatch = configuration.exitWithParent
            ? ParentProcessWatch.start(
                on: eventLoop, interval: configuration.parentCheckInterval, expectedParent: configuration.parentPID, logger: logger)
            : nil
        let runtime = WorkerRuntime(
            workerID: configuration.workerID, models: models, eventLoop: eventLoop, threadPool: threadPool, logger: logger)
        let maxFrameSize = configuration.maxFrameSize
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 64)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let connection = WorkerConnectionHandler.pipeline(runtime: runtime, logger: logger, maxFrameSize: maxFrameSize)
                    try channel.pipeline.syncOperations.addHandlers([connection.reader, connection.handler])
                }
            }
        let serverChannel: any Channel
        do {
            serverChannel = try await bootstrap.bind(
                unixDomainSocketPath: configuration.socketPath, cleanupExistingSocketFile: true
            ).get()
        } catch {
            parentWatch?.cancel()
            try? await threadPool.shutdownGracefully()
            try? await group.shutdownGracefully()
            let reason = error is UnixDomainSocketPathWrongType ? "the path exists and is not a socket" : "\(error)"
            logger.critical("cannot listen on \(configuration.socketPath): \(reason)")
            throw ConfigurationError(description: "cannot listen on \(configuration.socketPath): \(reason)")
        }
        logger.info(
            "listening on \(configuration.socketPath) with models \(models.map(\.name).joined(separator: ", ")), version \(configuration.modelVersion) (pid \(getpid()))")
        return WorkerServer(
            configuration: configuration, runtime: runtime, group: group, threadPool: threadPool,
            serverChannel: serverChannel, parentWatch: parentWatch, logger: logger)
    }

    /// Stops accepting connections, answers what is in flight (new requests get UNAVAILABLE)
    /// for up to `configuration.shutdownGracePeriod`, closes the connections and releases the
    /// threads. The socket file is removed.
    public func shutdown() async {
        logger.info("shutting down: finishing requests in flight (at most \(configuration.shutdownGracePeriod.nanoseconds / 1_000_000) ms)")
        try? await serverChannel.close()
        unlink(configuration.socketPath)
        let finished = (try? await runtime.drain(timeout: configuration.shutdownGracePeriod).get()) ?? false
        try? await runtime.closeConnections().get()
        parentWatch?.cancel()
        try? await threadPool.shutdownGracefully()
        try? await group.shutdownGracefully()
        logger.info(finished ? "stopped" : "stopped with requests still in flight")
    }
}
