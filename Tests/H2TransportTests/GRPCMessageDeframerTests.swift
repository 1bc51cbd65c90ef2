import NIOCore
import XCTest

@testable import H2Transport

/// The wire form of one message: flag, big-endian length, body.
func framed(_ body: [UInt8], flag: UInt8 = 0, length: UInt32? = nil) -> [UInt8] {
    let length = length ?? UInt32(body.count)
    return [flag, UInt8(length >> 24), UInt8(length >> 16 & 0xFF), UInt8(length >> 8 & 0xFF), UInt8(length & 0xFF)] + body
}

/// Every message the deframer yields for `chunks`, fed one after the other.
func deframe(_ chunks: [[UInt8]], _ deframer: inout GRPCMessageDeframer) throws -> [[UInt8]] {
    var messages: [[UInt8]] = []
    for chunk in chunks {
        deframer.append(ByteBuffer(bytes: chunk))
        while let message = try deframer.nextMessage() {
            messages.append(Array(message.readableBytesView))
        }
    }
    return messages
}

/// Where `buffer`'s readable bytes are in memory.
func readableAddress(_ buffer: ByteBuffer) -> UnsafeRawPointer {
    buffer.withUnsafeReadableBytes { UnsafeRawPointer($0.baseAddress!) }
}

final class GRPCMessageDeframerTests: XCTestCase {
    let messages: [[UInt8]] = [[], [42], Array(0..<200).map { UInt8($0) }, compressibleBytes(70)]

    func testBytesWaitingForTheirMessageDoNotPinTheBufferTheyArrivedIn() throws {
        // A 64 KiB read buffer of which only a message prefix and 3 body bytes are this stream's.
        var big = ByteBufferAllocator().buffer(capacity: 65_536)
        big.writeBytes(Array(repeating: 0xEE, count: 60_000))
        big.writeBytes([0, 0, 0, 0, 10, 1, 2, 3])
        var deframer = GRPCMessageDeframer()
        deframer.append(big.getSlice(at: 60_000, length: 8)!)
        XCTAssertGreaterThanOrEqual(deframer.heldStorageBytes, 65_536)
        XCTAssertNil(try deframer.nextMessage())
        XCTAssertEqual(deframer.bufferedByteCount, 3)
        // What waits is a copy of its own 3 bytes, not a slice that keeps 64 KiB alive.
        XCTAssertLessThan(deframer.heldStorageBytes, 1024)
        deframer.append(ByteBuffer(bytes: [4, 5, 6, 7, 8, 9, 10]))
        XCTAssertEqual(Array(try XCTUnwrap(deframer.nextMessage()).readableBytesView), Array(1...10))
        XCTAssertEqual(deframer.bufferedByteCount, 0)
    }

    func testAMessageThatArrivesWholeStaysASliceOfItsBuffer() throws {
        var big = ByteBufferAllocator().buffer(capacity: 65_536)
        big.writeBytes(Array(repeating: 0xEE, count: 60_000))
        big.writeBytes([0, 0, 0, 0, 2, 7, 8])
        var deframer = GRPCMessageDeframer()
        deframer.append(big.getSlice(at: 60_000, length: 7)!)
        let message = try XCTUnwrap(deframer.nextMessage())
        XCTAssertEqual(Array(message.readableBytesView), [7, 8])
        XCTAssertGreaterThanOrEqual(message.storageCapacity, 65_536, "a whole message is handed on without a copy")
    }

    func testMessagesComeOutWhereverTheBytesAreSplit() throws {
        let wire = messages.flatMap { framed($0) }
        for split in 0...wire.count {
            var deframer = GRPCMessageDeframer()
            XCTAssertEqual(try deframe([Array(wire[..<split]), Array(wire[split...])], &deframer), messages, "split at \(split)")
            XCTAssertFalse(deframer.hasPartialMessage)
            XCTAssertNoThrow(try deframer.finish())
        }
        for first in stride(from: 0, through: wire.count, by: 7) {
            for second in stride(from: first, through: wire.count, by: 11) {
                var deframer = GRPCMessageDeframer()
                let chunks = [Array(wire[..<first]), Array(wire[first..<second]), Array(wire[second...])]
                XCTAssertEqual(try deframe(chunks, &deframer), messages, "split at \(first), \(second)")
            }
        }
        var byteByByte = GRPCMessageDeframer()
        XCTAssertEqual(try deframe(wire.map { [$0] }, &byteByByte), messages)
    }

