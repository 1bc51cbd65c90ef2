import NIOCore

/// The gRPC rules of one server-side call on one HTTP/2 stream, as a value with no I/O.
///
/// The stream handler reports what arrived (`receiveHeaders`, `receiveMessageBytes`,
/// `receiveEnd`, `receiveReset`) and what the service wants to send (`sendHeaders`,
/// `sendMessage`, `sendStatus`); the machine answers with the exact header lists and bytes to
/// write, and refuses events in an order gRPC does not allow with an `InvalidTransition`,
/// leaving its state unchanged.
///
/// The two directions are tracked apart, each idle → open → closed:
/// - request: idle until the request headers, open while messages may come, closed at
///   END_STREAM.
/// - response: idle until response headers are sent, open while messages go out, closed by
///   the status (trailers, or Trailers-Only when no headers were sent before).
///
/// A reset (either way) ends both. Request bytes that arrive after the response was closed are
/// dropped: the server may finish early ("Early Server Closure" in PROTOCOL-HTTP2.md).
///
/// Not `Sendable`: it owns the stream's framer and deframer (and their zlib streams) and
/// lives in one channel handler on one event loop.
public struct GRPCServerStreamStateMachine {
    /// Limits and compression choices for calls. Read top to bottom; every default is safe
    /// for a server facing untrusted clients.
    public struct Configuration: Sendable, Hashable {
        /// The largest request message accepted, on the wire and after decompression.
        /// Default 4 MiB, as grpc-core.
        public var maxReceiveMessageSize: Int = GRPCMessageDeframer.defaultMaxMessageSize
        /// The largest response message sent. Default: no limit beyond the 4-byte length.
        public var maxSendMessageSize: Int = Int(UInt32.max)
        /// Request encodings accepted, advertised in `grpc-accept-encoding`. Default identity,
        /// deflate and gzip.
        public var supportedEncodings: [GRPCCompression.Algorithm] = GRPCCompression.Algorithm.all
        /// Response compression: the first of these that the client lists in its
        /// `grpc-accept-encoding` is used. Default empty: responses go uncompressed.
        public var responseEncodings: [GRPCCompression.Algorithm] = []
        /// Response messages shorter than this are never compressed. Default 64 bytes.
        public var minimumCompressionSize: Int = GRPCMessageFramer.defaultMinimumCompressionSize

        /// The defaults.
        public init() {}
    }

    /// An event that gRPC does not allow in the current state. The machine's state is
    /// unchanged. For events from the peer the handler resets the stream (PROTOCOL_ERROR);
    /// for the service's own events it is a bug in the caller.
    public struct InvalidTransition: Error, Sendable, Hashable, CustomStringConvertible {
        /// The refused event, e.g. `sendMessage`.
        public let event: String
        /// The state it arrived in, e.g. `request open, response idle`.
        public let state: String
        /// Why it is refused.
        public let reason: String

        public var description: String { "\(event) refused (\(state)): \(reason)" }
    }

    /// What to do after the request headers.
    public enum ReceiveHeadersAction: Sendable {
        /// Start the call with this head.
        case accept(GRPCRequestHead)
        /// Refuse the call: write `headers` as one HEADERS frame with END_STREAM, then, when
        /// `resetStream`, RST_STREAM NO_ERROR (the client has not finished sending). The
        /// response is closed; later request bytes are dropped.
        case reject(headers: GRPCHeaderFields, resetStream: Bool)
    }

    /// The next request message, or why there is none.
    public enum InboundMessage: Sendable {
        /// A complete, decompressed request message.
        case message(ByteBuffer)
        /// No complete message yet; more DATA is needed.
        case awaitingMoreData
        /// The request is over: END_STREAM arrived and every message was returned, or the
        /// response is already closed so no more messages matter.
        case endOfRequest
        /// The request stream is broken (too large, bad prefix, bad compression, ended inside
        /// a message): end the call with `sendStatus` of this status.
        case failed(GRPCStatus)
    }

