import H2Transport
import InferenceProtocol
import NIOCore
import NIOPosix
import ProtoWire

/// What the inference call handlers share: where requests go and the limits they keep.
struct InferenceCallContext: Sendable {
    let repository: ModelRepository
    let router: any InferenceRouter
    let limits: ProtoLimits
    /// Requests of one ModelStreamInfer stream in flight before the gateway stops reading it.
    let maxStreamRequestsInFlight: Int
    /// Response bytes one stream may leave unread by its client before it is ended with
    /// RESOURCE_EXHAUSTED (for workers that do not honour PAUSE).
    let maxStreamBufferedBytes: Int
    /// Traces of inference requests; nil when tracing is off.
    var tracing: InferenceTracing? = nil
}

/// A request checked and bound to the shard that sends it. It holds no reference to the call
/// handler (the handler keeps it while the request runs; the shard holds the handler).
struct PreparedInfer {
    let shard: WorkerPoolShard
    let shadow: WorkerPoolShard?
    /// The variant the shadow pool serves (a copy must name it, not the primary's).
    let shadowVariant: ModelVariantKey?
    /// How closely the shadow's floating-point outputs must match (the route's, or the defaults).
    let shadowTolerance: ShadowTolerance
    let model: String
    let version: String
    let id: String
    let batchSize: Int64
    let decoupled: Bool
    let wantsEmptyFinal: Bool
    /// The call's `x-request-id` (empty for none), passed to the worker for its logs.
    let clientRequestID: String
    /// Who asks, under which policy (nil without one): for the rate limits.
    let principal: Principal?
    let policy: CompiledAuthPolicy?

    /// Takes this request from the rate limits that apply (the principal's, the model's, the
    /// principal's for the model); nil when allowed or when there are none.
    func admitRate() -> LimitRefusal? {
        guard let principal, let policy else { return nil }
        return policy.admitRequest(of: principal, to: model, now: NIODeadline.now().uptimeNanoseconds)
    }

    /// What the shard sends, with `receiver` hearing the replies.
    func poolRequest(bytes: ByteBuffer, deadlineUnixNanos: Int64, receiver: WorkerReplyReceiver, trace: InferenceTrace? = nil) -> PoolRequest {
        trace?.submitting(model: model, version: version, inferenceID: id)
        return PoolRequest(
            modelName: model, modelVersion: version, bytes: bytes, deadlineUnixNanos: deadlineUnixNanos, receiver: receiver,
            clientRequestID: clientRequestID, trace: trace)
    }

    /// Submits a copy to the shadow variant, if there is one; its answer never reaches the
    /// client. Shadow load is shed first: no copy goes to a shadow whose workers are all busy
    /// (requests wait in its queue), so that a slow shadow never takes queue room or worker time
    /// a primary could use.
    ///
    /// Returns the pairing that compares the two answers (the caller hands it the primary's
    /// answer after the client has it); nil when there is no shadow, no copy went, or the call
    /// is not compared (decoupled model, too many comparisons pending on the loop). Calls
    /// without a shadow return at the first line.
    func submitShadow(bytes: ByteBuffer, deadlineUnixNanos: Int64, repository: ModelRepository) -> ShadowPairing? {
        guard let shadow else { return nil }
        let pair = ShadowPairKey(model: shadowVariant?.model ?? model, version: version, shadowVersion: shadowVariant?.version ?? version)
        let comparisons = repository.shadowComparisons(on: shadow.eventLoop)  // the call's loop
        guard shadow.queued == 0 else {
            shadow.statistics.shadowShed += 1
            comparisons?.record(.shadowShed, for: pair)
            return nil
        }
        var pairing: ShadowPairing?
        if decoupled {
            comparisons?.record(.skipped, for: pair)
        } else {
            pairing = comparisons?.startPairing(pair, tolerance: shadowTolerance)
        }
        let submitted = shadow.submit(
            PoolRequest(
                modelName: shadowVariant?.model ?? model, modelVersion: shadowVariant?.version ?? version, bytes: bytes,
                deadlineUnixNanos: deadlineUnixNanos, receiver: ShadowReceiver(batchSize: batchSize, pairing: pairing),
                clientRequestID: clientRequestID))
        guard case .success = submitted else {
            pairing?.shadowFailed()
            return nil
        }
        return pairing
    }
}