    func testAMessageInsideOneChunkIsASliceOfIt() throws {
        let chunk = ByteBuffer(bytes: framed([1, 2, 3]) + framed([4, 5]))
        var deframer = GRPCMessageDeframer()
        deframer.append(chunk)
        let first = try XCTUnwrap(deframer.nextMessage())
        let second = try XCTUnwrap(deframer.nextMessage())
        XCTAssertEqual(readableAddress(first), readableAddress(chunk) + 5)
        XCTAssertEqual(readableAddress(second), readableAddress(chunk) + 13)
        XCTAssertEqual(Array(second.readableBytesView), [4, 5])
        XCTAssertNil(try deframer.nextMessage())
    }

    func testAMessageOverSeveralChunksIsCopiedOnceWhenComplete() throws {
        let wire = framed(Array(repeating: 9, count: 100))
        var deframer = GRPCMessageDeframer()
        deframer.append(ByteBuffer(bytes: Array(wire[..<50])))
        XCTAssertNil(try deframer.nextMessage())
        XCTAssertEqual(deframer.bufferedByteCount, 45)
        XCTAssertTrue(deframer.hasPartialMessage)
        let last = ByteBuffer(bytes: Array(wire[50...]))
        deframer.append(last)
        let message = try XCTUnwrap(deframer.nextMessage())
        XCTAssertEqual(message.readableBytes, 100)
        let lastRange = readableAddress(last)..<readableAddress(last) + last.readableBytes
        XCTAssertFalse(lastRange.contains(readableAddress(message)))
        XCTAssertEqual(deframer.bufferedByteCount, 0)
    }

    func testALengthOverTheMaximumFailsBeforeTheBodyArrives() {
        let table: [(Int, UInt32, String?)] = [
            (GRPCMessageDeframer.defaultMaxMessageSize, 5_242_880, "received message larger than max (5242880 vs. 4194304)"),
            (GRPCMessageDeframer.defaultMaxMessageSize, 4_194_304, nil),
            (10, 11, "received message larger than max (11 vs. 10)"),
            (10, 10, nil),
            (0, 1, "received message larger than max (1 vs. 0)"),
            (0, 0, nil),
            (Int(Int32.max), UInt32.max, "received message larger than max (4294967295 vs. 2147483647)"),
        ]
        for (max, length, message) in table {
            var deframer = GRPCMessageDeframer(maxMessageSize: max)
            deframer.append(ByteBuffer(bytes: framed([], length: length)))
            do {
                let result = try deframer.nextMessage()
                XCTAssertNil(message, "max \(max), length \(length) should fail")
                XCTAssertEqual(result == nil, length > 0)
            } catch {
                XCTAssertEqual(error, GRPCStatus(code: .resourceExhausted, message: message ?? "?"))
            }
        }
    }

    func testCompressedFlagNeedsAnEncodingAndOnlyZeroOrOneIsAFlag() {
        let table: [(UInt8, GRPCCompression.Algorithm?, String)] = [
            (1, nil, "compressed flag set by client but no grpc-encoding"),
            (1, .identity, "compressed flag set by client but grpc-encoding is identity"),
            (2, nil, "invalid compressed flag 2 in message prefix (must be 0 or 1)"),
            (2, .gzip, "invalid compressed flag 2 in message prefix (must be 0 or 1)"),
            (0x80, nil, "invalid compressed flag 128 in message prefix (must be 0 or 1)"),
            (0xFF, .deflate, "invalid compressed flag 255 in message prefix (must be 0 or 1)"),
        ]
        for (flag, encoding, message) in table {
            var deframer = GRPCMessageDeframer(encoding: encoding)
            deframer.append(ByteBuffer(bytes: framed([1, 2, 3], flag: flag)))
            XCTAssertThrowsError(try deframer.nextMessage()) { error in
                XCTAssertEqual(error as? GRPCStatus, GRPCStatus(code: .internalError, message: message))
            }
        }
    }

