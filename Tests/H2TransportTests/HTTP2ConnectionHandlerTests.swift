@testable import H2Transport
import Logging
import NIOCore
import NIOEmbedded
import XCTest

/// A server HTTP2ConnectionHandler in an EmbeddedChannel, driven byte by byte: requests split at
/// every offset, and one hostile peer per protection of HTTP2Configuration (the interop twin is
/// Tests/interop/test_http2_protections.py).
final class HTTP2ConnectionHandlerTests: XCTestCase {
    // MARK: Frame scanner

    func testScannerFindsEveryFrameHeaderWhereverTheBytesAreSplit() {
        let frames: [[UInt8]] = [
            Wire.frame(FrameType.settings, stream: 0, [0, 3, 0, 0, 0, 100]),
            Wire.frame(FrameType.headers, flags: Flag.endHeaders, stream: 1, Array(repeating: 7, count: 20)),
            Wire.frame(FrameType.data, stream: 1, []),
            Wire.frame(0x42, flags: 0xFF, stream: 0x7FFF_FFFF, [1, 2, 3]),
        ]
        let bytes = Wire.clientPreface + frames.joined()
        let expected = [
            HTTP2FrameHeaderScanner.FrameHeader(length: 6, type: FrameType.settings, flags: 0, streamID: 0),
            HTTP2FrameHeaderScanner.FrameHeader(length: 20, type: FrameType.headers, flags: Flag.endHeaders, streamID: 1),
            HTTP2FrameHeaderScanner.FrameHeader(length: 0, type: FrameType.data, flags: 0, streamID: 1),
            HTTP2FrameHeaderScanner.FrameHeader(length: 3, type: 0x42, flags: 0xFF, streamID: 0x7FFF_FFFF),
        ]
        for split in bytes.indices.dropFirst() {
            var scanner = HTTP2FrameHeaderScanner(skippingClientPreface: true)
            var found: [HTTP2FrameHeaderScanner.FrameHeader] = []
            for piece in [bytes[..<split], bytes[split...]] {
                Array(piece).withUnsafeBytes { scanner.scan($0) { found.append($0) } }
            }
            XCTAssertEqual(found, expected, "split at \(split)")
        }
        var scanner = HTTP2FrameHeaderScanner(skippingClientPreface: true)
        var found: [HTTP2FrameHeaderScanner.FrameHeader] = []
        for byte in bytes {
            [byte].withUnsafeBytes { scanner.scan($0) { found.append($0) } }
        }
        XCTAssertEqual(found, expected, "one byte at a time")
    }

    // MARK: A request split at every byte boundary

    func testRequestSplitAtEveryByteBoundaryReachesTheStreamDelegateUnchanged() throws {
        let message = ByteBuffer(bytes: Array(0..<200).map { UInt8($0 % 251) })
        let request = try ClientSession(body: Wire.grpcFramed(message)).requestBytes(headers: Wire.requestHeaders(path: "/test.Stub/Echo"))
        let expectedHeaders = Wire.requestHeaders(path: "/test.Stub/Echo")
        var splits: [[ArraySlice<UInt8>]] = request.indices.dropFirst().map { [request[..<$0], request[$0...]] }
        splits.append(request.indices.map { request[$0...$0] })
        for pieces in splits {
            let server = try ServerHarness(sendPreface: false)
            defer { server.finish() }
            for piece in pieces { try server.send(Array(piece)) }
            let label = "pieces \(pieces.map(\.count).prefix(3))"
            XCTAssertEqual(server.streams.count, 1, label)
            guard let stream = server.streams.first else { continue }
            XCTAssertEqual(stream.headerBlocks.map { $0.map { [$0.name, $0.value] } }, [expectedHeaders.map { [$0.name, $0.value] }], label)
            XCTAssertEqual(stream.data, Wire.grpcFramed(message), label)
            XCTAssertTrue(stream.receivedEnd, label)
            XCTAssertNil(stream.resetCode, label)
            XCTAssertFalse(server.frames.contains { $0.type == FrameType.goAway || $0.type == FrameType.rstStream }, label)
        }
    }

