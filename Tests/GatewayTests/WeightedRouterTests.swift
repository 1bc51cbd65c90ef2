@testable import Gateway
import H2Transport
import Logging
import NIOCore
import NIOPosix
import XCTest

/// Weighted, sticky and overridden routing (pools built, never started).
final class WeightedRouterTests: XCTestCase {
    private let all: (String) -> Bool = { _ in true }

    private func route(_ weights: [(String, Int)], sticky: String? = "x-user-id") -> CompiledRoute {
        CompiledRoute(ModelRoute(model: "m", variants: weights.map { ModelRoute.Variant(version: $0.0, weight: $0.1) }, stickyKey: sticky))
    }

    private func shares(_ choices: [String?]) -> [String: Double] {
        var counts: [String: Int] = [:]
        for choice in choices { counts[choice ?? "none", default: 0] += 1 }
        return counts.mapValues { Double($0) * 100 / Double(choices.count) }
    }

    func testStickyKeysSpreadByWeightWithinHalfAPoint() {
        for weights in [[("1", 90), ("2", 10)], [("a", 50), ("b", 30), ("c", 20)], [("1", 1), ("2", 99)]] {
            let compiled = route(weights)
            let choices = (0..<100_000).map { compiled.sticky(StickyHash.fnv1a("user-\($0)"), available: all) }
            let share = shares(choices)
            let total = Double(weights.reduce(0) { $0 + $1.1 })
            for (version, weight) in weights {
                XCTAssertEqual(share[version] ?? 0, Double(weight) * 100 / total, accuracy: 0.5, "\(weights): \(share)")
            }
        }
    }

    func testDrawsWithoutAKeySpreadByWeightWithinHalfAPoint() {
        let compiled = route([("1", 90), ("2", 10)], sticky: nil)
        let share = shares((0..<100_000).map { _ in compiled.draw(ThreadRandom.unit(), available: all) })
        XCTAssertEqual(share["1"] ?? 0, 90, accuracy: 0.5)
        XCTAssertEqual(share["2"] ?? 0, 10, accuracy: 0.5)
    }

    func testAKeyAlwaysGetsTheSameVariantAcrossRoutesBuiltAgain() {
        for index in 0..<1000 {
            let key = StickyHash.fnv1a("caller-\(index)")
            let first = route([("1", 90), ("2", 10)]).sticky(key, available: all)
            XCTAssertEqual(route([("1", 90), ("2", 10)]).sticky(key, available: all), first)
        }
        // Stable across processes: FNV-1a (its published test vectors), not Swift's seeded Hasher.
        XCTAssertEqual(StickyHash.fnv1a(""), 0xcbf2_9ce4_8422_2325)
        XCTAssertEqual(StickyHash.fnv1a("a"), 0xaf63_dc4c_8601_ec8c)
    }

    func testRaisingACanaryOnlyMovesKeysIntoItAndLoweringItOnlyOut() {
        let keys = (0..<100_000).map { StickyHash.fnv1a("user-\($0)") }
        func assign(_ weights: [(String, Int)]) -> [String?] { keys.map { route(weights).sticky($0, available: all) } }
        let at10 = assign([("1", 90), ("2", 10)])
        let at20 = assign([("1", 80), ("2", 20)])
        let at5 = assign([("1", 95), ("2", 5)])
        let up = zip(at10, at20).filter { $0 != $1 }
        XCTAssertTrue(up.allSatisfy { $0 == "1" && $1 == "2" }, "a key moved out of the canary while it grew")
        XCTAssertEqual(Double(up.count) * 100 / Double(keys.count), 10, accuracy: 0.5, "only the delta moves")
        let down = zip(at10, at5).filter { $0 != $1 }
        XCTAssertTrue(down.allSatisfy { $0 == "2" && $1 == "1" }, "a key moved into the canary while it shrank")
        XCTAssertEqual(Double(down.count) * 100 / Double(keys.count), 5, accuracy: 0.5)
        // Three variants: growing the third takes keys from both others, none move between them.
        let three = assign([("a", 50), ("b", 30), ("c", 20)])
        let grown = assign([("a", 50), ("b", 30), ("c", 40)])
        XCTAssertTrue(zip(three, grown).filter { $0 != $1 }.allSatisfy { $1 == "c" })
    }

    func testAnUnavailableVariantIsSkippedAndAZeroWeightTakesNothing() {
        let compiled = route([("1", 90), ("2", 10), ("3", 0)])
        let keys = (0..<10_000).map { StickyHash.fnv1a("k\($0)") }
        XCTAssertTrue(keys.allSatisfy { compiled.sticky($0, available: { $0 != "2" }) == "1" })
        XCTAssertFalse(keys.contains { compiled.sticky($0, available: all) == "3" })
        XCTAssertNil(compiled.sticky(keys[0], available: { _ in false }))
    }

    func testTheRouterHonoursVersionsOverridesAndStickyKeys() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let threadPool = NIOThreadPool(numberOfThreads: 1)
        let launcher = WorkerLauncher(executable: "/nonexistent", socketDirectory: "/tmp")
        var pools: [String: WorkerPool] = [:]
        for version in ["1", "2"] {
            pools[version] = WorkerPool(
                deployment: ModelDeployment(model: "m", version: version, workers: 1), launcher: launcher, group: group,
                control: group.next(), threadPool: threadPool, logger: Logger(label: "test"))
        }
        let connection = HTTP2ConnectionInfo(remoteAddress: "test", localAddress: "test", isSecure: false)
        func catalog(allowOverride: Bool) -> ModelCatalog {
            var catalog = ModelCatalog()
            let route = ModelRoute(
                model: "m", variants: [.init(version: "1", weight: 90), .init(version: "2", weight: 10)], stickyKey: "x-user-id",
                allowOverride: allowOverride)
            catalog.models["m"] = ModelCatalog.Model(name: "m", versions: ["1", "2"], pools: pools, route: CompiledRoute(route))
            return catalog
        }
        func served(_ version: String, _ metadata: KeyValuePairs<String, String>, allowOverride: Bool = false) -> String {
            let request = InferenceRouteRequest(
                modelName: "m", modelVersion: version, requestID: "", parameters: [:], metadata: GRPCMetadata(metadata), connection: connection)
            switch WeightedRouter().route(request, catalog: catalog(allowOverride: allowOverride)) {
            case .forward(let pool, _): return pool.deployment.version
            case .refuse(let error): return "\(error.status.code): \(error.status.message)"
            }
        }
        // A named version wins over everything.
        XCTAssertEqual(served("2", ["x-user-id": "u"]), "2")
        XCTAssertEqual(served("7", [:]), "NOT_FOUND: unknown version '7' of model 'm'; it has versions 1, 2")
        // The sticky key decides, the same way every time.
        let first = served("", ["x-user-id": "alice"])
        for _ in 0..<100 { XCTAssertEqual(served("", ["x-user-id": "alice"]), first) }
        // The override needs the route's permission.
        XCTAssertEqual(served("", ["x-switchyard-variant": "2"], allowOverride: true), "2")
        XCTAssertTrue(served("", ["x-switchyard-variant": "2"]).hasPrefix("PERMISSION_DENIED: the route of model 'm' does not allow"))
    }
}
