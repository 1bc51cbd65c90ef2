import Foundation
import InferenceProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A model at one version: what a pool serves and a route points at.
public struct ModelVariantKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var model: String
    public var version: String

    public init(model: String, version: String) {
        self.model = model
        self.version = version
    }

    public var description: String { "\(model):\(version)" }

    public static func < (a: Self, b: Self) -> Bool {
        a.model != b.model ? a.model < b.model : ModelCatalog.versionOrder(a.version, b.version)
    }
}

/// The models a request can be routed to, as one immutable value: every known model with its
/// versions, and the pool of each loaded one. The repository swaps in a new catalog when a
/// model loads or unloads; a call keeps the catalog (and pool) it started with.
public struct ModelCatalog: Sendable {
    /// One model's versions (a class: a request's lookup shares it instead of copying it).
    public final class Model: Sendable {
        public let name: String
        /// Every configured version, loaded or not, oldest first.
        public let versions: [String]
        /// The pools of the loaded versions.
        public let pools: [String: WorkerPool]
        /// The versions an operator drained (`POST /models/NAME/drain`): they take no new request.
        public let drained: Set<String>
        /// How unversioned requests spread over the versions; nil: the newest takes them all.
        public let route: CompiledRoute?

        public init(name: String, versions: [String], pools: [String: WorkerPool], drained: Set<String> = [], route: CompiledRoute? = nil) {
            self.name = name
            self.versions = versions
            self.pools = pools
            self.drained = drained
            self.route = route
        }

        /// The version an empty `model_version` means: the newest loaded one that is not
        /// drained (as Triton's default "latest" version policy does, skipping what an operator
        /// took out), else the newest loaded, else the newest configured.
        public var defaultVersion: String {
            versions.last(where: { pools[$0] != nil && !drained.contains($0) }) ?? versions.last(where: { pools[$0] != nil }) ?? versions.last ?? "1"
        }

        /// Why a request for `version` (empty: the model as a whole) is refused while it is drained.
        public func drainedMessage(version: String) -> String {
            ModelCatalog.drainedMessage(model: name, version: version.isEmpty || versions.count == 1 ? nil : version)
        }
    }

    public var models: [String: Model] = [:]
    /// Increases with every change; a newer catalog replaces an older one, never the reverse.
    public var generation = 0
    /// Who may call what (`auth` and `principals` in the configuration); nil: everyone, anything.
    public var auth: CompiledAuthPolicy?

    public init() {}

    /// Why requests for a drained model (`version` nil) or version of it are refused.
    static func drainedMessage(model: String, version: String?) -> String {
        let which = version.map { "version \($0) of model '\(model)'" } ?? "model '\(model)'"
        return "\(which) is drained by an operator and takes no new requests; try again later"
    }

    /// Orders versions numerically when both are numbers, else as text.
    static func versionOrder(_ a: String, _ b: String) -> Bool {
        if let x = Int64(a), let y = Int64(b) { return x < y }
        return a < b
    }
}

/// The models the gateway knows, each version with its worker pool while loaded.
///
/// Thread-safe; its lock is taken on loads, unloads and catalog reads, never per request once a
/// call has its pool. Worker processes are supervised on the repository's own control event
/// loop and started from its thread pool, never on a loop that serves calls.
public final class ModelRepository: Sendable {
    private struct Entry: Sendable {
        var deployment: ModelDeployment
        var pool: WorkerPool?
        var unloadReason = ""
        /// An operator drained this variant; it stays drained across unload and load.
        var drained = false
        /// Pools made for this variant by configuration reloads (a replacement's workers get
        /// their own names and sockets while the pool it replaces drains).
        var replacements = 0
    }

    /// Set while a configuration is being applied: reloads run one at a time.
    private let applying = NIOLockedValueBox(false)
    /// The authentication and authorization policy, published with every catalog.
    private let authPolicy: NIOLockedValueBox<CompiledAuthPolicy?>
    /// The last policy generation given out (never reused, also across a policy removed).
    private let authGeneration = NIOLockedValueBox(1)

