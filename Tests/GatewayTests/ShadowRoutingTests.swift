@testable import Gateway
import Foundation
import H2Transport
import InferenceProtocol
import Logging
import NIOCore
import NIOPosix
import XCTest

/// The routing seam's shadow copy, end to end: a real gateway with real worker processes of two
/// versions of `simple`, a router that answers from version 1 and shadows to version 2. The
/// client gets version 1's answers only; version 2 runs a copy of every request.
final class ShadowRoutingTests: XCTestCase {
    private static let binary = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/debug/switchyard")

    /// Answers from version 1 of `simple`, shadows to version 2.
    struct ShadowRouter: InferenceRouter {
        func route(_ request: InferenceRouteRequest, catalog: ModelCatalog) -> InferenceRoute {
            guard let model = catalog.models[request.modelName], let primary = model.pools["1"] else {
                return .refuse(RPCError(code: .notFound, message: "no version 1 of '\(request.modelName)'"))
            }
            return .forward(primary, shadow: model.pools["2"])
        }
    }

    func testAShadowVariantRunsACopyOfEveryRequestAndTheClientGetsOnlyThePrimaryAnswer() async throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary.path) else {
            throw XCTSkip("no \(Self.binary.path): run `swift build --build-tests` first")
        }
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let sockets = NSTemporaryDirectory() + "shadow-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: sockets, withIntermediateDirectories: true)
        var logger = Logger(label: "shadow-test")
        logger.logLevel = .warning
        var configuration = GatewayConfiguration()
        configuration.plaintextListener = .init(host: "127.0.0.1", port: 0)
        configuration.tlsListener = nil
        configuration.adminListener = nil
        configuration.models = [ModelDeployment(model: "simple", version: "1", workers: 1), ModelDeployment(model: "simple", version: "2", workers: 1)]
        configuration.workerLauncher = WorkerLauncher(executable: Self.binary.path, socketDirectory: sockets)
        configuration.router = ShadowRouter()
        let gateway = try GatewayServer(configuration: configuration, group: group, logger: logger)
        try await gateway.start()
        let client = try await GRPCClientConnection.connect(
            host: "127.0.0.1", port: try XCTUnwrap(gateway.boundAddresses.first?.port), group: group, logger: logger)

        var request = ModelInferRequest()
        request.modelName = "simple"
        request.id = "shadowed"
        var input0 = ModelInferRequest.InferInputTensor()
        input0.name = "INPUT0"
        input0.datatype = "INT32"
        input0.shape = [1, 16]
        var input1 = input0
        input1.name = "INPUT1"
        request.inputs = [input0, input1]
        var a = ByteBuffer()
        var b = ByteBuffer()
        for value in 0..<16 {
            a.writeInteger(Int32(value), endianness: .little)
            b.writeInteger(Int32(1), endianness: .little)
        }
        request.rawInputContents = [a, b]
        let calls = 5
        for _ in 0..<calls {
            let answer = try await client.unary(path: "/inference.GRPCInferenceService/ModelInfer", request: request.encoded())
            let response = try ModelInferResponse(decoding: answer.message)
            XCTAssertEqual(response.modelVersion, "1", "the client hears the primary variant only")
            XCTAssertEqual(response.id, "shadowed")
            var sum = try XCTUnwrap(response.rawOutputContents.first)
            XCTAssertEqual(sum.readInteger(endianness: .little, as: Int32.self), 1)
        }

        let primary = try XCTUnwrap(gateway.repository.pool(for: ModelVariantKey(model: "simple", version: "1")))
        let shadow = try XCTUnwrap(gateway.repository.pool(for: ModelVariantKey(model: "simple", version: "2")))
        // The shadow's answers arrive on their own; wait (bounded) for all of them.
        let deadline = Date().addingTimeInterval(10)
        while await shadow.statistics().successCount < UInt64(calls), Date() < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let shadowed = await shadow.statistics()
        XCTAssertEqual(shadowed.successCount, UInt64(calls), "every request ran on the shadow variant too")
        XCTAssertEqual(shadowed.failCount, 0)
        XCTAssertGreaterThan(shadowed.successNanos, 0, "the shadow's time is counted too")
        let answered = await primary.statistics()
        XCTAssertEqual(answered.successCount, UInt64(calls))
        // Each call's two answers were compared (a router of its own: the default tolerances).
        let pair = ShadowPairKey(model: "simple", version: "1", shadowVersion: "2")
        let pairs = await gateway.repository.shadowComparisonStatistics()
        let compared = try XCTUnwrap(pairs[pair])
        XCTAssertEqual(compared.count(.match), UInt64(calls))
        XCTAssertEqual(compared.comparedElements, UInt64(calls * 32))
        XCTAssertEqual(compared.primaryDuration.count, UInt64(calls))
        XCTAssertEqual(compared.shadowDuration.count, UInt64(calls))

        await client.close()
        await gateway.shutdown()
        try await group.shutdownGracefully()
        try? FileManager.default.removeItem(atPath: sockets)
    }
}
