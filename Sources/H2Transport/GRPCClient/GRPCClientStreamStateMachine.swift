import NIOCore

/// The gRPC rules of one client-side call on one HTTP/2 stream, as a value with no I/O.
///
/// The call driver asks for the request header block (`sendHeaders`), frames request messages
/// (`sendMessage`, `nextOutboundBytes`), half-closes (`sendEnd`), and reports what the server
/// sent (`receiveHeaders`, `receiveMessageBytes`, `receiveEnd`, `receiveReset`) or that the
/// application gave up (`cancel`). It pulls response messages and, last, the call's status with
/// `nextInboundMessage()`.
///
/// Everything the server can get wrong becomes a status rather than an error, as
/// PROTOCOL-HTTP2.md asks ("Implementations must synthesize a Status & Status-Message"):
/// - Response headers: `:status` other than 200 maps through doc/http-grpc-status-mapping.md
///   (400 → INTERNAL, 401 → UNAUTHENTICATED, 403 → PERMISSION_DENIED, 404 → UNIMPLEMENTED,
///   429/502/503/504 → UNAVAILABLE, others → UNKNOWN); a content-type that is not
///   `application/grpc…` on a 200 is UNKNOWN (the table's "200 is UNKNOWN"). A header block
///   that carries `grpc-status` with END_STREAM is Trailers-Only, and then that status wins
///   ("If grpc-status was provided, it must be used").
/// - Trailers without `grpc-status` end the call with UNKNOWN (as grpc-java and grpc-go do);
///   a malformed `grpc-status` with INTERNAL; a response that ends with no trailers at all
///   (END_STREAM on DATA) with INTERNAL, as grpc-go says "server closed the stream without
///   sending trailers".
/// - RST_STREAM maps through the table in PROTOCOL-HTTP2.md ("Errors"): REFUSED_STREAM →
///   UNAVAILABLE, CANCEL → CANCELLED, ENHANCE_YOUR_CALM → RESOURCE_EXHAUSTED,
///   INADEQUATE_SECURITY → PERMISSION_DENIED, others (NO_ERROR included) → INTERNAL. A reset
///   after the trailers ("Early Server Closure") changes nothing.
///
/// Messages that arrived before the trailers are returned before the status. A local end
/// (`cancel`, a deframing failure) drops them and ends the call at once.
///
/// Only the application's own misuse (a message after `sendEnd`, say) is refused with an
/// `InvalidTransition`, leaving the state unchanged.
///
/// Not `Sendable`: it owns the call's framer and deframer (and their zlib streams) and lives
/// on one event loop.
public struct GRPCClientStreamStateMachine {
    /// Limits and compression choices for calls. Every default is safe against a server that
    /// misbehaves.
    public struct Configuration: Sendable, Hashable {
        /// The largest response message accepted, on the wire and after decompression.
        /// Default 4 MiB, as grpc-core.
        public var maxReceiveMessageSize: Int = GRPCMessageDeframer.defaultMaxMessageSize
        /// The largest request message sent. Default: no limit beyond the 4-byte length.
        public var maxSendMessageSize: Int = Int(UInt32.max)
        /// Response encodings accepted, advertised in `grpc-accept-encoding`. A response whose
        /// `grpc-encoding` is not among them fails with INTERNAL. Default identity, deflate
        /// and gzip.
        public var acceptedEncodings: [GRPCCompression.Algorithm] = GRPCCompression.Algorithm.all
        /// Request messages shorter than this are never compressed. Default 64 bytes.
        public var minimumCompressionSize: Int = GRPCMessageFramer.defaultMinimumCompressionSize
        /// The `user-agent` sent with every request. Default `switchyard/0.1`.
        public var userAgent: String = "switchyard/0.1"

        /// The defaults.
        public init() {}
    }

    /// What the request header block says: which method, where, with what metadata, deadline
    /// and compression.
    public struct RequestHead: Sendable, Hashable {
        /// `:path`, e.g. `/inference.GRPCInferenceService/ModelInfer`.
        public var path: String
        /// `:scheme`: `https` over TLS, `http` for h2c.
        public var scheme: String
        /// `:authority`, e.g. `localhost:8443`.
        public var authority: String
        /// Custom metadata; reserved names are left out (see `GRPCMetadata`).
        public var metadata: GRPCMetadata
        /// What is left of the deadline when the headers go out, sent as `grpc-timeout`
        /// (rounded up, never early); nil for no deadline.
        public var timeout: Duration?
        /// The request messages' compression, sent as `grpc-encoding`; nil or identity sends
        /// them uncompressed.
        public var compression: GRPCCompression.Algorithm?