    private let entries: NIOLockedValueBox<[ModelVariantKey: Entry]>
    /// Routes by model name, compiled; changed by `setRoute` (blue-green, canary weights).
    private let compiledRoutes: NIOLockedValueBox<[String: CompiledRoute]>
    private let catalogBox: NIOLockedValueBox<ModelCatalog>
    /// A copy of the catalog per serving loop, so that a call reads it without a lock.
    private let loopCatalogs: [ObjectIdentifier: NIOLoopBoundBox<ModelCatalog>]
    /// Each serving loop's shadow comparisons (pending pairings and their counters).
    private let loopShadowComparisons: [ObjectIdentifier: NIOLoopBoundBox<ShadowComparisons>]
    private let launcher: WorkerLauncher
    private let group: EventLoopGroup
    private let controlGroup: MultiThreadedEventLoopGroup
    /// For blocking work off the serving loops: starting processes, file I/O, large decodes.
    public let threadPool: NIOThreadPool
    private let logger: Logger
    /// The buckets of the pools' latency histograms.
    private let latencyBuckets: LatencyBuckets

    /// `latencyBucketsSeconds`: the bounds of every latency histogram kept here (each
    /// variant's, the shadow comparisons'): the metrics' latency buckets; nil for the defaults.
    public init(
        deployments: [ModelDeployment], routes: [ModelRoute] = [], auth: AuthPolicy? = nil, launcher: WorkerLauncher, group: EventLoopGroup,
        latencyBucketsSeconds: [Double]? = nil, logger: Logger
    ) {
        var entries: [ModelVariantKey: Entry] = [:]
        for deployment in deployments {
            entries[ModelVariantKey(model: deployment.model, version: deployment.version)] = Entry(deployment: deployment)
        }
        self.entries = NIOLockedValueBox(entries)
        let compiled = Dictionary(routes.map { ($0.model, CompiledRoute($0)) }, uniquingKeysWith: { _, last in last })
        self.compiledRoutes = NIOLockedValueBox(compiled)
        // Its JWKS keys come in `loadJWTKeys`, before the listeners open; until then every token
        // is refused.
        let compiledAuth = auth.map { CompiledAuthPolicy($0, generation: 1, jwt: $0.jwt.map { JWTVerifier(settings: $0) }) }
        self.authPolicy = NIOLockedValueBox(compiledAuth)
        var catalog = Self.makeCatalog(entries, routes: compiled)
        catalog.auth = compiledAuth
        self.catalogBox = NIOLockedValueBox(catalog)
        var loopCatalogs: [ObjectIdentifier: NIOLoopBoundBox<ModelCatalog>] = [:]
        for loop in group.makeIterator() {
            loopCatalogs[ObjectIdentifier(loop)] = NIOLoopBoundBox.makeBoxSendingValue(catalog, eventLoop: loop)
        }
        self.loopCatalogs = loopCatalogs
        self.launcher = launcher
        self.group = group
        self.controlGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let threadPool = NIOThreadPool(numberOfThreads: 2)
        self.threadPool = threadPool
        self.threadPool.start()
        let buckets = latencyBucketsSeconds.map { LatencyBuckets(seconds: $0) } ?? .default
        self.latencyBuckets = buckets
        var comparisons: [ObjectIdentifier: NIOLoopBoundBox<ShadowComparisons>] = [:]
        for loop in group.makeIterator() {
            comparisons[ObjectIdentifier(loop)] = NIOLoopBoundBox.makeBoxSendingValue(
                ShadowComparisons(eventLoop: loop, threadPool: threadPool, buckets: buckets), eventLoop: loop)
        }
        self.loopShadowComparisons = comparisons
        self.logger = logger
    }

    /// The routable models now. A lock read; callers keep the value for the whole call.
    public var catalog: ModelCatalog { catalogBox.withLockedValue { $0 } }

    /// The routable models as `loop` sees them: its own copy, read without a lock (updated
    /// right after each load or unload). Must be called on `loop`.
    public func catalog(on loop: EventLoop) -> ModelCatalog {
        loopCatalogs[ObjectIdentifier(loop)]?.value ?? catalog
    }

    /// `loop`'s shadow comparisons; nil for a loop that does not serve calls. Must be called on
    /// `loop`.
    func shadowComparisons(on loop: EventLoop) -> ShadowComparisons? {
        loopShadowComparisons[ObjectIdentifier(loop)]?.value
    }