    func testGRPCCallSplitAtEveryByteBoundaryIsAnsweredByTheRegisteredMethod() throws {
        let registry = GRPCServiceRegistry()
        // The stub answers with the request reversed: the response proves what the method saw.
        registry.registerUnary("/test.Stub/Reverse") { request, call in
            call.eventLoop.makeSucceededFuture(ByteBuffer(bytes: request.readableBytesView.reversed()))
        }
        let message = ByteBuffer(bytes: Array("switchyard hostile peers".utf8))
        let request = try ClientSession(body: Wire.grpcFramed(message)).requestBytes(headers: Wire.requestHeaders(path: "/test.Stub/Reverse"))
        for split in request.indices.dropFirst() {
            let server = try ServerHarness(sendPreface: false) { stream in
                GRPCServerStreamHandler(stream: stream, registry: registry, configuration: .init(), logger: http2TestLogger)
            }
            defer { server.finish() }
            try server.send(Array(request[..<split]))
            try server.send(Array(request[split...]))
            // Back to a real client session, which decodes the answer.
            let client = try ClientSession(body: Wire.grpcFramed(message))
            _ = try client.requestBytes(headers: Wire.requestHeaders(path: "/test.Stub/Reverse"))
            try client.session.receive(ByteBuffer(bytes: server.rawOutput))
            let response = client.recorder
            XCTAssertEqual(response.headerBlocks.count, 2, "split at \(split)")
            XCTAssertEqual(response.headerBlocks.first?.first { $0.name == ":status" }?.value, "200", "split at \(split)")
            XCTAssertEqual(response.headerBlocks.last?.first { $0.name == "grpc-status" }?.value, "0", "split at \(split)")
            XCTAssertEqual(response.data, Wire.grpcFramed(ByteBuffer(bytes: message.readableBytesView.reversed())), "split at \(split)")
            XCTAssertEqual(response.closedStreams, [1: .noError], "split at \(split)")
        }
    }

    func testImmediateUnaryMethodsAnswerWithTheirMessageOrTheirError() throws {
        struct Reversed: GRPCMessageEncodable, Sendable {
            var bytes: [UInt8]
            func writeMessage(into buffer: inout ByteBuffer) { buffer.writeBytes(bytes.reversed()) }
            var estimatedMessageSize: Int { bytes.count }
        }
        let registry = GRPCServiceRegistry()
        registry.registerImmediateUnary("/test.Stub/Reverse") { request, _ in
            Reversed(bytes: Array(request.readableBytesView))
        }
        registry.registerImmediateUnary("/test.Stub/Refuse") { (_, _) throws -> ByteBuffer in
            throw RPCError(code: .permissionDenied, message: "not for you")
        }
        let message = ByteBuffer(bytes: Array("immediate answer".utf8))
        for (path, status, body) in [
            ("/test.Stub/Reverse", "0", Wire.grpcFramed(ByteBuffer(bytes: message.readableBytesView.reversed()))),
            ("/test.Stub/Refuse", "7", ByteBuffer()),
        ] {
            let server = try ServerHarness(sendPreface: false) { stream in
                GRPCServerStreamHandler(stream: stream, registry: registry, configuration: .init(), logger: http2TestLogger)
            }
            defer { server.finish() }
            try server.send(try ClientSession(body: Wire.grpcFramed(message)).requestBytes(headers: Wire.requestHeaders(path: path)))
            let client = try ClientSession(body: Wire.grpcFramed(message))
            _ = try client.requestBytes(headers: Wire.requestHeaders(path: path))
            try client.session.receive(ByteBuffer(bytes: server.rawOutput))
            let response = client.recorder
            XCTAssertEqual(response.headerBlocks.last?.first { $0.name == "grpc-status" }?.value, status, path)
            XCTAssertEqual(response.data, body, path)
            if status != "0" {
                XCTAssertEqual(response.headerBlocks.last?.first { $0.name == "grpc-message" }?.value, "not for you")
            }
        }
    }

    func testDataPayloadsAreSlicesOfTheReceivedBufferNotCopies() throws {
        let message = ByteBuffer(bytes: Array(repeating: 0xAB, count: 3000))
        let request = try ClientSession(body: Wire.grpcFramed(message)).requestBytes(headers: Wire.requestHeaders())
        let server = try NGHTTP2Session(role: .server, configuration: HTTP2Configuration())
        let recorder = ClientRecorder(body: ByteBuffer())
        server.delegate = recorder
        let input = ByteBuffer(bytes: request)
        try server.receive(input)
        XCTAssertEqual(recorder.data, Wire.grpcFramed(message))
        XCTAssertFalse(recorder.chunks.isEmpty)
        input.withUnsafeReadableBytes { inputBytes in
            let range = UnsafeRawPointer(inputBytes.baseAddress!)..<UnsafeRawPointer(inputBytes.baseAddress! + inputBytes.count)
            for chunk in recorder.chunks {
                chunk.withUnsafeReadableBytes { chunkBytes in
                    XCTAssertTrue(range.contains(UnsafeRawPointer(chunkBytes.baseAddress!)), "a DATA chunk was copied out of the input")
                }
            }
        }
        server.delegate = nil
    }

    // MARK: 1. SETTINGS_MAX_CONCURRENT_STREAMS