    /// The outcome of `sendMessage`.
    public enum SendMessageResult: Sendable, Hashable {
        /// Framed; take the bytes with `nextOutboundBytes()`.
        case framed
        /// Not framed: the message exceeds `maxSendMessageSize`. End the call with this
        /// status (RESOURCE_EXHAUSTED, as doc/statuscodes.md says for an over-limit message).
        case refused(GRPCStatus)
    }

    /// What to write to finish the response.
    public struct SendStatusAction: Sendable {
        /// Framed messages not yet taken with `nextOutboundBytes()`: write them as DATA first.
        public var data: ByteBuffer?
        /// The trailers, or the whole Trailers-Only header block: one HEADERS frame with
        /// END_STREAM.
        public var headers: GRPCHeaderFields
        /// Whether `headers` is a Trailers-Only response (no response headers were sent).
        public var isTrailersOnly: Bool
        /// Send RST_STREAM NO_ERROR after the trailers: the client had not finished sending
        /// ("Early Server Closure" in PROTOCOL-HTTP2.md).
        public var resetStream: Bool
    }

    private enum RequestState: String {
        case idle, open, closed
    }

    private enum ResponseState: String {
        case idle, open, closed
    }

    /// The configuration in force.
    public let configuration: Configuration
    private var request: RequestState = .idle
    private var response: ResponseState = .idle
    private var wasReset = false
    private var deframer: GRPCMessageDeframer?
    private var framer: GRPCMessageFramer?
    private var responseEncoding: GRPCCompression.Algorithm?
    private let allocator: ByteBufferAllocator

    /// A machine for one new stream.
    public init(configuration: Configuration = Configuration(), allocator: ByteBufferAllocator = ByteBufferAllocator()) {
        self.configuration = configuration
        self.allocator = allocator
    }

    /// Whether the call is over for good: the status was sent and the request ended, or the
    /// stream was reset.
    public var isFinished: Bool {
        wasReset || (request == .closed && response == .closed)
    }

    /// The response encoding chosen from the client's `grpc-accept-encoding`; nil when
    /// responses go uncompressed.
    public var negotiatedResponseEncoding: GRPCCompression.Algorithm? { responseEncoding }

    // MARK: - Inbound

    /// The request header block arrived (`endStream`: it carried END_STREAM, so no messages
    /// follow). Validates it with `GRPCRequestHead.validate`.
    public mutating func receiveHeaders(
        _ headers: some Sequence<(name: String, value: String)>,
        endStream: Bool,
        receivedAt: NIODeadline
    ) throws(InvalidTransition) -> ReceiveHeadersAction {
        try receiveHeaders(fields: headers.map { HTTP2HeaderField($0.name, $0.value) }, endStream: endStream, receivedAt: receivedAt)
    }

    /// `receiveHeaders(_:endStream:receivedAt:)` on the header block as the HTTP/2 layer
    /// keeps it (validated in place, see `GRPCRequestHead.validate(fields:...)`).
    mutating func receiveHeaders(
        fields headers: [HTTP2HeaderField],
        endStream: Bool,
        receivedAt: NIODeadline
    ) throws(InvalidTransition) -> ReceiveHeadersAction {
        guard !wasReset else { throw refusal("receiveHeaders", "the stream was reset") }
        guard request == .idle else {
            throw refusal("receiveHeaders", "a second header block: gRPC requests carry no trailers")
        }
        request = endStream ? .closed : .open

        switch GRPCRequestHead.validate(fields: headers, receivedAt: receivedAt, supportedEncodings: configuration.supportedEncodings) {
        case .valid(let head):
            deframer = GRPCMessageDeframer(
                maxMessageSize: configuration.maxReceiveMessageSize,
                encoding: head.requestEncoding,
                allocator: allocator
            )
            responseEncoding = configuration.responseEncodings.first { $0 != .identity && head.acceptedEncodings.contains($0) }
            return .accept(head)

        case .rejectWithHTTPStatus(let rejection):
            response = .closed
            return .reject(headers: rejection.headerFields, resetStream: !endStream)

        case .rejectWithGRPCStatus(let status):
            response = .closed
            return .reject(headers: trailersOnly(status: status, trailers: GRPCMetadata()), resetStream: !endStream)
        }
    }

