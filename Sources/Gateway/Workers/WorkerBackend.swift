import Foundation

/// What runs the workers of one model variant: the built-in `switchyard worker`, or any other
/// program that speaks the worker protocol (docs/worker-protocol.md), in any language.
public enum WorkerBackend: Sendable, Hashable {
    /// `switchyard worker --socket PATH --model NAME …` (the launcher's executable), with the
    /// deployment's `workerArguments` after the gateway's own flags.
    case builtin
    /// Another program, started as `ExternalWorkerCommand` says; it learns its socket, name,
    /// model and version from `SWITCHYARD_*` environment variables instead of flags.
    case command(ExternalWorkerCommand)
}

/// A worker program of the user's own (`backend: {command: [...]}` in the configuration file).
///
/// The gateway starts `arguments` as they are (its `workerArguments` appended), in
/// `workingDirectory`, with its own environment plus `environment` plus the protocol's
/// variables (`ExternalWorkerCommand.Variable`), which no user setting overrides.
public struct ExternalWorkerCommand: Sendable, Hashable {
    /// The program and its arguments. A program name without '/' is looked up on PATH; one with
    /// '/' is taken relative to `workingDirectory`.
    public var arguments: [String]
    /// Variables set for the worker, over the gateway's own environment.
    public var environment: [String: String]
    /// The directory the worker runs in, so that relative paths in `arguments` resolve there
    /// (the configuration file's directory); nil: the gateway's working directory.
    public var workingDirectory: String?

    public init(arguments: [String], environment: [String: String] = [:], workingDirectory: String? = nil) {
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
    }

    /// The environment variables through which the gateway tells a command worker what the
    /// built-in worker learns from its flags.
    public enum Variable {
        /// The Unix socket path to listen on (`--socket`). A stale file there may be replaced.
        public static let socket = "SWITCHYARD_WORKER_SOCKET"
        /// The worker's name for its HELLO and its log lines (`--worker-id`), e.g. "iris-v2-0".
        public static let workerID = "SWITCHYARD_WORKER_ID"
        /// The model name to list in HELLO and to serve (`--model`).
        public static let model = "SWITCHYARD_MODEL"
        /// The version to list in HELLO and to put in responses (`--model-version`).
        public static let modelVersion = "SWITCHYARD_MODEL_VERSION"
        /// The gateway's pid (`--parent-pid`): exit when the parent is no longer this process.
        public static let parentPID = "SWITCHYARD_PARENT_PID"
        /// The worker protocol version the gateway speaks ("1").
        public static let protocolVersion = "SWITCHYARD_PROTOCOL_VERSION"
        /// `max_batch_size` of the version, when configured (`--max-batch-size`).
        public static let maxBatchSize = "SWITCHYARD_MAX_BATCH_SIZE"
        /// `max_queue_delay_microseconds` of the version, when configured (`--max-queue-delay-us`).
        public static let maxQueueDelayMicroseconds = "SWITCHYARD_MAX_QUEUE_DELAY_US"
        /// The gateway's level for worker lines: trace, debug, info, notice, warning, error or
        /// critical (`--log-level`).
        public static let logLevel = "SWITCHYARD_LOG_LEVEL"
    }

    /// The absolute path of the program `arguments[0]` names, or why it cannot be found: a
    /// name with '/' is taken relative to `workingDirectory` (else the current directory), a
    /// bare name is looked up on `searchPath` (PATH's form, ':'-separated). The file must
    /// exist and be executable.
    public func resolveExecutable(searchPath: String?) -> Result<String, ResolutionError> {
        guard let program = arguments.first, !program.isEmpty else { return .failure(.init("the command is empty")) }
        let base = workingDirectory ?? FileManager.default.currentDirectoryPath
        if program.contains("/") {
            let path = ((program.hasPrefix("/") ? program : (base as NSString).appendingPathComponent(program)) as NSString).standardizingPath
            guard FileManager.default.isExecutableFile(atPath: path) else {
                let exists = FileManager.default.fileExists(atPath: path)
                return .failure(.init(exists ? "'\(path)' is not executable" : "'\(path)' does not exist"))
            }
            return .success(path)
        }
        let directories = (searchPath ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        for directory in directories {
            let path = ((directory.isEmpty ? "." : directory) as NSString).appendingPathComponent(program)
            let absolute = path.hasPrefix("/") ? path : (base as NSString).appendingPathComponent(path)
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: absolute, isDirectory: &isDirectory), !isDirectory.boolValue,
                FileManager.default.isExecutableFile(atPath: absolute)
            {
                return .success(absolute)
            }
        }
        return .failure(.init("'\(program)' is not on PATH"))
    }

    /// PATH as the worker will see it: the command's own `environment` first, else the gateway's.
    public var searchPath: String? { environment["PATH"] ?? ProcessInfo.processInfo.environment["PATH"] }

    /// Why a command's program cannot be started.
    public struct ResolutionError: Error, Sendable, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }
}