/// Inspects, routes and validates one ModelInferRequest; the error is the gRPC status.
///
/// Runs on the call's event loop (`call.eventLoop`); `inspected` came from
/// `InspectedInferRequest`, on the loop or, for large requests, from the thread pool.
func prepareInfer(
    _ inspected: InspectedInferRequest, call: GRPCServerCall, context: InferenceCallContext
) throws(RPCError) -> PreparedInfer {
    let catalog = context.repository.catalog(on: call.eventLoop)
    let principal = try Authenticator.currentPrincipal(of: call, catalog: catalog).get()
    let route = context.router.route(
        InferenceRouteRequest(
            modelName: inspected.modelName, modelVersion: inspected.modelVersion, requestID: inspected.id, parameters: inspected.parameters,
            metadata: call.head.metadata, connection: call.connection, principal: principal),
        catalog: catalog)
    let pool: WorkerPool
    let shadowPool: WorkerPool?
    switch route {
    case .refuse(let error): throw error
    case .forward(let chosen, let shadow):
        pool = chosen
        shadowPool = shadow
    }
    guard let shard = pool.shard(on: call.eventLoop) else {
        throw RPCError(code: .internalError, message: "the call runs on an event loop that has no share of the worker pools")
    }
    guard let described = shard.model ?? pool.describedModel, described.hasConfig else {
        throw RPCError(code: .unavailable, message: "no worker of model '\(inspected.modelName)' is ready; try again shortly")
    }
    let batchSize = try inspected.validate(against: described)
    let version = pool.deployment.version
    // A router other than the configured routes may shadow too; its copies get the defaults.
    var tolerance = ShadowTolerance.default
    if shadowPool != nil, let shadow = catalog.models[inspected.modelName]?.route?.route.shadow { tolerance = ShadowTolerance(shadow) }
    return PreparedInfer(
        shard: shard, shadow: shadowPool?.shard(on: call.eventLoop),
        shadowVariant: shadowPool.map { ModelVariantKey(model: $0.deployment.model, version: $0.deployment.version) }, shadowTolerance: tolerance,
        model: inspected.modelName, version: version, id: inspected.id, batchSize: batchSize, decoupled: described.decoupled,
        wantsEmptyFinal: inspected.wantsEmptyFinal, clientRequestID: callRequestID(call) ?? "", principal: principal, policy: catalog.auth)
}

/// Hears a shadow copy's answers: they never reach the client; the final one goes to the
/// call's pairing (when it has one) to be compared with the primary's.
final class ShadowReceiver: WorkerReplyReceiver {
    private let batchSize: UInt64
    private let started = NIODeadline.now()
    private let pairing: ShadowPairing?

    init(batchSize: Int64, pairing: ShadowPairing? = nil) {
        self.batchSize = UInt64(max(0, batchSize))
        self.pairing = pairing
    }

    /// Counted in the shadow variant's statistics like any request of its own.
    func workerReplied(_ reply: WorkerReply, requestID: UInt64, queueNanoseconds: Int64, shard: WorkerPoolShard) {
        let now = NIODeadline.now()
        let elapsed = UInt64(max(0, (now - started).nanoseconds))
        let queued = UInt64(max(0, queueNanoseconds))
        switch reply {
        case .response(let bytes, let final, let timing):
            if final {
                shard.statistics.recordSuccess(nanoseconds: elapsed, queueNanoseconds: queued, batchSize: batchSize, timing: timing, now: now)
                pairing?.shadowAnswered(bytes, nanoseconds: elapsed)
            }
        case .streamEnd:
            shard.statistics.recordSuccess(nanoseconds: elapsed, queueNanoseconds: queued, batchSize: batchSize, now: now)
            pairing?.shadowFailed()  // a model that is not decoupled must answer with a response
        case .failed(let status):
            shard.statistics.recordFailure(InferenceFailureReason(afterDispatch: status), nanoseconds: elapsed, now: now)
            pairing?.shadowFailed()
        }
    }
}

/// The call's deadline as Unix nanoseconds for the worker protocol; 0 for none.
func deadlineUnixNanos(of call: GRPCServerCall) -> Int64 {
    guard let deadline = call.head.deadline else { return 0 }
    return WorkerProtocol.unixTimeNanoseconds() + (deadline - .now()).nanoseconds
}

