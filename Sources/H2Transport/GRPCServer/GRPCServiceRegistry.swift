import NIOConcurrencyHelpers
import NIOCore

/// The methods a gRPC server serves, by path (`/package.Service/Method`).
///
/// Thread-safe: connections on every event loop look methods up while services may be added.
public final class GRPCServiceRegistry: Sendable {
    /// Makes the handler for one call of a method.
    public typealias HandlerFactory = @Sendable (GRPCServerCall) -> GRPCServerCallHandler

    /// Answers a unary call given its one request message: sends the response and the status.
    typealias UnaryResponder = @Sendable (ByteBuffer, GRPCServerCall) -> Void

    /// How one registered method is served. A class, so a lookup hands out a reference rather
    /// than re-boxing a closure on every call.
    final class Method: Sendable {
        enum Kind {
            /// A handler object per call (streaming methods, custom handlers).
            case handler(HandlerFactory)
            /// A unary method: the stream handler collects the one request message itself and
            /// calls the responder, with no handler object per call.
            case unary(UnaryResponder)
        }

        let kind: Kind
        /// What observers see of the method.
        let descriptor: GRPCMethodDescriptor

        init(_ kind: Kind, descriptor: GRPCMethodDescriptor) {
            self.kind = kind
            self.descriptor = descriptor
        }
    }

    private let methods = NIOLockedValueBox<(byPath: [String: Method], descriptors: [GRPCMethodDescriptor])>(([:], []))

    public init() {}

    /// Serves `path` with handlers from `factory`, replacing any earlier registration. `type`
    /// is what metrics call the method (`grpc_type`); it changes nothing else.
    public func register(_ path: String, type: GRPCMethodType = .bidiStreaming, _ factory: @escaping HandlerFactory) {
        add(path, type: type, .handler(factory))
    }

    /// Registers `kind` under `path`; a path registered again keeps its descriptor's index.
    private func add(_ path: String, type: GRPCMethodType, _ kind: Method.Kind) {
        methods.withLockedValue { methods in
            let index = methods.byPath[path]?.descriptor.index ?? methods.descriptors.count
            let descriptor = GRPCMethodDescriptor(index: index, path: path, type: type)
            if index == methods.descriptors.count {
                methods.descriptors.append(descriptor)
            } else {
                methods.descriptors[index] = descriptor
            }
            methods.byPath[path] = Method(kind, descriptor: descriptor)
        }
    }

    /// Every method registered so far, by index.
    public var methodDescriptors: [GRPCMethodDescriptor] {
        methods.withLockedValue { $0.descriptors }
    }

    /// Serves a unary method: `handle` gets the one request message and returns the response
    /// message or fails with an `RPCError` (any other error becomes INTERNAL).
    public func registerUnary(
        _ path: String,
        _ handle: @escaping @Sendable (ByteBuffer, GRPCServerCall) -> EventLoopFuture<ByteBuffer>
    ) {
        add(
            path, type: .unary,
            .unary { request, call in
                handle(request, call).hop(to: call.eventLoop).assumeIsolated().whenComplete { result in
                    Self.answer(call, with: result)
                }
            })
    }

    /// Serves a unary method that answers at once, on the call's event loop: `handle` returns
    /// the response message or throws an `RPCError` (any other error becomes INTERNAL). For
    /// answers computed from memory (health, metadata); it must not block. It saves the
    /// futures of `registerUnary` (several allocations per call).
    public func registerImmediateUnary<Response: GRPCMessageEncodable & Sendable>(
        _ path: String,
        _ handle: @escaping @Sendable (ByteBuffer, GRPCServerCall) throws -> Response
    ) {
        add(
            path, type: .unary,
            .unary { request, call in
                let response: Response
                do {
                    response = try handle(request, call)
                } catch {
                    Self.fail(call, with: error)
                    return
                }
                Self.succeed(call, with: response)
            })
    }

    /// How `path` is served, or nil when no such method is served.
    func method(for path: String) -> Method? {
        methods.withLockedValue { $0.byPath[path] }
    }

    /// Ends a unary call with its outcome: the response and OK, or the error's status.
    private static func answer(_ call: GRPCServerCall, with result: Result<some GRPCMessageEncodable, any Error>) {
        switch result {
        case .success(let response): succeed(call, with: response)
        case .failure(let error): fail(call, with: error)
        }
    }

    private static func succeed(_ call: GRPCServerCall, with response: some GRPCMessageEncodable) {
        guard !call.isFinished else { return }
        call.sendMessage(response)
        call.finish(.ok)
    }

    private static func fail(_ call: GRPCServerCall, with error: any Error) {
        guard !call.isFinished else { return }
        switch error {
        case let error as RPCError:
            call.finish(error)
        case let error as GRPCStatus:
            call.finish(error)
        default:
            call.logger.error("unary handler failed", metadata: ["error": "\(error)"])
            call.finish(GRPCStatus(code: .internalError, message: "internal error: \(error)"))
        }
    }

    /// Every service name served (the part of each path between the slashes), sorted.
    public var serviceNames: [String] {
        let paths = methods.withLockedValue { Array($0.byPath.keys) }
        return Set(paths.compactMap { $0.split(separator: "/").first.map(String.init) }).sorted()
    }
}
