import Foundation
@testable import H2Transport
import NIOCore
import NIOPosix
import XCTest

/// Records what a server tells its observer. Shared by every loop in these tests, so it locks
/// (the gateway's observers are per loop and do not).
private final class RecordingObserver: GRPCServerObserver, @unchecked Sendable {
    struct Ended: Equatable {
        var path: String
        var method: String?
        var code: GRPCStatus.Code
        var received: Int
        var sent: Int
        var bytesIn: Int
        var bytesOut: Int
        var requestID: String
    }

    let state = LockedBox((started: [String: Int](), ended: [String: [Ended]](), opened: 0, closed: 0, goAways: [HTTP2GoAwayReason]()))
    private let messages = LockedBox((received: [String: Int](), sent: [String: Int]()))
    private let generated = LockedBox(0)

    func connectionOpened(secure: Bool) { state.withLock { $0.opened += 1 } }
    func connectionClosed(secure: Bool) { state.withLock { $0.closed += 1 } }
    func goAwaySent(_ reason: HTTP2GoAwayReason) { state.withLock { $0.goAways.append(reason) } }

    func callStarted(_ call: GRPCServerCall) {
        // Calls are told apart by their request ids (a freed call's address is soon reused).
        if call.requestID.isEmpty { call.requestID = "generated-\(generated.withLock { $0 += 1; return $0 })" }
        state.withLock { $0.started[call.requestID, default: 0] += 1 }
    }

    func callReceivedMessage(_ call: GRPCServerCall) { messages.withLock { $0.received[call.requestID, default: 0] += 1 } }
    func callSentMessage(_ call: GRPCServerCall) { messages.withLock { $0.sent[call.requestID, default: 0] += 1 } }

    func callFinished(_ call: GRPCServerCall, status: GRPCStatus) {
        let id = call.requestID
        let counts = messages.withLock { ($0.received[id] ?? 0, $0.sent[id] ?? 0) }
        let ended = Ended(
            path: call.head.path, method: call.method?.name, code: status.code, received: counts.0, sent: counts.1, bytesIn: call.bytesReceived,
            bytesOut: call.bytesSent, requestID: call.requestID)
        state.withLock { $0.ended[id, default: []].append(ended) }
    }

    /// Calls that ended, once each; fails the test for a call that started without ending or
    /// ended twice.
    func endedCalls(file: StaticString = #filePath, line: UInt = #line) -> [Ended] {
        state.withLock { state in
            for (call, count) in state.started {
                XCTAssertEqual(count, 1, "a call started twice", file: file, line: line)
                XCTAssertEqual(state.ended[call]?.count, 1, "a call ended \(state.ended[call]?.count ?? 0) times: \(state.ended[call] ?? [])", file: file, line: line)
            }
            XCTAssertEqual(Set(state.ended.keys), Set(state.started.keys), file: file, line: line)
            return state.ended.values.compactMap(\.first)
        }
    }
}