/// Inspects large requests on the repository's thread pool (so that a large request does not
/// hold up the other calls of the loop), then runs `body` on `loop`. Small ones are inspected
/// inline by the caller (`InspectedInferRequest.init`), see `InspectedInferRequest.inlineLimit`.
func inspectOffLoop(
    _ bytes: ByteBuffer, context: InferenceCallContext, loop: EventLoop,
    then body: @escaping (Result<InspectedInferRequest, RPCError>) -> Void
) {
    let limits = context.limits
    context.repository.threadPool.runIfActive(eventLoop: loop) {
        InspectedInferRequest.inspect(bytes, limits: limits)
    }.assumeIsolated().whenComplete { result in
        switch result {
        case .success(let inspected): body(inspected)
        case .failure: body(.failure(RPCError(code: .unavailable, message: "the gateway is shutting down")))
        }
    }
}

/// ModelInfer: one request, one response.
final class ModelInferCallHandler: GRPCServerCallHandler, WorkerReplyReceiver {
    private let call: GRPCServerCall
    private let context: InferenceCallContext
    private var request: ByteBuffer?
    private var prepared: PreparedInfer?
    private var requestID: UInt64?
    private var started = NIODeadline.uptimeNanoseconds(0)
    /// The call's spans when it is traced (they end when the call does).
    private var trace: InferenceTrace?
    /// Compares the answer with the shadow's, when the call was shadowed and is compared.
    private var pairing: ShadowPairing?

    init(call: GRPCServerCall, context: InferenceCallContext) {
        self.call = call
        self.context = context
    }

    func callReceived(message: ByteBuffer) {
        guard request == nil else {
            call.finish(GRPCStatus(code: .internalError, message: "ModelInfer takes one request message; use ModelStreamInfer for many"))
            return
        }
        request = message
    }

    func callReceivedEnd() {
        guard let request, !call.isFinished else {
            if !call.isFinished { call.finish(GRPCStatus(code: .internalError, message: "ModelInfer received no request message")) }
            return
        }
        started = .now()
        trace = context.tracing?.startCall(call, method: "ModelInfer")
        if request.readableBytes > InspectedInferRequest.inlineLimit {
            inspectOffLoop(request, context: context, loop: call.eventLoop) { result in self.submit(result, bytes: request) }
        } else {
            submit(InspectedInferRequest.inspect(request, limits: context.limits), bytes: request)
        }
    }

    private func submit(_ inspection: Result<InspectedInferRequest, RPCError>, bytes: ByteBuffer) {
        guard !call.isFinished else { return }
        let prepared: PreparedInfer
        do {
            prepared = try prepareInfer(inspection.get(), call: call, context: context)
        } catch {
            // The access log names the model the client asked for, even one that does not exist.
            if case .success(let inspected) = inspection { call.annotations.model = inspected.modelName }
            call.finish(error)
            return
        }
        if prepared.decoupled {
            call.finish(GRPCStatus(code: .invalidArgument, message: "model '\(prepared.model)' is decoupled (it may answer with many responses); use ModelStreamInfer"))
            return
        }
        if let refusal = prepared.admitRate() {
            call.annotations.model = prepared.model
            prepared.shard.statistics.recordFailure(.rejected, nanoseconds: elapsed, now: .now())
            call.finish(refusal.error)
            return
        }
        let deadline = deadlineUnixNanos(of: call)
        switch prepared.shard.submit(prepared.poolRequest(bytes: bytes, deadlineUnixNanos: deadline, receiver: self, trace: trace)) {
        case .success(let id):
            self.prepared = prepared
            self.requestID = id
            call.annotations.model = prepared.model
            call.annotations.modelVersion = prepared.version
            pairing = prepared.submitShadow(bytes: bytes, deadlineUnixNanos: deadline, repository: context.repository)
        case .failure(let status):
            prepared.shard.statistics.recordFailure(.rejected, nanoseconds: elapsed, now: .now())
            call.finish(status)
        }
    }

    private var elapsed: UInt64 { UInt64(max(0, (NIODeadline.now() - started).nanoseconds)) }

