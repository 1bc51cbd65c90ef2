import NIOCore

/// What the layer above HTTP/2 (the gRPC layer) hears about one stream. All calls arrive on
/// the connection's event loop.
public protocol HTTP2StreamDelegate: AnyObject {
    /// A complete header block: request headers (server), response headers or trailers (client).
    func stream(_ stream: HTTP2Stream, receivedHeaders headers: [HTTP2HeaderField], endStream: Bool)
    /// Body bytes. Call `stream.consume(_:)` once they are taken, to reopen the flow-control window.
    func stream(_ stream: HTTP2Stream, receivedData data: ByteBuffer)
    /// The peer ended its side of the stream (END_STREAM on DATA).
    func streamReceivedEnd(_ stream: HTTP2Stream)
    /// The stream ended abnormally: reset by the peer, refused, or the connection went away.
    /// Any work for it should be cancelled.
    func stream(_ stream: HTTP2Stream, wasReset code: HTTP2ErrorCode)
    /// The stream is fully closed; no more calls follow.
    func streamClosed(_ stream: HTTP2Stream)
    /// The stream's send queue crossed its high or low watermark.
    func stream(_ stream: HTTP2Stream, writabilityChanged isWritable: Bool)
    /// The connection is draining (server: GOAWAY sent, `reason` says why): the stream may run
    /// to its end, but a long-lived one should wrap up. Default: nothing.
    func streamConnectionDraining(_ stream: HTTP2Stream, reason: String)
    /// The drain timeout passed while the stream is still open: the connection closes right
    /// after this call, so whatever the stream still has to say must be sent now. Default: nothing.
    func streamDrainTimedOut(_ stream: HTTP2Stream, reason: String)
}

extension HTTP2StreamDelegate {
    public func streamConnectionDraining(_ stream: HTTP2Stream, reason: String) {}
    public func streamDrainTimedOut(_ stream: HTTP2Stream, reason: String) {}
}

/// Facts about the connection a stream belongs to, for authentication and logs. One shared,
/// immutable instance per connection state: every stream and call of the connection refers to
/// it instead of copying its strings.
public final class HTTP2ConnectionInfo: Sendable {
    /// The peer's address, e.g. "127.0.0.1:53412".
    public let remoteAddress: String
    /// The local address the connection arrived on.
    public let localAddress: String
    /// True over TLS.
    public let isSecure: Bool
    /// The negotiated TLS details and the client's verified certificate identity, when any.
    public let tls: TLSHandshakeCompleted?

    public init(remoteAddress: String, localAddress: String, isSecure: Bool, tls: TLSHandshakeCompleted? = nil) {
        self.remoteAddress = remoteAddress
        self.localAddress = localAddress
        self.isSecure = isSecure
        self.tls = tls
    }
}

/// One HTTP/2 stream, as the layer above sees it. Confined to the connection's event loop.
///
/// Writes queue bytes; the connection hands them to nghttp2 as flow control allows. The queue
/// is bounded by watermarks: when `isWritable` turns false the writer should wait for
/// `writabilityChanged(true)`.
public final class HTTP2Stream {
    /// The HTTP/2 stream id.
    public let id: Int32
    /// The event loop everything about this stream runs on.
    public let eventLoop: EventLoop
    /// The connection's details.
    public let connectionInfo: HTTP2ConnectionInfo
    /// The upper layer's handler; set by the stream initializer.
    public var delegate: HTTP2StreamDelegate?

    unowned let connection: HTTP2ConnectionHandler
    var sentHeaders = false
    var outbound = ByteBufferQueue()
    var outboundBytes = 0
    var outboundEnded = false
    var trailers: HTTP2HeaderBlock?
    var providerDeferred = false
    var isClosed = false
    var reportedWritable = true
    var unconsumedBytes = 0
    /// END_STREAM has gone out on a HEADERS or DATA frame.
    var endStreamSent = false
    /// RST_STREAM NO_ERROR to send once END_STREAM is out (a server finishing before the
    /// client: the reset must not overtake the trailers).
    var resetAfterEndStream = false

    init(id: Int32, connection: HTTP2ConnectionHandler, eventLoop: EventLoop, connectionInfo: HTTP2ConnectionInfo) {
        self.id = id
        self.connection = connection
        self.eventLoop = eventLoop
        self.connectionInfo = connectionInfo
    }

    /// False while more than the high watermark of bytes waits to be sent.
    public var isWritable: Bool { outboundBytes < connection.configuration.streamWriteHighWatermark }

    /// Sends response headers (server) — with `endStream` they are a trailers-only response.
    public func sendHeaders(_ headers: [HTTP2HeaderField], endStream: Bool = false) {
        eventLoop.preconditionInEventLoop()
        connection.streamSendHeaders(self, .fields(headers), endStream: endStream)
    }

    /// `sendHeaders` for the gRPC layer's name/value pairs (no field is sensitive).
    func sendHeaders(pairs: GRPCHeaderFields, endStream: Bool = false) {
        eventLoop.preconditionInEventLoop()
        connection.streamSendHeaders(self, .pairs(pairs), endStream: endStream)
    }

    /// `sendHeaders(pairs:)` with one or two more fields after the pairs, without building a
    /// new array.
    func sendHeaders(pairs: GRPCHeaderFields, extras: HTTP2ExtraHeaders, endStream: Bool = false) {
        eventLoop.preconditionInEventLoop()
        connection.streamSendHeaders(self, .pairsAnd(pairs, extras: extras), endStream: endStream)
    }

    /// Queues body bytes.
    public func sendData(_ data: ByteBuffer) {
        eventLoop.preconditionInEventLoop()
        connection.streamSendData(self, data)
    }

    /// Ends the stream: trailers after any queued body (or an empty END_STREAM when nil).
    public func sendEnd(trailers: [HTTP2HeaderField]?) {
        eventLoop.preconditionInEventLoop()
        connection.streamSendEnd(self, trailers: trailers.map { .fields($0) })
    }

    /// `sendEnd` with the gRPC layer's trailers.
    func sendEnd(pairs: GRPCHeaderFields) {
        eventLoop.preconditionInEventLoop()
        connection.streamSendEnd(self, trailers: .pairs(pairs))
    }

    /// Resets the stream (RST_STREAM) with `code`.
    public func reset(_ code: HTTP2ErrorCode = .cancel) {
        eventLoop.preconditionInEventLoop()
        connection.streamReset(self, code: code)
    }

    /// Tells HTTP/2 flow control that `bytes` of received body were taken by the application,
    /// so the peer may send that much more.
    public func consume(_ bytes: Int) {
        eventLoop.preconditionInEventLoop()
        connection.streamConsume(self, bytes: bytes)
    }
}