    func testSettingsAdvertiseTheConfiguredLimits() throws {
        let server = try ServerHarness()
        defer { server.finish() }
        let settings = try XCTUnwrap(server.frames.first { $0.type == FrameType.settings && $0.flags & Flag.ack == 0 })
        var values: [UInt16: UInt32] = [:]
        for offset in stride(from: 0, to: settings.payload.count, by: 6) {
            let id = UInt16(settings.payload[offset]) << 8 | UInt16(settings.payload[offset + 1])
            values[id] = settings.payload[(offset + 2)..<(offset + 6)].reduce(0) { $0 << 8 | UInt32($1) }
        }
        XCTAssertEqual(values[0x3], 100)  // MAX_CONCURRENT_STREAMS
        XCTAssertEqual(values[0x4], 1 << 20)  // INITIAL_WINDOW_SIZE
        XCTAssertEqual(values[0x5], 16_384)  // MAX_FRAME_SIZE
        XCTAssertEqual(values[0x6], 16_384)  // MAX_HEADER_LIST_SIZE
    }

    func testStreamOverTheConcurrencyLimitIsRefusedWhileSettingsAreUnacknowledged() throws {
        let server = try ServerHarness(acknowledgeSettings: false)
        defer { server.finish() }
        try server.send((0..<101).flatMap { Wire.frame(FrameType.headers, flags: Flag.endHeaders, stream: Int32(1 + 2 * $0), Wire.requestBlock()) })
        XCTAssertEqual(server.resets.map(\.streamID), [201])
        XCTAssertEqual(server.resets.map(\.errorCode), [HTTP2ErrorCode.refusedStream.rawValue])
        XCTAssertEqual(server.handler.openStreamCount, 100)
        XCTAssertTrue(server.channel.isActive)
    }

    func testStreamOverTheConcurrencyLimitAfterSettingsAckEndsTheConnection() throws {
        let server = try ServerHarness()
        defer { server.finish() }
        try server.send((0..<101).flatMap { Wire.frame(FrameType.headers, flags: Flag.endHeaders, stream: Int32(1 + 2 * $0), Wire.requestBlock()) })
        server.assertGoAway(code: .protocolError, reason: "max concurrent streams exceeded")
    }

    // MARK: 2. Header list size and the HPACK bomb

    func testHeaderListOverTheLimitResetsOnlyThatStream() throws {
        let server = try ServerHarness()
        defer { server.finish() }
        let block = Wire.requestBlock(extra: [("x-big", String(repeating: "a", count: 17_000))])
        try server.send(
            Wire.frame(FrameType.headers, stream: 1, Array(block[..<16_000]))
                + Wire.frame(FrameType.continuation, flags: Flag.endHeaders, stream: 1, Array(block[16_000...])))
        XCTAssertEqual(server.resets.map(\.errorCode), [HTTP2ErrorCode.internalError.rawValue])
        XCTAssertTrue(server.streams.isEmpty, "the refused stream reached the layer above")
        try server.send(Wire.frame(FrameType.headers, flags: Flag.endHeaders | Flag.endStream, stream: 3, Wire.requestBlock()))
        XCTAssertEqual(server.streams.count, 1)
        XCTAssertTrue(server.channel.isActive)
    }

    func testHPACKBombIsRefusedAndRepeatingItGetsEnhanceYourCalm() throws {
        let server = try ServerHarness()
        defer { server.finish() }
        // One 1000-byte field enters the dynamic table (index 62), then 1000 one-byte
        // references to it: ~1 MB of header list from ~2 KB on the wire.
        let bomb = Wire.requestBlock() + HPACK.indexedLiteral("x-bomb", String(repeating: "b", count: 1000)) + Array(repeating: 0x80 | 62, count: 1000)
        var stream: Int32 = 1
        while server.channel.isActive && stream < 1000 {
            try server.send(Wire.frame(FrameType.headers, flags: Flag.endHeaders, stream: stream, bomb))
            stream += 2
        }
        XCTAssertGreaterThanOrEqual(server.resets.count, 90)
        XCTAssertTrue(server.resets.allSatisfy { $0.errorCode == HTTP2ErrorCode.internalError.rawValue })
        XCTAssertTrue(server.streams.isEmpty)
        server.assertGoAway(code: .enhanceYourCalm, reason: "too many no-op or invalid frames")
    }

    // MARK: 3. Rapid Reset