    func workerReplied(_ reply: WorkerReply, requestID: UInt64, queueNanoseconds: Int64, shard: WorkerPoolShard) {
        guard let prepared, !call.isFinished else {
            pairing?.primaryFailed()
            return
        }
        call.annotations.workerPID = shard.replyingWorkerPID
        switch reply {
        case .response(let bytes, _, let timing):
            // The variant that served it: the one response header a client can route logs by.
            call.responseHeader = (WeightedRouter.overrideHeader, prepared.version)
            let nanoseconds = elapsed
            shard.statistics.recordSuccess(
                nanoseconds: nanoseconds, queueNanoseconds: UInt64(max(0, queueNanoseconds)), batchSize: UInt64(prepared.batchSize),
                timing: timing, now: .now())
            trace?.workerReported(timing)
            call.sendMessage(bytes)
            call.finish(.ok)
            // The client has its answer; only now may the shadow's comparison see it.
            pairing?.primaryAnswered(bytes, nanoseconds: nanoseconds)
        case .streamEnd:
            call.finish(GRPCStatus(code: .internalError, message: "model '\(prepared.model)' sent no response"))
            pairing?.primaryFailed()
        case .failed(let status):
            shard.statistics.recordFailure(InferenceFailureReason(afterDispatch: status), nanoseconds: elapsed, now: .now())
            call.finish(status)
            pairing?.primaryFailed()
        }
    }

    func callCancelled(_ status: GRPCStatus) {
        if let prepared, let requestID {
            prepared.shard.cancel(requestID, reason: "\(status)")
            prepared.shard.statistics.recordFailure(.canceled, nanoseconds: elapsed, now: .now())
        }
        pairing?.primaryFailed()
    }
}

/// `ModelStreamInferResponse { infer_response = 2 }` around a worker's `ModelInferResponse` bytes,
/// written straight into the gRPC frame (no buffer of its own, one copy of the response).
struct StreamInferResponseFrame: GRPCMessageEncodable {
    let inferResponse: ByteBuffer

    func writeMessage(into buffer: inout ByteBuffer) {
        var writer = ProtoWriter(buffer: buffer)
        buffer = ByteBuffer()  // keep the storage uniquely referenced while the writer appends
        writer.writeBytes(field: 2, inferResponse)
        buffer = writer.buffer
    }

    var estimatedMessageSize: Int { inferResponse.readableBytes + 6 }
}

/// ModelStreamInfer: many requests in flight on one stream; each response carries its request
/// id; a failed request is reported in `error_message` and the stream goes on.
///
/// Under backpressure: at most `maxStreamRequestsInFlight` requests of the stream are in the
/// gateway at once (beyond that the stream is not read, so HTTP/2 flow control holds the
/// client); while the client does not read responses, the stream is not read either and the
/// workers are asked to PAUSE its streamed responses; a stream whose unread responses still
/// exceed `maxStreamBufferedBytes` is ended with RESOURCE_EXHAUSTED.
///
/// When the connection drains (shutdown, maximum age), the stream is read no more; once its
/// requests in flight have answered, it ends with UNAVAILABLE telling the client to reconnect.
final class ModelStreamInferCallHandler: GRPCServerCallHandler, WorkerReplyReceiver {
    private struct Key: Hashable {
        var shard: ObjectIdentifier
        var id: UInt64
    }

    private struct Entry {
        var prepared: PreparedInfer
        var requestID: UInt64
        var started: NIODeadline
        var trace: InferenceTrace?
        /// Compares the answer with the shadow's, when the request was shadowed and is compared.
        var pairing: ShadowPairing?
    }

    private let call: GRPCServerCall
    private let context: InferenceCallContext
    private var entries: [Key: Entry] = [:]
    private var clientDone = false
    /// A large message is being inspected on the thread pool; the stream waits for it.
    private var inspecting = false
    /// Messages waiting for room in a rate limit's bucket; the stream is not read meanwhile.
    private var waitingForRate = 0
    /// The longest a stream's message waits for its rate limit before it is refused instead.
    static let maxStreamRateDelay: TimeAmount = .seconds(1)
    private var receivingPaused = false
    private var responsesPaused = false
    /// Why the connection drains, once it does: the stream takes no new request and ends when
    /// those in flight have answered.
    private var drainReason: String?

    init(call: GRPCServerCall, context: InferenceCallContext) {
        self.call = call
        self.context = context
        call.sendHeaders()
        call.onWritabilityChanged = { [weak self] writable in self?.writabilityChanged(writable) }
    }

