import Foundation
import H2Transport
import Logging
import NIOCore
import NIOPosix
import XCTest

/// `GRPCClientConnection` against Switchyard's own `GRPCServer`, in process, over h2c and TLS.
final class GRPCClientTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup!

    override func setUp() async throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
    }

    override func tearDown() async throws {
        try await group.shutdownGracefully()
        group = nil
    }

    private func connect(
        _ server: GRPCTestServer,
        tls: TLSContext? = nil,
        configure: (inout GRPCClientConnection.Configuration) -> Void = { _ in }
    ) async throws -> GRPCClientConnection {
        var configuration = GRPCClientConnection.Configuration()
        configure(&configuration)
        return try await GRPCClientConnection.connect(
            host: "127.0.0.1", port: server.port, tls: tls, serverName: tls == nil ? nil : "localhost",
            configuration: configuration, group: group, logger: clientTestLogger)
    }

    private func expectRPCError<T>(
        _ code: GRPCStatus.Code,
        file: StaticString = #filePath,
        line: UInt = #line,
        _ body: () async throws -> T
    ) async -> RPCError? {
        do {
            let value = try await body()
            XCTFail("expected \(code), got \(value)", file: file, line: line)
            return nil
        } catch let error as RPCError {
            XCTAssertEqual(error.code, code, "\(error)", file: file, line: line)
            return error
        } catch {
            XCTFail("expected RPCError \(code), got \(error)", file: file, line: line)
            return nil
        }
    }

    // MARK: - Unary

    func testUnaryCallEchoesTheMessageAndSendsTheProtocolHeaders() async throws {
        let server = try await GRPCTestServer.start(group: group)
        let connection = try await connect(server)
        let response = try await connection.unary(path: GRPCTestMethods.unary, request: ByteBuffer(string: "hello"), timeout: .seconds(5))
        XCTAssertEqual(String(buffer: response.message), "hello")
        XCTAssertEqual(response.headers.firstString(named: "x-user-agent"), "switchyard/0.1")
        XCTAssertEqual(response.headers.firstString(named: "x-request-encoding"), "none")
        XCTAssertEqual(response.headers.firstString(named: "x-authority"), "127.0.0.1:\(server.port)")
        let timeout = try XCTUnwrap(response.headers.firstString(named: "x-timeout"))
        XCTAssertNotEqual(timeout, "none", "grpc-timeout was sent")
        let parsed = try GRPCTimeout(parsing: timeout)
        XCTAssertLessThanOrEqual(parsed.duration, .seconds(5))
        XCTAssertGreaterThan(parsed.duration, .seconds(4))
        XCTAssertTrue(connection.isAcceptingCalls)
        XCTAssertEqual(connection.maxConcurrentStreams, 100, "the server's SETTINGS arrived before connect returned")
        await connection.close()
        await server.server.shutdown()
    }

    func testOneThousandConcurrentUnaryCallsShareOneConnection() async throws {
        let server = try await GRPCTestServer.start(group: group)
        let connection = try await connect(server)
        let answers = try await withThrowingTaskGroup(of: (Int, String).self) { tasks in
            for index in 0..<1000 {
                tasks.addTask {
                    let response = try await connection.unary(path: GRPCTestMethods.unary, request: ByteBuffer(string: "call \(index)"))
                    return (index, String(buffer: response.message))
                }
            }
            var answers: [Int: String] = [:]
            for try await (index, text) in tasks { answers[index] = text }
            return answers
        }
        XCTAssertEqual(answers.count, 1000)
        for index in 0..<1000 { XCTAssertEqual(answers[index], "call \(index)") }
        await connection.close()
        await server.server.shutdown()
    }

    func testEightMebibyteMessagesTravelBothWays() async throws {
        let server = try await GRPCTestServer.start(group: group) { $0.calls.maxReceiveMessageSize = 16 << 20 }
        let connection = try await connect(server) { $0.calls.maxReceiveMessageSize = 16 << 20 }
        let payload = ByteBuffer.pattern(8 << 20, seed: 7)
        let response = try await connection.unary(path: GRPCTestMethods.unary, request: payload, timeout: .seconds(10))
        XCTAssertEqual(response.message.readableBytes, 8 << 20)
        XCTAssertTrue(response.message == payload, "the 8 MiB message came back intact")
        await connection.close()
        await server.server.shutdown()
    }

    func testAResponseLargerThanTheClientsLimitFailsWithResourceExhausted() async throws {
        let server = try await GRPCTestServer.start(group: group)
        let connection = try await connect(server) { $0.calls.maxReceiveMessageSize = 1024 }
        let error = await expectRPCError(.resourceExhausted) {
            try await connection.unary(path: GRPCTestMethods.unary, request: .pattern(2048))
        }
        XCTAssertTrue(error?.message.contains("larger than max") ?? false, "\(String(describing: error))")
        // The connection survives.
        let small = try await connection.unary(path: GRPCTestMethods.unary, request: ByteBuffer(string: "ok"))
        XCTAssertEqual(String(buffer: small.message), "ok")
        await connection.close()
        await server.server.shutdown()
    }

    func testGzipCompressesRequestsAndCompressedResponsesAreDecoded() async throws {
        let server = try await GRPCTestServer.start(group: group) { $0.calls.responseEncodings = [.gzip] }
        let connection = try await connect(server)
        let payload = ByteBuffer.pattern(100_000)
        for algorithm in [GRPCCompression.Algorithm.gzip, .deflate] {
            let response = try await connection.unary(path: GRPCTestMethods.unary, request: payload, compression: algorithm)
            XCTAssertEqual(response.headers.firstString(named: "x-request-encoding"), algorithm.name)
            XCTAssertTrue(response.message == payload)
        }
        await connection.close()
        await server.server.shutdown()
    }

    func testMetadataAndTrailersRoundTripIncludingBinaryValues() async throws {
        let server = try await GRPCTestServer.start(group: group)
        let connection = try await connect(server)
        var metadata = GRPCMetadata()
        metadata.add("x-api-key", "secret key")
        metadata.add("x-repeated", "one")
        metadata.add("x-repeated", "two")
        metadata.add("x-trace-bin", binary: [0, 1, 2, 0xFE, 0xFF])
        metadata.add("te", "forged")  // reserved: never sent
        let response = try await connection.unary(path: GRPCTestMethods.unary, request: ByteBuffer(string: "m"), metadata: metadata)
        XCTAssertEqual(response.headers.firstString(named: "x-api-key"), "secret key")
        XCTAssertEqual(response.headers.values(named: "x-repeated"), [.string("one"), .string("two")])
        XCTAssertEqual(response.headers.firstBinary(named: "x-trace-bin"), [0, 1, 2, 0xFE, 0xFF])
        XCTAssertTrue(response.headers.values(named: "te").isEmpty)
        XCTAssertEqual(response.trailers.firstString(named: "t-x-api-key"), "secret key")
        XCTAssertEqual(response.trailers.firstBinary(named: "t-x-trace-bin"), [0, 1, 2, 0xFE, 0xFF])
        XCTAssertEqual(response.trailers.values(named: "t-x-repeated").count, 2)
        await connection.close()
        await server.server.shutdown()
    }

    func testAnErrorStatusArrivesWithItsDecodedMessageAndTrailers() async throws {
        let server = try await GRPCTestServer.start(group: group)
        let connection = try await connect(server)
        var metadata = GRPCMetadata()
        metadata.add("x-code", "8")
        // Not ASCII, and with a '%': grpc-message travels percent-encoded.
        metadata.add("x-message-bin", binary: Array("queue full: 100% — retry".utf8))
        metadata.add("retry-after", "3")
        metadata.add("details-bin", binary: [9, 8, 7])
        let error = await expectRPCError(.resourceExhausted) {
            try await connection.unary(path: GRPCTestMethods.fail, request: ByteBuffer(), metadata: metadata)
        }
        XCTAssertEqual(error?.message, "queue full: 100% — retry")
        XCTAssertEqual(error?.trailers.firstString(named: "retry-after"), "3")
        XCTAssertEqual(error?.trailers.firstBinary(named: "details-bin"), [9, 8, 7])
        await connection.close()
        await server.server.shutdown()
    }

    func testAnUnknownMethodIsUnimplemented() async throws {
        let server = try await GRPCTestServer.start(group: group)
        let connection = try await connect(server)
        let error = await expectRPCError(.unimplemented) {
            try await connection.unary(path: "/switchyard.test.Echo/NoSuchMethod", request: ByteBuffer())
        }
        XCTAssertTrue(error?.message.contains("NoSuchMethod") ?? false)
        await connection.close()
        await server.server.shutdown()
    }

    // MARK: - Deadlines and cancellation

    func testADeadlineEndsTheCallWithDeadlineExceededAndCancelsTheServerCall() async throws {
        let server = try await GRPCTestServer.start(group: group)
        let connection = try await connect(server)
        let started = ContinuousClock.now
        _ = await expectRPCError(.deadlineExceeded) {
            try await connection.unary(path: GRPCTestMethods.slow, request: ByteBuffer(string: "x"), timeout: .milliseconds(200))
        }
        let elapsed = ContinuousClock.now - started
        XCTAssertGreaterThanOrEqual(elapsed, .milliseconds(190))
        XCTAssertLessThan(elapsed, .seconds(2))
        waitUntil("the server call is cancelled") { !server.record.cancelled(GRPCTestMethods.slow).isEmpty }
        XCTAssertTrue(
            [.deadlineExceeded, .cancelled].contains(server.record.cancelled(GRPCTestMethods.slow).first?.code),
            "\(server.record.cancelled(GRPCTestMethods.slow))")
        await connection.close()
        await server.server.shutdown()
    }

    func testCancellingAStreamResetsItAndTheServerHandlerIsCancelled() async throws {
        let server = try await GRPCTestServer.start(group: group)
        let connection = try await connect(server)
        let call = connection.bidirectionalStream(path: GRPCTestMethods.slow)
        try await call.send(ByteBuffer(string: "work"))
        let headers = try await call.headers
        XCTAssertEqual(headers.count, 0)
        waitUntil("the server call starts") { server.record.slowCallsStarted.withLock { $0 } == 1 }
        call.cancel()
        let status = await call.status
        XCTAssertEqual(status.code, .cancelled)
        waitUntil("the server handler hears of it") { !server.record.cancelled(GRPCTestMethods.slow).isEmpty }
        XCTAssertEqual(server.record.cancelled(GRPCTestMethods.slow).first?.code, .cancelled)
        do {
            for try await _ in call.messages { XCTFail("no messages expected") }
            XCTFail("the messages should throw CANCELLED")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .cancelled)
        }
        await connection.close()
        await server.server.shutdown()
    }

    func testCancellingTheCallingTaskCancelsAUnaryCall() async throws {
        let server = try await GRPCTestServer.start(group: group)
        let connection = try await connect(server)
        let task = Task { try await connection.unary(path: GRPCTestMethods.slow, request: ByteBuffer(string: "x")) }
        waitUntil("the server call starts") { server.record.slowCallsStarted.withLock { $0 } == 1 }
        task.cancel()
        _ = await expectRPCError(.cancelled) { try await task.value }
        waitUntil("the server handler hears of it") { !server.record.cancelled(GRPCTestMethods.slow).isEmpty }
        XCTAssertEqual(server.record.cancelled(GRPCTestMethods.slow).first?.code, .cancelled)
        await connection.close()
        await server.server.shutdown()
    }

    // MARK: - Streaming

    func testServerStreamingDeliversEveryMessageInOrder() async throws {
        let server = try await GRPCTestServer.start(group: group)
        let connection = try await connect(server)
        var request = ByteBuffer()
        request.writeInteger(UInt32(500))
        request.writeInteger(UInt32(100))
        let call = connection.serverStreaming(path: GRPCTestMethods.serverStream, request: request, timeout: .seconds(10))
        var expected: UInt32 = 0
        for try await var message in call.messages {
            XCTAssertEqual(message.readableBytes, 100)
            XCTAssertEqual(message.readInteger(as: UInt32.self), expected)
            expected += 1
        }
        XCTAssertEqual(expected, 500)
        let status = await call.status
        XCTAssertEqual(status.code, .ok)
        await connection.close()
        await server.server.shutdown()
    }

    func testASlowReaderHoldsTheServerBackThroughFlowControl() async throws {
        let server = try await GRPCTestServer.start(group: group)
        let connection = try await connect(server) { $0.responseReadAhead = 4 }
        // 2000 messages of 16 KiB: 32 MiB, far more than the windows and watermarks hold.
        var request = ByteBuffer()
        request.writeInteger(UInt32(2000))
        request.writeInteger(UInt32(16_384))
        let call = connection.serverStreaming(path: GRPCTestMethods.serverStream, request: request, timeout: .seconds(15))
        var iterator = call.messages.makeAsyncIterator()
        _ = try await iterator.next()
        // Let the server run ahead as far as it can, then check how far that was.
        try await Task.sleep(for: .milliseconds(300))
        let sentWhileStalled = server.record.streamedMessages.withLock { $0 }
        // Stream window 1 MiB + the server's 256 KiB send queue + 4 read ahead, in 16 KiB
        // messages: about 85. Nothing near 2000.
        XCTAssertLessThan(sentWhileStalled, 200, "the server kept sending to a reader that did not read")
        XCTAssertGreaterThan(sentWhileStalled, 20)
        var count = 1
        while let _ = try await iterator.next() { count += 1 }
        XCTAssertEqual(count, 2000)
        let status = await call.status
        XCTAssertEqual(status.code, .ok)
        await connection.close()
        await server.server.shutdown()
    }

    func testBidirectionalStreamEchoesWhileSendingWithBackpressure() async throws {
        let server = try await GRPCTestServer.start(group: group)
        let connection = try await connect(server)
        var metadata = GRPCMetadata()
        metadata.add("x-session", "42")
        let call = connection.bidirectionalStream(path: GRPCTestMethods.bidi, metadata: metadata, timeout: .seconds(10))
        let count = 300
        let sender = Task {
            for index in 0..<count {
                var message = ByteBuffer()
                message.writeInteger(UInt32(index))
                message.writeRepeatingByte(0xAB, count: 8 * 1024)
                try await call.send(message)
            }
            call.finish()
        }
        var received = 0
        for try await var message in call.messages {
            XCTAssertEqual(message.readInteger(as: UInt32.self), UInt32(received))
            received += 1
        }
        try await sender.value
        XCTAssertEqual(received, count)
        let headers = try await call.headers
        XCTAssertEqual(headers.firstString(named: "x-session"), "42")
        let status = await call.status
        XCTAssertEqual(status.code, .ok)
        let trailers = await call.trailers
        XCTAssertEqual(trailers.firstString(named: "x-session"), "42")
        await connection.close()
        await server.server.shutdown()
    }

    // MARK: - TLS

    func testMutualTLSCarriesUnaryAndStreamingCalls() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let files = try DevCertificates.generate(in: directory.path, client: .client(commonName: "grpc-test-client"))
        let serverTLS = try TLSContext(
            configuration: .server(
                certificateChainPath: files.serverCertificate, privateKeyPath: files.serverKey,
                trustRootsPath: files.caCertificate, clientCertificateVerification: .required))
        let clientTLS = try TLSContext(
            configuration: .client(
                serverName: "localhost", trustRootsPath: files.caCertificate,
                certificateChainPath: files.clientCertificate, privateKeyPath: files.clientKey))
        let server = try await GRPCTestServer.start(group: group, tls: serverTLS)
        let connection = try await connect(server, tls: clientTLS)
        let response = try await connection.unary(path: GRPCTestMethods.unary, request: ByteBuffer(string: "secure"))
        XCTAssertEqual(String(buffer: response.message), "secure")
        XCTAssertEqual(response.headers.firstString(named: "x-peer-cn"), "grpc-test-client")
        XCTAssertEqual(response.headers.firstString(named: "x-authority"), "localhost:\(server.port)")

        let call = connection.bidirectionalStream(path: GRPCTestMethods.bidi)
        for index in 0..<10 { try await call.send(ByteBuffer(string: "m\(index)")) }
        call.finish()
        var echoed: [String] = []
        for try await message in call.messages { echoed.append(String(buffer: message)) }
        XCTAssertEqual(echoed, (0..<10).map { "m\($0)" })

        // A client that does not trust the server's CA cannot connect.
        let strangers = try DevCertificates.generate(in: directory.path + "/other", caCommonName: "Other CA")
        let untrusting = try TLSContext(configuration: .client(serverName: "localhost", trustRootsPath: strangers.caCertificate))
        do {
            _ = try await connect(server, tls: untrusting)
            XCTFail("connected although the server's certificate is not trusted")
        } catch let error as TLSError {
            XCTAssertTrue("\(error)".contains("certificate verify failed"), "\(error)")
        }
        await connection.close()
        await server.server.shutdown()
    }

    // MARK: - Connection lifecycle

    func testAServerGoAwayFailsNewCallsWithUnavailableWhileCallsInFlightFinish() async throws {
        let server = try await GRPCTestServer.start(group: group)
        let connection = try await connect(server)
        var metadata = GRPCMetadata()
        metadata.add("x-delay-ms", "400")
        let inFlight = Task {
            try await connection.unary(path: GRPCTestMethods.delayed, request: ByteBuffer(string: "late"), metadata: metadata)
        }
        try await Task.sleep(for: .milliseconds(100))
        let shutdown = Task { await server.server.shutdown() }
        waitUntil("the client hears GOAWAY") { !connection.isAcceptingCalls }
        let error = await expectRPCError(.unavailable) {
            try await connection.unary(path: GRPCTestMethods.unary, request: ByteBuffer(string: "new"))
        }
        XCTAssertTrue(error?.message.contains("GOAWAY") ?? false, "\(String(describing: error))")
        let late = try await inFlight.value
        XCTAssertEqual(String(buffer: late.message), "late")
        await shutdown.value
        try await connection.closeFuture.get()
        _ = await expectRPCError(.unavailable) {
            try await connection.unary(path: GRPCTestMethods.unary, request: ByteBuffer(string: "after"))
        }
    }

    func testCallsAboveTheLastStreamOfAServerGoAwayFailWithUnavailable() async throws {
        // A raw HTTP/2 peer: SETTINGS at once, then, once the call's HEADERS are in, GOAWAY
        // with last stream id 0: stream 1 was never processed.
        let listener = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(RefusingHTTP2Peer())
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let connection = try await GRPCClientConnection.connect(
            host: "127.0.0.1", port: listener.localAddress!.port!, group: group, logger: clientTestLogger)
        let error = await expectRPCError(.unavailable) {
            try await connection.unary(path: GRPCTestMethods.unary, request: ByteBuffer(string: "never processed"))
        }
        XCTAssertTrue(error?.message.contains("REFUSED_STREAM") ?? false, "\(String(describing: error))")
        XCTAssertFalse(connection.isAcceptingCalls)
        _ = await expectRPCError(.unavailable) {
            try await connection.unary(path: GRPCTestMethods.unary, request: ByteBuffer())
        }
        await connection.close()
        try await listener.close()
    }

    func testCloseLetsCallsInFlightFinishThenClosesTheConnection() async throws {
        let server = try await GRPCTestServer.start(group: group)
        let connection = try await connect(server)
        var metadata = GRPCMetadata()
        metadata.add("x-delay-ms", "200")
        let inFlight = Task {
            try await connection.unary(path: GRPCTestMethods.delayed, request: ByteBuffer(string: "drained"), metadata: metadata)
        }
        try await Task.sleep(for: .milliseconds(50))
        await connection.close()
        let response = try await inFlight.value
        XCTAssertEqual(String(buffer: response.message), "drained")
        XCTAssertFalse(connection.isAcceptingCalls)
        _ = await expectRPCError(.unavailable) {
            try await connection.unary(path: GRPCTestMethods.unary, request: ByteBuffer())
        }
        await server.server.shutdown()
    }

    func testALostConnectionFailsItsCallsWithUnavailable() async throws {
        // An HTTP/2 server that accepts a stream, never answers, and drops the connection.
        let listener = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        HTTP2ConnectionHandler(server: HTTP2Configuration(), logger: clientTestLogger) { _ in
                            channel.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(50)) { channel.close(promise: nil) }
                            return SilentStreamDelegate()
                        })
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let connection = try await GRPCClientConnection.connect(
            host: "127.0.0.1", port: listener.localAddress!.port!, group: group, logger: clientTestLogger)
        let call = connection.bidirectionalStream(path: GRPCTestMethods.slow)
        let status = await call.status
        XCTAssertEqual(status.code, .unavailable, "\(status)")
        _ = await expectRPCError(.unavailable) {
            try await connection.unary(path: GRPCTestMethods.unary, request: ByteBuffer())
        }
        try await listener.close()
    }

    func testConnectingToAPortWithNoServerFails() async throws {
        // Bind and close a listener to find a port nobody listens on.
        let probe = try await ServerBootstrap(group: group).bind(host: "127.0.0.1", port: 0).get()
        let port = probe.localAddress!.port!
        try await probe.close()
        do {
            _ = try await GRPCClientConnection.connect(host: "127.0.0.1", port: port, group: group, logger: clientTestLogger)
            XCTFail("connected to a closed port")
        } catch {
            // NIOConnectionError or ChannelError: either names the refusal.
        }
    }
}