    func testRapidResetGetsEnhanceYourCalm() throws {
        let server = try ServerHarness()
        defer { server.finish() }
        try server.send(
            (0..<300).flatMap { (index: Int) -> [UInt8] in
                Wire.frame(FrameType.headers, flags: Flag.endHeaders, stream: Int32(1 + 2 * index), Wire.requestBlock())
                    + Wire.frame(FrameType.rstStream, stream: Int32(1 + 2 * index), Wire.be32(HTTP2ErrorCode.cancel.rawValue))
            })
        server.assertGoAway(code: .enhanceYourCalm, reason: "too many stream resets (Rapid Reset)")
    }

    func testResetsWithinTheBurstAreFine() throws {
        let server = try ServerHarness()
        defer { server.finish() }
        try server.send(
            (0..<150).flatMap { (index: Int) -> [UInt8] in
                Wire.frame(FrameType.headers, flags: Flag.endHeaders, stream: Int32(1 + 2 * index), Wire.requestBlock())
                    + Wire.frame(FrameType.rstStream, stream: Int32(1 + 2 * index), Wire.be32(HTTP2ErrorCode.cancel.rawValue))
            })
        XCTAssertTrue(server.channel.isActive)
        XCTAssertEqual(server.streams.filter { $0.resetCode == .cancel }.count, 150)
        XCTAssertTrue(server.goAways.isEmpty)
    }

    // MARK: 4. CONTINUATION flood

    func testEightContinuationsAreAccepted() throws {
        let server = try ServerHarness()
        defer { server.finish() }
        let block = Wire.requestBlock()
        var bytes = Wire.frame(FrameType.headers, stream: 1, Array(block[0..<4]))
        for index in 1...8 {
            let piece = index < 8 ? Array(block[(4 * index)..<(4 * index + 4)]) : Array(block[32...])
            bytes += Wire.frame(FrameType.continuation, flags: index == 8 ? Flag.endHeaders : 0, stream: 1, piece)
        }
        try server.send(bytes)
        XCTAssertEqual(server.streams.first?.headerBlocks.count, 1)
        XCTAssertTrue(server.channel.isActive)
    }

    func testContinuationFloodGetsEnhanceYourCalm() throws {
        let server = try ServerHarness()
        defer { server.finish() }
        let block = Wire.requestBlock()
        try server.send(
            Wire.frame(FrameType.headers, stream: 1, Array(block[0..<4]))
                + (0..<100).flatMap { _ in Wire.frame(FrameType.continuation, stream: 1, []) })
        server.assertGoAway(code: .enhanceYourCalm, reason: "too many CONTINUATION frames")
    }

    // MARK: 5. Empty DATA frames

    func testEmptyDataFloodGetsEnhanceYourCalm() throws {
        let server = try ServerHarness()
        defer { server.finish() }
        try server.send(Wire.frame(FrameType.headers, flags: Flag.endHeaders, stream: 1, Wire.requestBlock()))
        try server.send((0..<300).flatMap { _ in Wire.frame(FrameType.data, stream: 1, []) })
        server.assertGoAway(code: .enhanceYourCalm, reason: "empty DATA frame")
    }

    func testEmptyDataFloodOnAStreamTheServerResetGetsEnhanceYourCalm() throws {
        // nghttp2 drops these without a callback; the frame scanner still counts them.
        let server = try ServerHarness()
        defer { server.finish() }
        let block = Wire.requestBlock(extra: [("x-big", String(repeating: "a", count: 17_000))])
        try server.send(
            Wire.frame(FrameType.headers, stream: 1, Array(block[..<16_000]))
                + Wire.frame(FrameType.continuation, flags: Flag.endHeaders, stream: 1, Array(block[16_000...])))
        XCTAssertEqual(server.resets.count, 1)
        try server.send((0..<300).flatMap { _ in Wire.frame(FrameType.data, stream: 1, []) })
        server.assertGoAway(code: .enhanceYourCalm, reason: "empty DATA frame")
    }

    // MARK: 6. Zero-increment WINDOW_UPDATE

    func testZeroWindowUpdateOnAStreamIsAConnectionProtocolError() throws {
        // nghttp2 1.52 makes it a connection error at once, so there is no flood to count.
        let server = try ServerHarness()
        defer { server.finish() }
        try server.send(
            Wire.frame(FrameType.headers, flags: Flag.endHeaders, stream: 1, Wire.requestBlock())
                + Wire.frame(FrameType.windowUpdate, stream: 1, Wire.be32(0)))
        server.assertGoAway(code: .protocolError, reason: "WINDOW_UPDATE: window_size_increment == 0")
    }

    // MARK: 7. PRIORITY and unknown frames

    func testPriorityFloodGetsEnhanceYourCalm() throws {
        let server = try ServerHarness()
        defer { server.finish() }
        try server.send((0..<300).flatMap { _ in Wire.frame(FrameType.priority, stream: 3, Wire.be32(0) + [15]) })
        server.assertGoAway(code: .enhanceYourCalm, reason: "PRIORITY frame")
    }

