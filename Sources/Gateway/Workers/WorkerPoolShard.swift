import H2Transport
import InferenceProtocol
import Logging
import NIOCore
import NIOPosix


/// What a worker said about one request, as its owner hears it.
enum WorkerReply {
    /// An `inference.ModelInferResponse` (encoded); `final` on the last one for the request;
    /// `timing` says where the worker spent its time, when it reports that.
    case response(ByteBuffer, final: Bool, timing: WorkerProtocol.Timing?)
    /// A decoupled model has no more responses.
    case streamEnd
    /// The request ended with this status (from the worker, or because of it).
    case failed(GRPCStatus)
}

/// Whoever submitted a request hears its replies here, on the shard's event loop, synchronously
/// from the read of the worker's frame. `queueNanoseconds` is the time the request waited in
/// the gateway for a worker (meaningful on the last reply).
protocol WorkerReplyReceiver: AnyObject {
    func workerReplied(_ reply: WorkerReply, requestID: UInt64, queueNanoseconds: Int64, shard: WorkerPoolShard)
}

/// A request for a pool: the client's `ModelInferRequest` bytes as they arrived, the variant
/// the router chose, and who hears the replies. A class: the pool's bookkeeping moves it around
/// by reference (one retain) instead of copying its fields.
final class PoolRequest {
    let modelName: String
    let modelVersion: String
    /// The client's request bytes; forwarded without a copy.
    let bytes: ByteBuffer
    /// Nanoseconds since the Unix epoch; 0 for none.
    let deadlineUnixNanos: Int64
    let receiver: WorkerReplyReceiver
    /// The call's `x-request-id` for the worker's logs; empty for none.
    let clientRequestID: String
    /// The request's spans when it is traced: the dispatch ends its queue span and starts the
    /// worker span whose context the worker receives.
    let trace: InferenceTrace?

    init(
        modelName: String, modelVersion: String, bytes: ByteBuffer, deadlineUnixNanos: Int64, receiver: WorkerReplyReceiver,
        clientRequestID: String = "", trace: InferenceTrace? = nil
    ) {
        self.modelName = modelName
        self.modelVersion = modelVersion
        self.bytes = bytes
        self.deadlineUnixNanos = deadlineUnixNanos
        self.receiver = receiver
        self.clientRequestID = clientRequestID
        self.trace = trace
    }
}

/// One event loop's share of a `WorkerPool`: its own connection to every worker, the requests
/// of that loop's calls, and the rules in `WorkerPoolStateMachine`.
///
/// Confined to `eventLoop`: calls on that loop submit, cancel and get their replies without a
/// lock, an allocation for bookkeeping or a thread hop. Frames written in one event-loop tick
/// go out in one flush per worker connection.
final class WorkerPoolShard {
    let eventLoop: EventLoop
    /// The model's name, as workers list it in HELLO.
    let modelName: String
    private let logger: Logger
    private var machine: WorkerPoolStateMachine<PoolRequest>
    private var connections: [WorkerChannelHandler?]
    /// The model as the workers described it in HELLO; nil until one has connected.
    private(set) var model: DescribedModel?
    /// The counters behind ModelStatistics for this loop's calls.
    var statistics = VariantStatistics()
    /// While a receiver hears a worker's reply (`workerReplied`): that worker's process id, for
    /// access logs; 0 at any other time.
    private(set) var replyingWorkerPID: Int32 = 0
    private var flushScheduled = false
    private var unflushed: [WorkerChannelHandler] = []
    private var stopWaiters: [EventLoopPromise<Void>] = []
    private let idempotentByDeployment: Bool

    init(
        eventLoop: EventLoop, deployment: ModelDeployment, shardCount: Int, drainedMessage: String? = nil,
        latencyBuckets: LatencyBuckets = .default, logger: Logger
    ) {
        self.eventLoop = eventLoop
        self.statistics = VariantStatistics(buckets: latencyBuckets)
        self.modelName = deployment.model
        self.logger = logger
        self.idempotentByDeployment = deployment.idempotent
        let share = { (limit: Int) in max(1, limit / max(1, shardCount)) }
        self.machine = WorkerPoolStateMachine(
            configuration: .init(
                model: deployment.model, maxInFlightPerWorker: share(deployment.maxInFlightPerWorker),
                maxQueued: deployment.maxQueuedRequests == 0 ? 0 : share(deployment.maxQueuedRequests)),
            slots: max(1, deployment.workers))
        self.connections = Array(repeating: nil, count: max(1, deployment.workers))
        machine.setDrained(drainedMessage)
    }

