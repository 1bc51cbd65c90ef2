import InferenceProtocol
import Logging
import NIOCore
import NIOPosix
import ProtoWire

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Counters of what a worker has done, for PONG, logs and tests.
public struct WorkerStatistics: Sendable, Hashable {
    /// One model's counters.
    public struct Model: Sendable, Hashable {
        /// Model executions: batches run by a batching model, requests started by a decoupled one.
        public var executions = 0
        /// Rows executed (the sum of the batch sizes of the requests run).
        public var inferences = 0
        /// Requests answered in full.
        public var succeeded = 0
        /// Requests answered with an error status.
        public var failed = 0

        public init() {}
    }

    /// By model name.
    public var models: [String: Model] = [:]
    /// Requests being decoded or executed now.
    public var inFlight = 0
    /// Requests waiting in a batch queue or for a model instance.
    public var queued = 0

    public init() {}
}

/// The worker's request engine: it checks each request, queues it for its model, forms batches,
/// runs them on a thread pool and hands each answer back to the connection that asked.
///
/// All of its state lives on one event loop (`eventLoop`); connections must be served on that
/// loop (the `WorkerServer` uses a single-loop group). Model execution, and the decoding of
/// large requests, run on `threadPool`, never on the loop. The public methods may be called
/// from any thread.
public final class WorkerRuntime: Sendable {
    /// The worker's name in HELLO and in logs.
    public let workerID: String
    /// The served models, in the order HELLO lists them.
    public let models: [ServedModel]
    /// The loop that owns the runtime's state.
    public let eventLoop: any EventLoop
    let core: NIOLoopBoundBox<RuntimeCore>

    /// A runtime serving `models`. `threadPool` must be started and outlive the runtime.
    public init(workerID: String, models: [ServedModel], eventLoop: any EventLoop, threadPool: NIOThreadPool, logger: Logger) {
        self.workerID = workerID
        self.models = models
        self.eventLoop = eventLoop
        self.core = .makeBoxSendingValue(
            RuntimeCore(workerID: workerID, models: models, eventLoop: eventLoop, threadPool: threadPool, logger: logger),
            eventLoop: eventLoop)
    }

    /// The HELLO payload: protocol version, pid, worker id and every model with its configuration.
    public func hello() -> WorkerProtocol.Hello {
        var hello = WorkerProtocol.Hello()
        hello.protocolVersion = WorkerProtocol.version
        hello.pid = getpid()
        hello.workerID = workerID
        hello.models = models.map(\.descriptor)
        return hello
    }

    /// Runs one request as if it had arrived in an INFER_REQUEST frame with `requestID`, and
    /// returns every frame the worker sends for it, the final one last.
    public func infer(requestID: UInt64, _ request: WorkerProtocol.InferRequest) -> EventLoopFuture<[WorkerFrame]> {
        let promise = eventLoop.makePromise(of: [WorkerFrame].self)
        let payload = request.encoded()
        eventLoop.execute {
            var frames: [WorkerFrame] = []
            _ = self.core.value.start(requestID: requestID, payload: payload) { frame, final in
                frames.append(frame)
                if final { promise.succeed(frames) }
            }
        }
        return promise.futureResult
    }

    /// A snapshot of the counters.
    public func statistics() -> EventLoopFuture<WorkerStatistics> {
        eventLoop.submit { self.core.value.statistics }
    }

    /// Closes every gateway connection once the frames written to it have gone out.
    func closeConnections() -> EventLoopFuture<Void> {
        eventLoop.flatSubmit { self.core.value.closeConnections() }
    }

    /// Stops taking requests (new ones are answered `UNAVAILABLE`) and succeeds with true once
    /// every request in flight or queued has been answered, or with false after `timeout`.
    public func drain(timeout: TimeAmount) -> EventLoopFuture<Bool> {
        let promise = eventLoop.makePromise(of: Bool.self)
        eventLoop.execute { self.core.value.drain(promise: promise, timeout: timeout) }
        return promise.futureResult
    }
}

/// The state and logic of `WorkerRuntime`, confined to its event loop.
final class RuntimeCore {
    /// Requests up to this size are decoded on the event loop; larger ones on the thread pool.
    static let inlinePreparationLimit = 64 * 1024

