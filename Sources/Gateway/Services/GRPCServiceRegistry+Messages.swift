import H2Transport
import NIOCore
import ProtoWire

extension GRPCServiceRegistry {
    /// Serves a unary method on typed messages. A request that does not decode is answered
    /// with INVALID_ARGUMENT naming the fault, without reaching `handle`.
    public func registerUnary<Request: ProtoMessage, Response: ProtoMessage>(
        _ path: String, request: Request.Type, response: Response.Type,
        limits: ProtoLimits = .default,
        _ handle: @escaping @Sendable (Request, GRPCServerCall) -> EventLoopFuture<Response>
    ) {
        registerUnary(path) { bytes, call in
            let request: Request
            do {
                request = try Request(decoding: bytes, limits: limits)
            } catch {
                return call.eventLoop.makeFailedFuture(
                    RPCError(code: .invalidArgument, message: "request is not a valid \(Request.protoMessageName): \(error)"))
            }
            return handle(request, call).map { $0.encoded(allocator: ByteBufferAllocator()) }
        }
    }

    /// Serves a unary method on typed messages that answers at once on the call's event loop
    /// (see `registerImmediateUnary(_:_:)`): `handle` returns the response or throws an
    /// `RPCError`. A request that does not decode is answered with INVALID_ARGUMENT.
    public func registerImmediateUnary<Request: ProtoMessage, Response: ProtoMessage>(
        _ path: String, request: Request.Type, response: Response.Type,
        limits: ProtoLimits = .default,
        _ handle: @escaping @Sendable (Request, GRPCServerCall) throws -> Response
    ) {
        registerImmediateUnary(path) { bytes, call in
            let request: Request
            do {
                request = try Request(decoding: bytes, limits: limits)
            } catch {
                throw RPCError(code: .invalidArgument, message: "request is not a valid \(Request.protoMessageName): \(error)")
            }
            return ProtoResponse(try handle(request, call))
        }
    }
}

/// A protobuf response that the gRPC layer serializes straight into its frame (no buffer of
/// its own, no copy).
public struct ProtoResponse<Message: ProtoMessage>: GRPCMessageEncodable, Sendable {
    public var message: Message

    public init(_ message: Message) {
        self.message = message
    }

    public func writeMessage(into buffer: inout ByteBuffer) {
        // Move the buffer into the writer and back, so it stays uniquely referenced (no
        // copy-on-write) while the message is written.
        var writer = ProtoWriter(buffer: ByteBuffer())
        swap(&writer.buffer, &buffer)
        message.encode(to: &writer)
        swap(&writer.buffer, &buffer)
    }

    public var estimatedMessageSize: Int { 128 }
}

/// A call handler that decodes exactly one request message and leaves the answering to
/// `start` (for server-streaming methods such as Health/Watch).
public final class ServerStreamingCallHandler<Request: ProtoMessage>: GRPCServerCallHandler {
    private let call: GRPCServerCall
    private let start: (Request, GRPCServerCall) -> Void
    private let onCancel: (GRPCStatus) -> Void
    private var request: Request?
    private var failed = false

    public init(call: GRPCServerCall, start: @escaping (Request, GRPCServerCall) -> Void, onCancel: @escaping (GRPCStatus) -> Void = { _ in }) {
        self.call = call
        self.start = start
        self.onCancel = onCancel
    }

    public func callReceived(message: ByteBuffer) {
        guard request == nil, !failed else {
            failed = true
            call.finish(GRPCStatus(code: .internalError, message: "\(call.head.path) takes one request message"))
            return
        }
        do {
            request = try Request(decoding: message)
        } catch {
            failed = true
            call.finish(GRPCStatus(code: .invalidArgument, message: "request is not a valid \(Request.protoMessageName): \(error)"))
        }
    }

    public func callReceivedEnd() {
        guard !failed else { return }
        guard let request else {
            call.finish(GRPCStatus(code: .internalError, message: "\(call.head.path) received no request message"))
            return
        }
        start(request, call)
    }

    public func callCancelled(_ status: GRPCStatus) {
        onCancel(status)
    }
}