    func testUnknownFrameFloodGetsEnhanceYourCalm() throws {
        for type: UInt8 in [0x0A, 0x0C, 0x10, 0x42, 0xFF] {
            let server = try ServerHarness()
            defer { server.finish() }
            try server.send((0..<300).flatMap { _ in Wire.frame(type, stream: 0, [1, 2, 3]) })
            server.assertGoAway(code: .enhanceYourCalm, reason: "unknown frame type \(type)")
        }
    }

    func testAFewNoOpFramesAreTolerated() throws {
        let server = try ServerHarness()
        defer { server.finish() }
        try server.send(
            (0..<50).flatMap { _ in Wire.frame(FrameType.priority, stream: 3, Wire.be32(0) + [15]) + Wire.frame(0x42, stream: 0, [1]) }
                + Wire.frame(FrameType.headers, flags: Flag.endHeaders | Flag.endStream, stream: 1, Wire.requestBlock()))
        XCTAssertEqual(server.streams.count, 1)
        XCTAssertTrue(server.goAways.isEmpty)
        XCTAssertTrue(server.channel.isActive)
    }

    // MARK: 8. MadeYouReset

    func testMadeYouResetByWindowOverflowGetsEnhanceYourCalm() throws {
        let server = try ServerHarness()
        defer { server.finish() }
        var stream: Int32 = 1
        while server.channel.isActive && stream < 1000 {
            try server.send(
                Wire.frame(FrameType.headers, flags: Flag.endHeaders, stream: stream, Wire.requestBlock())
                    + Wire.frame(FrameType.windowUpdate, stream: stream, Wire.be32(0x7FFF_FFFF)))
            stream += 2
        }
        XCTAssertGreaterThanOrEqual(server.resets.count, 90)
        XCTAssertTrue(server.resets.allSatisfy { $0.errorCode == HTTP2ErrorCode.flowControlError.rawValue })
        server.assertGoAway(code: .enhanceYourCalm, reason: "too many no-op or invalid frames")
    }

    func testMadeYouResetByMalformedHeadersGetsEnhanceYourCalm() throws {
        let server = try ServerHarness()
        defer { server.finish() }
        var stream: Int32 = 1
        while server.channel.isActive && stream < 1000 {
            try server.send(Wire.frame(FrameType.headers, flags: Flag.endHeaders, stream: stream, Wire.requestBlock(extra: [("connection", "keep-alive")])))
            stream += 2
        }
        XCTAssertGreaterThanOrEqual(server.resets.count, 90)
        XCTAssertTrue(server.resets.allSatisfy { $0.errorCode == HTTP2ErrorCode.protocolError.rawValue })
        server.assertGoAway(code: .enhanceYourCalm, reason: "too many no-op or invalid frames")
    }

    // MARK: 9. PING and SETTINGS floods, keepalive enforcement

    func testThirdPingTooSoonGetsTooManyPings() throws {
        let server = try ServerHarness()
        defer { server.finish() }
        for index in 0..<3 {
            try server.send(Wire.frame(FrameType.ping, stream: 0, Array(repeating: UInt8(index), count: 8)))
        }
        XCTAssertEqual(server.frames.filter { $0.type == FrameType.ping && $0.flags & Flag.ack != 0 }.count, 3)
        XCTAssertTrue(server.goAways.isEmpty)
        try server.send(Wire.frame(FrameType.ping, stream: 0, Array(repeating: 3, count: 8)))
        server.assertGoAway(code: .enhanceYourCalm, reason: "too_many_pings")
        XCTAssertEqual(server.goAways.first?.debugData, Array("too_many_pings".utf8))
    }

    func testPingStrikesStartOverWhenTheServerSendsHeaders() throws {
        let server = try ServerHarness(respondToRequests: true)
        defer { server.finish() }
        for index in 0..<3 { try server.send(Wire.frame(FrameType.ping, stream: 0, Array(repeating: UInt8(index), count: 8))) }
        try server.send(Wire.frame(FrameType.headers, flags: Flag.endHeaders | Flag.endStream, stream: 1, Wire.requestBlock()))
        XCTAssertTrue(server.frames.contains { $0.type == FrameType.headers })
        for index in 3..<6 { try server.send(Wire.frame(FrameType.ping, stream: 0, Array(repeating: UInt8(index), count: 8))) }
        XCTAssertTrue(server.goAways.isEmpty)
        XCTAssertTrue(server.channel.isActive)
    }