    /// The shadow comparison counters of every loop, summed per shadow pair.
    func shadowComparisonStatistics() async -> [ShadowPairKey: ShadowPairStatistics] {
        var total: [ShadowPairKey: ShadowPairStatistics] = [:]
        for box in loopShadowComparisons.values {
            let statistics = (try? await box.eventLoop.submit { box.value.statistics }.get()) ?? [:]
            total = ShadowComparisons.merge(total, statistics)
        }
        return total
    }

    private static func makeCatalog(_ entries: [ModelVariantKey: Entry], routes: [String: CompiledRoute]) -> ModelCatalog {
        var versions: [String: [String]] = [:]
        var pools: [String: [String: WorkerPool]] = [:]
        var drained: [String: Set<String>] = [:]
        for (key, entry) in entries.sorted(by: { $0.key < $1.key }) {
            versions[key.model, default: []].append(key.version)
            if let pool = entry.pool { pools[key.model, default: [:]][key.version] = pool }
            if entry.drained { drained[key.model, default: []].insert(key.version) }
        }
        var catalog = ModelCatalog()
        for (name, list) in versions {
            catalog.models[name] = ModelCatalog.Model(
                name: name, versions: list, pools: pools[name] ?? [:], drained: drained[name] ?? [], route: routes[name])
        }
        return catalog
    }

    /// The routes now (as configured, or as an operator changed them since).
    public var routes: [ModelRoute] {
        compiledRoutes.withLockedValue { $0.values.map(\.route) }.sorted { $0.model < $1.model }
    }

    /// Throws unless every version a route names (variants and shadow) is among `variants`.
    private static func check(_ routes: [ModelRoute], against variants: Set<ModelVariantKey>) throws(ModelRepositoryError) {
        for route in routes {
            guard variants.contains(where: { $0.model == route.model }) else { throw .unknownModel(route.model) }
            for version in route.variants.map(\.version) + (route.shadow.map { [$0.version] } ?? [])
            where !variants.contains(ModelVariantKey(model: route.model, version: version)) {
                throw .unknownVersion(route.model, version)
            }
        }
    }

    /// What applying a configuration changed among the variants.
    public struct VariantChanges: Sendable, Equatable {
        /// New variants, their workers started (and ready) before any call could reach them.
        public var added: [ModelVariantKey] = []
        /// Variants whose deployment changed (worker count, limits, worker arguments, backend): a new
        /// pool was started and made ready, took the traffic in one catalog swap, and the old
        /// one drained and stopped.
        public var replaced: [ModelVariantKey] = []
        /// Variants no longer configured: they took no new call after the swap, their calls in
        /// flight finished (within the drain timeout) and their workers stopped.
        public var removed: [ModelVariantKey] = []
        /// Variants whose deployment is the same: their workers kept running, untouched.
        public var unchanged: [ModelVariantKey] = []

        public init() {}
    }