    let workerID: String
    let eventLoop: any EventLoop
    let threadPool: NIOThreadPool
    let logger: Logger
    private let models: [String: ServedModel]
    private let modelNames: [String]

    private var batchQueues: [String: BatchQueue<InferenceCall>] = [:]
    private var batchTimers: [String: (deadline: NIODeadline, task: Scheduled<Void>)] = [:]
    private var instances: [String: DecoupledInstance] = [:]
    private var counters = WorkerStatistics()
    private var draining = false
    private var idleWaiters: [EventLoopPromise<Bool>] = []
    /// Open gateway connections, so that shutdown can close them.
    private(set) var connections: [ObjectIdentifier: WorkerConnectionHandler] = [:]

    /// The one instance of a decoupled model: who holds it and who waits for it.
    private struct DecoupledInstance {
        var holder: InferenceCall?
        var release: Scheduled<Void>?
        var waiting: [(call: InferenceCall, plan: DecoupledPlan)] = []
    }

    init(workerID: String, models: [ServedModel], eventLoop: any EventLoop, threadPool: NIOThreadPool, logger: Logger) {
        self.workerID = workerID
        self.eventLoop = eventLoop
        self.threadPool = threadPool
        self.logger = logger
        self.models = Dictionary(models.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.modelNames = models.map(\.name)
        for model in models {
            counters.models[model.name] = WorkerStatistics.Model()
            switch model.backend {
            case .batched:
                var delay = TimeAmount.zero
                if case .dynamicBatching(let batching)? = model.config.schedulingChoice {
                    delay = .microseconds(Int64(clamping: batching.maxQueueDelayMicroseconds))
                }
                batchQueues[model.name] = BatchQueue(maxBatchSize: Int(max(1, model.config.maxBatchSize)), maxQueueDelay: delay)
            case .decoupled:
                instances[model.name] = DecoupledInstance()
            case .concurrent:
                break  // no queue and no instance: each request runs at once
            }
        }
    }

    var statistics: WorkerStatistics { counters }
    var inFlight: Int { counters.inFlight }
    var queued: Int { counters.queued }

    func register(_ connection: WorkerConnectionHandler, for channel: any Channel) {
        connections[ObjectIdentifier(channel)] = connection
    }
    func unregister(_ channel: any Channel) { connections[ObjectIdentifier(channel)] = nil }

    // MARK: Admission

    /// Starts the request in an INFER_REQUEST payload. `sink` receives every frame for it, on
    /// this loop, possibly before this method returns (for a request refused at once).
    func start(
        requestID: UInt64, payload: ByteBuffer, sink: @escaping (_ frame: WorkerFrame, _ final: Bool) -> Void
    ) -> InferenceCall {
        let call = InferenceCall(requestID: requestID, sink: sink)
        counters.inFlight += 1
        guard !draining else {
            fail(call, InferenceError(.unavailable, "worker \(workerID) is shutting down; send the request to another worker"))
            return call
        }
        let request: WorkerProtocol.InferRequest
        do {
            request = try WorkerProtocol.InferRequest(decoding: payload)
        } catch {
            fail(call, .invalidArgument("the INFER_REQUEST payload is not a valid switchyard.worker.InferRequest: \(error)"))
            return call
        }
        guard let model = models[request.modelName] else {
            fail(call, InferenceError(
                .notFound,
                "model '\(request.modelName)' is not served by worker \(workerID), which serves \(modelNames.joined(separator: ", "))"))
            return call
        }
        guard request.modelVersion.isEmpty || request.modelVersion == ServedModel.version else {
            fail(call, InferenceError(
                .notFound, "model '\(model.name)' has no version '\(request.modelVersion)' on worker \(workerID); it serves version \(ServedModel.version)"))
            return call
        }
        call.model = model
        if request.deadlineUnixNanos != 0 {
            let remaining = request.deadlineUnixNanos - WallClock.nowUnixNanos()
            guard remaining > 0 else {
                fail(call, InferenceError(.deadlineExceeded, "the request's deadline passed before worker \(workerID) received it"))
                return call
            }
            call.deadline = .now() + .nanoseconds(remaining)
        }

        let bytes = request.request
        if bytes.readableBytes <= Self.inlinePreparationLimit {
            prepared(call, Result { () throws(InferenceError) in try model.prepare(bytes) })
        } else {
            threadPool.runIfActive(eventLoop: eventLoop) {
                Result { () throws(InferenceError) in try model.prepare(bytes) }
            }.assumeIsolated().whenComplete { result in
                switch result {
                case .success(let prepared):
                    self.prepared(call, prepared)
                case .failure:
                    self.prepared(call, .failure(InferenceError(.unavailable, "worker \(self.workerID) is shutting down")))
                }
            }
        }
        return call
    }

    private func prepared(_ call: InferenceCall, _ result: Result<(PreparedRequest, DecoupledPlan?), InferenceError>) {
        guard !call.isFinished else { return }
        switch result {
        case .failure(let error):
            fail(call, error)
        case .success(let (request, plan)):
            call.prepared = request
            if let plan {
                enqueueDecoupled(call, plan: plan)
            } else if case .concurrent(let model)? = call.model?.backend {
                runConcurrent(call, model: model, request: request)
            } else {
                enqueueBatched(call, request: request)
            }
        }
    }

    // MARK: Cancellation

    /// Stops work on the request and sends nothing more for it.
    func cancel(_ call: InferenceCall, reason: String) {
        guard !call.isFinished else { return }
        call.isCancelled = true
        logger.debug("request \(call.requestID) cancelled (\(reason.isEmpty ? "no reason given" : reason))")
        let phase = call.phase
        move(call, to: .finished)
        guard let name = call.model?.name else { return }
        call.pendingResponse?.cancel()
        call.pendingResponse = nil
        if phase == .queued, batchQueues[name] != nil {
            let (_, action) = batchQueues[name]!.remove(where: { $0 === call }, now: .now())
            handle(action, model: name)
        }
        if instances[name] != nil {
            instances[name]!.waiting.removeAll { $0.call === call }
            releaseInstance(of: name, heldBy: call)
        }
    }

    // MARK: Batching models

    private func enqueueBatched(_ call: InferenceCall, request: PreparedRequest) {
        guard let name = call.model?.name, batchQueues[name] != nil else { return }
        move(call, to: .queued)
        call.queuedAt = .now()
        let action = batchQueues[name]!.enqueue(call, rows: request.batchSize, key: request.batchKey, now: .now())
        handle(action, model: name)
    }

    private func handle(_ action: BatchQueue<InferenceCall>.Action, model name: String) {
        switch action {
        case .none:
            cancelTimer(of: name)
        case .wakeUp(let deadline):
            if let timer = batchTimers[name], timer.deadline == deadline { return }
            cancelTimer(of: name)
            let task = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
                self.batchTimers[name] = nil
                self.handle(self.batchQueues[name]!.timerFired(now: .now()), model: name)
            }
            batchTimers[name] = (deadline, task)
        case .execute(let calls):
            cancelTimer(of: name)
            execute(calls, model: name)
        }
    }