    func testSettingsFloodEndsAtMaxOutboundAcks() throws {
        let server = try ServerHarness()
        defer { server.finish() }
        // All in one read: acknowledgements pile up inside nghttp2 until max_outbound_ack.
        try server.send((0..<2000).flatMap { _ in Wire.frame(FrameType.settings, stream: 0, []) })
        server.assertGoAway(code: .enhanceYourCalm, reason: "too many SETTINGS or PING frames left unacknowledged")
        XCTAssertLessThanOrEqual(server.frames.filter { $0.type == FrameType.settings && $0.flags & Flag.ack != 0 }.count, 1001)
    }

    // MARK: 10. A peer that never finishes the preface

    func testConnectionStuckInThePrefaceIsClosedByThePrefaceTimeout() throws {
        let server = try ServerHarness(sendPreface: false)
        defer { server.finish() }
        try server.send(Array(Wire.clientPreface[..<10]))
        server.channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        XCTAssertTrue(server.channel.isActive)
        server.channel.embeddedEventLoop.advanceTime(by: .seconds(1))
        XCTAssertFalse(server.channel.isActive)
    }

    func testAPeerThatCompletesThePrefaceIsNotClosedByThePrefaceTimeout() throws {
        let server = try ServerHarness()
        defer { server.finish() }
        server.channel.embeddedEventLoop.advanceTime(by: .seconds(60))
        XCTAssertTrue(server.channel.isActive)
    }

    func testBadPrefaceGetsProtocolError() throws {
        let server = try ServerHarness(sendPreface: false)
        defer { server.finish() }
        try server.send(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        XCTAssertEqual(server.goAways.map(\.errorCode), [HTTP2ErrorCode.protocolError.rawValue])
        XCTAssertFalse(server.channel.isActive)
    }
}

// MARK: - Wire helpers

private enum FrameType {
    static let data: UInt8 = 0x0
    static let headers: UInt8 = 0x1
    static let priority: UInt8 = 0x2
    static let rstStream: UInt8 = 0x3
    static let settings: UInt8 = 0x4
    static let ping: UInt8 = 0x6
    static let goAway: UInt8 = 0x7
    static let windowUpdate: UInt8 = 0x8
    static let continuation: UInt8 = 0x9
}

private enum Flag {
    static let endStream: UInt8 = 0x1
    static let ack: UInt8 = 0x1
    static let endHeaders: UInt8 = 0x4
}

private let http2TestLogger = Logger(label: "switchyard.http2.test") { _ in SwiftLogNoOpLogHandler() }

/// Frames and header blocks written by hand.
private enum Wire {
    static let clientPreface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    static func be32(_ value: UInt32) -> [UInt8] {
        [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
    }

    static func frame(_ type: UInt8, flags: UInt8 = 0, stream: Int32, _ payload: [UInt8]) -> [UInt8] {
        let length = payload.count
        return [UInt8(length >> 16), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF), type, flags] + Wire.be32(UInt32(stream)) + payload
    }

    static func requestHeaders(path: String = "/grpc.health.v1.Health/Check") -> [HTTP2HeaderField] {
        [
            HTTP2HeaderField(":method", "POST"), HTTP2HeaderField(":scheme", "http"), HTTP2HeaderField(":path", path),
            HTTP2HeaderField(":authority", "localhost"), HTTP2HeaderField("content-type", "application/grpc"),
            HTTP2HeaderField("te", "trailers"),
        ]
    }

    /// A request's header block as HPACK literals without indexing (no table, no Huffman).
    static func requestBlock(extra: [(String, String)] = []) -> [UInt8] {
        Wire.requestHeaders().flatMap { HPACK.literal($0.name, $0.value) } + extra.flatMap { HPACK.literal($0.0, $0.1) }
    }

    static func grpcFramed(_ message: ByteBuffer) -> ByteBuffer {
        var framed = ByteBuffer()
        framed.writeInteger(UInt8(0))
        framed.writeInteger(UInt32(message.readableBytes))
        framed.writeImmutableBuffer(message)
        return framed
    }
}

/// Just enough HPACK (RFC 7541) to write hostile header blocks by hand.
private enum HPACK {
    static func integer(_ value: Int, prefixBits: Int, flags: UInt8) -> [UInt8] {
        let limit = (1 << prefixBits) - 1
        guard value >= limit else { return [flags | UInt8(value)] }
        var bytes = [flags | UInt8(limit)]
        var rest = value - limit
        while rest >= 128 {
            bytes.append(UInt8(rest % 128 + 128))
            rest /= 128
        }
        bytes.append(UInt8(rest))
        return bytes
    }

    static func string(_ text: String) -> [UInt8] {
        let bytes = Array(text.utf8)
        return integer(bytes.count, prefixBits: 7, flags: 0) + bytes
    }