    /// Makes the served variants and routes those of a new configuration, without failing a
    /// call (a configuration reload):
    /// 1. the routes are checked against the new variants; a mistake refuses the whole change;
    /// 2. new variants, and new pools for changed ones, start their workers; if one cannot get a
    ///    ready worker, every pool started is stopped and nothing changes;
    /// 3. variants, pools and routes change in one catalog swap, on every serving loop: calls
    ///    that started before it finish where they were sent, later ones use the new catalog;
    /// 4. replaced and removed pools drain (calls in flight finish, at most `drainTimeout`) and
    ///    their workers stop; then this returns.
    /// Unchanged variants keep their workers and statistics. One application runs at a time.
    public func apply(
        deployments: [ModelDeployment], routes: [ModelRoute], auth: AuthPolicy? = nil, drainTimeout: TimeAmount = .seconds(30)
    ) async throws(ModelRepositoryError) -> VariantChanges {
        guard applying.withLockedValue({ busy in
            defer { busy = true }
            return !busy
        }) else { throw .reloadInProgress }
        defer { applying.withLockedValue { $0 = false } }
        let wanted = Dictionary(deployments.map { (ModelVariantKey(model: $0.model, version: $0.version), $0) }, uniquingKeysWith: { _, last in last })
        try Self.check(routes, against: Set(wanted.keys))
        // A changed policy with a changed auth.jwt section needs its JWKS read before anything
        // starts; unchanged JWT settings keep the verifier in use (and its keys).
        let inUse = authPolicy.withLockedValue { $0 }
        var newVerifier: JWTVerifier?
        if inUse?.policy != auth, let jwt = auth?.jwt, inUse?.jwt?.settings != jwt {
            let verifier = JWTVerifier(settings: jwt)
            do {
                try await verifier.loadKeys(threadPool: threadPool)
            } catch {
                throw .invalidAuth("\(error.description); nothing was changed")
            }
            newVerifier = verifier
        }

        // Plan: which pools to start (new variants of loaded or new models, changed loaded ones).
        var changes = VariantChanges()
        let starts: [(key: ModelVariantKey, pool: WorkerPool, replacement: Int)] = entries.withLockedValue { entries in
            var starts: [(ModelVariantKey, WorkerPool, Int)] = []
            for (key, deployment) in wanted.sorted(by: { $0.key < $1.key }) {
                var replacement = 0
                var drained = false
                if let entry = entries[key] {
                    guard entry.deployment != deployment else {
                        changes.unchanged.append(key)
                        continue
                    }
                    changes.replaced.append(key)
                    guard entry.pool != nil else { continue }  // unloaded: the new deployment applies at its next load
                    replacement = entry.replacements + 1
                    drained = entry.drained
                } else {
                    changes.added.append(key)
                    // A version added to a model an operator unloaded stays unloaded with it.
                    let siblings = entries.filter { $0.key.model == key.model }
                    if !siblings.isEmpty, siblings.allSatisfy({ $0.value.pool == nil }) { continue }
                }
                let versions = wanted.keys.filter { $0.model == key.model }.count
                let drainedMessage = drained ? ModelCatalog.drainedMessage(model: key.model, version: versions == 1 ? nil : key.version) : nil
                let pool = WorkerPool(
                    deployment: deployment, launcher: launcher, group: group, control: controlGroup.next(), threadPool: threadPool,
                    drainedMessage: drainedMessage, replacement: replacement, latencyBuckets: latencyBuckets, logger: logger)
                starts.append((key, pool, replacement))
            }
            changes.removed = entries.keys.filter { wanted[$0] == nil }.sorted()
            return starts
        }

        await withTaskGroup(of: Void.self) { group in
            for start in starts { group.addTask { await start.pool.start() } }
        }
        if let failed = starts.first(where: { !$0.pool.isReady }) {
            await withTaskGroup(of: Void.self) { group in
                for start in starts { group.addTask { await start.pool.drainAndStop(timeout: .zero) } }
            }
            throw .failedToLoad(
                failed.key.model,
                "no worker of version \(failed.key.version) became ready (see the worker log lines above); nothing was changed")
        }

        // The swap: variants, pools and routes at once.
        let started = Dictionary(starts.map { ($0.key, ($0.pool, $0.replacement)) }, uniquingKeysWith: { first, _ in first })
        let compiled = Dictionary(routes.map { ($0.model, CompiledRoute($0)) }, uniquingKeysWith: { _, last in last })
        let retiring: [WorkerPool] = entries.withLockedValue { entries in
            var retiring: [WorkerPool] = []
            for key in changes.removed {
                if let pool = entries.removeValue(forKey: key)?.pool { retiring.append(pool) }
            }
            for (key, deployment) in wanted {
                guard var entry = entries[key] else {
                    entries[key] = Entry(deployment: deployment, pool: started[key]?.0, unloadReason: started[key] == nil ? "unloaded" : "")
                    continue
                }
                guard entry.deployment != deployment else { continue }
                entry.deployment = deployment
                if let (pool, replacement) = started[key] {
                    if let old = entry.pool { retiring.append(old) }
                    entry.pool = pool
                    entry.replacements = replacement
                }
                entries[key] = entry
            }
            compiledRoutes.withLockedValue { $0 = compiled }
            authPolicy.withLockedValue { current in
                // A changed policy gets a new generation: calls and open streams resolve their
                // principal again under it (a revoked key stops at once).
                guard current?.policy != auth else { return }
                let generation = authGeneration.withLockedValue { last in
                    last += 1
                    return last
                }
                let verifier = auth?.jwt == nil ? nil : newVerifier ?? current?.jwt
                current = auth.map { CompiledAuthPolicy($0, generation: generation, jwt: verifier) }
            }
            return retiring
        }
        await publishCatalogEverywhere()
        let verifierNow = authPolicy.withLockedValue { $0?.jwt }
        if let previous = inUse?.jwt, previous !== verifierNow { previous.stopRefreshing() }
        if let newVerifier, newVerifier === verifierNow { newVerifier.startRefreshing(threadPool: threadPool, logger: logger) }
        if changes.added.count + changes.replaced.count + changes.removed.count > 0 {
            logger.notice(
                "configuration applied: variants changed",
                metadata: [
                    "added": "\(changes.added.map(\.description))", "replaced": "\(changes.replaced.map(\.description))",
                    "removed": "\(changes.removed.map(\.description))",
                ])
        }
        await withTaskGroup(of: Void.self) { group in
            for pool in retiring { group.addTask { await pool.drainAndStop(timeout: drainTimeout) } }
        }
        return changes
    }

