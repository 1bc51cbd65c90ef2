import Foundation
import InferenceProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// How one model variant is deployed on workers.
public struct ModelDeployment: Sendable, Hashable {
    /// The model's name, as clients ask for it.
    public var model: String
    /// Worker processes to keep running. Default 2.
    public var workers: Int = 2
    /// Requests in flight on one worker before others queue. Default 64.
    public var maxInFlightPerWorker: Int = 64
    /// Requests waiting for a worker before RESOURCE_EXHAUSTED. Default 1024.
    public var maxQueuedRequests: Int = 1024
    /// False for models whose requests must never run twice (stateful or with side effects):
    /// their requests in flight on a worker that dies fail instead of being sent elsewhere.
    public var idempotent: Bool = true
    /// Extra arguments for `switchyard worker` (e.g. `--max-batch-size 8`).
    public var workerArguments: [String] = []

    public init(model: String, workers: Int = 2) {
        self.model = model
        self.workers = workers
    }
}

/// How workers are started: the program and a place for their sockets.
public struct WorkerLauncher: Sendable {
    /// The `switchyard` binary (or any program that speaks the worker protocol and takes the
    /// same arguments).
    public var executable: String
    /// Directory for worker sockets.
    public var socketDirectory: String
    /// How long a new worker has to send HELLO. Default 20 s.
    public var startTimeout: TimeAmount = .seconds(20)
    /// Health ping period and how long a PONG may take before the worker counts as stalled.
    public var pingInterval: TimeAmount = .seconds(2)
    public var pingTimeout: TimeAmount = .seconds(3)
    /// Restart back-off: first delay, doubled per consecutive failure up to the maximum.
    public var restartDelay: TimeAmount = .milliseconds(200)
    public var maxRestartDelay: TimeAmount = .seconds(30)

    public init(executable: String, socketDirectory: String) {
        self.executable = executable
        self.socketDirectory = socketDirectory
    }

    /// This process's own binary, with sockets in a fresh directory under /tmp.
    public static func currentExecutable() throws -> WorkerLauncher {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let directory = NSTemporaryDirectory() + "switchyard-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return WorkerLauncher(executable: executable, socketDirectory: directory)
    }
}

/// One request as the pool tracks it through queueing, dispatch and re-dispatch.
final class PoolRequest: Sendable {
    struct State: Sendable {
        var cancelled = false
        var finished = false
        var deliveredResponse = false
        /// The worker processes that died while running it ("name-0 (pid 123)"), oldest first.
        /// Processes, not slots: a slot's replacement is a new worker the request may go to.
        var workersThatDied: [String] = []
        var worker: Int?
        var workerRequestID: UInt64?
        var submittedAt = NIODeadline.now()
        var dispatchedAt: NIODeadline?
    }

    let request: WorkerProtocol.InferRequest
    let onReply: @Sendable (WorkerReply) -> Void
    let state = NIOLockedValueBox(State())

    init(request: WorkerProtocol.InferRequest, onReply: @escaping @Sendable (WorkerReply) -> Void) {
        self.request = request
        self.onReply = onReply
    }
}

/// A handle to a submitted request: to cancel it, and to read how long it queued.
public struct PoolTicket: Sendable {
    let request: PoolRequest

    /// Nanoseconds between submission and the (last) dispatch to a worker.
    public var queueNanoseconds: UInt64 {
        request.state.withLockedValue { state in
            let end = state.dispatchedAt ?? .now()
            return UInt64(max(0, (end - state.submittedAt).nanoseconds))
        }
    }
}

/// The workers of one model variant: spawned, supervised, and sent requests.
///
/// Dispatch goes to the ready worker with the fewest requests in flight. A worker that dies or
/// stalls costs no request: what it had not answered goes to another worker, unless the model
/// is not idempotent, or the request was already on a worker that died (a poison request,
/// failed with a message saying so, so one bad input cannot take the pool down). Queues are
/// bounded; a full queue or a pool without a ready worker answers at once.
public final class WorkerPool: Sendable {
    public let deployment: ModelDeployment
    private let launcher: WorkerLauncher
    private let group: EventLoopGroup
    private let logger: Logger
    private let slots: [WorkerSlot]
    private let queue = NIOLockedValueBox<CircularBuffer<PoolRequest>>(CircularBuffer())
    private let stopped = NIOLockedValueBox(false)

    public init(deployment: ModelDeployment, launcher: WorkerLauncher, group: EventLoopGroup, logger: Logger) {
        self.deployment = deployment
        self.launcher = launcher
        self.group = group
        var logger = logger
        logger[metadataKey: "model"] = "\(deployment.model)"
        self.logger = logger
        self.slots = (0..<max(1, deployment.workers)).map { index in
            WorkerSlot(index: index, deployment: deployment, launcher: launcher, group: group, logger: logger)
        }
        for slot in slots { slot.pool = WeakPool(self) }
    }

