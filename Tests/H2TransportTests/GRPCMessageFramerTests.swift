import NIOCore
import XCTest

@testable import H2Transport

final class GRPCMessageFramerTests: XCTestCase {
    func testUncompressedMessagesGetAFlagAndBigEndianLength() throws {
        let table: [[UInt8]] = [[], [1], Array(repeating: 7, count: 300), Array(repeating: 1, count: 70_000)]
        for body in table {
            var framer = GRPCMessageFramer()
            try framer.append(ByteBuffer(bytes: body))
            XCTAssertEqual(framer.pendingByteCount, body.count + 5)
            XCTAssertEqual(Array(try XCTUnwrap(framer.flush()).readableBytesView), framed(body), "\(body.count) bytes")
        }
    }

    func testSelfSerializingMessagesAreFramedInPlaceLikeTheirBytes() throws {
        struct Bytes: GRPCMessageEncodable {
            var bytes: [UInt8]
            func writeMessage(into buffer: inout ByteBuffer) { buffer.writeBytes(bytes) }
            var estimatedMessageSize: Int { 4 }  // a low guess: the buffer grows
        }
        for body in [[], [1], Array(repeating: UInt8(7), count: 300), Array(repeating: UInt8(1), count: 70_000)] {
            var framer = GRPCMessageFramer()
            try framer.append(Bytes(bytes: [9, 9]))
            try framer.append(Bytes(bytes: body))
            XCTAssertEqual(Array(try XCTUnwrap(framer.flush()).readableBytesView), framed([9, 9]) + framed(body), "\(body.count) bytes")
        }
        // Over the limit: refused, and nothing of it stays in the output.
        var limited = GRPCMessageFramer(maxMessageSize: 10)
        try limited.append(Bytes(bytes: [1]))
        XCTAssertThrowsError(try limited.append(Bytes(bytes: Array(repeating: 2, count: 11)))) { error in
            XCTAssertEqual((error as? GRPCStatus)?.code, .resourceExhausted)
        }
        XCTAssertEqual(Array(try XCTUnwrap(limited.flush()).readableBytesView), framed([1]))
        // With a response encoding the message is serialized first and compressed when it pays.
        var compressing = GRPCMessageFramer(encoding: .gzip)
        try compressing.append(Bytes(bytes: Array(repeating: 5, count: 1000)))
        let output = try XCTUnwrap(compressing.flush())
        XCTAssertEqual(output.getInteger(at: output.readerIndex, as: UInt8.self), 1)
        XCTAssertLessThan(output.readableBytes, 200)
    }

    func testSeveralMessagesCoalesceIntoOneBuffer() throws {
        var framer = GRPCMessageFramer()
        XCTAssertNil(framer.flush())
        try framer.append(ByteBuffer(bytes: [1]))
        try framer.append(ByteBuffer(bytes: [2, 3]))
        try framer.append(ByteBuffer(bytes: []))
        XCTAssertEqual(Array(try XCTUnwrap(framer.flush()).readableBytesView), framed([1]) + framed([2, 3]) + framed([]))
        XCTAssertNil(framer.flush())
        XCTAssertEqual(framer.pendingByteCount, 0)
        try framer.append(ByteBuffer(bytes: [4]))
        XCTAssertEqual(Array(try XCTUnwrap(framer.flush()).readableBytesView), framed([4]))
    }

    func testCompressionIsUsedOnlyWhenItPays() throws {
        // (encoding, body, compress allowed, expected flag)
        let table: [(GRPCCompression.Algorithm?, [UInt8], Bool, UInt8)] = [
            (.gzip, compressibleBytes(1000), true, 1),
            (.deflate, compressibleBytes(1000), true, 1),
            (.gzip, compressibleBytes(1000), false, 0),  // the caller turned it off for this message
            (.gzip, compressibleBytes(63), true, 0),  // under the minimum size
            (.gzip, randomBytes(1000), true, 0),  // would grow
            (.identity, compressibleBytes(1000), true, 0),
            (nil, compressibleBytes(1000), true, 0),
        ]
        for (encoding, body, allowed, flag) in table {
            var framer = GRPCMessageFramer(encoding: encoding)
            try framer.append(ByteBuffer(bytes: body), compress: allowed)
            let wire = try XCTUnwrap(framer.flush())
            XCTAssertEqual(wire.getInteger(at: 0, as: UInt8.self), flag, "\(encoding?.name ?? "nil"), \(body.count), \(allowed)")
            XCTAssertEqual(wire.getInteger(at: 1, as: UInt32.self), UInt32(wire.readableBytes - 5))
            if flag == 0 {
                XCTAssertEqual(Array(wire.readableBytesView.dropFirst(5)), body)
            } else {
                XCTAssertLessThan(wire.readableBytes - 5, body.count)
            }
            var deframer = GRPCMessageDeframer(encoding: encoding)
            XCTAssertEqual(try deframe([Array(wire.readableBytesView)], &deframer), [body])
        }
    }

    func testMinimumCompressionSizeIsConfigurable() throws {
        var framer = GRPCMessageFramer(encoding: .gzip, minimumCompressionSize: 0)
        try framer.append(ByteBuffer(bytes: [UInt8](repeating: 0, count: 40)))
        XCTAssertEqual(try XCTUnwrap(framer.flush()).getInteger(at: 0, as: UInt8.self), 1)
    }

    func testAMessageOverTheMaximumIsRefusedAndNothingIsFramed() throws {
        var framer = GRPCMessageFramer(maxMessageSize: 10)
        try framer.append(ByteBuffer(bytes: [1]))
        XCTAssertThrowsError(try framer.append(ByteBuffer(bytes: Array(repeating: 0, count: 11)))) { error in
            XCTAssertEqual(error as? GRPCStatus, GRPCStatus(code: .resourceExhausted, message: "sent message larger than max (11 vs. 10)"))
        }
        try framer.append(ByteBuffer(bytes: Array(repeating: 0, count: 10)))
        XCTAssertEqual(Array(try XCTUnwrap(framer.flush()).readableBytesView), framed([1]) + framed(Array(repeating: 0, count: 10)))

        var empty = GRPCMessageFramer(maxMessageSize: 0)
        XCTAssertThrowsError(try empty.append(ByteBuffer(bytes: [1])))
        XCTAssertNil(empty.flush())
    }

    func testFramerAndDeframerAgreeOnAMixedStream() throws {
        var framer = GRPCMessageFramer(encoding: .gzip)
        let bodies = [compressibleBytes(5000), [], randomBytes(300), compressibleBytes(64), [1, 2]]
        for (index, body) in bodies.enumerated() {
            try framer.append(ByteBuffer(bytes: body), compress: index != 3)
        }
        let wire = Array(try XCTUnwrap(framer.flush()).readableBytesView)
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<50 {
            var chunks: [[UInt8]] = []
            var start = 0
            while start < wire.count {
                let end = min(wire.count, start + Int.random(in: 1...700, using: &generator))
                chunks.append(Array(wire[start..<end]))
                start = end
            }
            var deframer = GRPCMessageDeframer(encoding: .gzip)
            XCTAssertEqual(try deframe(chunks, &deframer), bodies)
        }
    }
}
