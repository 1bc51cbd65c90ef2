import NIOCore

/// Hears what a gRPC server's connections and calls do: the seam for metrics and access logs.
///
/// A server asks its `GRPCServer.Configuration.observer` for one observer per connection, on
/// the connection's event loop, and calls it only on that loop. Give every connection of a loop
/// the same object and it can keep plain counters with no lock and no atomic. Every method runs
/// on the hot path: it must be cheap, must not allocate per call, and must never block.
public protocol GRPCServerObserver: AnyObject {
    /// A connection was accepted (before any TLS handshake).
    func connectionOpened(secure: Bool)
    /// A connection closed, for whatever reason.
    func connectionClosed(secure: Bool)
    /// A TLS handshake completed; `resumed` when it resumed an earlier session.
    func tlsHandshakeSucceeded(resumed: Bool)
    /// A TLS handshake failed (the connection is then closed).
    func tlsHandshakeFailed(_ reason: TLSHandshakeFailureReason)
    /// The server sent GOAWAY on a connection, or closed it for the same kind of reason.
    func goAwaySent(_ reason: HTTP2GoAwayReason)

    /// A call's head was accepted. `call.method` is nil when no such method is served (the call
    /// ends with UNIMPLEMENTED right after). The observer may set `call.requestID` here.
    func callStarted(_ call: GRPCServerCall)
    /// A request message arrived on a streaming call (unary calls count one per call).
    func callReceivedMessage(_ call: GRPCServerCall)
    /// A response message went out on a streaming call.
    func callSentMessage(_ call: GRPCServerCall)
    /// The call ended: its status was sent, or it was cancelled (client reset, deadline,
    /// connection closed) with `status` saying how. Called exactly once per started call.
    func callFinished(_ call: GRPCServerCall, status: GRPCStatus)
}

extension GRPCServerObserver {
    public func connectionOpened(secure: Bool) {}
    public func connectionClosed(secure: Bool) {}
    public func tlsHandshakeSucceeded(resumed: Bool) {}
    public func tlsHandshakeFailed(_ reason: TLSHandshakeFailureReason) {}
    public func goAwaySent(_ reason: HTTP2GoAwayReason) {}
    public func callStarted(_ call: GRPCServerCall) {}
    public func callReceivedMessage(_ call: GRPCServerCall) {}
    public func callSentMessage(_ call: GRPCServerCall) {}
    public func callFinished(_ call: GRPCServerCall, status: GRPCStatus) {}
}

/// Why the server ended (or began to end) a connection: the `reason` label of GOAWAY metrics.
public enum HTTP2GoAwayReason: Int, CaseIterable, Sendable {
    /// The server is shutting down (graceful drain).
    case shutdown
    /// No stream for the idle timeout.
    case idle
    /// The connection reached its maximum age.
    case maxAge
    /// The peer did not answer a keepalive PING in time.
    case keepaliveTimeout
    /// The client did not send the HTTP/2 preface in time.
    case prefaceTimeout
    /// The client pinged more often than allowed.
    case pingFlood
    /// The client reset streams faster than allowed (CVE-2023-44487, "Rapid Reset").
    case rapidReset
    /// The client left too many SETTINGS or PINGs unacknowledged (it does not read).
    case unreadControlFrames
    /// Too many CONTINUATION frames for one header block.
    case continuationFlood
    /// Too many no-op or invalid frames (empty DATA, PRIORITY, unknown types, big headers).
    case invalidFrames
    /// An HTTP/2 protocol error (nghttp2 answered it with GOAWAY).
    case protocolError

    /// The label value.
    public var label: String {
        switch self {
        case .shutdown: "shutdown"
        case .idle: "idle"
        case .maxAge: "max_age"
        case .keepaliveTimeout: "keepalive_timeout"
        case .prefaceTimeout: "preface_timeout"
        case .pingFlood: "ping_flood"
        case .rapidReset: "rapid_reset"
        case .unreadControlFrames: "unread_control_frames"
        case .continuationFlood: "continuation_flood"
        case .invalidFrames: "invalid_frames"
        case .protocolError: "protocol_error"
        }
    }

    /// True for the cut-offs of a hostile or broken peer (GOAWAY ENHANCE_YOUR_CALM).
    public var isHostilePeer: Bool {
        switch self {
        case .pingFlood, .rapidReset, .unreadControlFrames, .continuationFlood, .invalidFrames: true
        default: false
        }
    }
}

/// Why a TLS handshake failed: the `reason` label of TLS metrics.
public enum TLSHandshakeFailureReason: Int, CaseIterable, Sendable {
    /// No handshake within the handshake timeout.
    case timeout
    /// The peer closed the connection during the handshake.
    case peerClosed
    /// The client's certificate was missing or did not verify (mutual TLS).
    case clientCertificate
    /// The client does not speak TLS here (plain HTTP/2 or HTTP/1 to a TLS port).
    case notTLS
    /// No protocol version, cipher or ALPN protocol in common.
    case noSharedProtocol
    /// Anything else OpenSSL refused.
    case other

    /// The label value.
    public var label: String {
        switch self {
        case .timeout: "timeout"
        case .peerClosed: "peer_closed"
        case .clientCertificate: "client_certificate"
        case .notTLS: "not_tls"
        case .noSharedProtocol: "no_shared_protocol"
        case .other: "other"
        }
    }

    /// Classifies a handshake error by its kind and OpenSSL's reason text.
    public init(_ error: TLSError) {
        switch error.code {
        case .handshakeTimedOut: self = .timeout
        case .closedDuringHandshake: self = .peerClosed
        case .noApplicationProtocol: self = .noSharedProtocol
        default:
            let message = error.message.lowercased()
            if message.contains("certificate") {
                self = .clientCertificate
            } else if message.contains("wrong version number") || message.contains("http request") || message.contains("packet length too long")
                || message.contains("record layer failure")
            {
                self = .notTLS
            } else if message.contains("no shared") || message.contains("unsupported protocol") || message.contains("version too low")
                || message.contains("no application protocol")
            {
                self = .noSharedProtocol
            } else {
                self = .other
            }
        }
    }
}

/// The shape of a gRPC method: the `grpc_type` label of gRPC server metrics.
public enum GRPCMethodType: Int, Sendable {
    case unary
    case clientStreaming
    case serverStreaming
    case bidiStreaming

    /// The label value, as grpc-ecosystem's interceptors write it.
    public var label: String {
        switch self {
        case .unary: "unary"
        case .clientStreaming: "client_stream"
        case .serverStreaming: "server_stream"
        case .bidiStreaming: "bidi_stream"
        }
    }
}

/// A served method, as observers see it: its dense index (for arrays of per-method counters),
/// service and method names and type. Made once at registration; calls share it.
public final class GRPCMethodDescriptor: Sendable {
    /// 0 ..< `GRPCServiceRegistry.methodCount`, in registration order.
    public let index: Int
    /// The path, `/package.Service/Method`.
    public let path: String
    /// `package.Service`.
    public let service: String
    /// `Method`.
    public let name: String
    public let type: GRPCMethodType

    init(index: Int, path: String, type: GRPCMethodType) {
        self.index = index
        self.path = path
        self.type = type
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        self.service = parts.count == 2 ? String(parts[0]) : path
        self.name = parts.count == 2 ? String(parts[1]) : ""
    }
}