    /// Requests queued or running on this shard.
    var outstanding: Int { machine.outstanding }
    /// True while at least one worker is connected on this loop.
    var hasWorker: Bool { machine.hasWorker }
    /// Requests of this loop waiting for a worker.
    var queued: Int { machine.queued }
    /// The worker process connected in `slot` on this loop, if any.
    func worker(in slot: Int) -> WorkerPoolStateMachine<PoolRequest>.WorkerID? { machine.worker(in: slot) }
    /// Requests of this loop running on `worker`.
    func inFlight(of worker: WorkerPoolStateMachine<PoolRequest>.WorkerID) -> Int { machine.inFlight(of: worker) }

    // MARK: Operators

    /// An operator drained the variant (`message` says so to refused clients) or undrained it
    /// (nil): from now on, submissions on this loop are refused or taken.
    func setDrained(_ message: String?) {
        machine.setDrained(message)
    }

    /// Takes `worker` out for a restart (see `WorkerPoolStateMachine.drainWorker`).
    func drainWorker(_ worker: WorkerPoolStateMachine<PoolRequest>.WorkerID) -> Bool {
        machine.drainWorker(worker)
    }

    /// The replacement of the worker in `slot` did not come in time.
    func replacementAbandoned(slot: Int) {
        machine.replacementAbandoned(slot: slot)
    }

    // MARK: Requests

    /// Submits a request; returns its id, or the status it was refused with (nothing kept).
    func submit(_ request: PoolRequest) -> Result<UInt64, GRPCStatus> {
        eventLoop.preconditionInEventLoop()
        switch machine.submit(request, now: .now()) {
        case .dispatch(let dispatch):
            send(dispatch)
            return .success(dispatch.id)
        case .queued(let id):
            return .success(id)
        case .refuse(let status):
            return .failure(status)
        }
    }

    /// The owner gave up on `id`: dequeued, or the worker is told (CANCEL). No reply follows.
    func cancel(_ id: UInt64, reason: String) {
        switch machine.cancel(id, now: .now()) {
        case .none, .dequeued:
            break
        case .cancelRunning(_, let slot, let next):
            var cancel = WorkerProtocol.Cancel()
            cancel.reason = reason
            connections[slot]?.write(WorkerFrame(kind: .cancel, requestID: id, message: cancel))
            if let next { send(next) }
        }
        resolveStopWaitersIfIdle()
    }

    /// Asks the worker running `id` to hold (`paused`) or go on sending its streamed responses.
    /// Workers that do not know these frames ignore them; the owner bounds its buffers anyway.
    func setPaused(_ paused: Bool, for id: UInt64) {
        guard let slot = machine.runningSlot(of: id) else { return }
        connections[slot]?.write(WorkerFrame(kind: paused ? .pause : .resume, requestID: id, payload: ByteBuffer()))
    }

    private func send(_ dispatch: WorkerPoolStateMachine<PoolRequest>.Dispatch) {
        guard let request = machine.payload(of: dispatch.id), let connection = connections[dispatch.slot] else { return }
        connection.writeRequest(id: dispatch.id, request)
    }

    // MARK: Replies

