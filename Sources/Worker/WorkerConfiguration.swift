import InferenceProtocol
import NIOCore

/// How a worker process runs: what `switchyard worker` sets from its options.
public struct WorkerConfiguration: Sendable {
    /// The Unix socket the worker listens on. A stale socket file there is removed first.
    public var socketPath: String

    /// The models to serve, by name, in the order HELLO lists them (see `BuiltinModels.names`,
    /// and `DiagnosticModels.names` with `enableDiagnosticModels`).
    public var modelNames: [String]

    /// Models read from .onnx files and run by the native ONNX runtime, by model name (`switchyard
    /// worker --model NAME --onnx-model FILE`); a name here is served from its file, not as a
    /// built-in model.
    public var onnxModelFiles: [String: String] = [:]

    /// Serve the diagnostic models (`DiagnosticModels.names`: models that crash or stall the
    /// worker on purpose, for testing the gateway) when `modelNames` asks for them. Default off.
    public var enableDiagnosticModels = false

    /// A test aid: added to every INT32 and UINT32 output element of the batched built-in
    /// models, so that one version answers differently from another (for testing shadow
    /// comparison). Default 0: the models' true answers.
    public var diagnosticOutputOffset: Int32 = 0

    /// The version every model is served as: HELLO lists it, responses carry it, and a request
    /// naming another (non-empty) version gets `NOT_FOUND`. Not empty. Default "1".
    public var modelVersion = ServedModel.defaultVersion

    /// The worker's name in HELLO and at the start of every log line. Default: `worker-<pid>`.
    public var workerID: String

    /// `max_batch_size` (and preferred batch size) of the batching models. Default 8.
    public var maxBatchSize: Int32 = BuiltinModels.defaultMaxBatchSize

    /// How long the dynamic batcher waits for a batch to fill. Default 100 µs.
    public var maxQueueDelayMicroseconds: UInt64 = BuiltinModels.defaultMaxQueueDelayMicroseconds

    /// How long SIGTERM waits for requests in flight before closing connections. Default 5 s.
    public var shutdownGracePeriod: TimeAmount = .seconds(5)

    /// Exit when the parent process (the gateway) dies: a parent-death signal on Linux, and a
    /// check of the parent pid every `parentCheckInterval`. Default false for the library;
    /// `switchyard worker` turns it on.
    public var exitWithParent = false

    /// The parent's pid as the parent knows it (the gateway passes `--parent-pid`), for
    /// `exitWithParent`: a worker whose parent died while it was starting has already been
    /// re-parented, so without it the worker would watch its new parent instead. Default nil:
    /// whatever parent the worker has when it starts.
    public var parentPID: Int32?

    /// How often the parent pid is checked when `exitWithParent` is on. Default 1 s.
    public var parentCheckInterval: TimeAmount = .seconds(1)

    /// Threads that execute model batches and decode large requests. Default 2.
    public var executionThreads = 2

    /// The largest frame accepted from the gateway. Default 64 MiB + 4 KiB.
    public var maxFrameSize = WorkerFrame.defaultMaxFrameSize

    public init(socketPath: String, modelNames: [String], workerID: String) {
        self.socketPath = socketPath
        self.modelNames = modelNames
        self.workerID = workerID
    }
}