    /// Literal header field without indexing, new name (§6.2.2).
    static func literal(_ name: String, _ value: String) -> [UInt8] { [0x00] + string(name) + string(value) }

    /// Literal header field with incremental indexing, new name (§6.2.1): the field becomes
    /// dynamic table entry 62.
    static func indexedLiteral(_ name: String, _ value: String) -> [UInt8] { [0x40] + string(name) + string(value) }
}

private struct WireFrame {
    var type: UInt8
    var flags: UInt8
    var streamID: Int32
    var payload: [UInt8]

    /// RST_STREAM's or GOAWAY's error code.
    var errorCode: UInt32 {
        let offset = type == FrameType.goAway ? 4 : 0
        return payload[offset..<(offset + 4)].reduce(0) { $0 << 8 | UInt32($1) }
    }

    var debugData: [UInt8] { Array(payload.dropFirst(8)) }
}

// MARK: - Server side

/// Records what the server connection hands to the layer above for one stream.
private final class RecordingStreamDelegate: HTTP2StreamDelegate {
    var headerBlocks: [[HTTP2HeaderField]] = []
    var data = ByteBuffer()
    var receivedEnd = false
    var resetCode: HTTP2ErrorCode?
    var closed = false
    let respond: Bool

    init(respond: Bool) { self.respond = respond }

    func stream(_ stream: HTTP2Stream, receivedHeaders headers: [HTTP2HeaderField], endStream: Bool) {
        headerBlocks.append(headers)
        if respond { stream.sendHeaders([HTTP2HeaderField(":status", "200")], endStream: true) }
    }

    func stream(_ stream: HTTP2Stream, receivedData data: ByteBuffer) {
        self.data.writeImmutableBuffer(data)
        stream.consume(data.readableBytes)
    }

    func streamReceivedEnd(_ stream: HTTP2Stream) { receivedEnd = true }
    func stream(_ stream: HTTP2Stream, wasReset code: HTTP2ErrorCode) { resetCode = code }
    func streamClosed(_ stream: HTTP2Stream) { closed = true }
    func stream(_ stream: HTTP2Stream, writabilityChanged isWritable: Bool) {}
}

private final class StreamLog {
    var delegates: [RecordingStreamDelegate] = []
}

/// A server connection in an EmbeddedChannel, with the frames it has sent so far.
private final class ServerHarness {
    let channel = EmbeddedChannel()
    let handler: HTTP2ConnectionHandler
    private let log = StreamLog()
    private var pending: [UInt8] = []
    private(set) var rawOutput: [UInt8] = []
    private(set) var frames: [WireFrame] = []

    init(
        configuration: HTTP2Configuration = HTTP2Configuration(), sendPreface: Bool = true, acknowledgeSettings: Bool = true,
        respondToRequests: Bool = false, makeDelegate: ((HTTP2Stream) -> HTTP2StreamDelegate?)? = nil
    ) throws {
        let log = self.log
        handler = HTTP2ConnectionHandler(server: configuration, logger: http2TestLogger) { stream in
            if let makeDelegate { return makeDelegate(stream) }
            let delegate = RecordingStreamDelegate(respond: respondToRequests)
            log.delegates.append(delegate)
            return delegate
        }
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8001)).wait()
        if sendPreface {
            try send(Wire.clientPreface + Wire.frame(FrameType.settings, stream: 0, []))
            if acknowledgeSettings { try send(Wire.frame(FrameType.settings, flags: Flag.ack, stream: 0, [])) }
        }
    }

    var streams: [RecordingStreamDelegate] { log.delegates }
    var resets: [WireFrame] { frames.filter { $0.type == FrameType.rstStream } }
    var goAways: [WireFrame] { frames.filter { $0.type == FrameType.goAway } }

    /// One read from the network (channelRead, then channelReadComplete).
    func send(_ bytes: [UInt8]) throws {
        guard channel.isActive else { return }
        try channel.writeInbound(ByteBuffer(bytes: bytes))
        channel.embeddedEventLoop.run()
        collectOutput()
    }

    func collectOutput() {
        while let buffer = try? channel.readOutbound(as: ByteBuffer.self) {
            rawOutput += buffer.readableBytesView
            pending += buffer.readableBytesView
        }
        while pending.count >= 9 {
            let length = Int(pending[0]) << 16 | Int(pending[1]) << 8 | Int(pending[2])
            guard pending.count >= 9 + length else { break }
            let stream = Int32(bitPattern: pending[5..<9].reduce(0) { $0 << 8 | UInt32($1) } & 0x7FFF_FFFF)
            frames.append(WireFrame(type: pending[3], flags: pending[4], streamID: stream, payload: Array(pending[9..<(9 + length)])))
            pending.removeFirst(9 + length)
        }
    }

    /// The first GOAWAY carries `code` and `reason` in its debug data, and the channel closed.
    func assertGoAway(code: HTTP2ErrorCode, reason: String, file: StaticString = #filePath, line: UInt = #line) {
        channel.embeddedEventLoop.run()
        collectOutput()
        guard let goAway = goAways.first else {
            XCTFail("no GOAWAY; last frames \(frames.suffix(3).map { ($0.type, $0.streamID) })", file: file, line: line)
            return
        }
        XCTAssertEqual(goAway.errorCode, code.rawValue, "GOAWAY \(String(decoding: goAway.debugData, as: UTF8.self))", file: file, line: line)
        XCTAssertTrue(
            String(decoding: goAway.debugData, as: UTF8.self).contains(reason), "debug data: \(String(decoding: goAway.debugData, as: UTF8.self))",
            file: file, line: line)
        XCTAssertFalse(channel.isActive, "the connection stayed open after GOAWAY", file: file, line: line)
    }

    func finish() {
        _ = try? channel.finish(acceptAlreadyClosed: true)
    }
}