    func testCompressedMessagesAreInflatedWithTheStreamsEncoding() throws {
        for algorithm in [GRPCCompression.Algorithm.gzip, .deflate] {
            let body = compressibleBytes(10_000)
            let wire = framed(try compressed(body, algorithm), flag: 1) + framed([5]) + framed(try compressed([], algorithm), flag: 1)
            var deframer = GRPCMessageDeframer(encoding: algorithm)
            XCTAssertEqual(try deframe([wire], &deframer), [body, [5], []], "\(algorithm)")
        }
    }

    func testDecompressedSizeIsBoundedByTheSameMaximum() throws {
        let bomb = try compressed([UInt8](repeating: 0, count: 10 << 20), .gzip)
        var deframer = GRPCMessageDeframer(encoding: .gzip)
        deframer.append(ByteBuffer(bytes: framed(bomb, flag: 1)))
        XCTAssertThrowsError(try deframer.nextMessage()) { error in
            XCTAssertEqual(
                error as? GRPCStatus,
                GRPCStatus(code: .resourceExhausted, message: "received message larger than max after decompression (more than 4194304 bytes)")
            )
        }
        var exact = GRPCMessageDeframer(maxMessageSize: 1000, encoding: .deflate)
        XCTAssertEqual(try deframe([framed(try compressed(compressibleBytes(1000), .deflate), flag: 1)], &exact).map(\.count), [1000])
        var over = GRPCMessageDeframer(maxMessageSize: 999, encoding: .deflate)
        XCTAssertThrowsError(try deframe([framed(try compressed(compressibleBytes(1000), .deflate), flag: 1)], &over))
    }

    func testCorruptCompressedDataIsInternal() {
        var deframer = GRPCMessageDeframer(encoding: .gzip)
        deframer.append(ByteBuffer(bytes: framed(Array("not gzip".utf8), flag: 1)))
        XCTAssertThrowsError(try deframer.nextMessage()) { error in
            let status = error as? GRPCStatus
            XCTAssertEqual(status?.code, .internalError)
            XCTAssertEqual(status?.message, "could not decompress gzip message: zlib inflate failed: incorrect header check")
        }
    }

    func testEndOfStreamInsideAMessageIsInternal() throws {
        let wire = framed([1, 2, 3, 4])
        let table: [(Int, String?)] = [
            (0, nil),
            (1, "stream ended inside a message (1 of 5 prefix bytes received)"),
            (4, "stream ended inside a message (4 of 5 prefix bytes received)"),
            (5, "stream ended inside a message (0 of 4 bytes received)"),
            (7, "stream ended inside a message (2 of 4 bytes received)"),
            (9, nil),
        ]
        for (count, message) in table {
            var deframer = GRPCMessageDeframer()
            _ = try deframe([Array(wire[..<count])], &deframer)
            if let message {
                XCTAssertThrowsError(try deframer.finish()) { error in
                    XCTAssertEqual(error as? GRPCStatus, GRPCStatus(code: .internalError, message: message))
                }
            } else {
                XCTAssertNoThrow(try deframer.finish(), "\(count) bytes")
            }
        }
    }

    func testAFailureIsFinal() throws {
        var deframer = GRPCMessageDeframer(maxMessageSize: 3)
        deframer.append(ByteBuffer(bytes: framed([1, 2, 3, 4]) + framed([1])))
        XCTAssertThrowsError(try deframer.nextMessage())
        deframer.append(ByteBuffer(bytes: framed([1])))
        XCTAssertEqual(deframer.bufferedByteCount, 0)
        XCTAssertThrowsError(try deframer.nextMessage()) { error in
            XCTAssertEqual((error as? GRPCStatus)?.code, .resourceExhausted)
        }
        XCTAssertThrowsError(try deframer.finish())
    }
}
