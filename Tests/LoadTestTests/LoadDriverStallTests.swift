import H2Transport
import InferenceProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import XCTest

@testable import LoadTest

/// The real driver on real sockets against an in-process gRPC server that stalls for a second:
/// the open loop charges the stall to every call that was due during it.
final class LoadDriverStallTests: XCTestCase {
    private let logger = Logger(label: "loadtest.test") { _ in SwiftLogNoOpLogHandler() }

    /// A Health/Check server that answers at once, except that the calls arriving from 1 s to
    /// 2 s after its first call are all answered at 2 s.
    private func startStallingServer(group: EventLoopGroup) async throws -> (GRPCServer, Int, NIOLockedValueBox<Int>) {
        let firstCall = NIOLockedValueBox<NIODeadline?>(nil)
        let served = NIOLockedValueBox(0)
        let registry = GRPCServiceRegistry()
        registry.registerUnary("/grpc.health.v1.Health/Check") { _, call in
            let now = NIODeadline.now()
            let first = firstCall.withLockedValue { value in
                if value == nil { value = now }
                return value!
            }
            served.withLockedValue { $0 += 1 }
            let answer = HealthCheckResponse(status: .serving).encoded()
            let stallStart = first + .seconds(1)
            let stallEnd = first + .seconds(2)
            if now >= stallStart && now < stallEnd {
                return call.eventLoop.scheduleTask(deadline: stallEnd) { answer }.futureResult
            }
            return call.eventLoop.makeSucceededFuture(answer)
        }
        let server = GRPCServer(
            configuration: GRPCServer.Configuration(listeners: [.init(host: "127.0.0.1", port: 0)]),
            registry: registry, group: group, logger: logger)
        try await server.start()
        let port = try XCTUnwrap(server.boundAddresses.first?.port)
        return (server, port, served)
    }

    func testOpenLoopChargesAServerStallToTheCallsDueDuringIt() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let (server, port, served) = try await startStallingServer(group: group)
        var configuration = LoadTestConfiguration(host: "127.0.0.1")
        configuration.port = port
        configuration.method = .health(service: "")
        configuration.threads = 1
        // 100 calls/s for 3 s, at most one outstanding: a client that cannot pipeline, so the
        // stall also holds back the calls due during it (where coordinated omission hides them).
        configuration.load = .requestRate([100], .constant)
        configuration.maxInFlightPerConnection = 1
        configuration.duration = .seconds(3)
        let result = try await LoadDriver(configuration: configuration, logger: logger).run()
        await server.shutdown()
        try await group.shutdownGracefully()

        let step = try XCTUnwrap(result.steps.first)
        XCTAssertEqual(step.errors, [:])
        // The driver caught up after the stall: (nearly) every due call was made.
        XCTAssertGreaterThanOrEqual(step.calls, 270)
        XCTAssertEqual(Int(step.calls), served.withLockedValue { $0 })
        // About a third of the calls were due during the stall and are charged the wait, from
        // up to a second down to nothing: p90 is hundreds of milliseconds, not the server's
        // sub-millisecond answer time that a latency measured from the actual send would show.
        XCTAssertGreaterThan(step.latency.max, 900)
        XCTAssertGreaterThan(step.latency.p90, 250, "\(step.latency)")
        XCTAssertLessThan(step.latency.p50, 250, "\(step.latency)")
        // The timeline shows it in the second after the stall began.
        XCTAssertTrue(step.timeline.contains { $0.latency.max > 900 }, "\(step.timeline.map(\.latency.max))")
    }
}
