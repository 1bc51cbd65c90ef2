import InferenceProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// What a worker said about one request.
public enum WorkerReply: Sendable {
    /// An `inference.ModelInferResponse` (encoded); `final` on the last one for the request;
    /// `timing` says where the worker spent its time, when it reports that.
    case response(ByteBuffer, final: Bool, timing: WorkerProtocol.Timing? = nil)
    /// A decoupled model has no more responses.
    case streamEnd
    /// The request ended with this status (from the worker, or because of it).
    case failed(GRPCStatusCode, String)
}

/// A gRPC status code as the pool reports it (kept free of the transport's types).
public typealias GRPCStatusCode = Int32

/// Decodes the worker protocol's frames from a byte stream.
final class WorkerFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = WorkerFrame

    func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try WorkerFrame.read(from: &buffer) else { return .needMoreData }
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }
}

/// Encodes frames for the socket.
final class WorkerFrameEncoder: MessageToByteEncoder {
    typealias OutboundIn = WorkerFrame

    func encode(data: WorkerFrame, out: inout ByteBuffer) throws {
        data.write(to: &out)
    }
}

/// The gateway's side of one worker's socket: sends requests, matches replies by id.
///
/// Thread-safe: requests may come from any event loop; socket work happens on the channel's.
final class WorkerConnection: Sendable {
    typealias ReplyHandler = @Sendable (WorkerReply) -> Void

    let channel: Channel
    let hello: WorkerProtocol.Hello
    private let pending = NIOLockedValueBox<[UInt64: ReplyHandler]>([:])
    private let pongWaiters = NIOLockedValueBox<[UInt64: EventLoopPromise<WorkerProtocol.Pong>]>([:])
    private let nextID = NIOLockedValueBox<UInt64>(1)
    private let closed = NIOLockedValueBox(false)

    private init(channel: Channel, hello: WorkerProtocol.Hello) {
        self.channel = channel
        self.hello = hello
    }

