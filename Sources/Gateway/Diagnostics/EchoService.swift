import H2Transport
import NIOCore

/// `switchyard.diagnostics.Echo`: a transport diagnostic, off unless `serve --enable-echo-service`.
///
/// It exercises the gRPC layer without a model: payloads are opaque bytes (any message type
/// works, since protobuf bytes are echoed as they came).
/// - `Unary`: answers with the request bytes. Request metadata `echo-*` comes back as response
///   headers and, renamed `echo-trailer-*`, as trailers; `x-echo-delay-ms` waits before
///   answering (to test deadlines and cancellation); `x-echo-status` (a code number) and
///   `x-echo-message` end the call with that status instead.
/// - `Stream`: bidirectional; every message is echoed as it arrives; the status follows the
///   client's end of stream.
public enum EchoService {
    /// Registers both methods on `registry`.
    public static func register(on registry: GRPCServiceRegistry) {
        registry.register("/switchyard.diagnostics.Echo/Unary", type: .unary) { call in UnaryEcho(call: call) }
        registry.register("/switchyard.diagnostics.Echo/Stream") { call in StreamEcho(call: call) }
    }
}

private func echoHeaders(_ metadata: GRPCMetadata, trailerPrefix: Bool) -> GRPCMetadata {
    var out = GRPCMetadata()
    for field in metadata where field.name.hasPrefix("echo-") {
        let name = trailerPrefix ? "echo-trailer-" + field.name.dropFirst(5) : field.name
        switch field.value {
        case .string(let value): out.add(name, value)
        case .binary(let bytes): out.add(name.hasSuffix("-bin") ? name : name + "-bin", binary: bytes)
        }
    }
    return out
}

private final class UnaryEcho: GRPCServerCallHandler {
    let call: GRPCServerCall
    var request: ByteBuffer?
    var timer: Scheduled<Void>?

    init(call: GRPCServerCall) { self.call = call }

    func callReceived(message: ByteBuffer) { request = message }

    func callReceivedEnd() {
        let metadata = call.head.metadata
        let delay = metadata.firstString(named: "x-echo-delay-ms").flatMap(Int64.init) ?? 0
        if delay > 0 {
            timer = call.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(delay)) { [self] in self.answer() }
        } else {
            answer()
        }
    }

    func answer() {
        let metadata = call.head.metadata
        if let code = metadata.firstString(named: "x-echo-status").flatMap(Int.init).flatMap(GRPCStatus.Code.init(rawValue:)) {
            call.finish(GRPCStatus(code: code, message: metadata.firstString(named: "x-echo-message") ?? ""))
            return
        }
        call.sendHeaders(echoHeaders(metadata, trailerPrefix: false))
        call.sendMessage(request ?? ByteBuffer())
        call.finish(.ok, trailers: echoHeaders(metadata, trailerPrefix: true))
    }

    func callCancelled(_ status: GRPCStatus) {
        timer?.cancel()
        call.logger.debug("echo call cancelled", metadata: ["status": "\(status)"])
    }
}

private final class StreamEcho: GRPCServerCallHandler {
    let call: GRPCServerCall

    init(call: GRPCServerCall) {
        self.call = call
        call.sendHeaders(echoHeaders(call.head.metadata, trailerPrefix: false))
        // Backpressure: stop taking requests while the client does not read the echoes.
        call.onWritabilityChanged = { [weak call] writable in
            if writable { call?.resumeReceiving() } else { call?.pauseReceiving() }
        }
    }

    func callReceived(message: ByteBuffer) {
        call.sendMessage(message)
        if !call.isWritable { call.pauseReceiving() }
    }

    func callReceivedEnd() {
        call.finish(.ok, trailers: echoHeaders(call.head.metadata, trailerPrefix: true))
    }

    func callCancelled(_ status: GRPCStatus) {}
}