    /// Sets the weights of a model's route (blue-green: all weight on one version; a canary's
    /// promotion or rollback), keeping its sticky key, override and shadow, or makes a route when
    /// the model has none. Calls in flight keep the route they started with; calls that start
    /// after this returns use the new one, on every loop.
    @discardableResult
    public func setRouteWeights(model: String, weights: [ModelRoute.Variant]) async throws(ModelRepositoryError) -> ModelRoute {
        let versions = Set(variants.filter { $0.model == model }.map(\.version))
        guard !versions.isEmpty else { throw .unknownModel(model) }
        if let unknown = weights.first(where: { !versions.contains($0.version) }) { throw .unknownVersion(model, unknown.version) }
        guard weights.allSatisfy({ $0.weight >= 0 }), weights.contains(where: { $0.weight > 0 }) else {
            throw .invalidRoute(model, "weights must be 0 or more, and at least one above 0")
        }
        // Shares of 100, as the configuration file takes them: 90 and 10 read as percentages.
        let total = weights.reduce(0) { $0 + $1.weight }
        guard total == 100 else {
            throw .invalidRoute(
                model, "the weights add up to \(total), not 100 (\(weights.map { "\($0.version):\($0.weight)" }.joined(separator: ",")))")
        }
        let route = compiledRoutes.withLockedValue { routes -> ModelRoute in
            var route = routes[model]?.route ?? ModelRoute(model: model, variants: [])
            route.variants = weights
            routes[model] = CompiledRoute(route)
            return route
        }
        await publishCatalogEverywhere()
        logger.notice("route changed", metadata: ["model": "\(model)", "variants": "\(weights.map { "\($0.version):\($0.weight)" })"])
        return route
    }

    /// Publishes the catalog, and returns once every serving loop uses it.
    private func publishCatalogEverywhere() async {
        publishCatalog()
        // Each loop runs its tasks in order: once this one ran, so did the catalog update.
        for box in loopCatalogs.values { try? await box.eventLoop.submit {}.get() }
    }

    private func publishCatalog() {
        let catalog = entries.withLockedValue { entries in
            catalogBox.withLockedValue { current in
                var catalog = Self.makeCatalog(entries, routes: compiledRoutes.withLockedValue { $0 })
                catalog.generation = current.generation + 1
                catalog.auth = authPolicy.withLockedValue { $0 }
                current = catalog
                return catalog
            }
        }
        for box in loopCatalogs.values {
            box.eventLoop.execute { if box.value.generation < catalog.generation { box.value = catalog } }
        }
    }

    /// Every model name known, loaded or not, sorted.
    public var modelNames: [String] { catalog.models.keys.sorted() }

    /// Every variant known, sorted by model then version.
    public var variants: [ModelVariantKey] { entries.withLockedValue { $0.keys.sorted() } }

    /// Every variant's deployment as configured now, sorted by model then version.
    public var deployments: [ModelDeployment] {
        entries.withLockedValue { $0.sorted { $0.key < $1.key }.map(\.value.deployment) }
    }

    /// The pool of a loaded variant.
    public func pool(for key: ModelVariantKey) -> WorkerPool? {
        entries.withLockedValue { $0[key]?.pool }
    }