/// A server-side stream delegate that ignores everything.
private final class SilentStreamDelegate: HTTP2StreamDelegate {
    func stream(_ stream: HTTP2Stream, receivedHeaders headers: [HTTP2HeaderField], endStream: Bool) {}
    func stream(_ stream: HTTP2Stream, receivedData data: ByteBuffer) { stream.consume(data.readableBytes) }
    func streamReceivedEnd(_ stream: HTTP2Stream) {}
    func stream(_ stream: HTTP2Stream, wasReset code: HTTP2ErrorCode) {}
    func streamClosed(_ stream: HTTP2Stream) {}
    func stream(_ stream: HTTP2Stream, writabilityChanged isWritable: Bool) {}
}

/// `GRPCClientConnection` against a real grpcio server (Tests/interop/grpcio_echo_server.py) over
/// h2c: another implementation's framing, HPACK, flow control, trailers and deadlines.
final class GRPCClientGrpcioInteropTests: XCTestCase {
    private static let unary = "/switchyard.diagnostics.Echo/Unary"
    private static let stream = "/switchyard.diagnostics.Echo/Stream"
    private static let healthCheck = "/grpc.health.v1.Health/Check"

    private var group: MultiThreadedEventLoopGroup!
    private var server: GrpcioEchoServer!
    private var connection: GRPCClientConnection!