        /// A head for `path` with everything else optional.
        public init(
            path: String,
            scheme: String = "http",
            authority: String,
            metadata: GRPCMetadata = GRPCMetadata(),
            timeout: Duration? = nil,
            compression: GRPCCompression.Algorithm? = nil
        ) {
            self.path = path
            self.scheme = scheme
            self.authority = authority
            self.metadata = metadata
            self.timeout = timeout
            self.compression = compression
        }
    }

    /// An event that the application may not cause in the current state. The machine's state
    /// is unchanged; it is a bug in the caller.
    public struct InvalidTransition: Error, Sendable, Hashable, CustomStringConvertible {
        /// The refused event, e.g. `sendMessage`.
        public let event: String
        /// The state it arrived in, e.g. `request closed, response receiving`.
        public let state: String
        /// Why it is refused.
        public let reason: String

        public var description: String { "\(event) refused (\(state)): \(reason)" }
    }

    /// What a received header block means.
    public enum ReceiveHeadersAction: Sendable, Hashable {
        /// The response headers, with their custom metadata: messages follow.
        case responseHeaders(GRPCMetadata)
        /// The response is over (trailers, Trailers-Only, or a response that is not gRPC):
        /// take the remaining messages and then the status with `nextInboundMessage()`.
        case responseEnded
        /// Nothing to do: an informational (1xx) block, or a block after the call ended.
        case ignored
    }

    /// The next response message, or why there is none.
    public enum InboundMessage: Sendable, Hashable {
        /// A complete, decompressed response message.
        case message(ByteBuffer)
        /// No complete message yet; more DATA (or the trailers) is needed.
        case awaitingMoreData
        /// The call is over with `status` and the server's `trailers`. When `resetStream` is
        /// set, send RST_STREAM with that code: CANCEL when the client stops listening to a
        /// stream the server has not ended, NO_ERROR when the server ended its side before
        /// the client did ("Early Server Closure" in PROTOCOL-HTTP2.md). It is set only the
        /// first time `finished` is returned.
        case finished(status: GRPCStatus, trailers: GRPCMetadata, resetStream: HTTP2ErrorCode?)
    }

    /// The outcome of `sendMessage`.
    public enum SendMessageResult: Sendable, Hashable {
        /// Framed; take the bytes with `nextOutboundBytes()`.
        case framed
        /// Not framed: the message exceeds `maxSendMessageSize`. Cancel the call with this
        /// status (RESOURCE_EXHAUSTED).
        case refused(GRPCStatus)
    }

    private enum RequestState: String {
        case idle, open, closed
    }

    private enum ResponseState {
        /// No response headers yet.
        case awaitingHeaders
        /// Response headers arrived; messages are being deframed.
        case receiving
        /// The server ended the response with this status; messages may remain in the deframer.
        case draining(GRPCStatus, GRPCMetadata)
        /// The status is final.
        case finished(GRPCStatus, GRPCMetadata)

        var name: String {
            switch self {
            case .awaitingHeaders: return "awaiting headers"
            case .receiving: return "receiving"
            case .draining: return "draining"
            case .finished: return "finished"
            }
        }
    }

    /// The configuration in force.
    public let configuration: Configuration
    private var request: RequestState = .idle
    private var response: ResponseState = .awaitingHeaders
    /// The server ended its side of the stream (END_STREAM, or a reset).
    private var peerEnded = false
    private var pendingReset: HTTP2ErrorCode?
    private var finishReported = false
    private var framer: GRPCMessageFramer?
    private var deframer: GRPCMessageDeframer?
    private let allocator: ByteBufferAllocator

    /// A machine for one new call.
    public init(configuration: Configuration = Configuration(), allocator: ByteBufferAllocator = ByteBufferAllocator()) {
        self.configuration = configuration
        self.allocator = allocator
    }

    /// Whether the call's status is final (messages still waiting are dropped). False while
    /// the server's status waits behind response messages not yet taken.
    public var isFinished: Bool {
        if case .finished = response { return true }
        return false
    }

    /// Whether the server has ended the response, or the call ended otherwise: no more
    /// response bytes matter.
    public var hasResponseEnded: Bool {
        switch response {
        case .awaitingHeaders, .receiving: return false
        case .draining, .finished: return true
        }
    }

    /// Whether the request side is closed (`sendEnd` was called).
    public var isRequestClosed: Bool { request == .closed }