    /// Starts the workers of every version of `model`; returns when each is ready (or failed).
    public func load(_ model: String) async throws {
        let pools: [WorkerPool] = try entries.withLockedValue { entries in
            let keys = entries.keys.filter { $0.model == model }
            guard !keys.isEmpty else { throw ModelRepositoryError.unknownModel(model) }
            var started: [WorkerPool] = []
            for key in keys where entries[key]!.pool == nil {
                let drainedMessage = entries[key]!.drained ? Self.drainedMessage(key, in: entries) : nil
                let pool = WorkerPool(
                    deployment: entries[key]!.deployment, launcher: launcher, group: group, control: controlGroup.next(),
                    threadPool: threadPool, drainedMessage: drainedMessage, latencyBuckets: latencyBuckets, logger: logger)
                entries[key]!.pool = pool
                entries[key]!.unloadReason = ""
                started.append(pool)
            }
            return started
        }
        publishCatalog()
        await withTaskGroup(of: Void.self) { group in
            for pool in pools { group.addTask { await pool.start() } }
        }
        if let failed = pools.first(where: { !$0.isReady }) {
            throw ModelRepositoryError.failedToLoad(
                model, "no worker of version \(failed.deployment.version) became ready; see the worker log lines above")
        }
    }

    /// Loads every known model, or those of `only`; the others are known, unloaded.
    public func loadAll(only: Set<String>? = nil) async {
        if let only {
            let skipped = modelNames.filter { !only.contains($0) }
            entries.withLockedValue { entries in
                for key in entries.keys where skipped.contains(key.model) { entries[key]!.unloadReason = "unloaded" }
            }
        }
        await withTaskGroup(of: Void.self) { group in
            for name in modelNames where only?.contains(name) ?? true {
                group.addTask {
                    do {
                        try await self.load(name)
                    } catch {
                        self.logger.error("model failed to load", metadata: ["model": "\(name)", "error": "\(error)"])
                    }
                }
            }
        }
    }

    /// Stops taking requests for every version of `model`, waits for those in flight, stops
    /// its workers and waits for them to exit.
    public func unload(_ model: String) async throws {
        let pools: [WorkerPool] = try entries.withLockedValue { entries in
            let keys = entries.keys.filter { $0.model == model }
            guard !keys.isEmpty else { throw ModelRepositoryError.unknownModel(model) }
            var stopping: [WorkerPool] = []
            for key in keys {
                if let pool = entries[key]!.pool { stopping.append(pool) }
                entries[key]!.pool = nil
                entries[key]!.unloadReason = "unloaded"
            }
            return stopping
        }
        publishCatalog()
        await withTaskGroup(of: Void.self) { group in
            for pool in pools { group.addTask { await pool.drainAndStop() } }
        }
    }

    /// Unloads everything and waits for every worker to exit (shutdown).
    public func unloadAll() async {
        await withTaskGroup(of: Void.self) { group in
            for name in modelNames {
                group.addTask { try? await self.unload(name) }
            }
        }
    }

    /// Releases the control loop and the thread pool; call after `unloadAll`.
    /// Reads the JWKS of the policy's `auth.jwt` and keeps re-reading it; call before serving.
    public func loadJWTKeys() async throws(JWTKeySetError) {
        guard let verifier = authPolicy.withLockedValue({ $0?.jwt }) else { return }
        try await verifier.loadKeys(threadPool: threadPool)
        logger.info("JWKS loaded", metadata: ["source": "\(verifier.settings.keys)", "kids": "\(verifier.keyIDs)"])
        verifier.startRefreshing(threadPool: threadPool, logger: logger)
    }

    public func shutdown() async {
        authPolicy.withLockedValue { $0?.jwt?.stopRefreshing() }
        try? await threadPool.shutdownGracefully()
        try? await controlGroup.shutdownGracefully()
    }

    // MARK: Operators