    override func setUp() async throws {
        server = try GrpcioEchoServer()
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        connection = try await GRPCClientConnection.connect(host: "127.0.0.1", port: server.port, group: group, logger: clientTestLogger)
    }

    override func tearDown() async throws {
        await connection?.close()
        server?.stop()
        try await group?.shutdownGracefully()
    }

    /// A `grpc.health.v1.HealthCheckRequest` with `service` (field 1), by hand.
    private func healthCheckRequest(_ service: String) -> ByteBuffer {
        var buffer = ByteBuffer()
        if !service.isEmpty {
            buffer.writeInteger(UInt8(0x0A))
            buffer.writeInteger(UInt8(service.utf8.count))
            buffer.writeString(service)
        }
        return buffer
    }

    func testUnaryCallsEchoMessagesAndMetadataAndAnswerHealthChecks() async throws {
        var metadata = GRPCMetadata()
        metadata.add("echo-session", "abc 123")
        metadata.add("echo-blob-bin", binary: [0, 0xFF, 0x10, 0x80])
        let response = try await connection.unary(
            path: Self.unary, request: ByteBuffer(string: "hello grpcio"), metadata: metadata, timeout: .seconds(5))
        XCTAssertEqual(String(buffer: response.message), "hello grpcio")
        XCTAssertEqual(response.headers.firstString(named: "echo-session"), "abc 123")
        XCTAssertEqual(response.headers.firstBinary(named: "echo-blob-bin"), [0, 0xFF, 0x10, 0x80])
        XCTAssertEqual(response.trailers.firstString(named: "echo-trailer-session"), "abc 123")
        XCTAssertEqual(response.trailers.firstBinary(named: "echo-trailer-blob-bin"), [0, 0xFF, 0x10, 0x80])
        XCTAssertTrue(
            response.headers.firstString(named: "x-seen-user-agent")?.contains("switchyard/0.1") ?? false,
            "\(String(describing: response.headers.firstString(named: "x-seen-user-agent")))")
        let remaining = try XCTUnwrap(response.headers.firstString(named: "x-seen-timeout-ms").flatMap(Int.init))
        XCTAssertTrue((3_000...5_000).contains(remaining), "grpcio saw a deadline \(remaining) ms away")

        // grpcio inflates our gzip and deflate.
        let large = ByteBuffer.pattern(300_000, seed: 3)
        for algorithm in [GRPCCompression.Algorithm.gzip, .deflate] {
            let compressed = try await connection.unary(path: Self.unary, request: large, compression: algorithm)
            XCTAssertTrue(compressed.message == large, "\(algorithm)")
        }

        let health = try await connection.unary(path: Self.healthCheck, request: healthCheckRequest("switchyard.diagnostics.Echo"))
        XCTAssertEqual(Array(buffer: health.message), [0x08, 0x01], "SERVING")
        let overall = try await connection.unary(path: Self.healthCheck, request: healthCheckRequest(""))
        XCTAssertEqual(Array(buffer: overall.message), [0x08, 0x01])
        do {
            _ = try await connection.unary(path: Self.healthCheck, request: healthCheckRequest("no.such.Service"))
            XCTFail("an unknown service was reported healthy")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .notFound, "\(error)")
        }
    }

    func testBidirectionalStreamingEchoesEveryMessageWithHeadersAndTrailers() async throws {
        var metadata = GRPCMetadata()
        metadata.add("echo-stream", "s-1")
        let call = connection.bidirectionalStream(path: Self.stream, metadata: metadata, timeout: .seconds(10), compression: .gzip)
        let count = 200
        let sender = Task {
            for index in 0..<count {
                var message = ByteBuffer()
                message.writeInteger(UInt32(index))
                message.writeImmutableBuffer(ByteBuffer.pattern(1_000, seed: UInt8(index % 256)))
                try await call.send(message)
            }
            call.finish()
        }
        var received = 0
        for try await var message in call.messages {
            XCTAssertEqual(message.readInteger(as: UInt32.self), UInt32(received))
            XCTAssertEqual(message.readableBytes, 1_000)
            received += 1
        }
        try await sender.value
        XCTAssertEqual(received, count)
        let headers = try await call.headers
        XCTAssertEqual(headers.firstString(named: "echo-stream"), "s-1")
        let status = await call.status
        XCTAssertEqual(status.code, .ok)
        let trailers = await call.trailers
        XCTAssertEqual(trailers.firstString(named: "echo-trailer-stream"), "s-1")
    }

    func testDeadlinesAndErrorStatusesFromGrpcio() async throws {
        var slow = GRPCMetadata()
        slow.add("x-echo-delay-ms", "3000")
        let started = ContinuousClock.now
        do {
            _ = try await connection.unary(path: Self.unary, request: ByteBuffer(string: "slow"), metadata: slow, timeout: .milliseconds(300))
            XCTFail("the deadline did not end the call")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .deadlineExceeded, "\(error)")
        }
        XCTAssertLessThan(ContinuousClock.now - started, .seconds(2))

        var failing = GRPCMetadata()
        failing.add("x-echo-status", "5")
        failing.add("x-echo-message", "model 'resnet' not found: 100%")
        failing.add("echo-reason", "missing")
        do {
            _ = try await connection.unary(path: Self.unary, request: ByteBuffer(), metadata: failing)
            XCTFail("the status was not reported")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .notFound, "\(error)")
            XCTAssertEqual(error.message, "model 'resnet' not found: 100%")
            XCTAssertEqual(error.trailers.firstString(named: "echo-trailer-reason"), "missing")
        }

        do {
            _ = try await connection.unary(path: "/switchyard.diagnostics.Echo/Nope", request: ByteBuffer())
            XCTFail("an unknown method answered")
        } catch let error as RPCError {
            XCTAssertEqual(error.code, .unimplemented, "\(error)")
        }

        // The connection is still good after all that.
        let after = try await connection.unary(path: Self.unary, request: ByteBuffer(string: "still here"))
        XCTAssertEqual(String(buffer: after.message), "still here")
    }
}

/// Speaks just enough HTTP/2 to refuse everything: its SETTINGS when the connection opens, and
/// GOAWAY (last stream id 0, NO_ERROR) once more than the client's preface has arrived.
private final class RefusingHTTP2Peer: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private var received = 0
    private var sentGoAway = false

    func channelActive(context: ChannelHandlerContext) {
        // An empty SETTINGS frame: length 0, type 4, flags 0, stream 0.
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: [0, 0, 0, 4, 0, 0, 0, 0, 0])), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        received += unwrapInboundIn(data).readableBytes
        // Preface (24) + SETTINGS (9 + 6 per setting, at most 5) + SETTINGS ACK + WINDOW_UPDATE:
        // more than 90 bytes means HEADERS have come too.
        guard received > 90, !sentGoAway else { return }
        sentGoAway = true
        let goAway: [UInt8] = [0, 0, 8, 7, 0, 0, 0, 0, 0, /* last stream */ 0, 0, 0, 0, /* NO_ERROR */ 0, 0, 0, 0]
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: goAway)), promise: nil)
    }
}
