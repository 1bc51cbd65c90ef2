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
    /// returns every frame the worker sends for it, the final one last. Like a connection, it
    /// answers a request that the model's fast path takes at once, and starts any other.
    public func infer(requestID: UInt64, _ request: WorkerProtocol.InferRequest) -> EventLoopFuture<[WorkerFrame]> {
        let promise = eventLoop.makePromise(of: [WorkerFrame].self)
        let payload = request.encoded()
        eventLoop.execute {
            var frames: [WorkerFrame] = []
            var answer = ByteBuffer()
            if self.core.value.answerAtOnce(requestID: requestID, payload: payload, into: &answer) {
                // The runtime's own frame, whole: reading it cannot fail.
                if let frame = try? WorkerFrame.read(from: &answer) { frames.append(frame) }
                promise.succeed(frames)
                return
            }
            _ = self.core.value.start(requestID: requestID, payload: payload) { bytes, final in
                var bytes = bytes
                // The runtime's own frames, whole: reading one cannot fail.
                if let frame = try? WorkerFrame.read(from: &bytes) { frames.append(frame) }
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
    /// Requests up to this size are decoded on the event loop, and batches up to this size of a
    /// model that `executesInline` run there; larger ones go to the thread pool.
    static let inlineRequestLimit = 64 * 1024

    let workerID: String
    let eventLoop: any EventLoop
    let threadPool: NIOThreadPool
    let logger: Logger
    private let lanes: [String: ModelLane]
    private let modelNames: [String]
    /// The lanes of models with a fast path, searched by name in `answerAtOnce` (a model or
    /// two: comparing names costs less than hashing one).
    private let fastLanes: [ModelLane]
    /// Whether `answerAtOnce` answers requests (tests turn it off to compare with the general path).
    var answersAtOnce = true

    private var inFlightCount = 0
    private var queuedCount = 0
    private var draining = false
    /// Streams that have sent their run of responses for this turn, or whose socket drained,
    /// and go on at the next pump (see `schedulePump`).
    private var readyStreams: [InferenceCall] = []
    private var pumpScheduled = false
    private var idleWaiters: [EventLoopPromise<Bool>] = []
    /// Batch timers armed so far (for tests: a batch that can run at once arms none).
    private(set) var batchTimersArmed = 0
    /// Open gateway connections, so that shutdown can close them.
    private(set) var connections: [ObjectIdentifier: WorkerConnectionHandler] = [:]

    init(workerID: String, models: [ServedModel], eventLoop: any EventLoop, threadPool: NIOThreadPool, logger: Logger) {
        self.workerID = workerID
        self.eventLoop = eventLoop
        self.threadPool = threadPool
        self.logger = logger
        var lanes: [String: ModelLane] = [:]
        for model in models where lanes[model.name] == nil { lanes[model.name] = ModelLane(model: model) }
        self.lanes = lanes
        self.modelNames = models.map(\.name)
        self.fastLanes = lanes.values.filter { $0.fastPath != nil }
    }

    var statistics: WorkerStatistics {
        var statistics = WorkerStatistics()
        statistics.models = lanes.mapValues(\.counters)
        statistics.inFlight = inFlightCount
        statistics.queued = queuedCount
        return statistics
    }
    var inFlight: Int { inFlightCount }
    var queued: Int { queuedCount }

    func register(_ connection: WorkerConnectionHandler, for channel: any Channel) {
        connections[ObjectIdentifier(channel)] = connection
    }
    func unregister(_ channel: any Channel) { connections[ObjectIdentifier(channel)] = nil }

    // MARK: Admission

    /// Answers a request of a model with a fast path (`simple`) at once, straight from its
    /// INFER_REQUEST payload into `buffer`, when the general path would run it at once as a batch
    /// of its own and give the same answer: the worker is not draining, the model's batch queue
    /// is idle and would not wait for more rows, the deadline (if any) has not passed, and the
    /// request is a plain one (`SimpleFastPath`). Counts it as `start` and a batch would.
    ///
    /// Returns false, having written nothing and changed nothing, for any other request; the
    /// caller then starts it with `start`, which answers or rejects it as before.
    func answerAtOnce(requestID: UInt64, payload: ByteBuffer, into buffer: inout ByteBuffer) -> Bool {
        guard answersAtOnce, !fastLanes.isEmpty, !draining, logger.logLevel > .trace else { return false }
        let arrivedAt = NIODeadline.now()
        guard let request = try? WorkerProtocol.InferRequest(decoding: payload) else { return false }
        var found: ModelLane?
        for lane in fastLanes where lane.name == request.modelName {
            found = lane
            break
        }
        guard let lane = found, let fastPath = lane.fastPath, let queue = lane.batchQueue, queue.isIdle,
            request.modelVersion.isEmpty || request.modelVersion == lane.model.version,
            request.request.readableBytes <= Self.inlineRequestLimit
        else { return false }
        if request.deadlineUnixNanos != 0 && request.deadlineUnixNanos <= WorkerProtocol.unixTimeNanoseconds() { return false }
        guard
            let rows = fastPath.answer(
                request.request, requestID: requestID, arrivedAt: arrivedAt, fullBatchOnly: queue.maxQueueDelay > .zero,
                into: &buffer)
        else { return false }
        lane.counters.executions += 1
        lane.counters.inferences += rows
        lane.counters.succeeded += 1
        return true
    }

    /// `start(requestID:payload:receiver:)` with a closure for the frames (tests, `infer`).
    func start(
        requestID: UInt64, payload: ByteBuffer, sink: @escaping (_ frame: ByteBuffer, _ final: Bool) -> Void
    ) -> InferenceCall {
        start(requestID: requestID, payload: payload, receiver: ClosureCallReceiver(sink))
    }

    /// Starts the request in an INFER_REQUEST payload. `receiver` receives every frame for it, on
    /// this loop, possibly before this method returns (for a request refused at once, or one
    /// whose batch runs inline).
    func start(
        requestID: UInt64, payload: ByteBuffer, receiver: any InferenceCallReceiver
    ) -> InferenceCall {
        let call = InferenceCall(requestID: requestID, arrivedAt: .now(), receiver: receiver)
        inFlightCount += 1
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
        call.logMetadata = request.logMetadata
        guard let lane = lanes[request.modelName] else {
            fail(call, InferenceError(
                .notFound,
                "model '\(request.modelName)' is not served by worker \(workerID), which serves \(modelNames.joined(separator: ", "))"))
            return call
        }
        let version = lane.model.version
        guard request.modelVersion.isEmpty || request.modelVersion == version else {
            fail(call, InferenceError(
                .notFound, "model '\(lane.name)' has no version '\(request.modelVersion)' on worker \(workerID); it serves version \(version)"))
            return call
        }
        call.lane = lane
        if request.deadlineUnixNanos != 0 {
            let remaining = request.deadlineUnixNanos - WorkerProtocol.unixTimeNanoseconds()
            guard remaining > 0 else {
                fail(call, InferenceError(.deadlineExceeded, "the request's deadline passed before worker \(workerID) received it"))
                return call
            }
            call.deadline = call.arrivedAt + .nanoseconds(remaining)
        }

        let bytes = request.request
        call.requestByteCount = bytes.readableBytes
        if bytes.readableBytes <= Self.inlineRequestLimit {
            prepared(call, Result { () throws(InferenceError) in try lane.model.prepare(bytes) })
        } else {
            let model = lane.model
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
        guard !call.isFinished, let lane = call.lane else { return }
        switch result {
        case .failure(let error):
            fail(call, error)
        case .success(let (request, plan)):
            call.prepared = request
            if let plan {
                enqueueDecoupled(call, plan: plan, lane: lane)
            } else if case .concurrent(let model) = lane.model.backend {
                runConcurrent(call, model: model, request: request, lane: lane)
            } else {
                enqueueBatched(call, request: request, lane: lane)
            }
        }
    }

    // MARK: Cancellation and flow control

    /// Stops work on the request and sends nothing more for it.
    func cancel(_ call: InferenceCall, reason: String) {
        guard !call.isFinished else { return }
        call.isCancelled = true
        logger.debug("request \(call.requestID) cancelled (\(reason.isEmpty ? "no reason given" : reason))", metadata: call.logMetadata)
        let phase = call.phase
        move(call, to: .finished)
        call.pendingResponse?.cancel()
        call.pendingResponse = nil
        call.parked = nil
        guard let lane = call.lane else { return }
        if phase == .queued, lane.batchQueue != nil {
            let (_, action) = lane.batchQueue!.remove(where: { $0 === call }, now: .now())
            handle(action, lane: lane)
        }
        if lane.instance != nil {
            lane.instance!.waiting.removeAll { $0.call === call }
            releaseInstance(of: lane, heldBy: call)
        }
    }

    /// PAUSE: a decoupled model's stream sends no more responses until `resume`. Ignored for
    /// a finished request and for models that answer once.
    func pause(_ call: InferenceCall) {
        guard !call.isFinished, call.lane?.instance != nil else { return }
        call.isPaused = true
    }

    /// RESUME: a paused stream goes on from where it stopped. Ignored when not paused.
    func resume(_ call: InferenceCall) {
        guard call.isPaused else { return }
        call.isPaused = false
        continueParked(call)
    }

    /// The call's connection takes frames again after its socket drained.
    func resumeWritable(_ call: InferenceCall) {
        guard call.isWaitingForWritability else { return }
        call.isWaitingForWritability = false
        readyStreams.append(call)
        schedulePump()
    }

    /// Streams go on from one scheduled task, the pump, never from a task of their own: the
    /// event loop runs every task that is due before it polls its sockets again, so streams that
    /// each re-scheduled themselves would keep one another due and starve the sockets (no PING,
    /// PAUSE or CANCEL read). With one pump, re-armed only after it ran, the loop polls its
    /// sockets between two runs.
    private func schedulePump() {
        guard !pumpScheduled else { return }
        pumpScheduled = true
        eventLoop.assumeIsolated().scheduleTask(in: Self.yieldDelay) {
            let ready = self.readyStreams
            self.readyStreams.removeAll(keepingCapacity: true)
            // Streams that finish their run now queue for the next pump; it is armed only
            // after this one has returned, or it could be due before the loop polls again.
            for call in ready { self.continueParked(call) }
            self.pumpScheduled = false
            if !self.readyStreams.isEmpty { self.schedulePump() }
        }
    }

    /// Goes on with a parked stream unless something still holds it.
    private func continueParked(_ call: InferenceCall) {
        guard !call.isPaused, !call.isWaitingForWritability, !call.isFinished, let parked = call.parked else { return }
        call.parked = nil
        call.pendingResponse?.cancel()  // the deadline watch
        call.pendingResponse = nil
        continueStream(call, plan: parked.plan, next: parked.next, delayElapsed: true)
    }

    // MARK: Batching models

    private func enqueueBatched(_ call: InferenceCall, request: PreparedRequest, lane: ModelLane) {
        guard lane.batchQueue != nil else { return }
        move(call, to: .queued)
        let now = NIODeadline.now()
        call.queuedAt = now
        let action = lane.batchQueue!.enqueue(call, rows: request.batchSize, key: request.batchKey, now: now)
        handle(action, lane: lane)
    }

    /// Does what the batch queue asks. The timer is armed only while a batch waits to fill, so
    /// a batch that can run at once (no queue delay, or a full batch) neither arms nor cancels one.
    private func handle(_ action: BatchQueue<InferenceCall>.Action, lane: ModelLane) {
        switch action {
        case .none:
            lane.disarmBatchTimer()
        case .wakeUp(let deadline):
            if let timer = lane.batchTimer, timer.deadline == deadline { return }
            lane.disarmBatchTimer()
            batchTimersArmed += 1
            let task = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
                lane.batchTimer = nil
                self.handle(lane.batchQueue!.timerFired(now: .now()), lane: lane)
            }
            lane.batchTimer = (deadline, task)
        case .execute(let calls):
            lane.disarmBatchTimer()
            execute(calls, lane: lane)
        }
    }

    /// One request of a batch as its execution needs it: its id, inputs and timing so far.
    private struct BatchMember: Sendable {
        var requestID: UInt64
        var request: PreparedRequest
        var timing: WorkerProtocol.Timing
    }

    /// Runs a batch and encodes each request's answer frame, on the thread pool or inline.
    private static func run(_ members: [BatchMember], on model: ServedModel) -> [Result<ByteBuffer, InferenceError>] {
        let started = NIODeadline.now()
        let outputs = model.executeBatchOutputs(members.map(\.request))
        let inferNanos = UInt64(max(0, (NIODeadline.now() - started).nanoseconds))
        return zip(members, outputs).enumerated().map { index, pair in
            let (member, outputs) = pair
            return Result { () throws(InferenceError) in
                let outputs = try outputs.get()
                try model.checkOutputs(for: member.request, outputs)
                let encodeStart = NIODeadline.now()
                return AnswerFrame.response(requestID: member.requestID, model: model, request: member.request, outputs: outputs, final: true) {
                    var timing = member.timing
                    timing.computeInferNs = inferNanos
                    timing.computeOutputNs = UInt64(max(0, (NIODeadline.now() - encodeStart).nanoseconds))
                    timing.countsExecution = index == 0
                    return timing
                }
            }
        }
    }

    private func execute(_ calls: [InferenceCall], lane: ModelLane) {
        let started = NIODeadline.now()
        var live: [InferenceCall] = []
        live.reserveCapacity(calls.count)
        var members: [BatchMember] = []
        members.reserveCapacity(calls.count)
        var bytes = 0
        var rows = 0
        for call in calls {
            guard let request = call.prepared else {
                fail(call, InferenceError(.internal, "request \(call.requestID) reached model '\(lane.name)''s batch unprepared"))
                continue
            }
            if let deadline = call.deadline, deadline <= started {
                fail(call, InferenceError(
                    .deadlineExceeded, "the request's deadline passed while it waited in model '\(lane.name)''s batch queue"))
                continue
            }
            move(call, to: .running)
            var timing = WorkerProtocol.Timing()
            let queuedAt = call.queuedAt ?? started
            timing.queueNs = UInt64(max(0, (started - queuedAt).nanoseconds))
            timing.computeInputNs = UInt64(max(0, (queuedAt - call.arrivedAt).nanoseconds))
            live.append(call)
            members.append(BatchMember(requestID: call.requestID, request: request, timing: timing))
            bytes += call.requestByteCount
            rows += request.batchSize
        }
        guard !live.isEmpty else {
            handle(lane.batchQueue!.batchFinished(now: started), lane: lane)
            return
        }
        if logger.logLevel <= .trace, let oldest = live.compactMap(\.queuedAt).min() {
            logger.trace(
                "model \(lane.name): batch of \(live.count) requests, \(rows) rows, oldest queued \((started - oldest).nanoseconds / 1000) µs")
        }
        let model = lane.model
        let batch = members
        if model.executesInline && bytes <= Self.inlineRequestLimit {
            finishBatch(live, rows: rows, lane: lane, outcome: .success(Self.run(batch, on: model)))
            return
        }
        threadPool.runIfActive(eventLoop: eventLoop) { Self.run(batch, on: model) }
            .assumeIsolated().whenComplete { outcome in
                self.finishBatch(live, rows: rows, lane: lane, outcome: outcome)
            }
    }

    private func finishBatch(
        _ live: [InferenceCall], rows: Int, lane: ModelLane, outcome: Result<[Result<ByteBuffer, InferenceError>], any Error>
    ) {
        lane.counters.executions += 1
        lane.counters.inferences += rows
        switch outcome {
        case .success(let answers):
            for (call, answer) in zip(live, answers) {
                switch answer {
                case .success(let frame): succeed(call, frame: frame)
                case .failure(let error): fail(call, error)
                }
            }
        case .failure:
            for call in live {
                fail(call, InferenceError(.unavailable, "worker \(workerID) is shutting down"))
            }
        }
        handle(lane.batchQueue!.batchFinished(now: .now()), lane: lane)
    }

    // MARK: Concurrent models

    /// Starts a concurrent model's request at once and answers it when its delay has passed.
    private func runConcurrent(_ call: InferenceCall, model: any ConcurrentModel, request: PreparedRequest, lane: ModelLane) {
        let answer: ConcurrentAnswer
        do {
            answer = try model.answer(request.inputs)
        } catch {
            fail(call, error)
            return
        }
        move(call, to: .running)
        lane.counters.executions += 1
        lane.counters.inferences += 1
        let respond = {
            call.pendingResponse = nil
            if let deadline = call.deadline, deadline <= .now() {
                self.fail(call, InferenceError(.deadlineExceeded, "the request's deadline passed while model '\(lane.name)' ran it"))
                return
            }
            do throws(InferenceError) {
                try lane.model.checkOutputs(for: request, answer.outputs)
                self.succeed(
                    call,
                    frame: AnswerFrame.response(
                        requestID: call.requestID, model: lane.model, request: request, outputs: answer.outputs, final: true))
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

    private func enqueueDecoupled(_ call: InferenceCall, plan: DecoupledPlan, lane: ModelLane) {
        guard lane.instance != nil else { return }
        move(call, to: .queued)
        lane.instance!.waiting.append((call, plan))
        startWaitingRuns(of: lane)
    }

    /// Starts waiting requests while the model's instance is free. A request whose plan holds
    /// the instance for no time leaves it free for the next one at once.
    private func startWaitingRuns(of lane: ModelLane) {
        while lane.instance!.holder == nil, !lane.instance!.waiting.isEmpty {
            let (call, plan) = lane.instance!.waiting.removeFirst()
            if let deadline = call.deadline, deadline <= .now() {
                fail(call, InferenceError(
                    .deadlineExceeded, "the request's deadline passed while it waited for model '\(lane.name)''s instance"))
                continue
            }
            move(call, to: .running)
            lane.counters.executions += 1
            lane.counters.inferences += 1
            if plan.instanceHold > .zero {
                lane.instance!.holder = call
                lane.instance!.release = eventLoop.assumeIsolated().scheduleTask(in: plan.instanceHold) {
                    self.releaseInstance(of: lane, heldBy: call)
                }
            }
            continueStream(call, plan: plan, next: 0, delayElapsed: false)
        }
    }

    private func releaseInstance(of lane: ModelLane, heldBy call: InferenceCall) {
        guard lane.instance?.holder === call else { return }
        lane.instance!.holder = nil
        lane.instance!.release?.cancel()
        lane.instance!.release = nil
        startWaitingRuns(of: lane)
    }

    /// Responses sent back to back (no delay between them) before the loop turns to other work.
    private static let responsesPerTurn = 64
    /// When the pump runs after it is armed: later than at once, so that the loop polls its
    /// sockets first.
    static let yieldDelay = TimeAmount.microseconds(50)

    /// Sends the plan's responses from `next` on, each after its delay, then STREAM_END. A
    /// paused call parks at the next response that falls due, and `resume` goes on from there.
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
                call.parked = InferenceCall.ParkedStream(plan: plan, next: due)
                readyStreams.append(call)
                schedulePump()
                return
            }
            waited = false
            if let deadline = call.deadline, deadline <= .now() {
                fail(call, InferenceError(
                    .deadlineExceeded, "the request's deadline passed after \(index) of its \(plan.responseCount) responses"))
                return
            }
            if call.isPaused {
                park(call, plan: plan, next: index)
                return
            }
            if !call.receiver.acceptsMoreFrames {
                call.isWaitingForWritability = true
                park(call, plan: plan, next: index)
                call.receiver.notifyWhenWritable(call)
                return
            }
            guard let model = call.lane?.model, let request = call.prepared else { return }
            do {
                let outputs = plan.outputs(at: index)
                try model.checkOutputs(for: request, outputs)
                call.send(
                    AnswerFrame.response(requestID: call.requestID, model: model, request: request, outputs: outputs, final: false),
                    final: false)
            } catch {
                fail(call, error)
                return
            }
            index += 1
            sentThisTurn += 1
        }
    }

    /// Holds a paused stream's position until RESUME. Its deadline still ends it meanwhile.
    private func park(_ call: InferenceCall, plan: DecoupledPlan, next: Int) {
        call.parked = InferenceCall.ParkedStream(plan: plan, next: next)
        guard let deadline = call.deadline else { return }
        call.pendingResponse = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            call.pendingResponse = nil
            call.parked = nil
            self.fail(call, InferenceError(
                .deadlineExceeded,
                "the request's deadline passed while the gateway had paused its responses, after \(next) of \(plan.responseCount)"))
        }
    }

    private func endStream(_ call: InferenceCall) {
        guard !call.isFinished else { return }
        call.lane?.counters.succeeded += 1
        call.send(AnswerFrame.streamEnd(requestID: call.requestID), final: true)
        move(call, to: .finished)
    }

    // MARK: Answers and accounting

    /// Sends `frame`, the request's final INFER_RESPONSE.
    private func succeed(_ call: InferenceCall, frame: ByteBuffer) {
        guard !call.isFinished else { return }
        call.lane?.counters.succeeded += 1
        call.send(frame, final: true)
        move(call, to: .finished)
    }

    private func fail(_ call: InferenceCall, _ error: InferenceError) {
        guard !call.isFinished else { return }
        call.lane?.counters.failed += 1
        logger.debug("request \(call.requestID) failed: \(error)", metadata: call.logMetadata)
        call.send(AnswerFrame.error(requestID: call.requestID, error), final: true)
        move(call, to: .finished)
    }

    /// Moves a call to `phase`, keeping the in-flight and queued counts.
    private func move(_ call: InferenceCall, to phase: InferenceCall.Phase) {
        switch call.phase {
        case .preparing, .running: inFlightCount -= 1
        case .queued: queuedCount -= 1
        case .finished: return
        }
        switch phase {
        case .preparing, .running: inFlightCount += 1
        case .queued: queuedCount += 1
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
        if inFlightCount + queuedCount == 0 {
            promise.succeed(true)
            return
        }
        idleWaiters.append(promise)
        eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            guard let index = self.idleWaiters.firstIndex(where: { $0.futureResult === promise.futureResult }) else { return }
            self.idleWaiters.remove(at: index)
            self.logger.warning(
                "drain timed out with \(self.inFlightCount) requests in flight and \(self.queuedCount) queued")
            promise.succeed(false)
        }
    }

    private func resolveDrainIfIdle() {
        guard draining, inFlightCount + queuedCount == 0, !idleWaiters.isEmpty else { return }
        let waiters = idleWaiters
        idleWaiters = []
        for waiter in waiters { waiter.succeed(true) }
    }
}
