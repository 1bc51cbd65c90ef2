import NIOCore
import XCTest

@testable import ProtoWire

func buffer(_ bytes: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: bytes) }

func assertDecodingError<T>(
    _ code: ProtoDecodingError.Code, _ body: @autoclosure () throws -> T,
    file: StaticString = #filePath, line: UInt = #line
) {
    do {
        _ = try body()
        XCTFail("expected \(code), decoding succeeded", file: file, line: line)
    } catch let error as ProtoDecodingError {
        XCTAssertEqual(error.code, code, "\(error)", file: file, line: line)
        XCTAssertFalse(error.description.isEmpty, file: file, line: line)
    } catch {
        XCTFail("expected ProtoDecodingError.\(code), got \(error)", file: file, line: line)
    }
}

final class VarintTests: XCTestCase {
    func testVarintsRoundTripAtEveryLengthBoundary() throws {
        var values: [UInt64] = [0, 1, UInt64.max, UInt64(Int64.max), 1 << 63]
        for bits in stride(from: 7, through: 63, by: 7) {
            values += [(1 << UInt64(bits)) - 1, 1 << UInt64(bits)]
        }
        for value in values {
            var writer = ProtoWriter()
            writer.writeVarint(value)
            XCTAssertEqual(writer.buffer.readableBytes, varintSize(value), "size of \(value)")
            var reader = try ProtoReader(buffer: writer.buffer)
            XCTAssertEqual(try reader.readVarint(), value)
            XCTAssertTrue(reader.isAtEnd)
        }
    }