    // MARK: - Outbound

    /// The request header block: `:method POST`, `:scheme`, `:path`, `:authority`, `te:
    /// trailers`, `content-type: application/grpc`, `grpc-timeout` when there is a deadline,
    /// `grpc-encoding` when requests are compressed, `grpc-accept-encoding`, `user-agent`,
    /// then the custom metadata. Write it as HEADERS without END_STREAM.
    public mutating func sendHeaders(_ head: RequestHead) throws(InvalidTransition) -> GRPCHeaderFields {
        guard request == .idle else { throw refusal("sendHeaders", "the request headers were already sent") }
        guard !isFinished else { throw refusal("sendHeaders", "the call is over") }
        request = .open
        let encoding = head.compression == .identity ? nil : head.compression
        framer = GRPCMessageFramer(
            encoding: encoding,
            maxMessageSize: configuration.maxSendMessageSize,
            minimumCompressionSize: configuration.minimumCompressionSize,
            allocator: allocator
        )
        var headers: GRPCHeaderFields = [
            (":method", "POST"),
            (":scheme", head.scheme),
            (":path", head.path),
            (":authority", head.authority),
            ("te", "trailers"),
            ("content-type", "application/grpc"),
        ]
        if let timeout = head.timeout {
            headers.append(("grpc-timeout", GRPCTimeout(rounding: timeout).wireValue))
        }
        if let encoding {
            headers.append(("grpc-encoding", encoding.name))
        }
        headers.append(("grpc-accept-encoding", GRPCRequestHead.acceptEncodingValue(configuration.acceptedEncodings)))
        headers.append(("user-agent", configuration.userAgent))
        head.metadata.appendHeaderFields(to: &headers)
        return headers
    }

    /// Frames one request message (compressed when the request is and `compress` allows it).
    /// Several messages accumulate until `nextOutboundBytes()` takes them.
    public mutating func sendMessage(_ message: ByteBuffer, compress: Bool = true) throws(InvalidTransition) -> SendMessageResult {
        switch request {
        case .idle: throw refusal("sendMessage", "a message before the request headers")
        case .closed: throw refusal("sendMessage", "the request was already ended")
        case .open: break
        }
        guard !isFinished else { throw refusal("sendMessage", "the call is over") }
        do throws(GRPCStatus) {
            try framer!.append(message, compress: compress)
            return .framed
        } catch {
            return .refused(error)
        }
    }

    /// The framed request messages not yet written, as one buffer for DATA frames.
    public mutating func nextOutboundBytes() -> ByteBuffer? {
        framer?.flush()
    }

    /// Ends the request (END_STREAM). Returns framed messages not yet taken: write them first.
    public mutating func sendEnd() throws(InvalidTransition) -> ByteBuffer? {
        switch request {
        case .idle: throw refusal("sendEnd", "no request headers were sent")
        case .closed: throw refusal("sendEnd", "the request was already ended")
        case .open: break
        }
        request = .closed
        let pending = framer?.flush()
        framer = nil
        if hasResponseEnded, pendingReset == .noError, peerEnded {
            // The server ended first and we had promised NO_ERROR to deallocate the stream;
            // our END_STREAM now closes it instead.
            pendingReset = nil
        }
        return pending
    }

    // MARK: - Inbound

    /// A header block arrived: response headers, trailers, a Trailers-Only response, or an
    /// informational (1xx) block. `endStream`: it carried END_STREAM.
    public mutating func receiveHeaders(
        _ headers: some Sequence<(name: String, value: String)>,
        endStream: Bool
    ) -> ReceiveHeadersAction {
        if endStream { peerEnded = true }
        switch response {
        case .draining, .finished:
            return .ignored
        case .awaitingHeaders:
            return receiveResponseHeaders(ResponseFields(headers), endStream: endStream)
        case .receiving:
            return receiveTrailers(ResponseFields(headers), endStream: endStream)
        }
    }

    /// The bytes of one DATA frame of the response.
    public mutating func receiveMessageBytes(_ bytes: ByteBuffer) {
        switch response {
        case .awaitingHeaders:
            end(GRPCStatus(code: .internalError, message: "the server sent DATA before the response headers"), reset: .cancel)
        case .receiving:
            deframer?.append(bytes)
        case .draining, .finished:
            break
        }
    }