    /// Connects to a worker's socket and waits for its HELLO (at most `timeout`).
    static func connect(path: String, group: EventLoopGroup, timeout: TimeAmount, logger: Logger) async throws -> WorkerConnection {
        let helloPromise = group.next().makePromise(of: (Channel, WorkerProtocol.Hello).self)
        let router = WorkerReplyRouter(helloPromise: helloPromise, logger: logger)
        let channel: Channel
        do {
            channel = try await ClientBootstrap(group: group)
                .connectTimeout(timeout)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(WorkerFrameDecoder()))
                        try channel.pipeline.syncOperations.addHandler(MessageToByteHandler(WorkerFrameEncoder()))
                        try channel.pipeline.syncOperations.addHandler(router)
                    }
                }
                .connect(unixDomainSocketPath: path).get()
        } catch {
            // A socket that exists but does not accept yet (a worker still starting, or one that
            // just died) is retried by the caller; the promise must not be left unfulfilled
            // (a leaked promise is a crash in debug builds).
            helloPromise.fail(error)
            throw error
        }
        let timer = channel.eventLoop.scheduleTask(in: timeout) {
            helloPromise.fail(WorkerError("worker sent no HELLO within \(timeout)"))
        }
        let hello: WorkerProtocol.Hello
        do {
            hello = try await helloPromise.futureResult.get().1
            timer.cancel()
        } catch {
            try? await channel.close()
            throw error
        }
        let connection = WorkerConnection(channel: channel, hello: hello)
        router.connection.withLockedValue { $0 = connection }
        channel.closeFuture.whenComplete { _ in connection.failAll() }
        return connection
    }

    var isClosed: Bool { closed.withLockedValue { $0 } }

    /// Sends a request; `onReply` hears every reply for it (on the channel's loop). Returns the id.
    @discardableResult
    func send(_ request: WorkerProtocol.InferRequest, onReply: @escaping ReplyHandler) -> UInt64 {
        let id = nextID.withLockedValue { id in
            defer { id += 1 }
            return id
        }
        let accepted = closed.withLockedValue { closed -> Bool in
            guard !closed else { return false }
            pending.withLockedValue { $0[id] = onReply }
            return true
        }
        guard accepted else {
            onReply(.failed(14, "worker connection is closed"))
            return id
        }
        channel.writeAndFlush(WorkerFrame(kind: .inferRequest, requestID: id, message: request), promise: nil)
        return id
    }

    /// Tells the worker to stop work on `id` and forgets it.
    func cancel(_ id: UInt64, reason: String) {
        guard pending.withLockedValue({ $0.removeValue(forKey: id) }) != nil else { return }
        var cancel = WorkerProtocol.Cancel()
        cancel.reason = reason
        channel.writeAndFlush(WorkerFrame(kind: .cancel, requestID: id, message: cancel), promise: nil)
    }

    /// PING; the future completes with the PONG.
    func ping(nonce: UInt64) -> EventLoopFuture<WorkerProtocol.Pong> {
        let promise = channel.eventLoop.makePromise(of: WorkerProtocol.Pong.self)
        pongWaiters.withLockedValue { $0[nonce] = promise }
        var ping = WorkerProtocol.Ping()
        ping.nonce = nonce
        ping.sentUnixNanos = Int64(NIODeadline.now().uptimeNanoseconds)
        channel.writeAndFlush(WorkerFrame(kind: .ping, requestID: 0, message: ping), promise: nil)
        return promise.futureResult
    }

    /// The number of requests sent and not yet answered.
    var outstanding: Int { pending.withLockedValue { $0.count } }

    /// The ids in flight, with their handlers, removed from the connection (when it died).
    func takeAllPending() -> [UInt64: ReplyHandler] {
        pending.withLockedValue { pending in
            defer { pending.removeAll() }
            return pending
        }
    }

    func close() {
        channel.close(promise: nil)
    }

    // MARK: Replies (on the channel's loop)

    func received(_ frame: WorkerFrame, logger: Logger) {
        switch frame.kind {
        case .inferResponse:
            guard let handler = pending.withLockedValue({ $0[frame.requestID] }) else { return }
            do {
                let response = try frame.decodePayload(as: WorkerProtocol.InferResponse.self)
                if let status = response.status, status.code != 0 {
                    pending.withLockedValue { _ = $0.removeValue(forKey: frame.requestID) }
                    handler(.failed(status.code, status.message))
                } else {
                    if response.final { pending.withLockedValue { _ = $0.removeValue(forKey: frame.requestID) } }
                    handler(.response(response.response, final: response.final, timing: response.timing))
                }
            } catch {
                pending.withLockedValue { _ = $0.removeValue(forKey: frame.requestID) }
                handler(.failed(13, "the worker sent a malformed response: \(error)"))
            }
        case .streamEnd:
            guard let handler = pending.withLockedValue({ $0.removeValue(forKey: frame.requestID) }) else { return }
            handler(.streamEnd)
        case .error:
            let status = (try? frame.decodePayload(as: WorkerProtocol.Status.self)) ?? WorkerProtocol.Status(code: 13, message: "worker error")
            if frame.requestID == 0 {
                logger.warning("worker reported a connection error", metadata: ["message": "\(status.message)"])
                channel.close(promise: nil)
            } else if let handler = pending.withLockedValue({ $0.removeValue(forKey: frame.requestID) }) {
                handler(.failed(status.code, status.message))
            }
        case .pong:
            guard let pong = try? frame.decodePayload(as: WorkerProtocol.Pong.self) else { return }
            pongWaiters.withLockedValue { $0.removeValue(forKey: pong.nonce) }?.succeed(pong)
        default:
            break  // unknown kinds are ignored, as the protocol says
        }
    }

    /// The connection closed: requests in flight are left for the pool to re-dispatch.
    private func failAll() {
        closed.withLockedValue { $0 = true }
        let waiters = pongWaiters.withLockedValue { waiters in
            defer { waiters.removeAll() }
            return Array(waiters.values)
        }
        for waiter in waiters { waiter.fail(WorkerError("worker connection closed")) }
    }
}

/// Routes frames from the channel to the connection (after HELLO).
private final class WorkerReplyRouter: ChannelInboundHandler, Sendable {
    typealias InboundIn = WorkerFrame

    let helloPromise: EventLoopPromise<(Channel, WorkerProtocol.Hello)>
    let connection = NIOLockedValueBox<WorkerConnection?>(nil)
    let logger: Logger

    init(helloPromise: EventLoopPromise<(Channel, WorkerProtocol.Hello)>, logger: Logger) {
        self.helloPromise = helloPromise
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        if frame.kind == .hello {
            do {
                let hello = try frame.decodePayload(as: WorkerProtocol.Hello.self)
                helloPromise.succeed((context.channel, hello))
            } catch {
                helloPromise.fail(WorkerError("malformed HELLO from worker: \(error)"))
                context.close(promise: nil)
            }
            return
        }
        connection.withLockedValue { $0 }?.received(frame, logger: logger)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.warning("worker connection failed", metadata: ["error": "\(error)"])
        helloPromise.fail(error)
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        helloPromise.fail(WorkerError("worker closed the connection"))
        context.fireChannelInactive()
    }
}

/// A failure of a worker or its connection.
public struct WorkerError: Error, Sendable, CustomStringConvertible {
    public var description: String
    init(_ description: String) { self.description = description }
}