    func testKnownVarintEncodings() throws {
        var writer = ProtoWriter()
        writer.writeVarint(300)
        XCTAssertEqual(Array(writer.buffer.readableBytesView), [0xAC, 0x02])
        // Negative int32 is sign-extended to ten bytes, as protoc does.
        var negative = ProtoWriter()
        ProtoInt32.write(-1, to: &negative)
        XCTAssertEqual(Array(negative.buffer.readableBytesView), [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
    }

    func testElevenByteVarintIsRejected() throws {
        var reader = try ProtoReader(buffer: buffer(Array(repeating: 0x80, count: 10) + [0x00]))
        assertDecodingError(.varintTooLong, try reader.readVarint())
    }

    func testTenthByteAboveOneOverflows() throws {
        var reader = try ProtoReader(buffer: buffer(Array(repeating: 0xFF, count: 9) + [0x02]))
        assertDecodingError(.varintOverflow, try reader.readVarint())
    }

    func testNonMinimalVarintIsAccepted() throws {
        // 1 written in three bytes: legal protobuf, and some encoders pad lengths this way.
        var reader = try ProtoReader(buffer: buffer([0x81, 0x80, 0x00]))
        XCTAssertEqual(try reader.readVarint(), 1)
    }

    func testTruncatedVarint() throws {
        var reader = try ProtoReader(buffer: buffer([0x80, 0x80]))
        assertDecodingError(.truncated, try reader.readVarint())
    }

    func testZigzag() throws {
        let cases: [(Int64, UInt64)] = [(0, 0), (-1, 1), (1, 2), (-2, 3), (Int64.max, UInt64.max - 1), (Int64.min, UInt64.max)]
        for (value, encoded) in cases {
            var writer = ProtoWriter()
            ProtoSInt64.write(value, to: &writer)
            var raw = try ProtoReader(buffer: writer.buffer)
            XCTAssertEqual(try raw.readVarint(), encoded)
            var reader = try ProtoReader(buffer: writer.buffer)
            XCTAssertEqual(try ProtoSInt64.read(from: &reader), value)
        }
        for value: Int32 in [0, -1, 1, Int32.max, Int32.min] {
            var writer = ProtoWriter()
            ProtoSInt32.write(value, to: &writer)
            var reader = try ProtoReader(buffer: writer.buffer)
            XCTAssertEqual(try ProtoSInt32.read(from: &reader), value)
        }
    }
}

final class FieldDecodingTests: XCTestCase {
    func testFixedWidthValuesAreLittleEndian() throws {
        var message = AllTypes()
        message.f32 = 0x0102_0304
        message.real = 1.5
        let bytes = Array(message.encoded().readableBytesView)
        // tag 9 fixed32 = 0x4D, then 04 03 02 01; tag 13 fixed32 = 0x6D, 1.5f = 0x3FC00000.
        XCTAssertEqual(bytes, [0x4D, 0x04, 0x03, 0x02, 0x01, 0x6D, 0x00, 0x00, 0xC0, 0x3F])
    }

    func testTruncatedFixed32() throws {
        assertDecodingError(.truncated, try AllTypes(decoding: buffer([0x4D, 0x01, 0x02])))
    }

    func testLengthPastEndIsRejectedWithoutAllocating() throws {
        // Field 16 (bytes) claims 2^40 bytes; only 2 follow.
        var writer = ProtoWriter()
        writer.writeTag(16, .lengthDelimited)
        writer.writeVarint(1 << 40)
        writer.buffer.writeBytes([1, 2])
        assertDecodingError(.lengthPastEnd, try AllTypes(decoding: writer.buffer))
    }

    func testInvalidWireTypes() throws {
        assertDecodingError(.invalidWireType, try AllTypes(decoding: buffer([0x0E, 0x00])))  // field 1, type 6
        assertDecodingError(.invalidWireType, try AllTypes(decoding: buffer([0x0F, 0x00])))  // field 1, type 7
    }

    func testFieldNumberZeroIsRejected() throws {
        assertDecodingError(.invalidFieldNumber, try AllTypes(decoding: buffer([0x00, 0x01])))
    }

    func testTagAbove32BitsIsRejected() throws {
        assertDecodingError(.varintOverflow, try AllTypes(decoding: buffer([0x80, 0x80, 0x80, 0x80, 0x80, 0x01])))
    }

    func testWrongWireTypeForKnownField() throws {
        // Field 15 is a string; here it arrives as a varint.
        assertDecodingError(.wrongWireType, try AllTypes(decoding: buffer([0x78, 0x01])))
        // Field 1 is int32; here it arrives as fixed64.
        assertDecodingError(.wrongWireType, try AllTypes(decoding: buffer([0x09, 0, 0, 0, 0, 0, 0, 0, 0])))
    }

    func testErrorNamesTheFieldPath() throws {
        var inner = ProtoWriter()
        inner.writeTag(3, .lengthDelimited)
        inner.writeVarint(2)
        inner.buffer.writeBytes([0xC3, 0x28])  // invalid UTF-8
        var outer = ProtoWriter()
        outer.writeBytes(field: 17, inner.buffer)
        do {
            _ = try AllTypes(decoding: outer.buffer)
            XCTFail("invalid UTF-8 accepted")
        } catch let error as ProtoDecodingError {
            XCTAssertEqual(error.code, .invalidUTF8)
            XCTAssertEqual(error.path.map(\.fieldNumber), [17, 3])
            XCTAssertEqual(
                error.description,
                "malformed protobuf at switchyard.wiretest.AllTypes.17 > switchyard.wiretest.Inner.3: string field 3 is not valid UTF-8")
        }
    }

    func testInvalidUTF8InStringField() throws {
        for bad: [UInt8] in [[0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xE2, 0x82]] {
            var writer = ProtoWriter()
            writer.writeBytes(field: 15, bad)
            assertDecodingError(.invalidUTF8, try AllTypes(decoding: writer.buffer))
        }
        var good = ProtoWriter()
        good.writeString(field: 15, "héllo ✓ 🚀")
        XCTAssertEqual(try AllTypes(decoding: good.buffer).text, "héllo ✓ 🚀")
    }

    func testMessageSizeLimit() throws {
        var message = AllTypes()
        message.text = String(repeating: "x", count: 2000)
        let limits = ProtoLimits(maxMessageSize: 1000)
        assertDecodingError(.messageTooLarge, try AllTypes(decoding: message.encoded(), limits: limits))
        XCTAssertNoThrow(try AllTypes(decoding: message.encoded(), limits: ProtoLimits(maxMessageSize: 4000)))
    }

    func testNestingDepthLimit() throws {
        func nested(_ depth: Int) -> ByteBuffer {
            var body = ByteBuffer()
            for _ in 0..<depth {
                var writer = ProtoWriter()
                writer.writeBytes(field: 18, body)
                body = writer.buffer
            }
            return body
        }
        XCTAssertNoThrow(try AllTypes(decoding: nested(100)))
        assertDecodingError(.nestingTooDeep, try AllTypes(decoding: nested(101)))
        // Deep input far beyond the limit is refused without exhausting the stack.
        assertDecodingError(.nestingTooDeep, try AllTypes(decoding: nested(5000)))
        assertDecodingError(.nestingTooDeep, try AllTypes(decoding: nested(10), limits: ProtoLimits(maxDepth: 5)))
    }

    func testLastScalarOccurrenceWins() throws {
        var writer = ProtoWriter()
        writer.write(ProtoInt32.self, field: 1, 7)
        writer.writeString(field: 15, "first")
        writer.write(ProtoInt32.self, field: 1, 9)
        writer.writeString(field: 15, "second")
        let message = try AllTypes(decoding: writer.buffer)
        XCTAssertEqual(message.i32, 9)
        XCTAssertEqual(message.text, "second")
    }

    func testRepeatedOccurrencesOfAMessageFieldMerge() throws {
        var first = Inner()
        first.a = 1
        first.b = [1, 2]
        first.s = "kept"
        var second = Inner()
        second.a = 5
        second.b = [3]
        var writer = ProtoWriter()
        writer.writeMessage(field: 17, first)
        writer.writeMessage(field: 17, second)
        let message = try AllTypes(decoding: writer.buffer)
        XCTAssertEqual(message.inner, Inner(a: 5, b: [1, 2, 3], s: "kept"))
    }

    func testOneofLastMemberWins() throws {
        var writer = ProtoWriter()
        writer.writeString(field: 22, "model")
        writer.write(ProtoInt64.self, field: 23, 42)
        XCTAssertEqual(try AllTypes(decoding: writer.buffer).choice, .number(42))
    }

    func testPackedAndUnpackedRepeatedFieldsDecodeAlike() throws {
        var packed = ProtoWriter()
        packed.writePacked(ProtoInt32.self, field: 19, [1, -2, 300])
        packed.writePacked(ProtoFloat.self, field: 20, [1.5, -0.25])
        packed.writePacked(ProtoSInt64.self, field: 24, [-5, 5])
        var unpacked = ProtoWriter()
        unpacked.writeUnpacked(ProtoInt32.self, field: 19, [1, -2, 300])
        unpacked.writeUnpacked(ProtoFloat.self, field: 20, [1.5, -0.25])
        unpacked.writeUnpacked(ProtoSInt64.self, field: 24, [-5, 5])
        let a = try AllTypes(decoding: packed.buffer)
        let b = try AllTypes(decoding: unpacked.buffer)
        XCTAssertEqual(a, b)
        XCTAssertEqual(a.packedInts, [1, -2, 300])
        XCTAssertEqual(a.packedFloats, [1.5, -0.25])
        XCTAssertEqual(a.sints, [-5, 5])
        // Both encodings of one field in one message concatenate.
        var mixed = ProtoWriter()
        mixed.writePacked(ProtoInt32.self, field: 19, [1, 2])
        mixed.write(ProtoInt32.self, field: 19, 3)
        mixed.writePacked(ProtoInt32.self, field: 19, [4])
        XCTAssertEqual(try AllTypes(decoding: mixed.buffer).packedInts, [1, 2, 3, 4])
    }

    func testPackedFixedRunWithPartialElementIsRejected() throws {
        var writer = ProtoWriter()
        writer.writeTag(20, .lengthDelimited)
        writer.writeVarint(3)
        writer.buffer.writeBytes([0, 0, 0])
        assertDecodingError(.invalidValue, try AllTypes(decoding: writer.buffer))
    }

    func testTruncatedVarintInsidePackedRun() throws {
        var writer = ProtoWriter()
        writer.writeTag(19, .lengthDelimited)
        writer.writeVarint(2)
        writer.buffer.writeBytes([0x01, 0x80])
        assertDecodingError(.truncated, try AllTypes(decoding: writer.buffer))
    }

    func testMapEntriesWithMissingKeyOrValueTakeDefaults() throws {
        var writer = ProtoWriter()
        writer.writeLengthDelimited(field: 21) { $0.writeString(field: 2, "no key") }
        writer.writeLengthDelimited(field: 21) { $0.writeString(field: 1, "no value") }
        writer.writeLengthDelimited(field: 21) { entry in
            entry.writeString(field: 1, "k")
            entry.writeString(field: 2, "first")
        }
        writer.writeLengthDelimited(field: 21) { entry in
            entry.writeString(field: 2, "second")  // value before key, and a duplicate key
            entry.writeString(field: 1, "k")
        }
        let message = try AllTypes(decoding: writer.buffer)
        XCTAssertEqual(message.labels, ["": "no key", "no value": "", "k": "second"])
    }

    func testUnknownFieldsOfEveryWireTypeArePreserved() throws {
        var writer = ProtoWriter()
        writer.write(ProtoInt32.self, field: 1, 5)
        writer.write(ProtoUInt64.self, field: 100, 123_456)
        writer.write(ProtoFixed32.self, field: 101, 7)
        writer.write(ProtoFixed64.self, field: 102, 8)
        writer.writeString(field: 103, "future")
        writer.writeTag(104, .startGroup)
        writer.write(ProtoInt32.self, field: 1, 1)
        writer.writeTag(104, .endGroup)
        writer.writeString(field: 15, "known")
        let original = writer.buffer
        let message = try AllTypes(decoding: original)
        XCTAssertEqual(message.i32, 5)
        XCTAssertEqual(message.text, "known")
        XCTAssertFalse(message.unknownFields.isEmpty)
        // Known fields are written first, then the unknown ones in arrival order.
        let reencoded = try AllTypes(decoding: message.encoded())
        XCTAssertEqual(reencoded, message)
        XCTAssertEqual(message.encoded().readableBytes, original.readableBytes)
    }

    func testGroupsAreSkippedIncludingNestedGroups() throws {
        var writer = ProtoWriter()
        writer.writeTag(50, .startGroup)
        writer.writeTag(51, .startGroup)
        writer.writeString(field: 1, "inside")
        writer.writeTag(51, .endGroup)
        writer.write(ProtoFixed64.self, field: 2, 9)
        writer.writeTag(50, .endGroup)
        writer.write(ProtoInt32.self, field: 1, 77)
        var reader = try ProtoReader(buffer: writer.buffer)
        var skipped = AllTypes()
        try skipped.merge(from: &reader)
        XCTAssertEqual(skipped.i32, 77)
    }

    func testMalformedGroups() throws {
        // End-group without a start.
        assertDecodingError(.malformedGroup, try AllTypes(decoding: buffer([0xA4, 0x03])))  // field 52, type 4
        // Start-group never closed.
        var open = ProtoWriter()
        open.writeTag(50, .startGroup)
        open.write(ProtoInt32.self, field: 1, 1)
        assertDecodingError(.malformedGroup, try AllTypes(decoding: open.buffer))
        // Closed by the wrong field number.
        var wrong = ProtoWriter()
        wrong.writeTag(50, .startGroup)
        wrong.writeTag(51, .endGroup)
        assertDecodingError(.malformedGroup, try AllTypes(decoding: wrong.buffer))
        // Groups nested past the depth limit.
        var deep = ProtoWriter()
        for _ in 0..<200 { deep.writeTag(50, .startGroup) }
        assertDecodingError(.nestingTooDeep, try AllTypes(decoding: deep.buffer))
    }

    func testBytesFieldsAreSlicesOfTheIncomingBuffer() throws {
        var message = AllTypes()
        message.blob = ByteBuffer(bytes: Array(repeating: 0xAB, count: 4096))
        let encoded = message.encoded()
        let decoded = try AllTypes(decoding: encoded)
        let outer = encoded.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        let inner = decoded.blob.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        XCTAssertTrue(inner > outer && inner < outer + UInt(encoded.readableBytes), "bytes field was copied")
    }
}

final class ProtoWriterTests: XCTestCase {
    func testEmbeddedMessageLengthsAcrossVarintBoundaries() throws {
        for size in [0, 1, 126, 127, 128, 129, 16_383, 16_384, 16_385, 2_097_152] {
            var inner = Inner()
            inner.s = String(repeating: "z", count: size)
            var message = AllTypes()
            message.inner = inner
            message.i32 = 1
            let encoded = message.encoded()
            let decoded = try AllTypes(decoding: encoded)
            XCTAssertEqual(decoded, message, "size \(size)")
            // Minimal length prefix: field 1 (2 bytes) + tag of field 17 (2) + len + inner.
            let innerLength = inner.encoded().readableBytes
            XCTAssertEqual(encoded.readableBytes, 2 + 2 + varintSize(UInt64(innerLength)) + innerLength)
        }
    }

    func testProto3DefaultsAreOmitted() {
        XCTAssertEqual(AllTypes().encoded().readableBytes, 0)
    }

    func testMapEncodingIsDeterministic() {
        var a = AllTypes()
        var b = AllTypes()
        for index in 0..<50 { a.labels["k\(index)"] = "v\(index)" }
        for index in (0..<50).reversed() { b.labels["k\(index)"] = "v\(index)" }
        XCTAssertEqual(a.encoded(), b.encoded())
    }
}