    /// END_STREAM arrived on DATA (END_STREAM on a header block is reported with it, and a
    /// second report is ignored).
    public mutating func receiveEnd() {
        peerEnded = true
        switch response {
        case .awaitingHeaders:
            end(
                GRPCStatus(code: .internalError, message: "the server ended the stream without response headers"),
                reset: request == .open ? .noError : nil)
        case .receiving:
            response = .draining(
                GRPCStatus(code: .internalError, message: "the server closed the stream without sending trailers"),
                GRPCMetadata()
            )
            if request != .closed { pendingReset = .noError }
        case .draining, .finished:
            break
        }
    }

    /// The server reset the stream with HTTP/2 error `code` (or nghttp2 closed it with that
    /// code, e.g. REFUSED_STREAM for a stream above a GOAWAY's last stream id). Returns true
    /// when this ended the call; false when the server's status had already arrived (a reset
    /// after trailers is "Early Server Closure") or the call was already over.
    @discardableResult
    public mutating func receiveReset(_ code: HTTP2ErrorCode) -> Bool {
        peerEnded = true
        // A reset stream is gone: nothing of ours needs to close it.
        pendingReset = nil
        guard !hasResponseEnded else { return false }
        end(GRPCStatus(http2ResetCode: code.rawValue), reset: nil)
        return true
    }

    /// The application ends the call with `status` (cancellation, deadline, a lost
    /// connection). Response messages not yet taken are dropped. Returns the RST_STREAM code
    /// to send (CANCEL), or nil when the stream needs none (not opened, or ended both ways)
    /// or the call was already over.
    public mutating func cancel(with status: GRPCStatus) -> HTTP2ErrorCode? {
        guard !isFinished else { return nil }
        let needsReset = request != .idle && !(peerEnded && request == .closed)
        end(status, reset: nil)
        finishReported = true
        return needsReset ? .cancel : nil
    }

    /// The next response message, or the call's status once every message was returned.
    /// Call until it returns something other than `.message`.
    public mutating func nextInboundMessage() -> InboundMessage {
        switch response {
        case .awaitingHeaders:
            return .awaitingMoreData
        case .receiving:
            do throws(GRPCStatus) {
                if let message = try deframer!.nextMessage() { return .message(message) }
                return .awaitingMoreData
            } catch {
                end(error, reset: peerEnded && request == .closed ? nil : .cancel)
                return takeFinished()
            }
        case .draining(let status, let trailers):
            do throws(GRPCStatus) {
                if let message = try deframer?.nextMessage() { return .message(message) }
                try deframer?.finish()
                response = .finished(status, trailers)
            } catch {
                // A message too large or corrupt fails the call here, whatever the server
                // said; a truncated one only matters when the server claimed success.
                if status.code == .ok || error.code == .resourceExhausted {
                    response = .finished(error, GRPCMetadata())
                } else {
                    response = .finished(status, trailers)
                }
            }
            deframer = nil
            return takeFinished()
        case .finished:
            return takeFinished()
        }
    }

    // MARK: - Private

    /// Response fields gathered in one pass.
    private struct ResponseFields {
        var status: [String] = []
        var contentType: [String] = []
        var encoding: [String] = []
        var grpcStatus: [String] = []
        var grpcMessage: String?
        var custom: GRPCHeaderFields = []

        init(_ headers: some Sequence<(name: String, value: String)>) {
            for (name, value) in headers {
                switch name {
                case ":status": status.append(value)
                case "content-type": contentType.append(value)
                case "grpc-encoding": encoding.append(value)
                case "grpc-status": grpcStatus.append(value)
                case "grpc-message": grpcMessage = grpcMessage ?? value
                default: custom.append((name, value))
                }
            }
        }

        /// The status the trailers carry: UNKNOWN when there is none, INTERNAL when it is not
        /// a number.
        var trailerStatus: GRPCStatus {
            let message = grpcMessage.map(GRPCStatusMessage.decode) ?? ""
            guard let value = grpcStatus.first else {
                return GRPCStatus(code: .unknown, message: "the server's trailers carry no grpc-status")
            }
            guard grpcStatus.count == 1, let code = GRPCStatus.Code(wireValue: value) else {
                return GRPCStatus(code: .internalError, message: "malformed grpc-status '\(grpcStatus.joined(separator: ", "))'")
            }
            return GRPCStatus(code: code, message: message)
        }
    }