    /// Drains (`drained`) or undrains `model`, every version of it or only `version`: a drained
    /// variant takes no new request (UNAVAILABLE saying an operator drained it), its requests
    /// in flight finish, its workers keep running; an unversioned request goes to the newest
    /// loaded version that is not drained. Returns once every serving loop applies it, with the
    /// variants changed.
    public func setDrained(_ drained: Bool, model: String, version: String?) async throws -> [ModelVariantKey] {
        let changed: [(ModelVariantKey, WorkerPool?, String)] = try entries.withLockedValue { entries in
            let keys = entries.keys.filter { $0.model == model }.sorted()
            guard !keys.isEmpty else { throw ModelRepositoryError.unknownModel(model) }
            let chosen = version.map { version in keys.filter { $0.version == version } } ?? keys
            guard !chosen.isEmpty else { throw ModelRepositoryError.unknownVersion(model, version ?? "") }
            for key in chosen { entries[key]!.drained = drained }
            return chosen.map { ($0, entries[$0]!.pool, Self.drainedMessage($0, in: entries)) }
        }
        // The order keeps unversioned requests flowing: on drain the routers learn first (and
        // send them to another version) before the shards refuse; on undrain the shards take
        // requests again before the routers send any.
        if drained { await publishCatalogEverywhere() }
        for (_, pool, message) in changed { await pool?.setDrained(drained ? message : nil) }
        if !drained { await publishCatalogEverywhere() }
        logger.notice(
            drained ? "drained by an operator: no new requests" : "undrained by an operator: taking requests again",
            metadata: ["variants": "\(changed.map { $0.0.description })"])
        return changed.map { $0.0 }
    }

    /// The message a drained variant's refusals carry (naming the version when the model has several).
    private static func drainedMessage(_ key: ModelVariantKey, in entries: [ModelVariantKey: Entry]) -> String {
        let versions = entries.keys.filter { $0.model == key.model }.count
        return ModelCatalog.drainedMessage(model: key.model, version: versions == 1 ? nil : key.version)
    }

    /// True when an operator drained the variant.
    public func isDrained(_ key: ModelVariantKey) -> Bool { entries.withLockedValue { $0[key]?.drained ?? false } }

    /// Every worker of every loaded variant, by model, version and slot.
    public func workerStatuses() async -> [WorkerStatus] {
        let pools = entries.withLockedValue { entries in entries.sorted { $0.key < $1.key }.compactMap { entry in entry.value.pool.map { ($0, entry.value.drained) } } }
        var statuses: [WorkerStatus] = []
        for (pool, drained) in pools { statuses += await pool.workerStatuses(drained: drained) }
        return statuses
    }

    /// Replaces the worker process `pid` without losing a request (see `WorkerPool.restartWorker`).
    public func restartWorker(pid: Int32, drainTimeout: TimeAmount) async -> WorkerRestartOutcome {
        let pools = entries.withLockedValue { $0.values.compactMap(\.pool) }
        guard let pool = pools.first(where: { $0.hasWorker(pid: pid) }) else { return .unknownPID }
        return await pool.restartWorker(pid: pid, drainTimeout: drainTimeout)
    }

    /// SIGKILL to every worker at once, with no restart (the gateway stops without a drain).
    public func killWorkersNow() {
        for pool in entries.withLockedValue({ $0.values.compactMap(\.pool) }) { pool.killWorkersNow() }
    }

    /// The repository index: every model version with its state.
    public func index(readyOnly: Bool) -> RepositoryIndexResponse {
        var response = RepositoryIndexResponse()
        for (key, entry) in entries.withLockedValue({ $0 }).sorted(by: { $0.key < $1.key }) {
            var model = RepositoryIndexResponse.ModelIndex()
            model.name = key.model
            model.version = key.version
            if let pool = entry.pool {
                model.state = pool.isReady ? "READY" : "UNAVAILABLE"
                if !pool.isReady { model.reason = "no worker is ready" }
            } else {
                model.state = "UNAVAILABLE"
                model.reason = entry.unloadReason.isEmpty ? "not loaded" : entry.unloadReason
            }
            if readyOnly && model.state != "READY" { continue }
            response.models.append(model)
        }
        return response
    }
}

/// Why a repository operation failed.
public enum ModelRepositoryError: Error, Sendable, CustomStringConvertible {
    case unknownModel(String)
    case unknownVersion(String, String)
    case failedToLoad(String, String)
    case invalidRoute(String, String)
    case reloadInProgress
    case invalidAuth(String)

    public var description: String {
        switch self {
        case .invalidAuth(let reason): return reason
        case .reloadInProgress: return "another configuration reload is being applied; try again when it has finished"
        case .invalidRoute(let name, let reason): return "the route of model '\(name)' cannot be set: \(reason)"
        case .unknownModel(let name): return "unknown model '\(name)'"
        case .unknownVersion(let name, let version): return "unknown version '\(version)' of model '\(name)'"
        case .failedToLoad(let name, let reason): return "model '\(name)' failed to load: \(reason)"
        }
    }
}
