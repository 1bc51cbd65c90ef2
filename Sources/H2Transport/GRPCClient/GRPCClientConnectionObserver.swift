import NIOConcurrencyHelpers
import NIOCore

/// What a client connection's owner and its calls know about the connection: whether it is
/// ready, going away or closed, and why. Shared across threads, guarded by a lock.
final class GRPCClientConnectionState: Sendable {
    enum Phase: Sendable, Equatable {
        /// Connecting, handshaking, or waiting for the server's first SETTINGS.
        case connecting
        /// Calls may start.
        case ready
        /// GOAWAY was received or sent: no new calls; calls already accepted go on.
        case goingAway
        /// The channel is closed.
        case closed
    }

    private struct Value {
        var phase: Phase = .connecting
        var reason: GRPCStatus?
        var readyClaimed = false
        var maxConcurrentStreams: UInt32?
    }

    private let value = NIOLockedValueBox(Value())

    /// The current phase.
    var phase: Phase { value.withLockedValue { $0.phase } }

    /// Why a new call cannot start (UNAVAILABLE), or nil when it can.
    var unavailableReason: GRPCStatus? {
        value.withLockedValue { $0.phase == .ready ? nil : $0.reason ?? GRPCStatus(code: .unavailable, message: "the connection is not ready") }
    }

    /// Why the connection is closed, once it is.
    var closedReason: GRPCStatus? {
        value.withLockedValue { $0.phase == .closed ? $0.reason : nil }
    }

    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS, once its SETTINGS arrived.
    var maxConcurrentStreams: UInt32? { value.withLockedValue { $0.maxConcurrentStreams } }

    /// True the first time only: whoever gets it completes the connect promise.
    func claimReadiness() -> Bool {
        value.withLockedValue { state in
            defer { state.readyClaimed = true }
            return !state.readyClaimed
        }
    }

    func settingsReceived(maxConcurrentStreams: UInt32) {
        value.withLockedValue { state in
            state.maxConcurrentStreams = maxConcurrentStreams
            if state.phase == .connecting { state.phase = .ready }
        }
    }

    func goingAway(_ reason: GRPCStatus) {
        value.withLockedValue { state in
            guard state.phase == .connecting || state.phase == .ready else { return }
            state.phase = .goingAway
            state.reason = reason
        }
    }

    func closed(_ reason: GRPCStatus) {
        value.withLockedValue { state in
            guard state.phase != .closed else { return }
            state.phase = .closed
            state.reason = reason
        }
    }
}

/// Watches a client connection's pipeline for the events its owner needs: the TLS handshake
/// (ALPN must be h2), the server's first SETTINGS (the connection is ready), GOAWAY, errors and
/// the channel closing.
///
/// One instance sits in front of the `HTTP2ConnectionHandler`, to see errors and the channel
/// going inactive before the HTTP/2 handler tears its streams down (so that the calls learn the
/// connection was lost, UNAVAILABLE, rather than cancelled); another sits behind it, for the
/// events the HTTP/2 handler fires. Everything else passes through.
final class GRPCClientConnectionObserver: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let state: GRPCClientConnectionState
    private let ready: EventLoopPromise<Void>

    init(state: GRPCClientConnectionState, ready: EventLoopPromise<Void>) {
        self.state = state
        self.ready = ready
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let handshake as TLSHandshakeCompleted:
            if handshake.negotiatedProtocol != "h2" {
                fail(TLSError(.noApplicationProtocol, "the server chose ALPN protocol '\(handshake.negotiatedProtocol)', not h2"))
                context.close(promise: nil)
            }
        case let settings as HTTP2SettingsReceived:
            state.settingsReceived(maxConcurrentStreams: settings.maxConcurrentStreams)
            if state.claimReadiness() { ready.succeed(()) }
        case let goAway as HTTP2GoAwayReceived:
            state.goingAway(
                GRPCStatus(
                    code: .unavailable,
                    message: "the server sent GOAWAY (\(goAway.code)); start the call on another connection"))
        default:
            break
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        fail(error)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        state.closed(GRPCStatus(code: .unavailable, message: "the connection to the server was closed"))
        fail(ChannelError.eof)
        context.fireChannelInactive()
    }

    private func fail(_ error: Error) {
        if state.claimReadiness() { ready.fail(error) }
    }
}
