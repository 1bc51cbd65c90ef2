import Foundation
import H2Transport
import InferenceProtocol
import Logging
import Metrics
import NIOConcurrencyHelpers
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
    /// The models and their worker pools.
    public let repository: ModelRepository
    /// Counters of calls, connections and models; `GET /metrics` renders them.
    public let metrics: GatewayMetrics
    private let server: GRPCServer
    /// The admin listener (HTTP/1.1, see `AdminHTTPServer`); nil without one.
    private let adminServer: AdminHTTPServer?
    private let logger: Logger
    private let ownedSocketDirectory: String?
    private let tlsContexts: [TLSContext]
    /// Applies a configuration file read again (`POST /config/reload`, SIGHUP); nil without one.
    private let applyReload: (@Sendable (_ requestedBy: String) async throws -> ConfigurationReloadOutcome)?
    /// The admin listener's own event loop.
    private let adminGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    /// Set when shutdown begins: readiness answers 503 from then on.
    private let shuttingDown = NIOLockedValueBox(false)
    /// How long to keep serving, readiness 503, before GOAWAY.
    private let shutdownDelay: TimeAmount
    /// The models `start` loads; nil: all.
    private let modelsLoadedAtStart: Set<String>?

    /// Builds the gateway; throws when the configuration is refused (`GatewayConfiguration.validate`)
    /// or its TLS material does not load.
    public init(configuration: GatewayConfiguration, group: EventLoopGroup, logger: Logger) throws {
        try configuration.validate()
        self.shutdownDelay = configuration.shutdownDelay
        self.modelsLoadedAtStart = configuration.modelsLoadedAtStart
        var listeners: [GRPCServer.Listener] = []
        var contexts: [TLSContext] = []
        if let plaintext = configuration.plaintextListener {
            var listener = GRPCServer.Listener(host: plaintext.host, port: plaintext.port)
            listener.name = "the plaintext listener"
            listeners.append(listener)
        }
        if let tls = configuration.tlsListener {
            let files = configuration.tlsFiles
            var tlsConfiguration = TLSConfiguration.server(
                certificateChainPath: files.certificateChain,
                privateKeyPath: files.privateKey,
                trustRootsPath: files.clientCABundle,
                clientCertificateVerification: configuration.clientCertificateVerification)
            tlsConfiguration.handshakeTimeout = configuration.handshakeTimeout
            let context = try TLSContext(configuration: tlsConfiguration)
            contexts.append(context)
            var listener = GRPCServer.Listener(host: tls.host, port: tls.port, tls: context)
            listener.name = "the TLS listener"
            listeners.append(listener)
        }
        var serverConfiguration = GRPCServer.Configuration(listeners: listeners)
        serverConfiguration.http2 = configuration.http2
        serverConfiguration.http2.prefaceTimeout = configuration.handshakeTimeout
        serverConfiguration.calls.maxReceiveMessageSize = configuration.maxReceiveMessageSize
        let metrics = try GatewayMetrics(configuration: configuration.metrics, group: group)
        self.metrics = metrics
        serverConfiguration.observer = { loop in metrics.observer(on: loop) }
        serverConfiguration.echoRequestID = configuration.metrics.echoRequestID
        let levels = configuration.logLevels
        let transportLogger = levels?.logger(logger, for: "transport") ?? logger
        let poolLogger = levels?.logger(logger, for: "pool") ?? logger
        self.logger = logger
        self.tlsContexts = contexts
        var launcher = try configuration.workerLauncher ?? WorkerLauncher.currentExecutable()
        if let levels, levels.levels["worker"] != nil { launcher.outputLogLevel = levels.level("worker") }
        // The socket directory is ours to remove on shutdown only when we made it.
        self.ownedSocketDirectory = configuration.workerLauncher == nil ? launcher.socketDirectory : nil
        self.repository = ModelRepository(
            deployments: configuration.effectiveModels, routes: configuration.routes, auth: configuration.auth, launcher: launcher, group: group,
            latencyBucketsSeconds: configuration.metrics.latencyBucketsSeconds, logger: poolLogger)
        if let source = configuration.reloadSource {
            let repository = self.repository
            let drainTimeout = configuration.http2.drainTimeout
            let started = configuration
            self.applyReload = { requestedBy in
                try await Self.reloadConfiguration(
                    source, as: started, repository: repository, drainTimeout: drainTimeout, requestedBy: requestedBy, logger: logger)
            }
        } else {
            self.applyReload = nil
        }
        if configuration.auth != nil || configuration.reloadSource != nil {
            // One gate per serving loop; it reads the policy from the loop's catalog, so a reload
            // that adds, changes or removes the policy applies to the next call.
            let repository = self.repository
            var gates: [ObjectIdentifier: NIOLoopBoundBox<GatewayCallGate>] = [:]
            for loop in group.makeIterator() {
                gates[ObjectIdentifier(loop)] = NIOLoopBoundBox.makeBoxSendingValue(
                    GatewayCallGate(repository: repository, eventLoop: loop), eventLoop: loop)
            }
            let perLoop = gates
            serverConfiguration.callGate = { loop in perLoop[ObjectIdentifier(loop)]?.value }
        }
        self.server = GRPCServer(configuration: serverConfiguration, registry: registry, group: group, logger: transportLogger)
        InferenceService(
            repository: repository, router: configuration.router, version: Self.version, maxMessageSize: configuration.maxReceiveMessageSize,
            maxStreamRequestsInFlight: configuration.maxStreamRequestsInFlight, maxStreamBufferedBytes: configuration.maxStreamBufferedBytes,
            tracing: configuration.tracing
        ).register(on: registry)

        health.register(on: registry)
        ReflectionService(registry: registry).register()
        if configuration.enableEchoService { EchoService.register(on: registry) }
        health.setStatus(.serving, for: "")
        health.setStatus(.serving, for: "grpc.health.v1.Health")

        if let admin = configuration.adminListener {
            let contexts = self.tlsContexts
            let repository = self.repository
            let shuttingDown = self.shuttingDown
            var reloadTLS: (@Sendable (String) throws -> [PeerIdentity])?
            if !contexts.isEmpty {
                reloadTLS = { requestedBy in try Self.reload(contexts, requestedBy: requestedBy, logger: logger) }
            }
            let modelsNotReady: @Sendable () -> [String] = {
                let variants = repository.variants
                return variants.filter { !(repository.pool(for: $0)?.isReady ?? false) }.map { key in
                    variants.contains { $0.model == key.model && $0.version != key.version } ? "\(key.model) version \(key.version)" : key.model
                }
            }
            let registry = self.registry
            var actions = AdminHTTPServer.Actions(reloadTLS: reloadTLS, modelsNotReady: modelsNotReady)
            actions.metrics = { await metrics.render(methods: registry.methodDescriptors, repository: repository, version: Self.version) }
            // Its own loop: a TLS reload reads files and builds an SSL_CTX, which must not
            // hold up a loop that serves calls.
            actions.isShuttingDown = { shuttingDown.withLockedValue { $0 } }
            actions.workers = { await repository.workerStatuses() }
            actions.setDrained = { drained, model, version, requestedBy in
                logger.notice(
                    drained ? "operator drain requested" : "operator undrain requested",
                    metadata: ["model": "\(model)", "version": "\(version ?? "*")", "requested_by": "\(requestedBy)"])
                return try await repository.setDrained(drained, model: model, version: version)
            }
            let drainTimeout = configuration.http2.drainTimeout
            actions.restartWorker = { pid, requestedBy in
                logger.notice("operator restart of a worker requested", metadata: ["pid": "\(pid)", "requested_by": "\(requestedBy)"])
                return await repository.restartWorker(pid: pid, drainTimeout: drainTimeout)
            }
            // Computed when asked: routes an operator changed since the start show as they are.
            let effectiveLauncher = launcher
            actions.configuration = {
                configuration.effectiveJSON(launcher: effectiveLauncher, models: repository.deployments, routes: repository.routes)
            }
            actions.routes = { repository.routes }
            actions.reloadConfiguration = applyReload
            actions.setRouteWeights = { model, weights, requestedBy in
                logger.notice("operator route change requested", metadata: ["model": "\(model)", "requested_by": "\(requestedBy)"])
                return try await repository.setRouteWeights(model: model, weights: weights)
            }
            self.adminServer = AdminHTTPServer(
                host: admin.host, port: admin.port, actions: actions, bearerToken: configuration.adminToken, group: adminGroup)
        } else {
            self.adminServer = nil
        }
    }

    /// Re-reads the TLS listener's certificate, key and client CA bundle. Connections already
    /// open keep their session; new handshakes use the new material. On failure the old
    /// material stays in use and the error says why.
    /// Logs the outcome once, naming who asked (`requestedBy`: "SIGHUP", an admin client's
    /// address); the admin listener's `POST /tls/reload` and SIGHUP both come here.
    @discardableResult
    public func reloadTLS(requestedBy: String) throws -> [PeerIdentity] {
        try Self.reload(tlsContexts, requestedBy: requestedBy, logger: logger)
    }

    private static func reload(_ contexts: [TLSContext], requestedBy: String, logger: Logger) throws -> [PeerIdentity] {
        do {
            let identities = try contexts.compactMap { try $0.reload() }
            logger.notice(
                "TLS material reloaded",
                metadata: ["certificates": "\(identities.map(\.sha256Fingerprint))", "requested_by": "\(requestedBy)"])
            return identities
        } catch {
            logger.error(
                "TLS reload failed; the previous certificate stays in use",
                metadata: ["error": "\(error)", "requested_by": "\(requestedBy)"])
            throw error
        }
    }

    /// Reads the configuration file again and applies its models and routes while serving (see
    /// `ModelRepository.apply`: new and changed variants get ready workers before any call
    /// reaches them, removed and replaced ones drain; calls in flight finish where they
    /// started). A file with mistakes, or a variant whose workers cannot start, is refused and
    /// the configuration in use stays. Settings that apply only at a start are reported.
    /// Logs and counts the outcome (`switchyard_config_reloads_total`).
    public func reloadConfiguration(requestedBy: String) async throws -> ConfigurationReloadOutcome {
        guard let applyReload else {
            throw ConfigurationReloadError(message: "the gateway was started without --config; there is no file to reload")
        }
        return try await applyReload(requestedBy)
    }

    private static func reloadConfiguration(
        _ source: @Sendable () throws -> GatewayConfiguration.Reloaded, as started: GatewayConfiguration, repository: ModelRepository,
        drainTimeout: TimeAmount, requestedBy: String, logger: Logger
    ) async throws -> ConfigurationReloadOutcome {
        do {
            let reloaded = try source()
            var effective = started
            effective.models = reloaded.models
            let changes = try await repository.apply(
                deployments: effective.effectiveModels, routes: reloaded.routes, auth: reloaded.auth, drainTimeout: drainTimeout)
            Counter(label: "switchyard_config_reloads_total", dimensions: [("result", "applied")]).increment()
            logger.notice(
                "configuration reloaded",
                metadata: [
                    "routes": "\(reloaded.routes.count)", "variants_added": "\(changes.added.count)",
                    "variants_replaced": "\(changes.replaced.count)", "variants_removed": "\(changes.removed.count)",
                    "requested_by": "\(requestedBy)",
                ])
            if !reloaded.needsRestart.isEmpty {
                logger.warning(
                    "configuration reloaded, but some changed settings apply only after a restart",
                    metadata: ["keys": "\(reloaded.needsRestart.joined(separator: ", "))"])
            }
            return ConfigurationReloadOutcome(routes: reloaded.routes, variants: changes, needsRestart: reloaded.needsRestart)
        } catch {
            Counter(label: "switchyard_config_reloads_total", dimensions: [("result", "refused")]).increment()
            logger.error(
                "configuration reload refused; the configuration in use stays", metadata: ["error": "\(error)", "requested_by": "\(requestedBy)"])
            var refusal = ConfigurationReloadError(message: "\(error)")
            if case .reloadInProgress? = error as? ModelRepositoryError { refusal.anotherInProgress = true }
            throw refusal
        }
    }

    /// Switchyard's version, reported by ServerMetadata.
    public static let version = "0.1.0"

    /// Binds the listeners, then starts the models' workers (the server is live at once and
    /// ready once its models are).
    public func start() async throws {
        // Keys first: a listener must not take a call its policy cannot check.
        try await repository.loadJWTKeys()
        do {
            try await server.start()
            try await adminServer?.start()
        } catch let error as ListenError {
            throw GatewayStartError(listen: error)
        }
        if let adminServer {
            logger.info("admin listener up", metadata: ["address": "\(adminServer.boundAddress.map { "\($0)" } ?? "?")"])
        }
        health.setStatus(.notServing, for: "inference.GRPCInferenceService")
        await repository.loadAll(only: modelsLoadedAtStart)
        health.setStatus(.serving, for: "inference.GRPCInferenceService")
        logger.info("models loaded", metadata: ["models": "\(repository.index(readyOnly: true).models.map(\.name))"])
    }

    /// Stops at once, without a drain (a second SIGTERM): SIGKILL to every worker, so that none
    /// outlives the gateway, and their socket directory removed. The caller exits right after.
    public func stopNow() {
        shuttingDown.withLockedValue { $0 = true }
        logger.warning("stopping at once: killing every worker without a drain")
        repository.killWorkersNow()
        if let ownedSocketDirectory { try? FileManager.default.removeItem(atPath: ownedSocketDirectory) }
    }

    /// The bound addresses, in the order plaintext, TLS (as configured).
    public var boundAddresses: [SocketAddress] { server.boundAddresses }

    /// The admin listener's bound address, if it has one.
    public var adminAddress: SocketAddress? { adminServer?.boundAddress }

    /// Readiness 503 and everything NOT_SERVING at once; after the shutdown delay (if any),
    /// GOAWAY on every connection: unary calls in flight finish within the drain timeout, open
    /// ModelStreamInfer streams end with UNAVAILABLE telling their clients to reconnect once
    /// their requests have answered; then the workers stop, last.
    public func shutdown() async {
        shuttingDown.withLockedValue { $0 = true }
        health.markAllNotServing()
        if shutdownDelay > .zero {
            logger.info("shutting down: readiness is 503; still serving for the shutdown delay", metadata: ["delay": "\(shutdownDelay)"])
            try? await Task.sleep(for: .nanoseconds(shutdownDelay.nanoseconds))
        }
        logger.info("shutting down: draining connections")
        await server.shutdown(reason: "the gateway is shutting down")
        await adminServer?.shutdown()
        try? await adminGroup.shutdownGracefully()
        await repository.unloadAll()
        await repository.shutdown()
        if let ownedSocketDirectory { try? FileManager.default.removeItem(atPath: ownedSocketDirectory) }
        await metrics.shutdown()
        logger.info("stopped: every worker has exited")
    }
}

