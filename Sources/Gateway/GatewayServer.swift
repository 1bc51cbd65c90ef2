import H2Transport
import InferenceProtocol
import Logging
import NIOCore
import NIOPosix

/// The gateway process's front door: the gRPC server with the services registered on it.
///
/// Built from a `GatewayConfiguration`; `start` binds the listeners, `shutdown` drains them.
public final class GatewayServer: Sendable {
    /// The health table; "" is the server as a whole.
    public let health = HealthService()
    /// The methods served.
    public let registry = GRPCServiceRegistry()
    private let server: GRPCServer
    private let logger: Logger

    public init(configuration: GatewayConfiguration, group: EventLoopGroup, logger: Logger) throws {
        var listeners: [GRPCServer.Listener] = []
        if let plaintext = configuration.plaintextListener {
            listeners.append(.init(host: plaintext.host, port: plaintext.port))
        }
        if let tls = configuration.tlsListener {
            let files = configuration.tlsFiles
            let context = try TLSContext(
                configuration: TLSConfiguration.server(
                    certificateChainPath: files.certificateChain,
                    privateKeyPath: files.privateKey,
                    trustRootsPath: files.clientCABundle,
                    clientCertificateVerification: configuration.clientCertificateVerification))
            listeners.append(.init(host: tls.host, port: tls.port, tls: context))
        }
        var serverConfiguration = GRPCServer.Configuration(listeners: listeners)
        serverConfiguration.http2 = configuration.http2
        serverConfiguration.calls.maxReceiveMessageSize = configuration.maxReceiveMessageSize
        self.server = GRPCServer(configuration: serverConfiguration, registry: registry, group: group, logger: logger)
        self.logger = logger

        health.register(on: registry)
        ReflectionService(registry: registry).register()
        if configuration.enableEchoService { EchoService.register(on: registry) }
        health.setStatus(.serving, for: "")
        health.setStatus(.serving, for: "grpc.health.v1.Health")
    }

    /// Binds the listeners.
    public func start() async throws {
        try await server.start()
    }

    /// The bound addresses, in the order plaintext, TLS (as configured).
    public var boundAddresses: [SocketAddress] { server.boundAddresses }

    /// Marks everything NOT_SERVING, then drains connections.
    public func shutdown() async {
        logger.info("shutting down: draining connections")
        health.markAllNotServing()
        await server.shutdown()
    }
}
