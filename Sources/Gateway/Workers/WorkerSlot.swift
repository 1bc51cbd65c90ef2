import Foundation
import InferenceProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// One supervised worker process of a pool: spawns it, waits for its HELLO on a control
/// connection, pings it, and restarts it with exponential back-off when it exits or stalls.
///
/// Runs on the repository's control event loop, never on a loop that serves calls; starting a
/// process and touching the file system happen on the repository's thread pool. Requests do not
/// travel here: each pool shard has its own connection to the worker.
final class WorkerSlot: Sendable {
    let index: Int
    /// "simple-0" (version 1) or "simple-v2-0": model, version and slot, for logs and messages.
    let workerID: String
    let socketPath: String
    private let deployment: ModelDeployment
    private let launcher: WorkerLauncher
    private let control: EventLoop
    private let threadPool: NIOThreadPool
    private let logger: Logger
    private let events: NIOLockedValueBox<WeakPool?> = NIOLockedValueBox(nil)

    /// What the slot is doing, as `GET /workers` reports it.
    enum Phase: String, CaseIterable, Sendable {
        /// A process is being started, or waits for its HELLO.
        case starting
        /// The worker said HELLO and answers pings: it takes requests.
        case ready
        /// Taken out by an operator's restart: it finishes its requests and gets no new ones.
        case draining
        /// It missed a health ping and is being killed.
        case stalled
        /// SIGTERM was sent (an operator's restart, or shutdown); waiting for it to exit.
        case stopping
        /// It exited; a new process starts after the back-off delay.
        case restarting
        /// Stopped for good (shutdown or unload).
        case stopped
    }

    /// A consistent reading of the slot, for the admin API.
    struct Snapshot: Sendable {
        var phase: Phase
        var pid: Int32?
        var generation: Int
        var restarts: Int
        /// Seconds since the current process started; nil without one.
        var uptimeSeconds: Double?
        /// The worker's own counts from its last PONG.
        var workerInFlight: UInt32
        var workerQueued: UInt32
    }

    private struct State: @unchecked Sendable {
        // Process is not Sendable; it is only touched under this lock.
        var process: Process?
        var pid: Int32?
        var phase = Phase.starting
        /// Processes started after the first.
        var restarts = 0
        var startedAt: NIODeadline?
        var lastPong = WorkerProtocol.Pong()
        /// The generation an operator asked to restart: its exit starts a new process at once
        /// and counts as no failure.
        var operatorRestart: Int?
        var connection: Channel?
        var ready = false
        var generation = 0
        var consecutiveFailures = 0
        var startFailures = 0
        var stopped = false
        var pingTask: RepeatedTask?
        var lastPingNonce: UInt64 = 0
        var lastPongNonce: UInt64 = 0
        /// Completes when the current process has exited (and is reaped).
        var exited: EventLoopPromise<Void>?
        /// Completes when the current process's output has been read to its end.
        var outputDrained: EventLoopPromise<Void>?
    }

    private let state = NIOLockedValueBox(State())
    /// Serialises process starts, so that no start sees another's pipe before it is marked
    /// close-on-exec.
    private static let spawnLock = NIOLock()

    init(
        index: Int, deployment: ModelDeployment, replacement: Int = 0, launcher: WorkerLauncher, control: EventLoop, threadPool: NIOThreadPool,
        logger: Logger
    ) {
        self.index = index
        // Version 1 keeps the plain "simple-0"; other versions say theirs: "simple-v2-0". A pool
        // that replaces another (a reload changed the deployment) adds its number, "simple-r1-0",
        // so that its sockets and names never meet those of the pool still draining.
        let version = deployment.version == "1" ? "" : "-v\(deployment.version)"
        let generation = replacement == 0 ? "" : "-r\(replacement)"
        self.workerID = "\(deployment.model)\(version)\(generation)-\(index)"
        self.deployment = deployment
        self.launcher = launcher
        self.control = control
        self.threadPool = threadPool
        self.socketPath = launcher.socketDirectory + "/\(workerID).sock"
        var logger = logger
        logger[metadataKey: "worker"] = "\(workerID)"
        self.logger = logger
    }

    /// Who hears that the worker became ready or went away.
    func setPool(_ pool: WorkerPool) { events.withLockedValue { $0 = WeakPool(pool) } }
    private var pool: WorkerPool? { events.withLockedValue { $0?.pool } }

