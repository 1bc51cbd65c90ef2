import H2Transport
import InferenceProtocol

#if canImport(Glibc)
import Glibc
#endif

/// A `ModelRoute` prepared for the hot path: positive weights only, the sticky key's name,
/// per-variant hash seeds and cumulative weights. Built when a catalog is made, shared by
/// reference by every call that reads that catalog.
public final class CompiledRoute: Sendable {
    public let route: ModelRoute
    /// Versions with a positive weight, in the route's order.
    let versions: [String]
    let weights: [Double]
    let cumulative: [Double]
    let total: Double
    let seeds: [UInt64]
    let stickyKey: String?

    public init(_ route: ModelRoute) {
        self.route = route
        let positive = route.variants.filter { $0.weight > 0 }
        versions = positive.map(\.version)
        weights = positive.map { Double($0.weight) }
        var running = 0.0
        cumulative = weights.map { weight in
            running += weight
            return running
        }
        total = running
        seeds = positive.map { StickyHash.fnv1a($0.version) }
        stickyKey = route.stickyKey?.lowercased()
    }

    /// The variant for a sticky key hash among the versions `available` allows: weighted
    /// rendezvous hashing. Each variant gets an exponential clock `-ln(u) / weight` from the
    /// key's hash and its seed, and the earliest wins: a variant wins with probability
    /// weight / total, and raising one variant's weight only moves keys into it (lowering it,
    /// only out of it); nothing else moves.
    func sticky(_ keyHash: UInt64, available: (String) -> Bool) -> String? {
        var best: String?
        var bestClock = Double.infinity
        for index in versions.indices where available(versions[index]) {
            let unit = StickyHash.unitInterval(StickyHash.mix(keyHash ^ seeds[index]))
            let clock = -log(unit) / weights[index]
            if clock < bestClock {
                bestClock = clock
                best = versions[index]
            }
        }
        return best
    }

    /// The variant for a uniform draw in [0, 1) among the available versions.
    func draw(_ unit: Double, available: (String) -> Bool) -> String? {
        var sum = 0.0
        for index in versions.indices where available(versions[index]) { sum += weights[index] }
        guard sum > 0 else { return nil }
        var target = unit * sum
        for index in versions.indices where available(versions[index]) {
            target -= weights[index]
            if target < 0 { return versions[index] }
        }
        return versions.last(where: available)
    }
}

/// Hashes that stay the same across processes and restarts (Swift's `Hasher` does not), so
/// every gateway instance puts a key on the same variant.
enum StickyHash {
    /// FNV-1a, 64 bits, over the UTF-8 bytes.
    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }

    /// splitmix64's finalizer: spreads every input bit over the output.
    static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9e37_79b9_7f4a_7c15
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// (0, 1): never 0, so that its logarithm is finite.
    static func unitInterval(_ bits: UInt64) -> Double {
        (Double(bits >> 11) + 0.5) * 0x1.0p-53
    }
}

/// Uniform draws for calls without a sticky key: xorshift state per thread (an event loop is one
/// thread), reached through a pthread key, so a draw takes no lock, no allocation (after the
/// thread's first) and no system call.
enum ThreadRandom {
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        pthread_key_create(&key) { state in state.map { UnsafeMutableRawPointer($0).deallocate() } }
        return key
    }()

    /// A uniform Double in [0, 1).
    static func unit() -> Double {
        var state = pthread_getspecific(key)?.assumingMemoryBound(to: UInt64.self)
        if state == nil {
            let fresh = UnsafeMutablePointer<UInt64>.allocate(capacity: 1)
            var system = SystemRandomNumberGenerator()
            fresh.initialize(to: system.next() | 1)
            pthread_setspecific(key, fresh)
            state = fresh
        }
        var x = state!.pointee
        x ^= x << 13
        x ^= x >> 7
        x ^= x << 17
        state!.pointee = x
        return Double(x >> 11) * 0x1.0p-53
    }
}

/// The router with routes: per model, the version a request names; else `x-switchyard-variant`
/// when the route allows overrides; else the sticky key's variant; else a weighted draw; a model
/// without a route gets its default version (`VersionRouter`). Drained or unloaded variants are
/// skipped by the choice. A route's shadow gets a copy of its share of the calls.
///
/// Per call: a dictionary lookup, a metadata scan for the sticky key, a hash and one logarithm
/// per variant; no lock, no allocation.
public struct WeightedRouter: InferenceRouter {
    /// The request metadata that forces a variant where the route allows it.
    public static let overrideHeader = "x-switchyard-variant"

    public init() {}

    public func route(_ request: InferenceRouteRequest, catalog: ModelCatalog) -> InferenceRoute {
        guard let model = catalog.models[request.modelName], let compiled = model.route else {
            return VersionRouter().route(request, catalog: catalog)
        }
        var version = request.modelVersion
        if version.isEmpty {
            var override: String?
            var stickyValue: String?
            for field in request.metadata.fields {
                if field.name == Self.overrideHeader, case .string(let text) = field.value { override = text }
                if let key = compiled.stickyKey, field.name == key, case .string(let text) = field.value { stickyValue = text }
            }
            let principal = request.principal
            // A local function, not a closure in a variable: passed as a non-escaping argument it
            // needs no heap context for its two captures (a stored closure would: a malloc per call).
            func available(_ version: String) -> Bool {
                model.pools[version] != nil && !model.drained.contains(version) && principal?.mayUse(model: model.name, version: version) != false
            }
            if let override {
                if let principal, !principal.allowOverride {
                    return .refuse(
                        RPCError(
                            code: .permissionDenied,
                            message: "principal '\(principal.name)' may not choose a variant with \(Self.overrideHeader) (allow_override is not in its permissions); name a model_version instead"))
                }
                guard compiled.route.allowOverride else {
                    return .refuse(
                        RPCError(
                            code: .permissionDenied,
                            message: "the route of model '\(model.name)' does not allow choosing a variant with \(Self.overrideHeader); name a model_version instead, or set allow_override on the route"))
                }
                version = override
            } else if let stickyValue {
                version = compiled.sticky(StickyHash.fnv1a(stickyValue), available: available) ?? model.defaultVersion
            } else {
                version = compiled.draw(ThreadRandom.unit(), available: available) ?? model.defaultVersion
            }
        }
        var versioned = request
        versioned.modelVersion = version
        let primary = VersionRouter().route(versioned, catalog: catalog)
        guard case .forward(let pool, _) = primary, let shadow = compiled.route.shadow, shadow.version != version,
            let shadowPool = model.pools[shadow.version], ThreadRandom.unit() < shadow.fraction
        else { return primary }
        return .forward(pool, shadow: shadowPool)
    }
}
