import InferenceProtocol
import Logging
import NIOCore

/// Serves one gateway connection: sends HELLO, answers PING, starts each INFER_REQUEST on the
/// runtime and writes its answers back, and passes CANCEL on.
///
/// Sits after a `WorkerFrameDecoder` and a `WorkerFrameEncoder`. Must run on the runtime's
/// event loop. Requests are matched by id only: answers go out in whatever order they finish.
final class WorkerConnectionHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = WorkerFrame
    typealias OutboundOut = WorkerFrame

    private let runtime: WorkerRuntime
    private let logger: Logger
    /// Requests of this connection not yet answered for the last time, by request id.
    private var calls: [UInt64: InferenceCall] = [:]
    private var context: ChannelHandlerContext?
    /// Completes when the last frame written so far has reached the socket.
    private var lastWrite: EventLoopFuture<Void>?

    init(runtime: WorkerRuntime, logger: Logger) {
        self.runtime = runtime
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        precondition(context.eventLoop === runtime.eventLoop, "a worker connection must run on the runtime's event loop")
        self.context = context
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
        guard !greeted else { return }
        greeted = true
        runtime.core.value.register(self, for: context.channel)
        logger.info("gateway connected")
        let hello = runtime.hello()
        context.writeAndFlush(wrapOutboundOut(WorkerFrame(kind: .hello, requestID: 0, message: hello)), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let core = runtime.core.value
        core.unregister(context.channel)
        let open = calls
        calls = [:]
        for call in open.values { core.cancel(call, reason: "connection closed") }
        logger.info("gateway disconnected", metadata: open.isEmpty ? nil : ["abandoned": "\(open.count)"])
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.kind {
        case .inferRequest:
            startRequest(frame)
        case .cancel:
            guard let call = calls.removeValue(forKey: frame.requestID) else { return }
            let reason = (try? frame.decodePayload(as: WorkerProtocol.Cancel.self))?.reason ?? ""
            runtime.core.value.cancel(call, reason: reason)
        case .ping:
            answerPing(frame, context: context)
        case .error:
            // With a request id: the gateway has ended that request, so stop work on it.
            let status = try? frame.decodePayload(as: WorkerProtocol.Status.self)
            logger.warning(
                "gateway sent ERROR for request \(frame.requestID): code \(status?.code ?? 0): \(status?.message ?? "(unreadable status)")")
            if let call = calls.removeValue(forKey: frame.requestID) {
                runtime.core.value.cancel(call, reason: "gateway sent ERROR")
            }
        default:
            // HELLO, responses and PONG travel the other way; unknown kinds are for newer peers.
            logger.debug("ignoring \(frame.kind) frame for request \(frame.requestID)")
        }
    }

    private func startRequest(_ frame: WorkerFrame) {
        let id = frame.requestID
        guard calls[id] == nil else {
            logger.warning("request id \(id) is already in flight on this connection; refusing the duplicate")
            write(WorkerFrame(
                kind: .error, requestID: id,
                message: InferenceError.invalidArgument("request id \(id) is already in flight on this connection").status))
            return
        }
        let call = runtime.core.value.start(requestID: id, payload: frame.payload) { [weak self] frame, final in
            guard let self else { return }
            if final { self.calls[id] = nil }
            self.write(frame)
        }
        if !call.isFinished { calls[id] = call }
    }

    private func answerPing(_ frame: WorkerFrame, context: ChannelHandlerContext) {
        let ping: WorkerProtocol.Ping
        do {
            ping = try frame.decodePayload(as: WorkerProtocol.Ping.self)
        } catch {
            logger.warning("ignoring PING with a malformed payload: \(error)")
            return
        }
        let core = runtime.core.value
        var pong = WorkerProtocol.Pong()
        pong.nonce = ping.nonce
        pong.sentUnixNanos = ping.sentUnixNanos
        pong.inFlight = UInt32(clamping: core.inFlight)
        pong.queued = UInt32(clamping: core.queued)
        write(WorkerFrame(kind: .pong, requestID: frame.requestID, message: pong))
    }

    private func write(_ frame: WorkerFrame) {
        guard let context else { return }
        lastWrite = context.writeAndFlush(wrapOutboundOut(frame))
    }

    /// Closes the connection once every frame written so far has gone out (for shutdown).
    func closeAfterPendingWrites() -> EventLoopFuture<Void> {
        guard let context else { return runtime.eventLoop.makeSucceededVoidFuture() }
        let written = lastWrite ?? context.eventLoop.makeSucceededVoidFuture()
        let closed = context.eventLoop.makePromise(of: Void.self)
        written.assumeIsolated().whenComplete { _ in context.close(promise: closed) }
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