    /// Starts every worker; returns when at least one is ready or all failed to start.
    public func start() async {
        for slot in slots { slot.start() }
        let deadline = NIODeadline.now() + launcher.startTimeout
        while NIODeadline.now() < deadline {
            if isReady || slots.allSatisfy({ $0.hasFailedToStart }) { return }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    /// True while at least one worker is ready.
    public var isReady: Bool { slots.contains { $0.connection != nil } }

    /// The number of ready workers.
    public var readyWorkers: Int { slots.filter { $0.connection != nil }.count }

    /// What the workers said about the model in HELLO (config, max batch size, decoupled);
    /// kept after the workers are gone, so decisions about their orphans can use it.
    public var modelDescriptor: WorkerProtocol.ModelDescriptor? {
        for slot in slots {
            if let hello = slot.connection?.hello, let model = hello.models.first(where: { $0.name == deployment.model }) {
                return model
            }
        }
        return lastDescriptor.withLockedValue { $0 }
    }
    private let lastDescriptor = NIOLockedValueBox<WorkerProtocol.ModelDescriptor?>(nil)

    /// False when requests must never run twice: the deployment says so, or the model's own
    /// config marks it stateful (sequence batching) or sets parameter
    /// `switchyard.idempotent: "false"`.
    public var isIdempotent: Bool {
        guard deployment.idempotent else { return false }
        guard let config = modelDescriptor?.config else { return true }
        if case .sequenceBatching? = config.schedulingChoice { return false }
        return config.parameters["switchyard.idempotent"]?.stringValue.lowercased() != "false"
    }

    /// The worker processes' ids (pids), for tests and the admin API.
    public var workerPIDs: [Int32] { slots.compactMap { $0.pid } }

    /// Requests in flight on workers plus those queued.
    public var outstanding: Int { slots.reduce(queue.withLockedValue { $0.count }) { $0 + ($1.connection?.outstanding ?? 0) } }

    /// Submits a request. Replies arrive on `onReply` (from any thread). Returns nil, after
    /// calling `onReply` with the failure, when the request is refused at once.
    @discardableResult
    public func submit(_ request: WorkerProtocol.InferRequest, onReply: @escaping @Sendable (WorkerReply) -> Void) -> PoolTicket? {
        let pending = PoolRequest(request: request, onReply: onReply)
        guard !stopped.withLockedValue({ $0 }) else {
            onReply(.failed(14, "model '\(deployment.model)' is unloading"))
            return nil
        }
        guard isReady else {
            onReply(.failed(14, "no worker of model '\(deployment.model)' is ready; try again shortly"))
            return nil
        }
        if !dispatch(pending) {
            let queued = queue.withLockedValue { queue -> Bool in
                guard queue.count < deployment.maxQueuedRequests else { return false }
                queue.append(pending)
                return true
            }
            guard queued else {
                onReply(.failed(8, "model '\(deployment.model)' is over capacity: \(deployment.maxQueuedRequests) requests are already queued"))
                return nil
            }
            // A worker may have freed up between the dispatch attempt and the enqueue.
            drainQueue()
        }
        return PoolTicket(request: pending)
    }

    /// Cancels a request: dequeued, or the worker is told (CANCEL) and its slot freed.
    public func cancel(_ ticket: PoolTicket, reason: String) {
        let request = ticket.request
        let (worker, id) = request.state.withLockedValue { state -> (Int?, UInt64?) in
            state.cancelled = true
            state.finished = true
            return (state.worker, state.workerRequestID)
        }
        queue.withLockedValue { queue in
            if let index = queue.firstIndex(where: { $0 === request }) { queue.remove(at: index) }
        }
        if let worker, let id {
            slots[worker].connection?.cancel(id, reason: reason)
            // The slot forgets it too, or every cancelled request would stay tracked until the
            // worker dies.
            slots[worker].untrack(id: id)
        }
        drainQueue()
    }

    /// Stops taking requests, waits for those in flight (at most `timeout`), stops the workers.
    public func drainAndStop(timeout: TimeAmount = .seconds(30)) async {
        stopped.withLockedValue { $0 = true }
        let deadline = NIODeadline.now() + timeout
        while outstanding > 0 && NIODeadline.now() < deadline {
            try? await Task.sleep(for: .milliseconds(20))
        }
        for slot in slots { slot.stop() }
        // What is still queued would never reach a worker now.
        let abandoned = queue.withLockedValue { queue in
            defer { queue.removeAll() }
            return Array(queue)
        }
        for request in abandoned { finish(request, code: 14, "model '\(deployment.model)' was unloaded before a worker could run this request") }
    }

    /// Answers `request` with a failure unless it is already finished.
    private func finish(_ request: PoolRequest, code: GRPCStatusCode, _ message: String) {
        let deliver = request.state.withLockedValue { state -> Bool in
            guard !state.finished else { return false }
            state.finished = true
            return true
        }
        if deliver { request.onReply(.failed(code, message)) }
    }

    // MARK: Dispatch

    /// Sends `request` to the least-loaded ready worker; false when none is ready or every one
    /// is at its in-flight limit.
    ///
    /// A worker a request died on is never among the ready ones (a slot's connection is
    /// replaced only by a new process), so a re-dispatched request may go to any ready worker,
    /// including its old slot's replacement: with one worker per pool, that is the only one.
    private func dispatch(_ request: PoolRequest) -> Bool {
        var best: (slot: WorkerSlot, connection: WorkerConnection, load: Int)?
        for slot in slots {
            guard let connection = slot.connection, !connection.isClosed else { continue }
            let load = connection.outstanding
            if load < deployment.maxInFlightPerWorker && (best == nil || load < best!.load) {
                best = (slot, connection, load)
            }
        }
        guard let (slot, connection, _) = best else { return false }
        let alreadyDone = request.state.withLockedValue { state -> Bool in
            if state.finished { return true }
            state.worker = slot.index
            state.dispatchedAt = .now()
            return false
        }
        if alreadyDone { return true }
        let id = connection.send(request.request) { [weak self] reply in
            self?.handle(reply, for: request)
        }
        request.state.withLockedValue { $0.workerRequestID = id }
        slot.track(id: id, request: request)
        return true
    }

    private func handle(_ reply: WorkerReply, for request: PoolRequest) {
        let deliver = request.state.withLockedValue { state -> Bool in
            guard !state.cancelled else { return false }
            switch reply {
            case .response(_, let final, _):
                state.deliveredResponse = true
                if final { state.finished = true }
            case .streamEnd, .failed:
                state.finished = true
            }
            return true
        }
        if case .response(_, final: false, _) = reply {} else {
            if let worker = request.state.withLockedValue({ $0.worker }), let id = request.state.withLockedValue({ $0.workerRequestID }) {
                slots[worker].untrack(id: id)
            }
            drainQueue()
        }
        if deliver { request.onReply(reply) }
    }

    /// Moves queued requests onto workers with room.
    func drainQueue() {
        while true {
            guard let next = queue.withLockedValue({ $0.first }) else { return }
            if next.state.withLockedValue({ $0.finished }) {
                queue.withLockedValue { queue in if queue.first === next { queue.removeFirst() } }
                continue
            }
            guard dispatch(next) else { return }
            queue.withLockedValue { queue in if queue.first === next { queue.removeFirst() } }
        }
    }

    // MARK: Worker deaths

    /// A worker (process `pid`) died with `orphans` unanswered: send them elsewhere or fail them.
    func workerDied(_ slot: WorkerSlot, pid: Int32, orphans: [PoolRequest]) {
        let idempotent = isIdempotent
        let unloading = stopped.withLockedValue { $0 }
        let dead = "\(slot.workerID) (pid \(pid))"
        for request in orphans {
            let verdict = request.state.withLockedValue { state -> (retry: Bool, failure: (Int32, String)?) in
                guard !state.finished else { return (false, nil) }
                state.workersThatDied.append(dead)
                state.worker = nil
                state.workerRequestID = nil
                if !idempotent {
                    state.finished = true
                    return (false, (14, "worker \(slot.workerID) of model '\(deployment.model)' died while running this request; the model is marked non-idempotent, so it was not retried"))
                }
                if state.deliveredResponse {
                    state.finished = true
                    return (false, (14, "worker \(slot.workerID) of model '\(deployment.model)' died after sending part of the responses; the stream cannot be resumed"))
                }
                if state.workersThatDied.count >= 2 {
                    state.finished = true
                    return (false, (13, "poison request: it was in flight on two workers of model '\(deployment.model)' that both died "
                        + "(\(state.workersThatDied.joined(separator: ", "))); it will not be dispatched again"))
                }
                if unloading {
                    state.finished = true
                    return (false, (14, "worker \(slot.workerID) of model '\(deployment.model)' stopped while running this request, and the model is unloading"))
                }
                return (true, nil)
            }
            if let failure = verdict.failure {
                logger.warning("request failed after a worker died", metadata: ["worker": "\(slot.workerID)", "reason": "\(failure.1)"])
                request.onReply(.failed(failure.0, failure.1))
            } else if verdict.retry {
                logger.info("re-dispatching a request from a dead worker", metadata: ["worker": "\(slot.workerID)"])
                if !dispatch(request) {
                    queue.withLockedValue { $0.prepend(request) }
                    if !slots.contains(where: { $0.connection != nil && $0.index != slot.index }) {
                        // Nothing else is alive: the request waits for a replacement worker.
                        logger.info("request waits for a replacement worker")
                    }
                }
            }
        }
    }

    func workerBecameReady(_ slot: WorkerSlot) {
        if let model = slot.connection?.hello.models.first(where: { $0.name == deployment.model }) {
            lastDescriptor.withLockedValue { $0 = model }
        }
        drainQueue()
    }
}

/// Breaks the pool ↔ slot reference cycle.
struct WeakPool: Sendable {
    weak var pool: WorkerPool?
    init(_ pool: WorkerPool) { self.pool = pool }
}
