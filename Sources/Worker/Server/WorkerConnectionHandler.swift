import InferenceProtocol
import Logging
import NIOCore

/// Serves one gateway connection: sends HELLO, answers PING, starts each INFER_REQUEST on the
/// runtime and writes its answers back, and passes CANCEL, PAUSE and RESUME on.
///
/// Sits after its `WorkerFrameReader` (see `pipeline(runtime:logger:maxFrameSize:)`), which hands it
/// each frame by a direct call (a `WorkerFrame` passed down the pipeline would be boxed in an
/// `NIOAny`, an allocation per request); frames fired by a `WorkerFrameDecoder` work as well.
/// It writes whole encoded frames (`ByteBuffer`s): the
/// runtime encodes each answer straight into the buffer that goes to the socket, so no encoder
/// copies it again. Must run on the runtime's event loop. Requests are matched by id only:
/// answers go out in whatever order they finish.
///
/// Answers are written without a flush and flushed once per event-loop turn: those produced
/// while frames are being read (a batch that runs inline, a refusal) at `channelReadComplete`,
/// those produced later (timers, thread-pool completions) by one flush scheduled for the end of
/// the turn. So a burst of requests read together goes out in one `writev`.
///
/// Requests that a model's fast path answers at once (`RuntimeCore.answerAtOnce`) are answered
/// into one buffer per read burst, which is written as one write at the end of the burst (or
/// before any other frame, to keep the order). The buffer is reused once the socket has taken
/// its bytes, so such answers allocate nothing per request.
final class WorkerConnectionHandler: ChannelInboundHandler, RemovableChannelHandler, InferenceCallReceiver, WorkerFrameHandling {
    typealias InboundIn = WorkerFrame
    typealias OutboundOut = ByteBuffer

    private let runtime: WorkerRuntime
    private let logger: Logger
    /// Requests of this connection not yet answered for the last time, by request id.
    private var calls: [UInt64: InferenceCall] = [:]
    private var context: ChannelHandlerContext?
    /// The runtime's state, once the handler is known to run on its loop.
    private var core: RuntimeCore?
    /// True between a `channelRead` and the `channelReadComplete` that ends its burst.
    private var reading = false
    /// Frames have been written since the last flush.
    private var unflushed = false
    /// A flush is scheduled for the end of this event-loop turn.
    private var flushScheduled = false
    /// Fast-path answers of this read burst not yet written (its readable bytes); once written,
    /// the storage is kept for the next burst.
    private var gathered = ByteBuffer()
    /// The capacity a fresh gathering buffer starts with: room for a burst of small answers.
    private static let gatheringCapacity = 16 * 1024

