/// An error that ends a gRPC call: the status for `grpc-status` / `grpc-message`, and custom
/// trailers to send with it (e.g. `retry-after` when a rate limit says RESOURCE_EXHAUSTED).
///
/// Services throw it; the transport turns it into trailers (or a Trailers-Only response) with
/// `GRPCServerStreamStateMachine.sendStatus(_:trailers:)`.
public struct RPCError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The call's outcome.
    public var status: GRPCStatus
    /// Custom trailers sent with the status.
    public var trailers: GRPCMetadata

    /// An error with `status` and optional `trailers`.
    public init(status: GRPCStatus, trailers: GRPCMetadata = GRPCMetadata()) {
        self.status = status
        self.trailers = trailers
    }

    /// An error with `code`, `message` and optional `trailers`.
    public init(code: GRPCStatus.Code, message: String, trailers: GRPCMetadata = GRPCMetadata()) {
        self.init(status: GRPCStatus(code: code, message: message), trailers: trailers)
    }

    /// The error's code.
    public var code: GRPCStatus.Code { status.code }
    /// The error's message.
    public var message: String { status.message }

    /// `CODE: message`, plus the trailer names when there are any.
    public var description: String {
        trailers.isEmpty ? status.description : "\(status) (trailers: \(trailers.map(\.name).joined(separator: ", ")))"
    }

    /// RESOURCE_EXHAUSTED that tells the client when to try again, for rate and queue limits.
    ///
    /// Two trailers carry the wait, both rounded up so a client that honours them is not
    /// refused again: `retry-after` in whole seconds (the HTTP header's unit, RFC 9110 §10.2.3)
    /// and `retry-after-ms` in milliseconds, for clients that want the precision.
    public static func resourceExhausted(_ message: String, retryAfter: Duration) -> RPCError {
        // Clamped to about 31 years, so the millisecond count cannot overflow.
        let wait = min(max(retryAfter, .zero), .seconds(1_000_000_000))
        let (seconds, attoseconds) = wait.components
        let wholeSeconds = seconds + (attoseconds > 0 ? 1 : 0)
        let attosecondsPerMillisecond: Int64 = 1_000_000_000_000_000
        let milliseconds =
            seconds * 1000 + attoseconds / attosecondsPerMillisecond
            + (attoseconds % attosecondsPerMillisecond > 0 ? 1 : 0)
        var trailers = GRPCMetadata()
        trailers.add("retry-after", String(wholeSeconds))
        trailers.add("retry-after-ms", String(milliseconds))
        return RPCError(code: .resourceExhausted, message: message, trailers: trailers)
    }
}