    func received(_ frame: WorkerFrame, on connection: WorkerChannelHandler) {
        switch frame.kind {
        case .inferResponse:
            let response: WorkerProtocol.InferResponse
            do {
                response = try frame.decodePayload(as: WorkerProtocol.InferResponse.self)
            } catch {
                deliver(
                    .failed(GRPCStatus(code: .internalError, message: "the worker sent a malformed response: \(error)")), final: true,
                    id: frame.requestID, from: connection)
                return
            }
            if let status = response.status, status.code != 0 {
                deliver(.failed(GRPCStatus(workerStatus: status)), final: true, id: frame.requestID, from: connection)
            } else {
                deliver(
                    .response(response.response, final: response.final, timing: response.timing), final: response.final,
                    id: frame.requestID, from: connection)
            }
        case .streamEnd:
            deliver(.streamEnd, final: true, id: frame.requestID, from: connection)
        case .error:
            let status = (try? frame.decodePayload(as: WorkerProtocol.Status.self)) ?? WorkerProtocol.Status(code: 13, message: "worker error")
            if frame.requestID == 0 {
                logger.warning("worker reported a connection error", metadata: ["message": "\(status.message)"])
                connection.close()
            } else {
                deliver(.failed(GRPCStatus(workerStatus: status)), final: true, id: frame.requestID, from: connection)
            }
        default:
            break  // PONG and unknown kinds: the supervisor's connection deals with pings
        }
    }

    private func deliver(_ reply: WorkerReply, final: Bool, id: UInt64, from connection: WorkerChannelHandler) {
        switch machine.received(final ? .final : .partial, for: id, fromSlot: connection.worker.slot, now: .now()) {
        case .drop:
            return
        case .deliver(let request, let finished, let queueNanoseconds, let next):
            if let next { send(next) }
            replyingWorkerPID = connection.expectedPID
            request.receiver.workerReplied(reply, requestID: id, queueNanoseconds: queueNanoseconds, shard: self)
            replyingWorkerPID = 0
            if finished { resolveStopWaitersIfIdle() }
        }
    }

    // MARK: Workers

