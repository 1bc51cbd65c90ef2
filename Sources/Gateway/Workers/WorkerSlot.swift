import Foundation
import InferenceProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// One supervised worker process of a pool: spawns it, connects, pings it, and restarts it
/// with exponential back-off when it exits or stalls.
final class WorkerSlot: Sendable {
    let index: Int
    let workerID: String
    private let deployment: ModelDeployment
    private let launcher: WorkerLauncher
    private let group: EventLoopGroup
    private let logger: Logger
    private let socketPath: String

    private struct State: @unchecked Sendable {
        // Process is not Sendable; it is only touched under this lock.
        var process: Process?
        var connection: WorkerConnection?
        var inflight: [UInt64: PoolRequest] = [:]
        var consecutiveFailures = 0
        var stopped = false
        var startFailures = 0
        var generation = 0
        var pingTask: RepeatedTask?
    }

    private let state = NIOLockedValueBox(State())
    let weakPool = NIOLockedValueBox<WeakPool?>(nil)
    var pool: WeakPool? {
        get { weakPool.withLockedValue { $0 } }
        set { weakPool.withLockedValue { $0 = newValue } }
    }

    init(index: Int, deployment: ModelDeployment, launcher: WorkerLauncher, group: EventLoopGroup, logger: Logger) {
        self.index = index
        self.workerID = "\(deployment.model)-\(index)"
        self.deployment = deployment
        self.launcher = launcher
        self.group = group
        self.socketPath = launcher.socketDirectory + "/\(deployment.model)-\(index).sock"
        var logger = logger
        logger[metadataKey: "worker"] = "\(workerID)"
        self.logger = logger
    }

    var connection: WorkerConnection? { state.withLockedValue { $0.connection } }
    var pid: Int32? { state.withLockedValue { $0.process?.processIdentifier } }
    var hasFailedToStart: Bool { state.withLockedValue { $0.startFailures > 0 && $0.connection == nil } }

    func track(id: UInt64, request: PoolRequest) {
        state.withLockedValue { $0.inflight[id] = request }
    }

    func untrack(id: UInt64) {
        _ = state.withLockedValue { $0.inflight.removeValue(forKey: id) }
    }

    // MARK: Lifecycle