    private func cancelTimer(of name: String) {
        batchTimers.removeValue(forKey: name)?.task.cancel()
    }

    private func execute(_ calls: [InferenceCall], model name: String) {
        guard let model = models[name] else { return }
        let now = NIODeadline.now()
        var live: [InferenceCall] = []
        for call in calls {
            if let deadline = call.deadline, deadline <= now {
                fail(call, InferenceError(
                    .deadlineExceeded, "the request's deadline passed while it waited in model '\(name)''s batch queue"))
            } else {
                move(call, to: .running)
                live.append(call)
            }
        }
        guard !live.isEmpty else {
            handle(batchQueues[name]!.batchFinished(now: .now()), model: name)
            return
        }
        let requests = live.compactMap(\.prepared)
        let rows = requests.reduce(0) { $0 + $1.batchSize }
        if let oldest = live.compactMap(\.queuedAt).min() {
            logger.trace("model \(name): batch of \(live.count) requests, \(rows) rows, oldest queued \((now - oldest).nanoseconds / 1000) µs")
        }
        let started = NIODeadline.now()
        threadPool.runIfActive(eventLoop: eventLoop) { () -> (responses: [Result<ByteBuffer, InferenceError>], encodeNanos: Int64) in
            let outputs = model.executeBatch(requests)
            let encodeStart = NIODeadline.now()
            let encoded = outputs.map { $0.map { $0.encoded() } }
            return (encoded, (NIODeadline.now() - encodeStart).nanoseconds)
        }.assumeIsolated().whenComplete { result in
            self.counters.models[name, default: .init()].executions += 1
            self.counters.models[name, default: .init()].inferences += rows
            switch result {
            case .success(let batch):
                let total = (NIODeadline.now() - started).nanoseconds
                for (index, (call, response)) in zip(live, batch.responses).enumerated() {
                    var timing = WorkerProtocol.Timing()
                    let queuedAt = call.queuedAt ?? started
                    timing.queueNs = UInt64(max(0, (started - queuedAt).nanoseconds))
                    timing.computeInputNs = UInt64(max(0, (queuedAt - call.arrivedAt).nanoseconds))
                    timing.computeInferNs = UInt64(max(0, total - batch.encodeNanos))
                    timing.computeOutputNs = UInt64(max(0, batch.encodeNanos / Int64(max(1, live.count))))
                    timing.countsExecution = index == 0
                    switch response {
                    case .success(let bytes): self.succeed(call, response: bytes, timing: timing)
                    case .failure(let error): self.fail(call, error)
                    }
                }
            case .failure:
                for call in live {
                    self.fail(call, InferenceError(.unavailable, "worker \(self.workerID) is shutting down"))
                }
            }
            self.handle(self.batchQueues[name]!.batchFinished(now: .now()), model: name)
        }
    }