    /// A worker process is ready (the supervisor saw its HELLO): connect to it from this loop.
    func attach(worker: WorkerPoolStateMachine<PoolRequest>.WorkerID, name: String, socketPath: String, pid: Int32, connectTimeout: TimeAmount) {
        guard machine.worker(in: worker.slot) != worker else { return }
        // The connection lives on this loop, like the shard: the handler never leaves it.
        let handler = NIOLoopBound(
            WorkerChannelHandler(worker: worker, name: name, expectedPID: pid, shard: self, logger: logger), eventLoop: eventLoop)
        ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(WorkerFrameReader(handler: handler.value)))
                    try channel.pipeline.syncOperations.addHandler(handler.value)
                }
            }
            .connect(unixDomainSocketPath: socketPath)
            .whenFailure { [logger] error in
                logger.warning("cannot connect to worker", metadata: ["worker": "\(name)", "error": "\(error)"])
            }
    }

    /// The worker's HELLO arrived on this loop's connection: it takes requests.
    func connectionReady(_ connection: WorkerChannelHandler, hello: WorkerProtocol.Hello, modelName: String) {
        if let old = connections[connection.worker.slot], old !== connection {
            // A newer process in the slot before the old connection's close was seen.
            lost(old)
        }
        connections[connection.worker.slot] = connection
        if let described = hello.models.first(where: { $0.name == modelName }) {
            if model?.descriptor != described { model = DescribedModel(described) }
            machine.isIdempotent = Self.isIdempotent(described, deployment: idempotentByDeployment)
        }
        for dispatch in machine.workerConnected(connection.worker, name: connection.name, now: .now()) { send(dispatch) }
    }

    /// A worker's connection closed (the worker died, stalled and was killed, or stopped).
    func lost(_ connection: WorkerChannelHandler) {
        guard connections[connection.worker.slot] === connection else { return }
        connections[connection.worker.slot] = nil
        connection.close()
        for action in machine.workerLost(connection.worker, now: .now()) {
            switch action {
            case .dispatch(let dispatch):
                logger.info("re-dispatching a request from a dead worker", metadata: ["worker": "\(connection.name)"])
                statistics.redispatched += 1
                send(dispatch)
            case .requeued:
                statistics.redispatched += 1
                logger.info("a request of a dead worker waits for a replacement", metadata: ["worker": "\(connection.name)"])
            case .fail(let id, let status, let request):
                logger.warning("request failed after a worker died", metadata: ["worker": "\(connection.name)", "reason": "\(status.message)"])
                if status.message.hasPrefix("poison request") { statistics.poisoned += 1 } else { statistics.failedOnWorkerExit += 1 }
                request.receiver.workerReplied(.failed(status), requestID: id, queueNanoseconds: 0, shard: self)
            }
        }
        resolveStopWaitersIfIdle()
    }

    /// Tells the supervisor's worker-gone event to this loop: close the connection to it.
    func detach(worker: WorkerPoolStateMachine<PoolRequest>.WorkerID) {
        guard let connection = connections[worker.slot], connection.worker == worker else { return }
        lost(connection)
    }

    /// Stops taking requests; the queued ones still run as workers free up; succeeds once
    /// nothing is outstanding (queued or running).
    func drain() -> EventLoopFuture<Void> {
        machine.beginStopping()
        let promise = eventLoop.makePromise(of: Void.self)
        stopWaiters.append(promise)
        resolveStopWaitersIfIdle()
        return promise.futureResult
    }

    /// Fails the requests still queued: the pool is stopping and no worker will take them.
    func abandonQueued() {
        for (id, request) in machine.abandonQueued() {
            request.receiver.workerReplied(
                .failed(GRPCStatus(code: .unavailable, message: "model '\(request.modelName)' was unloaded before a worker could run this request")),
                requestID: id, queueNanoseconds: 0, shard: self)
        }
        resolveStopWaitersIfIdle()
    }

    /// Closes every worker connection (after the workers were told to stop).
    func closeConnections() {
        for connection in connections.compactMap({ $0 }) { connection.close() }
    }

    private func resolveStopWaitersIfIdle() {
        guard machine.isStopping, machine.outstanding == 0, !stopWaiters.isEmpty else { return }
        let waiters = stopWaiters
        stopWaiters = []
        for waiter in waiters { waiter.succeed() }
    }

    // MARK: Flushing

    /// Called by a connection that wrote without flushing: one flush per connection per tick.
    func needsFlush(_ connection: WorkerChannelHandler) {
        unflushed.append(connection)
        guard !flushScheduled else { return }
        flushScheduled = true
        eventLoop.assumeIsolated().execute { self.flushAll() }
    }

    private func flushAll() {
        flushScheduled = false
        let connections = unflushed
        unflushed.removeAll(keepingCapacity: true)
        for connection in connections { connection.flush() }
    }

    /// False when requests must never run twice: the deployment says so, or the model's config
    /// marks it stateful (sequence batching) or sets parameter `switchyard.idempotent: "false"`.
    static func isIdempotent(_ model: WorkerProtocol.ModelDescriptor, deployment: Bool) -> Bool {
        guard deployment else { return false }
        guard let config = model.config else { return true }
        if case .sequenceBatching? = config.schedulingChoice { return false }
        return config.parameters["switchyard.idempotent"]?.stringValue.lowercased() != "false"
    }
}

/// A model as its workers describe it in HELLO, shared by reference: a request reads its
/// configuration without copying the (large) `ModelConfig` value.
final class DescribedModel: Sendable {
    let descriptor: WorkerProtocol.ModelDescriptor
    /// The configuration requests are validated against (a stored `let`, so a request borrows
    /// it instead of copying it).
    let config: ModelConfig
    /// False when the worker sent no configuration (then requests cannot be validated).
    let hasConfig: Bool
    /// True when one request may get many responses (ModelStreamInfer only).
    let decoupled: Bool

    init(_ descriptor: WorkerProtocol.ModelDescriptor) {
        self.descriptor = descriptor
        self.config = descriptor.config ?? ModelConfig()
        self.hasConfig = descriptor.config != nil
        self.decoupled = descriptor.decoupled
    }

    /// Validates `request` against the configuration, which stays in place (no copy of it per
    /// request); returns the batch size.
    func validate(_ request: ModelInferRequestScan) throws(InferRequestValidator.Failure) -> Int64 {
        try InferRequestValidator.validate(request, config: config)
    }
}

extension GRPCStatus {
    /// A worker protocol status as a gRPC status (unknown codes become UNKNOWN).
    init(workerStatus status: WorkerProtocol.Status) {
        self.init(code: GRPCStatus.Code(rawValue: Int(status.code)) ?? .unknown, message: status.message)
    }
}