final class GRPCServerObserverTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup!

    override func setUp() async throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    }

    override func tearDown() async throws {
        try await group.shutdownGracefully()
        group = nil
    }

    func testEveryCallIsHeardOnceWithItsStatusMessagesBytesAndRequestID() async throws {
        let observer = RecordingObserver()
        let server = try await GRPCTestServer.start(group: group) { configuration in
            configuration.observer = { _ in observer }
            configuration.echoRequestID = true
        }
        let connection = try await GRPCClientConnection.connect(
            host: "127.0.0.1", port: server.port, tls: nil, serverName: nil, configuration: .init(), group: group, logger: clientTestLogger)

        // OK, with the client's request id echoed.
        let given = try await connection.unary(
            path: GRPCTestMethods.unary, request: ByteBuffer(string: "hello"), metadata: GRPCMetadata(["x-request-id": "client-7"]))
        XCTAssertEqual(given.headers.firstString(named: "x-request-id"), "client-7")
        // OK, with an id the observer made.
        let generated = try await connection.unary(path: GRPCTestMethods.unary, request: ByteBuffer(string: "hi"))
        XCTAssertEqual(generated.headers.firstString(named: "x-request-id")?.hasPrefix("generated-"), true)
        // A status from the handler, before any response: the id goes back in Trailers-Only.
        do {
            _ = try await connection.unary(
                path: GRPCTestMethods.fail, request: ByteBuffer(), metadata: GRPCMetadata(["x-code": "9", "x-request-id": "failing"]))
            XCTFail("expected FAILED_PRECONDITION")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .failedPrecondition)
            XCTAssertEqual(error.trailers.firstString(named: "x-request-id"), "failing")
        }
        // No such method.
        _ = try? await connection.unary(path: "/switchyard.test.Echo/Nope", request: ByteBuffer())
        // The deadline passes.
        _ = try? await connection.unary(path: GRPCTestMethods.slow, request: ByteBuffer(string: "x"), timeout: .milliseconds(100))
        // The client resets a stream.
        let stream = connection.bidirectionalStream(path: GRPCTestMethods.slow)
        try await stream.send(ByteBuffer(string: "work"))
        _ = try await stream.headers
        waitUntil("the slow call starts") { server.record.slowCallsStarted.withLock { $0 } == 2 }
        stream.cancel()
        _ = await stream.status
        // A bidirectional stream of three messages.
        let echo = connection.bidirectionalStream(path: GRPCTestMethods.bidi)
        for index in 0..<3 { try await echo.send(ByteBuffer(string: "m\(index)")) }
        echo.finish()
        var echoed = 0
        for try await _ in echo.messages { echoed += 1 }
        XCTAssertEqual(echoed, 3)

        waitUntil("every call ends") { observer.state.withLock { $0.ended.count } == 7 }
        await connection.close()
        await server.server.shutdown()
        waitUntil("the connection's close is heard") { observer.state.withLock { $0.closed } == 1 }

        let ended = observer.endedCalls()
        func one(_ path: String, _ code: GRPCStatus.Code) -> [RecordingObserver.Ended] { ended.filter { $0.path == path && $0.code == code } }
        let oks = one(GRPCTestMethods.unary, .ok)
        XCTAssertEqual(oks.count, 2)
        XCTAssertEqual(Set(oks.map(\.requestID)).contains("client-7"), true)
        for call in oks {
            XCTAssertEqual(call.method, "Unary")
            XCTAssertEqual(call.received, 1)
            XCTAssertEqual(call.sent, 1)
            XCTAssertGreaterThan(call.bytesIn, 5)
            XCTAssertGreaterThan(call.bytesOut, 5)
        }
        XCTAssertEqual(one(GRPCTestMethods.fail, .failedPrecondition).map(\.requestID), ["failing"])
        XCTAssertEqual(one("/switchyard.test.Echo/Nope", .unimplemented).map(\.method), [nil])
        // The deadline ends one (the server's timer, or the client's reset: whichever is first);
        // the client's reset ends the other.
        XCTAssertEqual(one(GRPCTestMethods.slow, .deadlineExceeded).count + one(GRPCTestMethods.slow, .cancelled).count, 2)
        XCTAssertGreaterThanOrEqual(one(GRPCTestMethods.slow, .cancelled).count, 1)
        let bidi = one(GRPCTestMethods.bidi, .ok)
        XCTAssertEqual(bidi.map(\.received), [3])
        XCTAssertEqual(bidi.map(\.sent), [3])
        XCTAssertEqual(observer.state.withLock { $0.opened }, 1)
    }

    func testTLSHandshakeFailuresAreClassifiedForTheObserver() async throws {
        let observer = RecordingTLSObserver()
        let certificates = try TestCertificates()
        defer { certificates.directory.remove() }
        let server = try await GRPCTestServer.start(group: group, tls: TLSContext(configuration: certificates.serverConfiguration())) { configuration in
            configuration.observer = { _ in observer }
        }
        // Plaintext HTTP/2 to the TLS port.
        let channel = try await ClientBootstrap(group: group).connect(host: "127.0.0.1", port: server.port).get()
        try await channel.writeAndFlush(ByteBuffer(string: "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")).get()
        try? await channel.closeFuture.get()
        waitUntil("the failure is heard") { !observer.failures.current.isEmpty }
        XCTAssertEqual(observer.failures.current, [.notTLS])
        await server.server.shutdown()
    }
}

private final class RecordingTLSObserver: GRPCServerObserver, @unchecked Sendable {
    let failures = LockedBox<[TLSHandshakeFailureReason]>([])
    func tlsHandshakeFailed(_ reason: TLSHandshakeFailureReason) { failures.withLock { $0.append(reason) } }
}