    func callReceived(message: ByteBuffer) {
        let started = NIODeadline.now()
        let trace = context.tracing?.startRequest(of: call, method: "ModelStreamInfer")
        guard message.readableBytes > InspectedInferRequest.inlineLimit else {
            submit(InspectedInferRequest.inspect(message, limits: context.limits), bytes: message, started: started, trace: trace)
            updateReceiving()
            return
        }
        inspecting = true
        updateReceiving()
        inspectOffLoop(message, context: context, loop: call.eventLoop) { result in
            self.inspecting = false
            self.submit(result, bytes: message, started: started, trace: trace)
            self.updateReceiving()
            self.finishIfDone()
        }
    }

    private func submit(
        _ inspection: Result<InspectedInferRequest, RPCError>, bytes: ByteBuffer, started: NIODeadline, trace: InferenceTrace?
    ) {
        guard !call.isFinished else {
            trace?.end(GRPCStatus(code: .cancelled, message: "the stream ended"))
            return
        }
        let prepared: PreparedInfer
        do {
            prepared = try prepareInfer(inspection.get(), call: call, context: context)
        } catch {
            trace?.end(error.status)
            if error.code == .unauthenticated || error.code == .permissionDenied {
                // Who may call what is settled per call: a stream whose caller lost the right
                // (a key revoked, a permission narrowed by a reload) ends, with what it lost.
                abandon(error.status)
                return
            }
            sendError(error.message)
            return
        }
        dispatch(prepared, bytes: bytes, started: started, trace: trace)
    }