    var isReady: Bool { state.withLockedValue { $0.ready } }
    /// What the slot is doing now, with its counters.
    var snapshot: Snapshot {
        state.withLockedValue { state in
            Snapshot(
                phase: state.phase, pid: state.process != nil ? state.pid : nil, generation: state.generation, restarts: state.restarts,
                uptimeSeconds: state.process != nil ? state.startedAt.map { Double((NIODeadline.now() - $0).nanoseconds) / 1e9 } : nil,
                workerInFlight: state.lastPong.inFlight, workerQueued: state.lastPong.queued)
        }
    }
    var pid: Int32? { state.withLockedValue { $0.pid } }
    var hasFailedToStart: Bool { state.withLockedValue { $0.startFailures > 0 && !$0.ready } }

    // MARK: Lifecycle

    /// Spawns the worker process (on the thread pool) and connects to it.
    func start() {
        let control = self.control
        let generation: Int? = state.withLockedValue { state in
            guard !state.stopped else { return nil }
            if state.generation > 0 { state.restarts += 1 }
            state.phase = .starting
            state.generation += 1
            state.exited = control.makePromise(of: Void.self)
            state.outputDrained = control.makePromise(of: Void.self)
            return state.generation
        }
        guard let generation else { return }
        let (exitedPromise, drainedPromise) = state.withLockedValue { ($0.exited!, $0.outputDrained!) }
        let launcher = self.launcher
        let command = WorkerProgram(deployment: deployment, launcher: launcher, socketPath: socketPath, workerID: workerID)
        let socketPath = self.socketPath
        let logger = self.logger
        threadPool.runIfActive(eventLoop: control) { () -> (Process, CInt) in
            try? FileManager.default.removeItem(atPath: socketPath)
            let executable = try command.resolveExecutable()
            // The worker's output comes through a pipe whose ends are close-on-exec, so that
            // workers started at the same time do not inherit each other's pipe (which would
            // hold it open after the worker exits); the child gets its end as fd 1 and 2.
            var fds: [CInt] = [-1, -1]
            WorkerSlot.spawnLock.lock()
            defer { WorkerSlot.spawnLock.unlock() }
            guard pipe(&fds) == 0 else { throw WorkerError("cannot create a pipe: errno \(errno)") }
            _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
            _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = command.arguments
            if let environment = command.environment { process.environment = environment }
            if let directory = command.workingDirectory { process.currentDirectoryURL = URL(fileURLWithPath: directory, isDirectory: true) }
            let writeEnd = FileHandle(fileDescriptor: fds[1], closeOnDealloc: false)
            process.standardError = writeEnd
            process.standardOutput = writeEnd
            let slot = WeakSlot(self)
            process.terminationHandler = { process in
                let status = process.terminationStatus
                let signalled = process.terminationReason == .uncaughtSignal
                control.execute { slot.slot?.processExited(generation: generation, status: status, signalled: signalled) }
                exitedPromise.succeed()
            }
            do {
                try process.run()
            } catch {
                close(fds[0])
                close(fds[1])
                throw error
            }
            close(fds[1])
            return (process, fds[0])
        }.whenComplete { result in
            switch result {
            case .success(let (process, output)):
                self.readOutput(from: output, drained: drainedPromise)
                let current = self.state.withLockedValue { state -> Bool in
                    guard state.generation == generation else { return false }
                    state.process = process
                    state.pid = process.processIdentifier
                    state.startedAt = .now()
                    return true
                }
                guard current else { return }
                logger.info("worker started", metadata: ["pid": "\(process.processIdentifier)"])
                self.connect(generation: generation, deadline: .now() + launcher.startTimeout)
            case .failure(let error):
                logger.error("cannot start worker", metadata: ["executable": "\(command.program)", "error": "\(error)"])
                // A start that fails counts for the back-off too, or it would retry at the first
                // delay forever.
                self.state.withLockedValue {
                    $0.startFailures += 1
                    $0.consecutiveFailures += 1
                    $0.phase = .restarting
                }
                exitedPromise.succeed()
                drainedPromise.succeed()
                self.scheduleRestart()
            }
        }
    }