// MARK: - Client side

/// What a client NGHTTP2Session hears from the server.
private final class ClientRecorder: NGHTTP2SessionDelegate {
    var body: ByteBuffer
    var headerBlocks: [[HTTP2HeaderField]] = []
    var pendingHeaders: [HTTP2HeaderField] = []
    var data = ByteBuffer()
    /// Every DATA chunk as delivered (to check that chunks are slices of the input).
    var chunks: [ByteBuffer] = []
    var closedStreams: [Int32: HTTP2ErrorCode] = [:]

    init(body: ByteBuffer) { self.body = body }

    func session(_ session: NGHTTP2Session, beginFrame type: UInt8, flags: UInt8, streamID: Int32, length: Int) -> Bool { true }
    func session(_ session: NGHTTP2Session, beginHeadersOn streamID: Int32) { pendingHeaders = [] }
    func session(_ session: NGHTTP2Session, header: consuming HTTP2HeaderField, on streamID: Int32) -> Bool {
        pendingHeaders.append(header)
        return true
    }
    func session(_ session: NGHTTP2Session, headersCompleteOn streamID: Int32, endStream: Bool) { headerBlocks.append(pendingHeaders) }
    func session(_ session: NGHTTP2Session, data: ByteBuffer, on streamID: Int32) {
        self.data.writeImmutableBuffer(data)
        chunks.append(data)
    }
    func session(_ session: NGHTTP2Session, endStreamOn streamID: Int32) {}
    func session(_ session: NGHTTP2Session, resetReceived code: HTTP2ErrorCode, on streamID: Int32) {}
    func session(_ session: NGHTTP2Session, streamClosed streamID: Int32, code: HTTP2ErrorCode) { closedStreams[streamID] = code }
    func sessionReceivedPing(_ session: NGHTTP2Session) {}
    func sessionReceivedPingAck(_ session: NGHTTP2Session) {}
    func session(_ session: NGHTTP2Session, goAwayReceived code: HTTP2ErrorCode, lastStreamID: Int32) {}
    func session(_ session: NGHTTP2Session, invalidFrame type: UInt8, on streamID: Int32, error: Int32) {}
    func session(_ session: NGHTTP2Session, sentFrame type: UInt8, flags: UInt8, streamID: Int32, errorCode: UInt32) {}
    func session(_ session: NGHTTP2Session, readBody streamID: Int32, into target: UnsafeMutableRawBufferPointer) -> NGHTTP2Session.BodyRead {
        let count = min(target.count, body.readableBytes)
        _ = body.readWithUnsafeReadableBytes { source in
            target.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[0..<count]))
            return count
        }
        return .bytes(count, endOfBody: body.readableBytes == 0, trailers: nil)
    }
}

/// A real nghttp2 client: its bytes are what a well-behaved peer sends.
private final class ClientSession {
    let session: NGHTTP2Session
    let recorder: ClientRecorder

    init(body: ByteBuffer) throws {
        session = try NGHTTP2Session(role: .client, configuration: HTTP2Configuration())
        recorder = ClientRecorder(body: body)
        session.delegate = recorder
    }

    /// Preface, SETTINGS, HEADERS and DATA of one request with the body given at init.
    func requestBytes(headers: [HTTP2HeaderField]) throws -> [UInt8] {
        try session.submitSettings(HTTP2Configuration())
        _ = try session.submitRequest(headers: .fields(headers), hasBody: true)
        var output = ByteBuffer()
        try session.produceOutput(into: &output, limit: 1 << 20)
        return Array(output.readableBytesView)
    }
}