    /// Sends a routed request to its pool, once the rate limits let it through. Over a limit,
    /// the stream is slowed first: the message waits (the stream is not read meanwhile, so
    /// HTTP/2 flow control holds the client) until its bucket has room. Only when it would wait
    /// longer than `maxStreamRateDelay` is the message refused, in `error_message`, and the
    /// stream goes on.
    private func dispatch(_ prepared: PreparedInfer, bytes: ByteBuffer, started: NIODeadline, trace: InferenceTrace?) {
        guard !call.isFinished else { return }
        if let refusal = prepared.admitRate() {
            guard refusal.retryAfterNanos <= Self.maxStreamRateDelay.nanoseconds else {
                prepared.shard.statistics.recordFailure(.rejected, nanoseconds: 0, now: .now())
                trace?.end(refusal.error.status)
                sendError("request '\(prepared.id)' failed: RESOURCE_EXHAUSTED: \(refusal.error.message)")
                return
            }
            waitingForRate += 1
            updateReceiving()
            call.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(refusal.retryAfterNanos))) {
                self.waitingForRate -= 1
                self.dispatch(prepared, bytes: bytes, started: started, trace: trace)
                self.updateReceiving()
                self.finishIfDone()
            }
            return
        }
        let deadline = deadlineUnixNanos(of: call)
        switch prepared.shard.submit(prepared.poolRequest(bytes: bytes, deadlineUnixNanos: deadline, receiver: self, trace: trace)) {
        case .success(let id):
            if call.annotations.model.isEmpty {
                call.annotations.model = prepared.model
                call.annotations.modelVersion = prepared.version
            }
            let pairing = prepared.submitShadow(bytes: bytes, deadlineUnixNanos: deadline, repository: context.repository)
            entries[Key(shard: ObjectIdentifier(prepared.shard), id: id)] = Entry(
                prepared: prepared, requestID: id, started: started, trace: trace, pairing: pairing)
            if responsesPaused && prepared.decoupled { prepared.shard.setPaused(true, for: id) }
        case .failure(let status):
            prepared.shard.statistics.recordFailure(.rejected, nanoseconds: 0, now: .now())
            trace?.end(status)
            sendError("request '\(prepared.id)' failed: \(status.code): \(status.message)")
        }
    }

    func workerReplied(_ reply: WorkerReply, requestID: UInt64, queueNanoseconds: Int64, shard: WorkerPoolShard) {
        let key = Key(shard: ObjectIdentifier(shard), id: requestID)
        guard let entry = entries[key], !call.isFinished else { return }
        let prepared = entry.prepared
        let elapsed = UInt64(max(0, (NIODeadline.now() - entry.started).nanoseconds))
        let queued = UInt64(max(0, queueNanoseconds))
        switch reply {
        case .response(let bytes, let final, let timing):
            sendResponse(bytes)
            entry.trace?.workerReported(timing)
            if final && !prepared.decoupled {
                shard.statistics.recordSuccess(
                    nanoseconds: elapsed, queueNanoseconds: queued, batchSize: UInt64(prepared.batchSize), timing: timing, now: .now())
                complete(key, .ok)
                // After the answer went to the client (and after `abandon`, which fails it).
                entry.pairing?.primaryAnswered(bytes, nanoseconds: elapsed)
            }
        case .streamEnd:
            shard.statistics.recordSuccess(nanoseconds: elapsed, queueNanoseconds: queued, batchSize: UInt64(prepared.batchSize), now: .now())
            if prepared.wantsEmptyFinal {
                var empty = ModelInferResponse()
                empty.modelName = prepared.model
                empty.modelVersion = prepared.version
                empty.id = prepared.id
                empty.parameters["triton_final_response"] = InferParameter(.bool(true))
                sendResponse(empty.encoded())
            }
            complete(key, .ok)
        case .failed(let status):
            shard.statistics.recordFailure(InferenceFailureReason(afterDispatch: status), nanoseconds: elapsed, now: .now())
            sendError("request '\(prepared.id)' failed: \(status.code): \(status.message)")
            complete(key, status)
            entry.pairing?.primaryFailed()
        }
    }

    private func sendResponse(_ inferResponse: ByteBuffer) {
        call.sendMessage(StreamInferResponseFrame(inferResponse: inferResponse))
        let buffered = call.bufferedOutboundBytes
        if buffered > context.maxStreamBufferedBytes {
            abandon(
                GRPCStatus(
                    code: .resourceExhausted,
                    message: "the client is not reading its responses: \(buffered) bytes are waiting, more than the \(context.maxStreamBufferedBytes) allowed per stream"))
        }
    }

    private func sendError(_ message: String) {
        var response = ModelStreamInferResponse()
        response.errorMessage = message
        call.sendMessage(response.encoded())
    }

    private func complete(_ key: Key, _ status: GRPCStatus) {
        entries.removeValue(forKey: key)?.trace?.end(status)
        updateReceiving()
        finishIfDone()
    }

    private func finishIfDone() {
        guard entries.isEmpty && !inspecting && waitingForRate == 0 && !call.isFinished else { return }
        if clientDone {
            call.finish(.ok)
        } else if let drainReason {
            call.finish(GRPCStatus(code: .unavailable, message: "\(drainReason); reconnect to continue the stream"))
        }
    }

    func callDraining(reason: String) {
        drainReason = reason
        updateReceiving()
        finishIfDone()
    }

    /// Reads the stream only while it has room for another request and its client reads, and
    /// not once the connection drains.
    private func updateReceiving() {
        let pause =
            inspecting || waitingForRate > 0 || entries.count >= context.maxStreamRequestsInFlight || !call.isWritable || drainReason != nil
        guard pause != receivingPaused, !call.isFinished else { return }
        receivingPaused = pause
        if pause { call.pauseReceiving() } else { call.resumeReceiving() }
    }

    private func writabilityChanged(_ writable: Bool) {
        guard responsesPaused == writable else { return }
        responsesPaused = !writable
        call.logger.debug(
            writable ? "client reads again: resuming the stream's requests" : "client does not read: pausing the stream's requests",
            metadata: ["requests": "\(entries.count)", "buffered_bytes": "\(call.bufferedOutboundBytes)"])
        for entry in entries.values where entry.prepared.decoupled {
            entry.prepared.shard.setPaused(!writable, for: entry.requestID)
        }
        updateReceiving()
    }

    func callReceivedEnd() {
        clientDone = true
        finishIfDone()
    }

    /// Ends the call and every request of it.
    private func abandon(_ status: GRPCStatus) {
        cancelAll(reason: status.message)
        call.finish(status)
    }

    private func cancelAll(reason: String) {
        let open = entries
        entries.removeAll()
        let now = NIODeadline.now()
        for entry in open.values {
            entry.prepared.shard.cancel(entry.requestID, reason: reason)
            entry.prepared.shard.statistics.recordFailure(.canceled, nanoseconds: UInt64(max(0, (now - entry.started).nanoseconds)), now: now)
            entry.trace?.end(GRPCStatus(code: .cancelled, message: reason))
            entry.pairing?.primaryFailed()
        }
    }

    func callCancelled(_ status: GRPCStatus) {
        cancelAll(reason: "\(status)")
        call.onWritabilityChanged = nil
    }
}