    private mutating func receiveResponseHeaders(_ fields: ResponseFields, endStream: Bool) -> ReceiveHeadersAction {
        let noRequestReset: HTTP2ErrorCode? = request == .open ? .noError : nil
        // Trailers-Only (or an HTTP error that says its gRPC status): grpc-status wins.
        if endStream, !fields.grpcStatus.isEmpty {
            let status = fields.trailerStatus
            do throws(GRPCStatus) {
                end(status, trailers: try GRPCMetadata(headerFields: fields.custom), reset: noRequestReset)
            } catch {
                end(error, reset: noRequestReset)
            }
            return .responseEnded
        }
        let resetIfOpen: HTTP2ErrorCode? = endStream ? noRequestReset : .cancel

        guard fields.status.count == 1, let httpStatus = Int(fields.status[0]) else {
            end(GRPCStatus(code: .internalError, message: "the response has no valid :status"), reset: resetIfOpen)
            return .responseEnded
        }
        if (100..<200).contains(httpStatus) && !endStream {
            return .ignored
        }
        guard httpStatus == 200 else {
            end(GRPCStatus(httpStatus: httpStatus), reset: resetIfOpen)
            return .responseEnded
        }
        guard fields.contentType.count == 1, GRPCRequestHead.isGRPCContentType(fields.contentType[0]) else {
            let found = fields.contentType.isEmpty ? "no content-type" : "content-type '\(fields.contentType.joined(separator: ", "))'"
            end(GRPCStatus(code: .unknown, message: "the response is not gRPC: \(found)"), reset: resetIfOpen)
            return .responseEnded
        }
        if endStream {
            end(GRPCStatus(code: .unknown, message: "the response ended without grpc-status"), reset: noRequestReset)
            return .responseEnded
        }

        var encoding: GRPCCompression.Algorithm?
        switch fields.encoding.count {
        case 0:
            break
        case 1:
            let name = fields.encoding[0]
            guard let algorithm = GRPCCompression.Algorithm(name: name),
                algorithm == .identity || configuration.acceptedEncodings.contains(algorithm)
            else {
                let accepted = GRPCRequestHead.acceptEncodingValue(configuration.acceptedEncodings)
                end(
                    GRPCStatus(code: .internalError, message: "the response's grpc-encoding '\(name)' is not one we accept (\(accepted))"),
                    reset: .cancel)
                return .responseEnded
            }
            encoding = algorithm
        default:
            end(GRPCStatus(code: .internalError, message: "more than one grpc-encoding in the response"), reset: .cancel)
            return .responseEnded
        }

        let metadata: GRPCMetadata
        do throws(GRPCStatus) {
            metadata = try GRPCMetadata(headerFields: fields.custom)
        } catch {
            end(error, reset: .cancel)
            return .responseEnded
        }
        deframer = GRPCMessageDeframer(maxMessageSize: configuration.maxReceiveMessageSize, encoding: encoding, allocator: allocator)
        response = .receiving
        return .responseHeaders(metadata)
    }

    private mutating func receiveTrailers(_ fields: ResponseFields, endStream: Bool) -> ReceiveHeadersAction {
        guard endStream else {
            // nghttp2 refuses this itself; kept so the machine stands on its own.
            end(GRPCStatus(code: .internalError, message: "a second header block without END_STREAM"), reset: .cancel)
            return .responseEnded
        }
        let status = fields.trailerStatus
        let trailers: GRPCMetadata
        do throws(GRPCStatus) {
            trailers = try GRPCMetadata(headerFields: fields.custom)
        } catch {
            response = .draining(error, GRPCMetadata())
            if request == .open { pendingReset = .noError }
            return .responseEnded
        }
        response = .draining(status, trailers)
        if request == .open { pendingReset = .noError }
        return .responseEnded
    }

    private mutating func end(_ status: GRPCStatus, trailers: GRPCMetadata = GRPCMetadata(), reset: HTTP2ErrorCode?) {
        response = .finished(status, trailers)
        pendingReset = reset
        deframer = nil
        framer = nil
    }

    private mutating func takeFinished() -> InboundMessage {
        guard case .finished(let status, let trailers) = response else { return .awaitingMoreData }
        let reset = finishReported ? nil : pendingReset
        finishReported = true
        pendingReset = nil
        return .finished(status: status, trailers: trailers, resetStream: reset)
    }

    private func refusal(_ event: String, _ reason: String) -> InvalidTransition {
        InvalidTransition(event: event, state: "request \(request.rawValue), response \(response.name)", reason: reason)
    }
}

@available(*, unavailable, message: "the state machine owns zlib streams and stays on one event loop")
extension GRPCClientStreamStateMachine: Sendable {}