/// A listener the gateway could not open, with the flag (or configuration key) that moves it.
public struct GatewayStartError: Error, CustomStringConvertible {
    public var listen: ListenError

    public var description: String {
        let (flag, key) =
            switch listen.listener {
            case "the TLS listener": ("--tls-address", "listeners.tls.address")
            case "the admin listener": ("--admin-address", "listeners.admin.address")
            default: ("--plaintext-address", "listeners.plaintext.address")
            }
        var text = "\(listen)"
        if listen.reason.contains("in use") {
            text += "; another process (perhaps another switchyard) is listening there: stop it, or choose another address with \(flag) (\(key) in a configuration file)"
        } else {
            text += "; choose another address with \(flag) (\(key) in a configuration file)"
        }
        return text
    }
}

/// What a configuration reload applied.
public struct ConfigurationReloadOutcome: Sendable {
    /// The routes now in use.
    public var routes: [ModelRoute]
    /// The variants added, replaced, removed and left running.
    public var variants: ModelRepository.VariantChanges
    /// Changed settings that apply only after a restart (configuration keys).
    public var needsRestart: [String]
}

/// A configuration reload that was refused, with the reason (the file's mistakes, one per line).
public struct ConfigurationReloadError: Error, CustomStringConvertible {
    public var message: String
    /// Refused because another reload was being applied (try again), not for the file's content.
    public var anotherInProgress = false
    public var description: String { message }
}
