import Foundation
import H2Transport
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// The admin listener: plain HTTP/1.1 on loopback (127.0.0.1:8002 by default), for operators,
/// probes and scrapers rather than clients (DESIGN.md, "Defaults").
///
/// | method and path | answer |
/// |---|---|
/// | `GET /healthz` | 200 `ok` while the process runs (liveness) |
/// | `GET /readyz` | 200 `ready` once every model has a live worker, else 503 naming the ones without (readiness) |
/// | `POST /tls/reload` | re-reads the TLS certificate, key and client CA bundle (as SIGHUP does): 200 with the certificates now served, as JSON; 500 when the files do not load (the previous material stays in use); 503 without a TLS listener |
///
/// Anything else is 404 (405 for a known path with another method). Whoever can reach this port
/// can operate the gateway: keep it on loopback or a management network.
public final class AdminHTTPServer: Sendable {
    /// What the admin endpoints act on.
    public struct Actions: Sendable {
        /// Reloads TLS material (logging the outcome, with who asked) and returns each
        /// listener's certificate identity; nil when the gateway has no TLS listener.
        public var reloadTLS: (@Sendable (_ requestedBy: String) throws -> [PeerIdentity])?
        /// The models that have no live worker yet (empty when ready).
        public var modelsNotReady: @Sendable () -> [String]
        /// The Prometheus text of `GET /metrics`; nil serves no metrics.
        public var metrics: (@Sendable () async -> String)?

        public init(reloadTLS: (@Sendable (_ requestedBy: String) throws -> [PeerIdentity])?, modelsNotReady: @escaping @Sendable () -> [String]) {
            self.reloadTLS = reloadTLS
            self.modelsNotReady = modelsNotReady
        }
    }

    private let host: String
    private let port: Int
    private let actions: Actions
    private let group: EventLoopGroup
    private let channel = NIOLockedValueBox<Channel?>(nil)

    public init(host: String, port: Int, actions: Actions, group: EventLoopGroup) {
        self.host = host
        self.port = port
        self.actions = actions
        self.group = group
    }

    /// Binds the listener.
    public func start() async throws {
        let actions = self.actions
        let bound = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(AdminHTTPHandler(actions: actions))
                }
            }
            .bind(host: host, port: port).get()
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

/// Answers admin requests on one HTTP/1.1 connection (confined to its event loop).
final class AdminHTTPHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let actions: AdminHTTPServer.Actions
    private var head: HTTPRequestHead?

    init(actions: AdminHTTPServer.Actions) {
        self.actions = actions
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let request):
            head = request
        case .body:
            break  // no endpoint takes a body
        case .end:
            guard let request = head else { return }
            head = nil
            let remote = context.channel.remoteAddress.map { "\($0)" } ?? "?"
            let path = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.uri
            if path == "/metrics", request.method == .GET || request.method == .HEAD, let metrics = actions.metrics {
                let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
                let loop = context.eventLoop
                Task {
                    let body = await metrics()
                    loop.execute {
                        let (handler, context) = loopBound.value
                        handler.respond(context: context, request: request, status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: body)
                    }
                }
                return
            }
            let (status, contentType, body) = answer(request, from: remote)
            respond(context: context, request: request, status: status, contentType: contentType, body: body)
        }
    }

    private func respond(context: ChannelHandlerContext, request: HTTPRequestHead, status: HTTPResponseStatus, contentType: String, body: String) {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: contentType)
        headers.add(name: "content-length", value: String(body.utf8.count))
        headers.add(name: "cache-control", value: "no-store")
        let keepAlive = request.isKeepAlive
        if !keepAlive { headers.add(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: request.version, status: status, headers: headers))), promise: nil)
        if request.method != .HEAD {
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: body)))), promise: nil)
        }
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in
            if !keepAlive { loopBound.value.close(promise: nil) }
        }
    }

    private func answer(_ request: HTTPRequestHead, from remote: String) -> (HTTPResponseStatus, String, String) {
        let path = request.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? request.uri
        let text = "text/plain; charset=utf-8"
        switch (request.method, path) {
        case (.GET, "/healthz"), (.HEAD, "/healthz"):
            return (.ok, text, "ok\n")
        case (.GET, "/readyz"), (.HEAD, "/readyz"):
            let waiting = actions.modelsNotReady()
            if waiting.isEmpty { return (.ok, text, "ready\n") }
            return (.serviceUnavailable, text, "not ready: no live worker yet for \(waiting.joined(separator: ", "))\n")
        case (.POST, "/tls/reload"):
            return reloadTLS(requestedBy: remote)
        case (_, "/healthz"), (_, "/readyz"), (_, "/tls/reload"):
            let allowed = path == "/tls/reload" ? "POST" : "GET"
            return (.methodNotAllowed, text, "\(request.method) is not allowed on \(path); use \(allowed)\n")
        default:
            return (.notFound, text, "no admin endpoint \(path); there are GET /healthz, GET /readyz, GET /metrics and POST /tls/reload\n")
        }
    }

    private func reloadTLS(requestedBy remote: String) -> (HTTPResponseStatus, String, String) {
        guard let reload = actions.reloadTLS else {
            return (.serviceUnavailable, "text/plain; charset=utf-8", "this gateway has no TLS listener (--tls-address none); there is nothing to reload\n")
        }
        do {
            let identities = try reload(remote)
            let formatter = ISO8601DateFormatter()
            let certificates = identities.map { identity -> [String: Any] in
                [
                    "common_name": identity.commonName ?? "",
                    "dns_names": identity.dnsNames,
                    "sha256_fingerprint": identity.sha256Fingerprint,
                    "not_after": formatter.string(from: identity.notAfter),
                ]
            }
            let data = (try? JSONSerialization.data(withJSONObject: ["certificates": certificates], options: [.sortedKeys])) ?? Data()
            return (.ok, "application/json", String(decoding: data, as: UTF8.self) + "\n")
        } catch {
            return (.internalServerError, "text/plain; charset=utf-8", "TLS reload failed; the previous certificate stays in use: \(error)\n")
        }
    }
}