    /// Logs the worker's output line by line, on the control loop; `drained` at its end.
    private func readOutput(from descriptor: CInt, drained: EventLoopPromise<Void>) {
        var outputLogger = logger
        if let level = launcher.outputLogLevel { outputLogger.logLevel = level }
        outputLogger[metadataKey: "subsystem"] = "worker"
        let handler = WorkerOutputHandler(logger: outputLogger, drained: drained)
        NIOPipeBootstrap(group: control)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler) }
            }
            .takingOwnershipOfDescriptor(input: descriptor)
            .whenFailure { _ in
                close(descriptor)
                drained.succeed()
            }
    }

    /// Connects the control connection; retries until the worker listens or `deadline`.
    private func connect(generation: Int, deadline: NIODeadline) {
        guard state.withLockedValue({ $0.generation == generation && !$0.stopped && $0.process != nil }) else { return }
        guard NIODeadline.now() < deadline else {
            logger.error("worker did not become ready in time; killing it", metadata: ["timeout": "\(launcher.startTimeout)"])
            state.withLockedValue { $0.startFailures += 1 }
            kill()
            return
        }
        let helloPromise = control.makePromise(of: WorkerProtocol.Hello.self)
        let handler = WorkerControlHandler(hello: helloPromise, slot: self)
        ClientBootstrap(group: control)
            .connectTimeout(.seconds(1))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(WorkerFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .connect(unixDomainSocketPath: socketPath)
            .whenComplete { result in
                switch result {
                case .failure:
                    helloPromise.fail(WorkerError("not listening yet"))
                    self.control.scheduleTask(in: .milliseconds(20)) { self.connect(generation: generation, deadline: deadline) }
                case .success(let channel):
                    let timer = self.control.scheduleTask(deadline: deadline) {
                        helloPromise.fail(WorkerError("worker sent no HELLO within \(self.launcher.startTimeout)"))
                    }
                    helloPromise.futureResult.whenComplete { result in
                        timer.cancel()
                        switch result {
                        case .success(let hello): self.connected(channel, hello: hello, generation: generation)
                        case .failure(let error):
                            self.logger.error("worker did not say HELLO; killing it", metadata: ["error": "\(error)"])
                            channel.close(promise: nil)
                            self.state.withLockedValue { $0.startFailures += 1 }
                            self.kill()
                        }
                    }
                }
            }
    }

    private func connected(_ channel: Channel, hello: WorkerProtocol.Hello, generation: Int) {
        // A worker of another program may serve something else than it was asked to: it would
        // look ready and answer nothing, so it counts as a failed start, with a line saying why.
        if case .command = deployment.backend, let problem = Self.helloProblem(hello, deployment: deployment) {
            logger.error("worker's HELLO does not fit its deployment; killing it", metadata: ["problem": "\(problem)"])
            channel.close(promise: nil)
            state.withLockedValue { $0.startFailures += 1 }
            kill()
            return
        }
        let accepted = state.withLockedValue { state -> Bool in
            guard state.generation == generation, !state.stopped else { return false }
            state.connection = channel
            state.ready = true
            state.phase = .ready
            state.consecutiveFailures = 0
            state.startFailures = 0
            return true
        }
        guard accepted else {
            channel.close(promise: nil)
            return
        }
        channel.closeFuture.whenComplete { _ in self.controlConnectionClosed(generation: generation) }
        startPinging(channel, generation: generation)
        logger.info("worker ready", metadata: ["models": "\(hello.models.map(\.name))", "pid": "\(hello.pid)"])
        pool?.workerReady(
            slot: index, worker: .init(slot: index, generation: generation), name: "\(workerID) (pid \(hello.pid))", pid: hello.pid,
            hello: hello, socketPath: socketPath)
    }

    /// Why `hello` cannot serve `deployment`, or nil when it can: it must list the model, with
    /// the version among its versions, and describe it with a configuration (the gateway
    /// validates requests and answers ModelMetadata and ModelConfig from it).
    static func helloProblem(_ hello: WorkerProtocol.Hello, deployment: ModelDeployment) -> String? {
        guard let model = hello.models.first(where: { $0.name == deployment.model }) else {
            let listed = hello.models.map { "'\($0.name)'" }.joined(separator: ", ")
            return "it serves \(listed.isEmpty ? "no model" : listed), not '\(deployment.model)' (SWITCHYARD_MODEL / --model)"
        }
        guard model.versions.isEmpty || model.versions.contains(deployment.version) else {
            return "it serves '\(deployment.model)' at versions \(model.versions), not '\(deployment.version)' (SWITCHYARD_MODEL_VERSION / --model-version)"
        }
        guard model.config != nil else {
            return "its ModelDescriptor of '\(deployment.model)' has no config (field 5): the gateway needs the inputs and outputs"
        }
        return nil
    }

    private func startPinging(_ channel: Channel, generation: Int) {
        let interval = launcher.pingInterval
        let timeout = launcher.pingTimeout
        let task = control.scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in
            let sent = self.state.withLockedValue { state -> UInt64 in
                state.lastPingNonce += 1
                return state.lastPingNonce
            }
            var ping = WorkerProtocol.Ping()
            ping.nonce = sent
            ping.sentUnixNanos = WorkerProtocol.unixTimeNanoseconds()
            var buffer = channel.allocator.buffer(capacity: 32)
            WorkerFrame(kind: .ping, requestID: 0, message: ping).write(to: &buffer)
            channel.writeAndFlush(buffer, promise: nil)
            self.control.scheduleTask(in: timeout) {
                let (current, answered) = self.state.withLockedValue { ($0.generation == generation && !$0.stopped, $0.lastPongNonce >= sent) }
                guard current, !answered else { return }
                self.state.withLockedValue { $0.phase = .stalled }
                self.logger.error("worker did not answer a health ping; killing it", metadata: ["timeout": "\(timeout)"])
                self.kill()
            }
        }
        state.withLockedValue { $0.pingTask = task }
    }

    func ponged(_ pong: WorkerProtocol.Pong) {
        state.withLockedValue {
            $0.lastPongNonce = max($0.lastPongNonce, pong.nonce)
            $0.lastPong = pong
        }
    }

    /// The control connection dropped: the worker is gone or going. Make sure the process is
    /// gone too, so that it is replaced rather than left half-alive.
    private func controlConnectionClosed(generation: Int) {
        let (current, expected) = state.withLockedValue { state -> (Bool, Bool) in
            guard state.generation == generation else { return (false, state.stopped) }
            state.connection = nil
            state.ready = false
            state.pingTask?.cancel()
            state.pingTask = nil
            return (true, state.stopped || state.operatorRestart == generation)
        }
        guard current else { return }
        if !expected { logger.warning("worker connection lost") }
        pool?.workerGone(worker: .init(slot: index, generation: generation))
        // Stopping on purpose: SIGTERM was sent and the grace period ends in SIGKILL.
        if !expected { kill() }
    }

    private func processExited(generation: Int, status: Int32, signalled: Bool) {
        let (current, stopped, restartNow) = state.withLockedValue { state -> (Bool, Bool, Bool) in
            guard state.generation == generation else { return (false, state.stopped, false) }
            state.process = nil
            state.ready = false
            let restartNow = state.operatorRestart == generation && !state.stopped
            if restartNow {
                state.operatorRestart = nil
            } else {
                state.consecutiveFailures += 1
            }
            state.phase = state.stopped ? .stopped : .restarting
            return (true, state.stopped, restartNow)
        }
        guard current else { return }
        if restartNow {
            logger.notice("worker exited for an operator's restart; starting its replacement", metadata: ["status": "\(status)"])
            state.withLockedValue { $0.connection }?.close(promise: nil)
            pool?.workerGone(worker: .init(slot: index, generation: generation))
            start()
            return
        }
        if !stopped {
            logger.warning("worker exited", metadata: ["status": "\(status)", "reason": "\(signalled ? "signal" : "exit")"])
        } else {
            logger.info("worker exited", metadata: ["status": "\(status)"])
        }
        state.withLockedValue { $0.connection }?.close(promise: nil)
        pool?.workerGone(worker: .init(slot: index, generation: generation))
        if !stopped { scheduleRestart() }
    }

    private func scheduleRestart() {
        let failures = state.withLockedValue { $0.consecutiveFailures }
        let base = launcher.restartDelay.nanoseconds
        let delay = TimeAmount.nanoseconds(min(launcher.maxRestartDelay.nanoseconds, base << min(failures, 20)))
        logger.info("restarting worker", metadata: ["delay": "\(delay)", "consecutive_failures": "\(failures)"])
        control.scheduleTask(in: delay) { self.start() }
    }

    /// SIGKILL; the exit is then handled like any other.
    func kill() {
        if let pid = state.withLockedValue({ $0.process != nil ? $0.pid : nil }) {
            Foundation.kill(pid, SIGKILL)
        }
    }

    /// Stops for good at once: no restart, SIGKILL now (the gateway is exiting without a drain).
    func killForGood() {
        let pid = state.withLockedValue { state -> Int32? in
            state.stopped = true
            state.phase = .stopped
            return state.process != nil ? state.pid : nil
        }
        if let pid { Foundation.kill(pid, SIGKILL) }
    }

    /// Stops for good: SIGTERM, then SIGKILL after `gracePeriod`; returns once the process has
    /// exited (and is reaped) and its last output is logged, or after a further 5 s.
    func stop(gracePeriod: TimeAmount = .seconds(5)) async {
        let (pid, connection, exited, drained) = state.withLockedValue {
            state -> (Int32?, Channel?, EventLoopPromise<Void>?, EventLoopPromise<Void>?) in
            state.stopped = true
            state.phase = state.process != nil ? .stopping : .stopped
            state.pingTask?.cancel()
            state.pingTask = nil
            return (state.process != nil ? state.pid : nil, state.connection, state.exited, state.outputDrained)
        }
        connection?.close(promise: nil)
        guard let exited, let drained else { return }
        if let pid { Foundation.kill(pid, SIGTERM) }
        let control = self.control
        if !(await Self.wait(for: exited.futureResult, upTo: gracePeriod, on: control)) {
            if let pid = state.withLockedValue({ $0.process != nil ? $0.pid : nil }) {
                logger.warning("worker did not stop within \(gracePeriod); killing it")
                Foundation.kill(pid, SIGKILL)
            }
            if !(await Self.wait(for: exited.futureResult, upTo: .seconds(5), on: control)) {
                logger.error("worker did not exit after SIGKILL")
            }
        }
        // Its last lines; a sibling that inherited the pipe can hold it open, so not for long.
        _ = await Self.wait(for: drained.futureResult, upTo: .milliseconds(500), on: control)
    }

    /// Marks the current process as taken out for an operator's restart (`draining`); returns
    /// its worker id, or nil when the slot has no ready process or is stopped or already
    /// restarting.
    func beginOperatorRestart() -> WorkerPoolStateMachine<PoolRequest>.WorkerID? {
        state.withLockedValue { state in
            guard !state.stopped, state.ready, state.operatorRestart == nil, state.process != nil else { return nil }
            state.operatorRestart = state.generation
            state.phase = .draining
            return .init(slot: index, generation: state.generation)
        }
    }

    /// Ends an operator's restart of `worker` (whose requests have finished or timed out):
    /// SIGTERM, SIGKILL after `gracePeriod`; its exit starts the replacement at once, with no
    /// back-off. Returns once the process has exited.
    func finishOperatorRestart(_ worker: WorkerPoolStateMachine<PoolRequest>.WorkerID, gracePeriod: TimeAmount = .seconds(5)) async {
        let target = state.withLockedValue { state -> (Int32, EventLoopPromise<Void>)? in
            guard state.generation == worker.generation, state.operatorRestart == worker.generation, state.process != nil,
                let pid = state.pid, let exited = state.exited
            else { return nil }
            state.phase = .stopping
            state.pingTask?.cancel()
            state.pingTask = nil
            return (pid, exited)
        }
        guard let (pid, exited) = target else { return }
        logger.notice("stopping worker for an operator's restart", metadata: ["pid": "\(pid)"])
        Foundation.kill(pid, SIGTERM)
        if !(await Self.wait(for: exited.futureResult, upTo: gracePeriod, on: control)) {
            logger.warning("worker did not stop within \(gracePeriod); killing it")
            kill()
            _ = await Self.wait(for: exited.futureResult, upTo: .seconds(5), on: control)
        }
    }

    /// True when `future` completes within `timeout`.
    private static func wait(for future: EventLoopFuture<Void>, upTo timeout: TimeAmount, on loop: EventLoop) async -> Bool {
        let promise = loop.makePromise(of: Bool.self)
        let timer = loop.scheduleTask(in: timeout) { promise.succeed(false) }
        future.whenComplete { _ in
            timer.cancel()
            promise.succeed(true)
        }
        return (try? await promise.futureResult.get()) ?? false
    }
}