    init(runtime: WorkerRuntime, logger: Logger) {
        self.runtime = runtime
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        precondition(context.eventLoop === runtime.eventLoop, "a worker connection must run on the runtime's event loop")
        self.context = context
        self.core = runtime.core.value
        if context.channel.isActive { greet(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelActive(context: ChannelHandlerContext) {
        greet(context: context)
        context.fireChannelActive()
    }

    private var greeted = false

    private func greet(context: ChannelHandlerContext) {
        guard !greeted, let core else { return }
        greeted = true
        core.register(self, for: context.channel)
        logger.info("gateway connected")
        let hello = runtime.hello()
        context.writeAndFlush(wrapOutboundOut(Self.encode(WorkerFrame(kind: .hello, requestID: 0, message: hello))), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if let core {
            core.unregister(context.channel)
            let open = calls
            calls = [:]
            writabilityWaiters.removeAll()
            for call in open.values { core.cancel(call, reason: "connection closed") }
            logger.info("gateway disconnected", metadata: open.isEmpty ? nil : ["abandoned": "\(open.count)"])
        }
        context.fireChannelInactive()
    }

    /// The handlers of one gateway connection, in pipeline order: the frame reader, then the
    /// connection handler it feeds.
    static func pipeline(
        runtime: WorkerRuntime, logger: Logger, maxFrameSize: Int = WorkerFrame.defaultMaxFrameSize
    ) -> (reader: ByteToMessageHandler<WorkerFrameReader<WorkerConnectionHandler>>, handler: WorkerConnectionHandler) {
        let handler = WorkerConnectionHandler(runtime: runtime, logger: logger)
        return (ByteToMessageHandler(WorkerFrameReader(handler: handler, maxFrameSize: maxFrameSize)), handler)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        handle(unwrapInboundIn(data))
    }

    /// Acts on one frame from the gateway, within a read burst.
    func handle(_ frame: WorkerFrame) {
        guard let core else { return }
        reading = true
        switch frame.kind {
        case .inferRequest:
            startRequest(frame, core: core)
        case .cancel:
            guard let call = calls.removeValue(forKey: frame.requestID) else { return }
            let reason = (try? frame.decodePayload(as: WorkerProtocol.Cancel.self))?.reason ?? ""
            core.cancel(call, reason: reason)
        case .pause:
            // An id that is unknown or already answered is ignored: the gateway may send PAUSE
            // while the last response is on its way.
            if let call = calls[frame.requestID] { core.pause(call) }
        case .resume:
            if let call = calls[frame.requestID] { core.resume(call) }
        case .ping:
            answerPing(frame, core: core)
        case .error:
            // With a request id: the gateway has ended that request, so stop work on it.
            let status = try? frame.decodePayload(as: WorkerProtocol.Status.self)
            let call = calls.removeValue(forKey: frame.requestID)
            logger.warning(
                "gateway sent ERROR for request \(frame.requestID): code \(status?.code ?? 0): \(status?.message ?? "(unreadable status)")",
                metadata: call?.logMetadata)
            if let call {
                core.cancel(call, reason: "gateway sent ERROR")
            }
        default:
            // HELLO, responses and PONG travel the other way; unknown kinds are for newer peers.
            logger.debug("ignoring \(frame.kind) frame for request \(frame.requestID)")
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        reading = false
        flushIfNeeded()
        context.fireChannelReadComplete()
    }

    private func startRequest(_ frame: WorkerFrame, core: RuntimeCore) {
        let id = frame.requestID
        guard calls.isEmpty || calls[id] == nil else {
            logger.warning("request id \(id) is already in flight on this connection; refusing the duplicate")
            write(Self.encode(WorkerFrame(
                kind: .error, requestID: id,
                message: InferenceError.invalidArgument("request id \(id) is already in flight on this connection").status)))
            return
        }
        if gathered.readableBytes == 0 {
            // Reuses the storage when the socket has let go of the last burst's bytes.
            gathered.clear(minimumCapacity: Self.gatheringCapacity)
        }
        if core.answerAtOnce(requestID: id, payload: frame.payload, into: &gathered) { return }
        let call = core.start(requestID: id, payload: frame.payload, receiver: self)
        if !call.isFinished { calls[id] = call }
    }

    func receive(_ frame: ByteBuffer, final: Bool, for call: InferenceCall) {
        if final { calls[call.requestID] = nil }
        write(frame)
    }

    /// Streams parked until the socket drains.
    private var writabilityWaiters: [InferenceCall] = []

    var acceptsMoreFrames: Bool { context?.channel.isWritable ?? true }

    func notifyWhenWritable(_ call: InferenceCall) {
        writabilityWaiters.append(call)
        // What is written so far must go out for the socket to drain.
        context?.flush()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable, let core, !writabilityWaiters.isEmpty {
            let waiters = writabilityWaiters
            writabilityWaiters.removeAll()
            // Not from inside this call (a flush that drains the socket reports writability in
            // the middle of the flush): the runtime's pump takes them on later.
            for call in waiters { core.resumeWritable(call) }
        }
        context.fireChannelWritabilityChanged()
    }

    private func answerPing(_ frame: WorkerFrame, core: RuntimeCore) {
        let ping: WorkerProtocol.Ping
        do {
            ping = try frame.decodePayload(as: WorkerProtocol.Ping.self)
        } catch {
            logger.warning("ignoring PING with a malformed payload: \(error)")
            return
        }
        var pong = WorkerProtocol.Pong()
        pong.nonce = ping.nonce
        pong.sentUnixNanos = ping.sentUnixNanos
        pong.inFlight = UInt32(clamping: core.inFlight)
        pong.queued = UInt32(clamping: core.queued)
        write(Self.encode(WorkerFrame(kind: .pong, requestID: frame.requestID, message: pong)))
    }

    /// A frame the handler makes itself (HELLO, PONG, ERROR), encoded.
    private static func encode(_ frame: WorkerFrame) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: WorkerFrame.headerSize + frame.payload.readableBytes)
        frame.write(to: &buffer)
        return buffer
    }

    /// Writes an encoded frame without flushing; the flush comes at the end of the read burst
    /// or of this turn.
    private func write(_ frame: ByteBuffer) {
        guard let context else { return }
        writeGathered(context: context)
        context.write(wrapOutboundOut(frame), promise: nil)
        unflushed = true
        guard !reading, !flushScheduled else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute {
            self.flushScheduled = false
            self.flushIfNeeded()
        }
    }

    private func flushIfNeeded() {
        guard let context else { return }
        writeGathered(context: context)
        guard unflushed else { return }
        unflushed = false
        context.flush()
    }

    /// Writes the gathered fast-path answers, if any, without flushing.
    private func writeGathered(context: ChannelHandlerContext) {
        guard gathered.readableBytes > 0 else { return }
        context.write(wrapOutboundOut(gathered), promise: nil)
        // Only the indices move: the storage stays shared with the write until the socket
        // has taken it, and `clear` reuses it after that.
        gathered.moveReaderIndex(to: gathered.writerIndex)
        unflushed = true
    }

    /// Closes the connection once every frame written so far has gone out (for shutdown): the
    /// write side is shut once the pending frames are written, then the connection is closed.
    func closeAfterPendingWrites() -> EventLoopFuture<Void> {
        guard let context else { return runtime.eventLoop.makeSucceededVoidFuture() }
        flushIfNeeded()
        let closed = context.eventLoop.makePromise(of: Void.self)
        context.close(mode: .output).assumeIsolated().whenComplete { _ in context.close(promise: closed) }
        return closed.futureResult.recover { _ in }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if error is WorkerFrame.FramingError {
            logger.warning("framing error, closing the connection: \(error)")
        } else {
            logger.warning("connection error, closing the connection: \(error)")
        }
        context.close(promise: nil)
    }
}
