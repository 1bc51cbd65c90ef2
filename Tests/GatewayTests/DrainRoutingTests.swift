@testable import Gateway
import H2Transport
import Logging
import NIOCore
import NIOPosix
import XCTest

/// The default version router with versions an operator drained (pools built, never started).
final class DrainRoutingTests: XCTestCase {
    func testUnversionedRequestsGoToTheNewestVersionNotDrainedAndDrainedOnesAreRefused() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let threadPool = NIOThreadPool(numberOfThreads: 1)
        let launcher = WorkerLauncher(executable: "/nonexistent", socketDirectory: "/tmp")
        var pools: [String: WorkerPool] = [:]
        for version in ["1", "2", "3"] {
            pools[version] = WorkerPool(
                deployment: ModelDeployment(model: "m", version: version, workers: 1), launcher: launcher, group: group,
                control: group.next(), threadPool: threadPool, logger: Logger(label: "test"))
        }
        let connection = HTTP2ConnectionInfo(remoteAddress: "test", localAddress: "test", isSecure: false)
        // (loaded versions, drained versions, requested version) → version served, or the refusal's message.
        let cases: [([String], Set<String>, String, String)] = [
            (["1", "2", "3"], [], "", "3"),
            (["1", "2", "3"], ["3"], "", "2"),
            (["1", "2", "3"], ["2", "3"], "", "1"),
            (["1", "3"], ["3"], "", "1"),
            (["1", "2", "3"], ["1", "2", "3"], "", "model 'm' is drained by an operator and takes no new requests; try again later"),
            (["1", "2", "3"], ["3"], "3", "version 3 of model 'm' is drained by an operator and takes no new requests; try again later"),
            (["1", "2", "3"], ["3"], "1", "1"),
        ]
        for (loaded, drained, requested, expected) in cases {
            var catalog = ModelCatalog()
            catalog.models["m"] = ModelCatalog.Model(
                name: "m", versions: ["1", "2", "3"], pools: pools.filter { loaded.contains($0.key) }, drained: drained)
            let route = VersionRouter().route(
                InferenceRouteRequest(modelName: "m", modelVersion: requested, requestID: "", parameters: [:], metadata: GRPCMetadata(), connection: connection),
                catalog: catalog)
            switch route {
            case .forward(let pool, _): XCTAssertEqual(pool.deployment.version, expected, "\(loaded) \(drained) '\(requested)'")
            case .refuse(let error):
                XCTAssertEqual(error.status.code, .unavailable)
                XCTAssertEqual(error.status.message, expected, "\(loaded) \(drained) '\(requested)'")
            }
        }
    }
}