    // MARK: Concurrent models

    /// Starts a concurrent model's request at once and answers it when its delay has passed.
    private func runConcurrent(_ call: InferenceCall, model: any ConcurrentModel, request: PreparedRequest) {
        guard let served = call.model else { return }
        let name = served.name
        let answer: ConcurrentAnswer
        do {
            answer = try model.answer(request.inputs)
        } catch {
            fail(call, error)
            return
        }
        move(call, to: .running)
        counters.models[name, default: .init()].executions += 1
        counters.models[name, default: .init()].inferences += 1
        let respond = {
            call.pendingResponse = nil
            if let deadline = call.deadline, deadline <= .now() {
                self.fail(call, InferenceError(.deadlineExceeded, "the request's deadline passed while model '\(name)' ran it"))
                return
            }
            do throws(InferenceError) {
                self.succeed(call, response: try served.response(for: request, outputs: answer.outputs).encoded())
            } catch {
                self.fail(call, error)
            }
        }
        if answer.delay > .zero {
            call.pendingResponse = eventLoop.assumeIsolated().scheduleTask(in: answer.delay) { respond() }
        } else {
            respond()
        }
    }

    // MARK: Decoupled models

    private func enqueueDecoupled(_ call: InferenceCall, plan: DecoupledPlan) {
        guard let name = call.model?.name, instances[name] != nil else { return }
        move(call, to: .queued)
        instances[name]!.waiting.append((call, plan))
        startWaitingRuns(of: name)
    }

    /// Starts waiting requests while the model's instance is free. A request whose plan holds
    /// the instance for no time leaves it free for the next one at once.
    private func startWaitingRuns(of name: String) {
        while instances[name]!.holder == nil, !instances[name]!.waiting.isEmpty {
            let (call, plan) = instances[name]!.waiting.removeFirst()
            if let deadline = call.deadline, deadline <= .now() {
                fail(call, InferenceError(
                    .deadlineExceeded, "the request's deadline passed while it waited for model '\(name)''s instance"))
                continue
            }
            move(call, to: .running)
            counters.models[name, default: .init()].executions += 1
            counters.models[name, default: .init()].inferences += 1
            if plan.instanceHold > .zero {
                instances[name]!.holder = call
                instances[name]!.release = eventLoop.assumeIsolated().scheduleTask(in: plan.instanceHold) {
                    self.releaseInstance(of: name, heldBy: call)
                }
            }
            continueStream(call, plan: plan, next: 0, delayElapsed: false)
        }
    }

    private func releaseInstance(of name: String, heldBy call: InferenceCall) {
        guard instances[name]?.holder === call else { return }
        instances[name]!.holder = nil
        instances[name]!.release?.cancel()
        instances[name]!.release = nil
        startWaitingRuns(of: name)
    }

    /// Responses sent back to back (no delay between them) before the loop turns to other work.
    private static let responsesPerTurn = 64