    func start() {
        let generation = state.withLockedValue { state -> Int? in
            guard !state.stopped else { return nil }
            state.generation += 1
            return state.generation
        }
        guard let generation else { return }
        try? FileManager.default.removeItem(atPath: socketPath)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: launcher.executable)
        // --parent-pid: a worker that starts after the gateway died exits instead of watching
        // the process it was re-parented to.
        var arguments = [
            "worker", "--socket", socketPath, "--model", deployment.model, "--worker-id", workerID, "--parent-pid", "\(getpid())",
        ]
        arguments += deployment.workerArguments
        process.arguments = arguments
        let stderr = Pipe()
        process.standardError = stderr
        process.standardOutput = stderr
        let logger = self.logger
        stderr.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            guard !data.isEmpty else {
                handle.readabilityHandler = nil
                return
            }
            for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
                logger.info("\(line)", metadata: ["source": "worker-stderr"])
            }
        }
        process.terminationHandler = { [weak self] process in
            self?.processExited(generation: generation, status: process.terminationStatus, reason: process.terminationReason)
        }
        do {
            try process.run()
        } catch {
            logger.error("cannot start worker", metadata: ["executable": "\(launcher.executable)", "error": "\(error)"])
            state.withLockedValue { state in
                state.startFailures += 1
                // A start that fails counts for the back-off too, or it would retry at the first
                // delay forever.
                state.consecutiveFailures += 1
            }
            scheduleRestart()
            return
        }
        state.withLockedValue { $0.process = process }
        logger.info("worker started", metadata: ["pid": "\(process.processIdentifier)"])
        Task { await self.connect(generation: generation) }
    }

    private func connect(generation: Int) async {
        let deadline = NIODeadline.now() + launcher.startTimeout
        while NIODeadline.now() < deadline {
            guard state.withLockedValue({ $0.generation == generation && !$0.stopped && $0.process?.isRunning == true }) else { return }
            if FileManager.default.fileExists(atPath: socketPath) {
                do {
                    let connection = try await WorkerConnection.connect(
                        path: socketPath, group: group, timeout: launcher.startTimeout, logger: logger)
                    let accepted = state.withLockedValue { state -> Bool in
                        guard state.generation == generation, !state.stopped else { return false }
                        state.connection = connection
                        state.consecutiveFailures = 0
                        return true
                    }
                    guard accepted else {
                        connection.close()
                        return
                    }
                    // Pinging starts first, so that a connection that is already closed has its
                    // ping task cancelled by `connectionClosed`.
                    startPinging(connection)
                    connection.channel.closeFuture.whenComplete { [weak self] _ in self?.connectionClosed(connection) }
                    logger.info("worker ready", metadata: ["models": "\(connection.hello.models.map(\.name))", "pid": "\(connection.hello.pid)"])
                    pool?.pool?.workerBecameReady(self)
                    return
                } catch {
                    logger.debug("worker not accepting yet", metadata: ["error": "\(error)"])
                }
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        logger.error("worker did not become ready in time; killing it", metadata: ["timeout": "\(launcher.startTimeout)"])
        state.withLockedValue { $0.startFailures += 1 }
        kill()
    }

    private func startPinging(_ connection: WorkerConnection) {
        let timeout = launcher.pingTimeout
        let nonce = ManagedAtomicCounter()
        let task = connection.channel.eventLoop.scheduleRepeatedTask(initialDelay: launcher.pingInterval, delay: launcher.pingInterval) {
            [weak self] _ in
            guard let self else { return }
            let pong = connection.ping(nonce: nonce.next())
            let timer = connection.channel.eventLoop.scheduleTask(in: timeout) {
                // Only the worker behind this connection: by now the slot may run a replacement.
                guard self.state.withLockedValue({ $0.connection === connection }) else { return }
                self.logger.error("worker did not answer a health ping; killing it", metadata: ["timeout": "\(timeout)"])
                self.kill()
            }
            pong.whenComplete { _ in timer.cancel() }
        }
        state.withLockedValue { $0.pingTask = task }
    }

    /// The connection dropped: the worker is gone or going; its requests go elsewhere.
    private func connectionClosed(_ connection: WorkerConnection) {
        let orphans = state.withLockedValue { state -> [PoolRequest] in
            guard state.connection === connection else { return [] }
            state.connection = nil
            state.pingTask?.cancel()
            state.pingTask = nil
            defer { state.inflight.removeAll() }
            return Array(state.inflight.values)
        }
        _ = connection.takeAllPending()
        if !orphans.isEmpty || !state.withLockedValue({ $0.stopped }) {
            logger.warning("worker connection lost", metadata: ["in_flight": "\(orphans.count)"])
        }
        // Make sure the process is gone too, so it is replaced rather than left half-alive.
        kill()
        pool?.pool?.workerDied(self, pid: connection.hello.pid, orphans: orphans)
    }

    private func processExited(generation: Int, status: Int32, reason: Process.TerminationReason) {
        let (stopped, connection) = state.withLockedValue { state -> (Bool, WorkerConnection?) in
            guard state.generation == generation else { return (true, nil) }
            state.process = nil
            state.consecutiveFailures += 1
            return (state.stopped, state.connection)
        }
        if !stopped {
            logger.warning(
                "worker exited", metadata: ["status": "\(status)", "reason": "\(reason == .uncaughtSignal ? "signal" : "exit")"])
        }
        connection?.close()
        if !stopped && state.withLockedValue({ $0.generation == generation }) { scheduleRestart() }
    }

    private func scheduleRestart() {
        let failures = state.withLockedValue { $0.consecutiveFailures }
        let base = launcher.restartDelay.nanoseconds
        let delay = TimeAmount.nanoseconds(min(launcher.maxRestartDelay.nanoseconds, base << min(failures, 20)))
        logger.info("restarting worker", metadata: ["delay": "\(delay)", "consecutive_failures": "\(failures)"])
        group.next().scheduleTask(in: delay) { [weak self] in
            self?.start()
        }
    }

    /// SIGKILL; the exit is then handled like any other.
    func kill() {
        if let process = state.withLockedValue({ $0.process }), process.isRunning {
            Foundation.kill(process.processIdentifier, SIGKILL)
        }
    }

    /// Stops for good: SIGTERM, then SIGKILL after 5 s.
    func stop() {
        let (process, connection) = state.withLockedValue { state -> (Process?, WorkerConnection?) in
            state.stopped = true
            state.pingTask?.cancel()
            return (state.process, state.connection)
        }
        connection?.close()
        guard let process, process.isRunning else { return }
        process.terminate()
        let pid = process.processIdentifier
        group.next().scheduleTask(in: .seconds(5)) {
            if process.isRunning { Foundation.kill(pid, SIGKILL) }
        }
    }
}

/// A small thread-safe counter for ping nonces.
final class ManagedAtomicCounter: Sendable {
    private let value = NIOLockedValueBox<UInt64>(0)
    func next() -> UInt64 {
        value.withLockedValue {
            $0 += 1
            return $0
        }
    }
}
