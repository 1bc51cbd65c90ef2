import Logging
import NIOCore

/// The end of a call: its status and the server's trailers.
struct GRPCClientCallOutcome: Sendable {
    var status: GRPCStatus
    var trailers: GRPCMetadata
}

/// Runs one client call on one HTTP/2 stream: opens the stream with the request headers,
/// frames request messages with send-side backpressure, deframes responses with receive-side
/// backpressure, enforces the deadline, and turns resets, GOAWAY and a lost connection into
/// statuses. The gRPC rules live in `GRPCClientStreamStateMachine`; this type does the I/O.
///
/// Confined to the connection's event loop. Its promises are how the async API hears of it.
final class GRPCClientCall: HTTP2StreamDelegate {
    /// Where response messages go.
    enum Mode: Sendable {
        /// Exactly one message, delivered with the status through this promise.
        case unary(EventLoopPromise<GRPCClientResponse>)
        /// Any number, through an async sequence whose consumer paces the stream.
        case streaming(GRPCClientStream.Messages.Source)
        /// Any number, handed to callbacks on the event loop as they are deframed (no read-ahead
        /// bound: the callbacks never push back).
        case callbacks(NIOLoopBound<GRPCClientLoopCall.Callbacks>)
    }

    let eventLoop: EventLoop
    /// Completed with the response headers (empty for a Trailers-Only OK), or failed with the
    /// call's error when it ended without them. Streaming calls only: the others report
    /// through their promise or callbacks, and a promise nobody reads is an allocation per call.
    let headersPromise: EventLoopPromise<GRPCMetadata>?
    /// Completed with the call's status and trailers when it is over; never failed. Streaming
    /// calls only.
    let outcomePromise: EventLoopPromise<GRPCClientCallOutcome>?

    private var machine: GRPCClientStreamStateMachine
    private let head: GRPCClientStreamStateMachine.RequestHead
    private let deadline: NIODeadline?
    private let connectionState: GRPCClientConnectionState
    private let logger: Logger
    private var unaryPromise: EventLoopPromise<GRPCClientResponse>?
    private var source: GRPCClientStream.Messages.Source?
    private var callbacks: GRPCClientLoopCall.Callbacks?

    private var stream: HTTP2Stream?
    private var deadlineTimer: Scheduled<Void>?
    private var responseHeaders: GRPCMetadata?
    private var unaryMessage: ByteBuffer?
    /// The consumer of a streaming call has enough messages: DATA is neither consumed (so the
    /// server's window closes) nor deframed.
    private var paused = false
    private var pausedBytes = 0
    private var writeWaiters: [EventLoopPromise<Void>] = []
    private(set) var outcome: GRPCClientCallOutcome?

    init(
        head: GRPCClientStreamStateMachine.RequestHead,
        deadline: NIODeadline?,
        mode: Mode,
        configuration: GRPCClientStreamStateMachine.Configuration,
        connectionState: GRPCClientConnectionState,
        eventLoop: EventLoop,
        logger: Logger
    ) {
        self.head = head
        self.deadline = deadline
        self.machine = GRPCClientStreamStateMachine(configuration: configuration)
        self.connectionState = connectionState
        self.eventLoop = eventLoop
        // The path goes into the few log lines' metadata when they are written, not into a
        // logger copy per call.
        self.logger = logger
        if case .streaming = mode {
            self.headersPromise = eventLoop.makePromise()
            self.outcomePromise = eventLoop.makePromise()
        } else {
            self.headersPromise = nil
            self.outcomePromise = nil
        }
        switch mode {
        case .unary(let promise): self.unaryPromise = promise
        case .streaming(let source): self.source = source
        case .callbacks(let callbacks): self.callbacks = callbacks.value
        }
    }

    // MARK: Driving the call (from the async API, hopped onto the loop)