    /// The bytes of one DATA frame of the request (without END_STREAM, or before it is
    /// reported with `receiveEnd`). Dropped when the response is already closed.
    public mutating func receiveMessageBytes(_ bytes: ByteBuffer) throws(InvalidTransition) {
        guard !wasReset else { throw refusal("receiveMessageBytes", "the stream was reset") }
        switch request {
        case .idle: throw refusal("receiveMessageBytes", "DATA before the request headers")
        case .closed: throw refusal("receiveMessageBytes", "DATA after the request's END_STREAM")
        case .open: break
        }
        guard response != .closed else { return }
        deframer?.append(bytes)
    }

    /// END_STREAM arrived on the request (on DATA; END_STREAM on the headers is reported by
    /// `receiveHeaders`).
    public mutating func receiveEnd() throws(InvalidTransition) {
        guard !wasReset else { throw refusal("receiveEnd", "the stream was reset") }
        switch request {
        case .idle: throw refusal("receiveEnd", "END_STREAM before the request headers")
        case .closed: throw refusal("receiveEnd", "a second END_STREAM")
        case .open: request = .closed
        }
    }

    /// The client reset the stream with HTTP/2 error `code`. Returns the status with which
    /// the running call ends (CANCELLED for CANCEL), or nil when no call was running or it had
    /// already finished. Every later event is refused.
    public mutating func receiveReset(errorCode code: UInt32) -> GRPCStatus? {
        let wasRunning = !wasReset && request != .idle && response != .closed
        wasReset = true
        deframer = nil
        framer = nil
        return wasRunning ? GRPCStatus(http2ResetCode: code) : nil
    }

    /// The next request message. Call until it returns something other than `.message`.
    public mutating func nextInboundMessage() -> InboundMessage {
        guard !wasReset, response != .closed, request != .idle, deframer != nil else {
            return request == .idle && !wasReset ? .awaitingMoreData : .endOfRequest
        }
        do throws(GRPCStatus) {
            if let message = try deframer!.nextMessage() {
                return .message(message)
            }
            guard request == .closed else { return .awaitingMoreData }
            try deframer!.finish()
            return .endOfRequest
        } catch {
            return .failed(error)
        }
    }

    // MARK: - Outbound

    /// The response header block for `metadata`: `:status 200`, `content-type:
    /// application/grpc`, `grpc-encoding` when responses are compressed,
    /// `grpc-accept-encoding`, then the custom metadata. Write it as HEADERS without
    /// END_STREAM.
    public mutating func sendHeaders(_ metadata: GRPCMetadata = GRPCMetadata()) throws(InvalidTransition) -> GRPCHeaderFields {
        try checkCanSend("sendHeaders")
        guard response == .idle else { throw refusal("sendHeaders", "response headers were already sent") }
        response = .open
        framer = GRPCMessageFramer(
            encoding: responseEncoding,
            maxMessageSize: configuration.maxSendMessageSize,
            minimumCompressionSize: configuration.minimumCompressionSize,
            allocator: allocator
        )
        if responseEncoding == nil, metadata.isEmpty, configuration.supportedEncodings == GRPCCompression.Algorithm.all {
            return Self.defaultResponseHeaders  // the usual case, built once
        }
        var headers: GRPCHeaderFields = [(":status", "200"), ("content-type", "application/grpc")]
        if let responseEncoding {
            headers.append(("grpc-encoding", responseEncoding.name))
        }
        headers.append(("grpc-accept-encoding", GRPCRequestHead.acceptEncodingValue(configuration.supportedEncodings)))
        metadata.appendHeaderFields(to: &headers)
        return headers
    }

    /// Frames one response message (compressed when responses are and `compress` allows it).
    /// Several messages accumulate until `nextOutboundBytes()` takes them.
    public mutating func sendMessage(_ message: some GRPCMessageEncodable, compress: Bool = true) throws(InvalidTransition) -> SendMessageResult {
        try checkCanSend("sendMessage")
        guard response == .open else { throw refusal("sendMessage", "a message before the response headers") }
        do throws(GRPCStatus) {
            try framer!.append(message, compress: compress)
            return .framed
        } catch {
            return .refused(error)
        }
    }

