import Logging
import NIOCore

/// What a method implementation hears about its call. All calls arrive on the call's event loop.
public protocol GRPCServerCallHandler: AnyObject {
    /// One request message (decompressed, without the 5-byte prefix).
    func callReceived(message: ByteBuffer)
    /// The client has sent its last message.
    func callReceivedEnd()
    /// The call ended without the handler: the client cancelled (RST_STREAM), the deadline
    /// passed, or the connection went away. Stop the work and free what it holds; nothing more
    /// can be sent.
    func callCancelled(_ status: GRPCStatus)
    /// The connection is draining (`reason`: "the gateway is shutting down"): the call may run
    /// to its end within the drain timeout, but a long-lived call should wrap up and tell its
    /// client why. Default: nothing. A call still open when the drain timeout passes is ended
    /// with UNAVAILABLE and cancelled.
    func callDraining(reason: String)
}

extension GRPCServerCallHandler {
    public func callReceivedEnd() {}
    public func callDraining(reason: String) {}
}

/// One server-side gRPC call, as a method implementation sees it: the request head and the
/// means to answer. Confined to `eventLoop`; hop there (`eventLoop.execute`) from elsewhere.
public final class GRPCServerCall {
    /// The validated request head: path, deadline, metadata, encodings.
    public let head: GRPCRequestHead
    /// The connection: peer address, TLS details, the client certificate's identity.
    public let connection: HTTP2ConnectionInfo
    /// The event loop the call lives on.
    public let eventLoop: EventLoop
    /// A logger with the call's path and peer. The path is attached when the logger is asked
    /// for, not per call: swift-log handlers re-render their metadata on every change, which
    /// cost 7.5 % of the CPU of a health check when done for every request.
    public var logger: Logger {
        get {
            var logger = baseLogger
            logger[metadataKey: "grpc.path"] = "\(head.path)"
            if !requestID.isEmpty { logger[metadataKey: "request_id"] = "\(requestID)" }
            return logger
        }
        set { baseLogger = newValue }
    }
    private var baseLogger: Logger

    /// The served method; nil when the path names none (the call then ends UNIMPLEMENTED).
    public internal(set) var method: GRPCMethodDescriptor?
    /// The call's request id: the client's `x-request-id` when it sent a usable one (1 to 128
    /// visible ASCII characters), else empty until the server's observer assigns one. When the
    /// server echoes request ids, a non-empty id goes back in the response headers.
    public var requestID: String
    /// When the call's head arrived.
    public let startedAt: NIODeadline
    /// Request bytes received (DATA payload, gRPC framing included).
    public internal(set) var bytesReceived = 0
    /// Response bytes sent (gRPC framing included; headers not counted).
    public internal(set) var bytesSent = 0
    /// One more response header field the implementation wants sent with the response headers
    /// (the gateway's `x-switchyard-variant`), without building metadata. Set it before the
    /// first message.
    public var responseHeader: (name: String, value: String)?
    /// What the method's implementation learned about the call, for access logs and traces.
    public var annotations = GRPCCallAnnotations()
    /// Who is calling, as the call gate (`GRPCServerCallGate`) authenticated them, for the
    /// layers above (the gateway's principal and its permissions); nil without a gate.
    public var principal: AnyObject?
    /// What the call gate took for the call (a concurrency slot), for it to give back in
    /// `admittedCallEnded`; nil for nothing.
    public var gateToken: AnyObject?

    /// Strong (a weak reference costs a side-table allocation per call); the stream handler
    /// clears it when the stream closes, which breaks the cycle.
    var streamHandler: GRPCServerStreamHandler?
    /// Called when the send side crosses its watermarks: stop producing while false.
    public var onWritabilityChanged: ((Bool) -> Void)?
    /// Called once when the call ends: with the status it finished with, or the status it was
    /// cancelled with (client reset, deadline, connection gone). For observers such as traces.
    public var onEnded: ((GRPCStatus) -> Void)?

    init(
        head: GRPCRequestHead, connection: HTTP2ConnectionInfo, eventLoop: EventLoop, logger: Logger, streamHandler: GRPCServerStreamHandler,
        startedAt: NIODeadline
    ) {
        self.requestID = Self.clientRequestID(head.metadata)
        self.startedAt = startedAt
        self.head = head
        self.connection = connection
        self.eventLoop = eventLoop
        self.baseLogger = logger
        self.streamHandler = streamHandler
    }

    /// The client's `x-request-id` if it is 1 to 128 visible ASCII characters, else "".
    static func clientRequestID(_ metadata: GRPCMetadata) -> String {
        guard !metadata.isEmpty else { return "" }
        var found: String?
        for field in metadata.fields where field.name == "x-request-id" {
            if case .string(let text) = field.value { found = text }
            break
        }
        guard let id = found else { return "" }
        var count = 0
        for byte in id.utf8 {
            guard byte > 0x20, byte < 0x7F else { return "" }
            count += 1
            if count > 128 { return "" }
        }
        return id
    }

    /// Tells `onEnded` (once) that the call ended with `status`.
    func ended(_ status: GRPCStatus) {
        guard let onEnded else { return }
        self.onEnded = nil
        onEnded(status)
    }

    /// True once a status was sent or the call was cancelled.
    public var isFinished: Bool { streamHandler?.isFinished ?? true }

    /// False while sent messages wait for the client's flow-control window beyond the
    /// stream's high watermark.
    public var isWritable: Bool { streamHandler?.isWritable ?? false }

    /// Response bytes sent on this call that wait for the client's flow-control window.
    public var bufferedOutboundBytes: Int { streamHandler?.bufferedOutboundBytes ?? 0 }

    /// Sends the response headers with custom metadata. Optional: the first message or the
    /// status sends them when needed.
    public func sendHeaders(_ metadata: GRPCMetadata = GRPCMetadata()) {
        streamHandler?.sendHeaders(metadata)
    }

    /// Sends one response message: bytes, or a message that serializes itself into the frame
    /// (`GRPCMessageEncodable`, which saves a buffer and a copy).
    public func sendMessage(_ message: some GRPCMessageEncodable, compress: Bool = true) {
        streamHandler?.sendMessage(message, compress: compress)
    }

    /// Ends the call with a status and optional trailing metadata.
    public func finish(_ status: GRPCStatus, trailers: GRPCMetadata = GRPCMetadata()) {
        streamHandler?.finish(status, trailers: trailers)
    }

    /// Ends the call with an error's status and trailers.
    public func finish(_ error: RPCError) {
        finish(error.status, trailers: error.trailers)
    }

    /// Stops taking request bytes: the HTTP/2 window is not reopened, so the client stops
    /// sending once it is used up. Use while the next hop cannot take more.
    public func pauseReceiving() {
        streamHandler?.setReceivePaused(true)
    }

    /// Takes request bytes again and delivers what arrived meanwhile.
    public func resumeReceiving() {
        streamHandler?.setReceivePaused(false)
    }
}

/// What a method's implementation tells the server's observer about its call: the model and
/// version it ran and the backend process that answered. Empty fields mean "not applicable".
public struct GRPCCallAnnotations: Sendable {
    public var model: String = ""
    public var modelVersion: String = ""
    /// The process id of the worker that answered; 0 for none.
    public var workerPID: Int32 = 0
    /// Who called, as the call gate authenticated them (a principal's name); empty for none.
    public var principal: String = ""

    public init() {}
}