    /// Opens the stream with the request headers, unless the call already ended (cancelled
    /// before it started) or the connection takes no new calls.
    func start(on connection: HTTP2ConnectionHandler) {
        guard outcome == nil else { return }
        if let reason = connectionState.unavailableReason {
            cancel(with: reason)
            return
        }
        var head = self.head
        if let deadline {
            let remaining = deadline - .now()
            guard remaining > .zero else {
                cancel(with: GRPCStatus(code: .deadlineExceeded, message: "the deadline passed before the call started"))
                return
            }
            head.timeout = .nanoseconds(remaining.nanoseconds)
            deadlineTimer = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [weak self] in
                self?.cancel(with: GRPCStatus(code: .deadlineExceeded, message: "the call's deadline passed"))
            }
        }
        let fields: GRPCHeaderFields
        do {
            fields = try machine.sendHeaders(head)
        } catch {
            cancel(with: GRPCStatus(code: .internalError, message: "\(error)"))
            return
        }
        do {
            stream = try connection.openStream(
                headers: fields.map { HTTP2HeaderField($0.name, $0.value, sensitive: Self.isSensitive($0.name)) },
                delegate: self
            )
        } catch {
            cancel(with: GRPCStatus(code: .unavailable, message: "cannot open an HTTP/2 stream: \(error)"))
        }
    }

    /// Frames and queues one request message. The future completes once the stream's send
    /// queue is below its watermark again (at once when it is), and fails with the call's
    /// `RPCError` when the call ended with an error. After a successful end the message is
    /// dropped: the server no longer reads.
    func send(_ message: ByteBuffer, compress: Bool) -> EventLoopFuture<Void> {
        if let outcome { return finishedSendResult(outcome) }
        do {
            switch try machine.sendMessage(message, compress: compress) {
            case .framed:
                if let bytes = machine.nextOutboundBytes() { stream?.sendData(bytes) }
            case .refused(let status):
                cancel(with: status)
                return eventLoop.makeFailedFuture(RPCError(status: status))
            }
        } catch {
            return eventLoop.makeFailedFuture(RPCError(code: .failedPrecondition, message: "cannot send: \(error)"))
        }
        guard let stream, !stream.isWritable else { return eventLoop.makeSucceededVoidFuture() }
        let promise = eventLoop.makePromise(of: Void.self)
        writeWaiters.append(promise)
        return promise.futureResult
    }

    /// Half-closes: END_STREAM after the queued messages. Idempotent; nothing once the call
    /// is over.
    func finishRequest() {
        guard outcome == nil, !machine.isRequestClosed, let stream else { return }
        do {
            if let bytes = try machine.sendEnd() { stream.sendData(bytes) }
            stream.sendEnd(trailers: nil)
        } catch {
            logger.debug("cannot end the request", metadata: ["grpc.path": "\(head.path)", "error": "\(error)"])
        }
    }

    /// Ends the call with `status` (cancellation, deadline, a lost connection, a local
    /// failure), resetting the stream with CANCEL when it is still open.
    func cancel(with status: GRPCStatus) {
        if let code = machine.cancel(with: status) { stream?.reset(code) }
        deliver()
    }

    /// The consumer of a streaming call wants more messages.
    func resumeReading() {
        guard paused else { return }
        paused = false
        if pausedBytes > 0, let stream {
            stream.consume(pausedBytes)
        }
        pausedBytes = 0
        deliver()
    }

    /// The consumer of a streaming call stopped reading (its iterator or the sequence went
    /// away, or its task was cancelled): the call is cancelled unless it is already over.
    func messagesAbandoned() {
        guard outcome == nil else { return }
        cancel(with: GRPCStatus(code: .cancelled, message: "the response messages are no longer read"))
    }

    // MARK: HTTP2StreamDelegate

    func stream(_ stream: HTTP2Stream, receivedHeaders headers: [HTTP2HeaderField], endStream: Bool) {
        switch machine.receiveHeaders(headers.lazy.map { (name: $0.name, value: $0.value) }, endStream: endStream) {
        case .responseHeaders(let metadata):
            responseHeaders = metadata
            headersPromise?.succeed(metadata)
        case .responseEnded:
            deliver()
        case .ignored:
            break
        }
    }

    func stream(_ stream: HTTP2Stream, receivedData data: ByteBuffer) {
        machine.receiveMessageBytes(data)
        if paused && outcome == nil {
            pausedBytes += data.readableBytes
        } else {
            stream.consume(data.readableBytes)
        }
        deliver()
    }

    func streamReceivedEnd(_ stream: HTTP2Stream) {
        machine.receiveEnd()
        deliver()
    }

    func stream(_ stream: HTTP2Stream, wasReset code: HTTP2ErrorCode) {
        // The HTTP/2 handler reports a lost connection as CANCEL on every stream; the
        // observer in front of it has already recorded the loss.
        if code == .cancel, let lost = connectionState.closedReason {
            cancel(with: lost)
            return
        }
        machine.receiveReset(code)
        deliver()
    }

    func streamClosed(_ stream: HTTP2Stream) {
        self.stream = nil
        if !machine.hasResponseEnded {
            cancel(with: connectionState.closedReason ?? GRPCStatus(code: .internalError, message: "the stream closed before the response ended"))
        }
        releaseWriters()
    }

    func stream(_ stream: HTTP2Stream, writabilityChanged isWritable: Bool) {
        if isWritable { releaseWriters() }
    }

    // MARK: Private

    /// Hands response messages to their destination while the consumer wants them, then the
    /// status.
    private func deliver() {
        while outcome == nil {
            if paused && !machine.isFinished { return }
            switch machine.nextInboundMessage() {
            case .awaitingMoreData:
                return
            case .message(let message):
                receive(message)
            case .finished(let status, let trailers, let reset):
                if let reset { stream?.reset(reset) }
                complete(status: status, trailers: trailers)
            }
        }
    }

    private func receive(_ message: ByteBuffer) {
        if let callbacks {
            callbacks.onMessage(message)
            return
        }
        if unaryPromise != nil {
            guard unaryMessage == nil else {
                cancel(with: GRPCStatus(code: .internalError, message: "the server sent more than one response message for a unary call"))
                return
            }
            unaryMessage = message
            return
        }
        switch source?.yield(message) {
        case .produceMore, nil:
            break
        case .stopProducing:
            paused = true
        case .dropped:
            cancel(with: GRPCStatus(code: .cancelled, message: "the response messages are no longer read"))
        }
    }

    private func complete(status: GRPCStatus, trailers: GRPCMetadata) {
        guard outcome == nil else { return }
        var status = status
        if status.code == .cancelled, let deadline, NIODeadline.now() >= deadline {
            // PROTOCOL-HTTP2.md: a CANCELLED that races the deadline is reported as the deadline.
            status = GRPCStatus(code: .deadlineExceeded, message: "the call's deadline passed")
        }
        if status.code == .ok, unaryPromise != nil, unaryMessage == nil {
            status = GRPCStatus(code: .internalError, message: "the server sent no response message for a unary call")
        }
        let outcome = GRPCClientCallOutcome(status: status, trailers: trailers)
        self.outcome = outcome
        deadlineTimer?.cancel()
        deadlineTimer = nil
        paused = false
        let error = status.code == .ok ? nil : RPCError(status: status, trailers: trailers)
        if responseHeaders == nil {
            if let error { headersPromise?.fail(error) } else { headersPromise?.succeed(GRPCMetadata()) }
        }
        if let unaryPromise {
            if let error {
                unaryPromise.fail(error)
            } else {
                unaryPromise.succeed(GRPCClientResponse(headers: responseHeaders ?? GRPCMetadata(), message: unaryMessage!, trailers: trailers))
            }
            self.unaryPromise = nil
            unaryMessage = nil
        }
        if let source {
            if let error { source.finish(error) } else { source.finish() }
            // The source holds the sequence's delegate, which holds this call: let go.
            self.source = nil
        }
        if let callbacks {
            // The callbacks usually hold their owner, which holds this call: let go.
            self.callbacks = nil
            callbacks.onEnd(status)
        }
        outcomePromise?.succeed(outcome)
        releaseWriters()
        if status.code != .ok {
            logger.debug("call ended", metadata: ["grpc.path": "\(head.path)", "status": "\(status)"])
        }
    }

    private func finishedSendResult(_ outcome: GRPCClientCallOutcome) -> EventLoopFuture<Void> {
        if outcome.status.code == .ok { return eventLoop.makeSucceededVoidFuture() }
        return eventLoop.makeFailedFuture(RPCError(status: outcome.status, trailers: outcome.trailers))
    }

    private func releaseWriters() {
        let waiters = writeWaiters
        writeWaiters.removeAll()
        for waiter in waiters {
            if let outcome, outcome.status.code != .ok {
                waiter.fail(RPCError(status: outcome.status, trailers: outcome.trailers))
            } else {
                waiter.succeed(())
            }
        }
    }

    /// Header fields kept out of HPACK's dynamic table: credentials.
    private static func isSensitive(_ name: String) -> Bool {
        name == "authorization" || name == "proxy-authorization" || name == "cookie"
    }
}

@available(*, unavailable, message: "a call lives on its connection's event loop")
extension GRPCClientCall: Sendable {}
