import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A gRPC server: listeners (TLS or plaintext h2c), each connection an HTTP/2 session whose
/// streams run calls from a `GRPCServiceRegistry`.
public final class GRPCServer: Sendable {
    /// One address to listen on.
    public struct Listener: Sendable {
        /// Host or address to bind, e.g. "0.0.0.0" or "127.0.0.1".
        public var host: String
        /// Port; 0 picks a free one (see `GRPCServer.boundAddresses`).
        public var port: Int
        /// TLS material; nil serves plaintext h2c with prior knowledge.
        public var tls: TLSContext?
        /// What the listener is called in errors ("the TLS listener"); by default from `tls`.
        public var name: String?

        public init(host: String, port: Int, tls: TLSContext? = nil) {
            self.host = host
            self.port = port
            self.tls = tls
        }
    }

    /// Everything that shapes the server's connections and calls.
    public struct Configuration: Sendable {
        public var listeners: [Listener]
        public var http2 = HTTP2Configuration()
        public var calls = GRPCServerStreamStateMachine.Configuration()
        /// The observer of a loop's connections and calls (metrics, access logs): asked once
        /// per connection, on the connection's loop. Return the same object for every
        /// connection of a loop so that it can count without locks. Nil: nobody listens.
        public var observer: (@Sendable (EventLoop) -> (any GRPCServerObserver)?)?
        /// The gate every call passes before its handler runs (authentication, authorization,
        /// per-caller limits): asked once per connection, on the connection's loop, like
        /// `observer`. Nil: every call runs.
        public var callGate: (@Sendable (EventLoop) -> (any GRPCServerCallGate)?)?
        /// Whether every call's request id (`GRPCServerCall.requestID`, when not empty) goes
        /// back to the client as `x-request-id` in the response headers. Default false.
        public var echoRequestID = false

        public init(listeners: [Listener]) {
            self.listeners = listeners
        }
    }

    private let configuration: Configuration
    private let registry: GRPCServiceRegistry
    private let group: EventLoopGroup
    private let logger: Logger
    private let state = NIOLockedValueBox<(listeners: [Channel], connections: [ObjectIdentifier: Channel])>(([], [:]))

    public init(configuration: Configuration, registry: GRPCServiceRegistry, group: EventLoopGroup, logger: Logger) {
        self.configuration = configuration
        self.registry = registry
        self.group = group
        self.logger = logger
    }

    /// Binds every listener. Throws if any cannot be bound (and closes those that were).
    public func start() async throws {
        var bound: [Channel] = []
        do {
            for listener in configuration.listeners {
                let channel: Channel
                do {
                    channel = try await bootstrap(listener).bind(host: listener.host, port: listener.port).get()
                } catch {
                    throw ListenError(
                        listener: listener.name ?? (listener.tls == nil ? "the h2c listener" : "the TLS listener"),
                        address: listener.host.contains(":") ? "[\(listener.host)]:\(listener.port)" : "\(listener.host):\(listener.port)",
                        underlying: error)
                }
                bound.append(channel)
                logger.info(
                    "listening",
                    metadata: [
                        "address": "\(channel.localAddress.map { "\($0)" } ?? "?")",
                        "protocol": "\(listener.tls == nil ? "h2c" : "h2 over TLS")",
                    ])
            }
        } catch {
            for channel in bound { try? await channel.close() }
            throw error
        }
        state.withLockedValue { $0.listeners = bound }
    }

    /// The addresses the listeners are bound to, in configuration order.
    public var boundAddresses: [SocketAddress] {
        state.withLockedValue { $0.listeners.compactMap(\.localAddress) }
    }

    /// Stops accepting, asks every connection to drain (GOAWAY, in-flight calls finish within
    /// the drain timeout; calls hear `reason` through `GRPCServerCallHandler.callDraining`), and
    /// returns when they are closed.
    public func shutdown(reason: String = "the server is shutting down") async {
        let (listeners, connections) = state.withLockedValue { ($0.listeners, Array($0.connections.values)) }
        for listener in listeners { try? await listener.close() }
        for connection in connections {
            connection.triggerUserOutboundEvent(HTTP2GracefulShutdown(reason: reason), promise: nil)
        }
        for connection in connections { try? await connection.closeFuture.get() }
    }

    private func bootstrap(_ listener: Listener) -> ServerBootstrap {
        let registry = self.registry
        let configuration = self.configuration
        let logger = self.logger
        let state = self.state
        return ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 32 * 1024, high: 256 * 1024))
            .childChannelOption(.maxMessagesPerRead, value: 4)
            .childChannelInitializer { channel in
                let id = ObjectIdentifier(channel)
                state.withLockedValue { $0.connections[id] = channel }
                channel.closeFuture.whenComplete { _ in _ = state.withLockedValue { $0.connections.removeValue(forKey: id) } }
                return channel.eventLoop.makeCompletedFuture {
                    var connectionLogger = logger
                    connectionLogger[metadataKey: "peer"] = "\(channel.remoteAddress?.hostAndPort ?? "?")"
                    let observer = configuration.observer?(channel.eventLoop)
                    let gate = configuration.callGate?(channel.eventLoop)
                    let echoRequestID = configuration.echoRequestID
                    let sync = channel.pipeline.syncOperations
                    if let tls = listener.tls {
                        let handler = TLSHandler(context: tls, logger: connectionLogger)
                        handler.observer = observer
                        try sync.addHandler(handler)
                    }
                    let streamLogger = connectionLogger
                    let http2 = HTTP2ConnectionHandler(server: configuration.http2, logger: connectionLogger) { stream in
                        GRPCServerStreamHandler(
                            stream: stream, registry: registry, configuration: configuration.calls, logger: streamLogger, observer: observer,
                            gate: gate, echoRequestID: echoRequestID)
                    }
                    if let observer { http2.observe(with: observer, secure: listener.tls != nil) }
                    try sync.addHandler(http2)
                }
            }
    }
}

/// A listener could not be bound: which one, where, and why in words ("address already in use").
public struct ListenError: Error, CustomStringConvertible {
    /// "the TLS listener", "the admin listener" …
    public var listener: String
    /// "127.0.0.1:8001"
    public var address: String
    public var underlying: any Error

    public init(listener: String, address: String, underlying: any Error) {
        self.listener = listener
        self.address = address
        self.underlying = underlying
    }

    /// The system's reason, e.g. "address already in use", without NIO's call-site prefix.
    public var reason: String {
        if let error = underlying as? IOError { return String(cString: strerror(error.errnoCode)).lowercased() }
        return "\(underlying)"
    }

    public var description: String { "cannot listen on \(address) for \(listener): \(reason)" }
}
