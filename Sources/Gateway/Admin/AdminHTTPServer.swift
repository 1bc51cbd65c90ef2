import Foundation
import H2Transport
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// The admin listener: plain HTTP/1.1 on loopback (127.0.0.1:8002 by default), for operators,
/// probes and scrapers rather than clients (DESIGN.md, "Defaults"; docs/observability.md,
/// "Admin API", has every endpoint with its fields).
///
/// | method and path | answer |
/// |---|---|
/// | `GET /healthz` | 200 `ok` while the process runs (liveness) |
/// | `GET /readyz` | 200 `ready` once every model has a live worker, else 503 naming the ones without; 503 from the moment shutdown begins (readiness) |
/// | `POST /tls/reload` | re-reads the TLS certificate, key and client CA bundle (as SIGHUP does) |
/// | `GET /workers` | every worker of every pool, as JSON |
/// | `POST /models/{model}/drain`, `…/undrain`, `/models/{model}/versions/{version}/drain`, `…/undrain` | take a model (or one version) out of routing and back |
/// | `POST /workers/{pid}/restart` | replace one worker process without losing a request |
/// | `GET /config` | the effective configuration, secrets masked |
///
/// Routes answer asynchronously (`AdminRoute`), on no serving loop. With a bearer token, every
/// endpoint but the probes requires it (`AdminRouteTable`). Whoever can reach this port and
/// holds the token can operate the gateway: keep it on loopback or a management network.
public final class AdminHTTPServer: Sendable {
    /// What the admin endpoints act on. A nil action leaves its endpoint out (404), except
    /// `reloadTLS`, whose endpoint says there is no TLS listener.
    public struct Actions: Sendable {
        /// Reloads TLS material (logging the outcome, with who asked) and returns each
        /// listener's certificate identity; nil when the gateway has no TLS listener.
        public var reloadTLS: (@Sendable (_ requestedBy: String) throws -> [PeerIdentity])?
        /// The models that have no live worker yet (empty when ready).
        public var modelsNotReady: @Sendable () -> [String]
        /// True once shutdown has begun: readiness is 503 from then on.
        public var isShuttingDown: @Sendable () -> Bool = { false }
        /// Every worker of every pool.
        public var workers: (@Sendable () async -> [WorkerStatus])?
        /// Drains (true) or undrains a model, or one version of it (nil: every version); the
        /// variants changed, or the error (unknown model or version).
        public var setDrained: (@Sendable (_ drained: Bool, _ model: String, _ version: String?, _ requestedBy: String) async throws -> [ModelVariantKey])?
        /// Replaces the worker process with this pid without losing a request.
        public var restartWorker: (@Sendable (_ pid: Int32, _ requestedBy: String) async -> WorkerRestartOutcome)?
        /// The effective configuration as a JSON object (encoded), secrets masked.
        public var configuration: (@Sendable () -> String)?
        /// Re-reads the configuration file and applies its routes (`POST /config/reload`); throws
        /// why not.
        public var reloadConfiguration: (@Sendable (_ requestedBy: String) async throws -> ConfigurationReloadOutcome)?
        /// The routes now (`GET /routes`).
        public var routes: (@Sendable () -> [ModelRoute])?
        /// Sets a model's route weights (`POST /routes/NAME?variants=1:90,2:10`).
        public var setRouteWeights: (@Sendable (_ model: String, _ weights: [ModelRoute.Variant], _ requestedBy: String) async throws -> ModelRoute)?
        /// The Prometheus text of `GET /metrics`; nil serves no metrics.
        public var metrics: (@Sendable () async -> String)?

        public init(reloadTLS: (@Sendable (_ requestedBy: String) throws -> [PeerIdentity])?, modelsNotReady: @escaping @Sendable () -> [String]) {
            self.reloadTLS = reloadTLS
            self.modelsNotReady = modelsNotReady
        }
    }

    private let host: String
    private let port: Int
    private let table: AdminRouteTable
    private let group: EventLoopGroup
    private let channel = NIOLockedValueBox<Channel?>(nil)

    /// A listener on `host`:`port` answering with `actions`; with `bearerToken`, every endpoint
    /// but the probes requires `Authorization: Bearer <token>`.
    public init(host: String, port: Int, actions: Actions, bearerToken: String? = nil, group: EventLoopGroup) {
        self.host = host
        self.port = port
        self.table = AdminRouteTable(routes: Self.routes(actions), bearerToken: bearerToken)
        self.group = group
    }

    /// Binds the listener.
    public func start() async throws {
        let table = self.table
        let bound: Channel
        do {
            bound = try await ServerBootstrap(group: group)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                        try channel.pipeline.syncOperations.addHandler(AdminHTTPHandler(table: table))
                    }
                }
                .bind(host: host, port: port).get()
        } catch {
            throw ListenError(listener: "the admin listener", address: "\(host):\(port)", underlying: error)
        }
        channel.withLockedValue { $0 = bound }
    }

    /// The bound address (port 0 picks a free one).
    public var boundAddress: SocketAddress? { channel.withLockedValue { $0?.localAddress } }

    /// Closes the listener.
    public func shutdown() async {
        let bound = channel.withLockedValue { channel -> Channel? in
            defer { channel = nil }
            return channel
        }
        try? await bound?.close()
    }
}

/// Answers admin requests on one HTTP/1.1 connection (confined to its event loop). NIO's
/// pipelining assistance holds the next request until a response is written, so answers that
/// take a while (routes are async) still go out in order, one at a time.
final class AdminHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let table: AdminRouteTable
    private var head: HTTPRequestHead?

    init(table: AdminRouteTable) {
        self.table = table
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            head = request
        case .body:
            break  // no endpoint takes a body; NIO's decoder hands it over in bounded pieces
        case .end:
            guard let request = head else { return }
            head = nil
            let remote = context.channel.remoteAddress.map { "\($0)" } ?? "?"
            switch table.decide(method: request.method, uri: request.uri, authorization: request.headers.first(name: "authorization"), remote: remote) {
            case .refuse(let response):
                respond(response, to: request, context: context)
            case .route(let route, let adminRequest):
                let promise = context.eventLoop.makePromise(of: AdminResponse.self)
                promise.completeWithTask { await route.answer(adminRequest) }
                let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                promise.futureResult.whenSuccess { response in
                    let (handler, context) = loopBound.value
                    handler.respond(response, to: request, context: context)
                }
            }
        }
    }

    private func respond(_ response: AdminResponse, to request: HTTPRequestHead, context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: response.contentType)
        headers.add(name: "content-length", value: String(response.body.utf8.count))
        headers.add(name: "cache-control", value: "no-store")
        for header in response.headers { headers.add(name: header.name, value: header.value) }
        let keepAlive = request.isKeepAlive
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: response.status, headers: headers))), promise: nil)
        if request.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: response.body)))), promise: nil)
        }
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { loopBound.value.close(promise: nil) }
        }
    }
}
