import Foundation
@testable import H2Transport
import NIOCore
import NIOPosix
import XCTest

/// Admits calls by their `x-let-in` metadata; counts what it admitted and what ended. Shared by
/// every loop in this test, so it locks (the gateway's gates are per loop and do not).
private final class MetadataGate: GRPCServerCallGate, @unchecked Sendable {
    let counts = LockedBox((admitted: 0, ended: 0, refused: 0))

    func admit(_ call: GRPCServerCall) -> RPCError? {
        guard call.head.metadata.firstString(named: "x-let-in") == "yes" else {
            counts.withLock { $0.refused += 1 }
            var trailers = GRPCMetadata()
            trailers.add("grpc-retry-pushback-ms", "250")
            return RPCError(code: .resourceExhausted, message: "not now", trailers: trailers)
        }
        counts.withLock { $0.admitted += 1 }
        call.gateToken = call  // anything: it must reach admittedCallEnded
        return nil
    }

    func admittedCallEnded(_ call: GRPCServerCall) {
        XCTAssertTrue(call.gateToken === call)
        counts.withLock { $0.ended += 1 }
    }
}

final class GRPCServerCallGateTests: XCTestCase {
    func testARefusedCallNeverReachesItsHandlerAndEveryAdmittedCallEndsOnceHoweverItEnds() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let gate = MetadataGate()
        let server = try await GRPCTestServer.start(group: group) { configuration in
            configuration.callGate = { _ in gate }
        }
        let connection = try await GRPCClientConnection.connect(
            host: "127.0.0.1", port: server.port, tls: nil, serverName: nil, configuration: .init(), group: group, logger: clientTestLogger)
        let inside = GRPCMetadata(["x-let-in": "yes"])

        // Refused: the status and trailers the gate chose, and the handler never ran.
        do {
            _ = try await connection.unary(path: GRPCTestMethods.unary, request: ByteBuffer(string: "hi"))
            XCTFail("expected RESOURCE_EXHAUSTED")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .resourceExhausted)
            XCTAssertEqual(error.message, "not now")
            XCTAssertEqual(error.trailers.firstString(named: "grpc-retry-pushback-ms"), "250")
        }
        // Admitted: served normally; a deadline and a client reset end the others.
        let answer = try await connection.unary(path: GRPCTestMethods.unary, request: ByteBuffer(string: "hello"), metadata: inside)
        XCTAssertEqual(answer.message, ByteBuffer(string: "hello"))
        _ = try? await connection.unary(path: GRPCTestMethods.slow, request: ByteBuffer(string: "x"), metadata: inside, timeout: .milliseconds(100))
        let stream = connection.bidirectionalStream(path: GRPCTestMethods.slow, metadata: inside)
        try await stream.send(ByteBuffer(string: "work"))
        _ = try await stream.headers
        stream.cancel()
        _ = await stream.status

        waitUntil("every admitted call ends") { gate.counts.withLock { $0.ended } == 3 }
        let counts = gate.counts.withLock { $0 }
        XCTAssertEqual(counts.refused, 1)
        XCTAssertEqual(counts.admitted, 3)
        XCTAssertEqual(counts.ended, 3, "each admitted call is heard ending exactly once")
        await connection.close()
        await server.server.shutdown()
        try await group.shutdownGracefully()
    }
}
