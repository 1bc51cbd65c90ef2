import NIOCore

/// A client call driven from its connection's event loop (`GRPCClientConnection.startCallOnEventLoop`):
/// request messages go out with `send`, responses arrive in the callbacks given when it started.
///
/// Confined to the connection's event loop, like the callbacks; not `Sendable`. Holding it is
/// optional: the call runs to its end without it.
public struct GRPCClientLoopCall {
    /// What the call reports, on the event loop.
    final class Callbacks {
        let onMessage: (ByteBuffer) -> Void
        let onEnd: (GRPCStatus) -> Void

        init(onMessage: @escaping (ByteBuffer) -> Void, onEnd: @escaping (GRPCStatus) -> Void) {
            self.onMessage = onMessage
            self.onEnd = onEnd
        }
    }

    let call: GRPCClientCall

    /// Frames and queues one request message. Returns false when it was not queued because the
    /// call has ended (its status has gone, or goes, to `onEnd`).
    @discardableResult
    public func send(_ message: ByteBuffer, compress: Bool = true) -> Bool {
        guard call.outcome == nil else { return false }
        _ = call.send(message, compress: compress)
        return true
    }

    /// Ends the request stream (END_STREAM) after the messages sent. Idempotent.
    public func finish() {
        call.finishRequest()
    }

    /// Cancels the call: RST_STREAM CANCEL, and `onEnd` gets CANCELLED unless it already ended.
    public func cancel() {
        call.cancel(with: GRPCStatus(code: .cancelled, message: "the call was cancelled by the client"))
    }

    /// Whether the call has ended.
    public var hasEnded: Bool { call.outcome != nil }
}

@available(*, unavailable, message: "a call lives on its connection's event loop")
extension GRPCClientLoopCall: Sendable {}