    /// The framed response messages not yet written, as one buffer for DATA frames.
    public mutating func nextOutboundBytes() -> ByteBuffer? {
        framer?.flush()
    }

    /// Ends the response with `status` and custom `trailers`: `grpc-status`, `grpc-message`
    /// (percent-encoded, left out when empty) and the trailers; or, when no response headers
    /// were sent, the Trailers-Only block (`:status 200`, `content-type`,
    /// `grpc-accept-encoding`, then the same fields).
    public mutating func sendStatus(_ status: GRPCStatus, trailers: GRPCMetadata = GRPCMetadata()) throws(InvalidTransition) -> SendStatusAction {
        try checkCanSend("sendStatus")
        let action: SendStatusAction
        switch response {
        case .idle:
            action = SendStatusAction(
                data: nil,
                headers: trailersOnly(status: status, trailers: trailers),
                isTrailersOnly: true,
                resetStream: request == .open
            )
        case .open:
            var headers: GRPCHeaderFields
            if status.code == .ok, status.message.isEmpty, trailers.isEmpty {
                headers = Self.okTrailers  // the usual case, built once
            } else {
                headers = []
                Self.appendStatus(status, trailers: trailers, to: &headers)
            }
            action = SendStatusAction(
                data: framer?.flush(),
                headers: headers,
                isTrailersOnly: false,
                resetStream: request == .open
            )
        case .closed:
            throw refusal("sendStatus", "the status was already sent")
        }
        response = .closed
        deframer = nil
        framer = nil
        return action
    }

    /// Ends the response with an `RPCError`'s status and trailers.
    public mutating func sendStatus(_ error: RPCError) throws(InvalidTransition) -> SendStatusAction {
        try sendStatus(error.status, trailers: error.trailers)
    }

    // MARK: - Private

    private var stateDescription: String {
        wasReset ? "stream reset" : "request \(request.rawValue), response \(response.rawValue)"
    }

    private func refusal(_ event: String, _ reason: String) -> InvalidTransition {
        InvalidTransition(event: event, state: stateDescription, reason: reason)
    }

    private func checkCanSend(_ event: String) throws(InvalidTransition) {
        guard !wasReset else { throw refusal(event, "the stream was reset") }
        guard request != .idle else { throw refusal(event, "no request headers have arrived") }
        guard response != .closed else { throw refusal(event, "the status was already sent") }
    }

    /// The response headers of nearly every call (no compression, default encodings, no
    /// metadata), prepared once for nghttp2 (HTTP2PreparedHeaderBlock).
    static let preparedResponseHeaders = HTTP2PreparedHeaderBlock([
        (":status", "200"),
        ("content-type", "application/grpc"),
        ("grpc-accept-encoding", GRPCRequestHead.acceptEncodingValue(GRPCCompression.Algorithm.all)),
    ])

    /// The trailers of nearly every successful call.
    static let preparedOKTrailers = HTTP2PreparedHeaderBlock([("grpc-status", GRPCStatus.Code.ok.wireValue)])

    private static var defaultResponseHeaders: GRPCHeaderFields { preparedResponseHeaders.fields }
    private static var okTrailers: GRPCHeaderFields { preparedOKTrailers.fields }

    private func trailersOnly(status: GRPCStatus, trailers: GRPCMetadata) -> GRPCHeaderFields {
        var headers: GRPCHeaderFields = [
            (":status", "200"),
            ("content-type", "application/grpc"),
            ("grpc-accept-encoding", GRPCRequestHead.acceptEncodingValue(configuration.supportedEncodings)),
        ]
        Self.appendStatus(status, trailers: trailers, to: &headers)
        return headers
    }

    private static func appendStatus(_ status: GRPCStatus, trailers: GRPCMetadata, to headers: inout GRPCHeaderFields) {
        headers.append(("grpc-status", status.code.wireValue))
        if !status.message.isEmpty {
            headers.append(("grpc-message", GRPCStatusMessage.encode(status.message)))
        }
        trailers.appendHeaderFields(to: &headers)
    }
}

@available(*, unavailable, message: "the state machine owns zlib streams and stays on one event loop")
extension GRPCServerStreamStateMachine: Sendable {}