    /// Sends the plan's responses from `next` on, each after its delay, then STREAM_END.
    private func continueStream(_ call: InferenceCall, plan: DecoupledPlan, next: Int, delayElapsed: Bool) {
        var index = next
        var waited = delayElapsed
        var sentThisTurn = 0
        while !call.isFinished {
            guard index < plan.responseCount else {
                endStream(call)
                return
            }
            let delay = plan.delay(at: index)
            let due = index
            if delay > .zero && !waited {
                call.pendingResponse = eventLoop.assumeIsolated().scheduleTask(in: delay) {
                    call.pendingResponse = nil
                    self.continueStream(call, plan: plan, next: due, delayElapsed: true)
                }
                return
            }
            if sentThisTurn == Self.responsesPerTurn {
                // Let pings, cancels and other requests in between long runs of responses.
                call.pendingResponse = eventLoop.assumeIsolated().scheduleTask(in: .zero) {
                    call.pendingResponse = nil
                    self.continueStream(call, plan: plan, next: due, delayElapsed: true)
                }
                return
            }
            waited = false
            if let deadline = call.deadline, deadline <= .now() {
                fail(call, InferenceError(
                    .deadlineExceeded, "the request's deadline passed after \(index) of its \(plan.responseCount) responses"))
                return
            }
            guard let model = call.model, let request = call.prepared else { return }
            do {
                let response = try model.response(for: request, outputs: plan.outputs(at: index))
                call.sink(.inferResponse(requestID: call.requestID, response: response.encoded(), final: false), false)
            } catch {
                fail(call, error)
                return
            }
            index += 1
            sentThisTurn += 1
        }
    }

    private func endStream(_ call: InferenceCall) {
        guard !call.isFinished else { return }
        if let name = call.model?.name { counters.models[name, default: .init()].succeeded += 1 }
        call.sink(.streamEnd(requestID: call.requestID), true)
        move(call, to: .finished)
    }

    // MARK: Answers and accounting

    private func succeed(_ call: InferenceCall, response: ByteBuffer, timing: WorkerProtocol.Timing? = nil) {
        guard !call.isFinished else { return }
        if let name = call.model?.name { counters.models[name, default: .init()].succeeded += 1 }
        call.sink(.inferResponse(requestID: call.requestID, response: response, final: true, timing: timing), true)
        move(call, to: .finished)
    }

    private func fail(_ call: InferenceCall, _ error: InferenceError) {
        guard !call.isFinished else { return }
        if let name = call.model?.name { counters.models[name, default: .init()].failed += 1 }
        logger.debug("request \(call.requestID) failed: \(error)")
        call.sink(.inferResponse(requestID: call.requestID, error: error), true)
        move(call, to: .finished)
    }

    /// Moves a call to `phase`, keeping the in-flight and queued counts.
    private func move(_ call: InferenceCall, to phase: InferenceCall.Phase) {
        switch call.phase {
        case .preparing, .running: counters.inFlight -= 1
        case .queued: counters.queued -= 1
        case .finished: return
        }
        switch phase {
        case .preparing, .running: counters.inFlight += 1
        case .queued: counters.queued += 1
        case .finished: break
        }
        call.phase = phase
        if phase == .finished { resolveDrainIfIdle() }
    }

    // MARK: Draining

    /// Closes every gateway connection once its pending frames are out.
    func closeConnections() -> EventLoopFuture<Void> {
        let closing = connections.values.map { $0.closeAfterPendingWrites() }
        return EventLoopFuture.andAllComplete(closing, on: eventLoop)
    }

    func drain(promise: EventLoopPromise<Bool>, timeout: TimeAmount) {
        draining = true
        if counters.inFlight + counters.queued == 0 {
            promise.succeed(true)
            return
        }
        idleWaiters.append(promise)
        eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            guard let index = self.idleWaiters.firstIndex(where: { $0.futureResult === promise.futureResult }) else { return }
            self.idleWaiters.remove(at: index)
            self.logger.warning(
                "drain timed out with \(self.counters.inFlight) requests in flight and \(self.counters.queued) queued")
            promise.succeed(false)
        }
    }

    private func resolveDrainIfIdle() {
        guard draining, counters.inFlight + counters.queued == 0, !idleWaiters.isEmpty else { return }
        let waiters = idleWaiters
        idleWaiters = []
        for waiter in waiters { waiter.succeed(true) }
    }
}

/// The wall clock, for deadlines that the gateway sends as Unix time.
enum WallClock {
    static func nowUnixNanos() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
    }
}
