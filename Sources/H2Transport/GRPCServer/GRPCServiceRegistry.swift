import NIOConcurrencyHelpers
import NIOCore

/// The methods a gRPC server serves, by path (`/package.Service/Method`).
///
/// Thread-safe: connections on every event loop look methods up while services may be added.
public final class GRPCServiceRegistry: Sendable {
    /// Makes the handler for one call of a method.
    public typealias HandlerFactory = @Sendable (GRPCServerCall) -> GRPCServerCallHandler

    private let methods = NIOLockedValueBox<[String: HandlerFactory]>([:])

    public init() {}

    /// Serves `path` with handlers from `factory`, replacing any earlier registration.
    public func register(_ path: String, _ factory: @escaping HandlerFactory) {
        methods.withLockedValue { $0[path] = factory }
    }

    /// Serves a unary method: `handle` gets the one request message and returns the response
    /// message or fails with an `RPCError` (any other error becomes INTERNAL).
    public func registerUnary(
        _ path: String,
        _ handle: @escaping @Sendable (ByteBuffer, GRPCServerCall) -> EventLoopFuture<ByteBuffer>
    ) {
        register(path) { call in GRPCUnaryCallHandler<ByteBuffer>(call: call, handle: .future(handle)) }
    }

    /// Serves a unary method that answers at once, on the call's event loop: `handle` returns
    /// the response message or throws an `RPCError` (any other error becomes INTERNAL). For
    /// answers computed from memory (health, metadata); it must not block. It saves the
    /// futures of `registerUnary` (several allocations per call).
    public func registerImmediateUnary<Response: GRPCMessageEncodable & Sendable>(
        _ path: String,
        _ handle: @escaping @Sendable (ByteBuffer, GRPCServerCall) throws -> Response
    ) {
        register(path) { call in GRPCUnaryCallHandler<Response>(call: call, handle: .immediate(handle)) }
    }

    /// The factory for `path`, or nil when no such method is served.
    public func handlerFactory(for path: String) -> HandlerFactory? {
        methods.withLockedValue { $0[path] }
    }

    /// Every service name served (the part of each path between the slashes), sorted.
    public var serviceNames: [String] {
        let paths = methods.withLockedValue { Array($0.keys) }
        return Set(paths.compactMap { $0.split(separator: "/").first.map(String.init) }).sorted()
    }
}

/// Collects exactly one request message, then answers with one response message.
final class GRPCUnaryCallHandler<Response: GRPCMessageEncodable & Sendable>: GRPCServerCallHandler {
    enum Handle {
        case future((ByteBuffer, GRPCServerCall) -> EventLoopFuture<Response>)
        case immediate((ByteBuffer, GRPCServerCall) throws -> Response)
    }

    private let call: GRPCServerCall
    private let handle: Handle
    private var request: ByteBuffer?
    private var tooMany = false

    init(call: GRPCServerCall, handle: Handle) {
        self.call = call
        self.handle = handle
    }

    func callReceived(message: ByteBuffer) {
        if request == nil {
            request = message
        } else if !tooMany {
            tooMany = true
            call.finish(GRPCStatus(code: .internalError, message: "unary method \(call.head.path) received more than one request message"))
        }
    }

    func callReceivedEnd() {
        guard !tooMany else { return }
        guard let request else {
            call.finish(GRPCStatus(code: .internalError, message: "unary method \(call.head.path) received no request message"))
            return
        }
        let call = self.call
        switch handle {
        case .future(let handle):
            handle(request, call).hop(to: call.eventLoop).assumeIsolated().whenComplete { result in
                Self.answer(call, with: result)
            }
        case .immediate(let handle):
            Self.answer(call, with: Result { try handle(request, call) })
        }
    }

    private static func answer(_ call: GRPCServerCall, with result: Result<Response, any Error>) {
        guard !call.isFinished else { return }
        switch result {
        case .success(let response):
            call.sendMessage(response)
            call.finish(.ok)
        case .failure(let error as RPCError):
            call.finish(error)
        case .failure(let error as GRPCStatus):
            call.finish(error)
        case .failure(let error):
            call.logger.error("unary handler failed", metadata: ["error": "\(error)"])
            call.finish(GRPCStatus(code: .internalError, message: "internal error: \(error)"))
        }
    }

    func callCancelled(_ status: GRPCStatus) {}
}