/// The supervisor's connection to a worker: HELLO, then PONGs.
private final class WorkerControlHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = WorkerFrame

    let hello: EventLoopPromise<WorkerProtocol.Hello>
    let slot: WorkerSlot

    init(hello: EventLoopPromise<WorkerProtocol.Hello>, slot: WorkerSlot) {
        self.hello = hello
        self.slot = slot
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.kind {
        case .hello:
            do {
                hello.succeed(try frame.decodePayload(as: WorkerProtocol.Hello.self))
            } catch {
                hello.fail(WorkerError("malformed HELLO from worker: \(error)"))
                context.close(promise: nil)
            }
        case .pong:
            if let pong = try? frame.decodePayload(as: WorkerProtocol.Pong.self) { slot.ponged(pong) }
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        hello.fail(WorkerError("worker closed the connection"))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        hello.fail(error)
        context.close(promise: nil)
    }
}

/// A worker's stdout and stderr, logged one line at a time.
private final class WorkerOutputHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer

    private let logger: Logger
    private let drained: EventLoopPromise<Void>
    private let partial = NIOLockedValueBox(ByteBuffer())

    init(logger: Logger, drained: EventLoopPromise<Void>) {
        self.logger = logger
        self.drained = drained
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        partial.withLockedValue { partial in
            partial.writeBuffer(&bytes)
            while let newline = partial.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) {
                let line = partial.readString(length: newline - partial.readerIndex) ?? ""
                partial.moveReaderIndex(forwardBy: 1)
                if !line.isEmpty { logger.info("\(line)", metadata: ["source": "worker-stderr"]) }
            }
            partial.discardReadBytes()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let rest = partial.withLockedValue({ $0.readString(length: $0.readableBytes) }), !rest.isEmpty {
            logger.info("\(rest)", metadata: ["source": "worker-stderr"])
        }
        drained.succeed()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// How one worker process is started: program, arguments, environment and directory, for the
/// built-in `switchyard worker` (flags) or a command backend (`SWITCHYARD_*` variables).
struct WorkerProgram: Sendable {
    /// The program as configured, for messages (resolved by `resolveExecutable`).
    let program: String
    let arguments: [String]
    /// The whole environment of the process; nil: the gateway's own.
    let environment: [String: String]?
    let workingDirectory: String?
    private let external: ExternalWorkerCommand?

    init(deployment: ModelDeployment, launcher: WorkerLauncher, socketPath: String, workerID: String, parentPID: Int32 = getpid()) {
        switch deployment.backend {
        case .builtin:
            var arguments = ["worker", "--socket", socketPath, "--model", deployment.model, "--worker-id", workerID, "--parent-pid", "\(parentPID)"]
            if deployment.version != "1" { arguments += ["--model-version", deployment.version] }
            arguments += deployment.workerArguments
            self.program = launcher.executable
            self.arguments = arguments
            self.environment = nil
            self.workingDirectory = nil
            self.external = nil
        case .command(let command):
            typealias Variable = ExternalWorkerCommand.Variable
            var environment = ProcessInfo.processInfo.environment.merging(command.environment) { _, configured in configured }
            // The protocol's variables last: no inherited or configured value can misdirect the worker.
            environment[Variable.socket] = socketPath
            environment[Variable.workerID] = workerID
            environment[Variable.model] = deployment.model
            environment[Variable.modelVersion] = deployment.version
            environment[Variable.parentPID] = "\(parentPID)"
            environment[Variable.protocolVersion] = "\(WorkerProtocol.version)"
            self.program = command.arguments.first ?? ""
            self.arguments = Array(command.arguments.dropFirst()) + deployment.workerArguments
            self.environment = environment
            self.workingDirectory = command.workingDirectory
            self.external = command
        }
    }

    /// The absolute path to execute; throws a `WorkerError` naming the program when it cannot
    /// be found (on PATH, or relative to the working directory).
    func resolveExecutable() throws -> String {
        guard let external else { return program }
        switch external.resolveExecutable(searchPath: external.searchPath) {
        case .success(let path): return path
        case .failure(let error): throw WorkerError("cannot start the worker command: \(error.description)")
        }
    }
}

/// Lets a process's exit reach its slot without keeping the slot alive.
private struct WeakSlot: Sendable {
    weak var slot: WorkerSlot?
    init(_ slot: WorkerSlot) { self.slot = slot }
}

/// Breaks the pool ↔ slot reference cycle.
struct WeakPool: Sendable {
    weak var pool: WorkerPool?
    init(_ pool: WorkerPool) { self.pool = pool }
}

/// A failure of a worker or its connection.
public struct WorkerError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
