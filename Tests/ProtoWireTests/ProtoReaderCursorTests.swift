import NIOCore
import XCTest

@testable import ProtoWire

/// The reader walks its input with a raw pointer and reads embedded messages by narrowing its
/// end: these tests pin down that no read leaves the bytes it was given (the buffer's readable
/// bytes, or the current embedded message), wherever the input stops.
final class ProtoReaderCursorTests: XCTestCase {
    /// A message that exercises every reader path: scalars of each wire type, strings, bytes,
    /// an embedded message, repeated messages, packed runs, a map and an unknown field.
    private func everyFieldMessage() -> AllTypes {
        var inner = Inner()
        inner.a = -7
        inner.b = [1, 300, -1]
        inner.s = "inner ✓"
        var child = AllTypes()
        child.text = "child"
        child.packedInts = [5, 6]
        var message = AllTypes()
        message.i32 = -1
        message.i64 = 1 << 40
        message.u32 = 300
        message.u64 = .max
        message.s32 = -2
        message.s64 = -3
        message.flag = true
        message.color = 2
        message.f32 = 0xDEAD_BEEF
        message.f64 = 0x0102_0304_0506_0708
        message.sf32 = -4
        message.sf64 = -5
        message.real = 1.5
        message.dbl = -2.25
        message.text = "héllo"
        message.blob = ByteBuffer(bytes: [1, 2, 3, 4, 5])
        message.inner = inner
        message.children = [child, AllTypes()]
        message.packedInts = [1, -1, 1 << 20]
        message.packedFloats = [0.5, 2]
        message.labels = ["k": "v", "key2": "value 2"]
        message.choice = .name("chosen")
        message.sints = [-1, 1, .min]
        message.doubles = [1, 2]
        message.strings = ["a", "", "ASCII string longer than eight bytes"]
        return message
    }

    private func encodedWithUnknownField(_ message: AllTypes) -> ByteBuffer {
        var writer = ProtoWriter(buffer: message.encoded())
        writer.writeTag(999, .varint)
        writer.writeVarint(12345)
        return writer.buffer
    }

    func testEveryPrefixOfAMessageFailsCleanlyOrDecodes() throws {
        let message = everyFieldMessage()
        let bytes = Array(encodedWithUnknownField(message).readableBytesView)
        XCTAssertEqual(try AllTypes(decodingBytes: bytes).text, message.text)
        for cut in 0..<bytes.count {
            // Bytes after the cut stay in the same storage, past the buffer's writer index: a
            // read beyond the end would see them instead of failing.
            var storage = ByteBuffer(bytes: bytes)
            storage.moveWriterIndex(to: cut)
            do {
                _ = try AllTypes(decoding: storage)
            } catch is ProtoDecodingError {
                continue
            }
            // A prefix that decodes must end exactly between two top-level fields.
            var reader = try ProtoReader(buffer: ByteBuffer(bytes: bytes))
            var boundaries: Set<Int> = [0]
            while let tag = try reader.nextTag() {
                try reader.skipField(tag)
                boundaries.insert(bytes.count - reader.buffer.readableBytes)
            }
            XCTAssertTrue(boundaries.contains(cut), "prefix of \(cut) bytes decoded but ends inside a field")
        }
    }

    func testDecodingASliceReadsOnlyItsReadableBytes() throws {
        let message = everyFieldMessage()
        let encoded = encodedWithUnknownField(message)
        // The message in the middle of a larger buffer, with garbage on both sides.
        var framed = ByteBuffer(bytes: Array(repeating: 0xFF, count: 13))
        framed.writeImmutableBuffer(encoded)
        framed.writeBytes(Array(repeating: 0xFF, count: 13))
        let slice = framed.getSlice(at: 13, length: encoded.readableBytes)!
        var withOffset = framed
        withOffset.moveReaderIndex(forwardBy: 13)
        withOffset.moveWriterIndex(to: 13 + encoded.readableBytes)

        for input in [slice, withOffset] {
            let decoded = try AllTypes(decoding: input)
            var expected = message
            expected.unknownFields = decoded.unknownFields
            XCTAssertEqual(decoded, expected)
            XCTAssertEqual(decoded.encoded(), encoded, "unknown field kept, byte for byte")
            XCTAssertEqual(Array(decoded.blob.readableBytesView), [1, 2, 3, 4, 5])
        }
    }

    func testAnEmbeddedMessageCannotReadPastItsOwnLength() throws {
        // Field 17 (Inner) of 2 bytes whose string field 3 claims 5 bytes: the bytes are there
        // in the outer message, but not inside the embedded one.
        let bytes: [UInt8] = [0x8A, 0x01, 0x02, 0x1A, 0x05, 0x61, 0x62, 0x63, 0x64, 0x65]
        assertDecodingError(.lengthPastEnd, try AllTypes(decodingBytes: bytes))
        // A varint that runs over the embedded message's end is truncated there.
        let varint: [UInt8] = [0x8A, 0x01, 0x02, 0x08, 0x80, 0x01]
        assertDecodingError(.truncated, try AllTypes(decodingBytes: varint))
        // A fixed32 that would end past the embedded message's end.
        var outer = ProtoWriter()
        outer.writeTag(18, .lengthDelimited)
        outer.writeVarint(3)
        outer.buffer.writeBytes([0x4D, 0x01, 0x02])  // child: field 9 fixed32, two bytes of it
        outer.buffer.writeBytes([0x03, 0x04])  // what the fixed32 would have taken
        assertDecodingError(.truncated, try AllTypes(decoding: outer.buffer))
    }

    func testAPackedRunCannotReadPastItsOwnLength() throws {
        // Field 19 (packed int32) of 1 byte holding the first byte of a 2-byte varint; the
        // second byte follows in the message.
        assertDecodingError(.truncated, try AllTypes(decodingBytes: [0x9A, 0x01, 0x01, 0x80, 0x01]))
    }

    func testTheReaderResumesAfterAnEmbeddedMessage() throws {
        var message = AllTypes()
        message.inner = Inner()
        message.inner!.s = "in"
        message.text = "after"
        message.children = [AllTypes(), AllTypes()]
        message.children[1].i32 = 9
        message.u32 = 77
        let decoded = try AllTypes(decoding: message.encoded())
        XCTAssertEqual(decoded, message)
    }

    func testReaderStateAcrossFields() throws {
        var writer = ProtoWriter()
        writer.writeString(field: 15, "abc")
        writer.writeVarint(ProtoTag(fieldNumber: 1, wireType: .varint).rawValue)
        writer.writeVarint(5)
        var reader = try ProtoReader(buffer: writer.buffer)
        XCTAssertEqual(reader.depth, 0)
        XCTAssertEqual(reader.buffer.readableBytes, 7)
        let tag = try XCTUnwrap(reader.nextTag())
        XCTAssertEqual(try reader.readString(tag), "abc")
        XCTAssertEqual(Array(reader.buffer.readableBytesView), [0x08, 0x05])
        XCTAssertFalse(reader.isAtEnd)
        let second = try XCTUnwrap(reader.nextTag())
        XCTAssertEqual(try reader.read(ProtoInt32.self, second), 5)
        XCTAssertTrue(reader.isAtEnd)
        XCTAssertNil(try reader.nextTag())
    }

    func testAnEmptyBufferDecodesToDefaults() throws {
        XCTAssertEqual(try AllTypes(decoding: ByteBuffer()), AllTypes())
        var reader = try ProtoReader(buffer: ByteBuffer())
        XCTAssertNil(try reader.nextTag())
        XCTAssertEqual(reader.buffer.readableBytes, 0)
    }

    func testStringsOfEveryShortLengthWithANonASCIIByteAnywhere() throws {
        // The short-ASCII test looks at eight bytes at once and masks off those after the
        // string; a non-ASCII byte inside must be seen, one just after must not matter.
        for length in 0...20 {
            for trailing: [UInt8] in [[], [0xFF], Array(repeating: 0xC3, count: 12)] {
                let ascii = (0..<length).map { UInt8(0x41 + $0 % 26) }
                var writer = ProtoWriter()
                writer.writeTag(15, .lengthDelimited)
                writer.writeVarint(UInt64(length))
                writer.buffer.writeBytes(ascii)
                // Bytes past the message, in the same storage.
                var input = writer.buffer
                let end = input.writerIndex
                input.writeBytes(trailing)
                input.moveWriterIndex(to: end)
                XCTAssertEqual(try AllTypes(decoding: input).text, String(decoding: ascii, as: UTF8.self))
                for position in 0..<length {
                    var invalid = ascii
                    invalid[position] = 0xFF
                    assertDecodingError(.invalidUTF8, try AllTypes(decodingBytes: [0x7A, UInt8(length)] + invalid))
                    var accented = ascii
                    accented[position] = 0xC3
                    accented.insert(0xA9, at: position + 1)  // "é"
                    XCTAssertEqual(
                        try AllTypes(decodingBytes: [0x7A, UInt8(length + 1)] + accented).text,
                        String(decoding: accented, as: UTF8.self))
                }
            }
        }
    }

    func testUnknownFieldsInsideEmbeddedMessagesAreSlicesOfTheInput() throws {
        var child = ProtoWriter()
        child.writeTag(500, .lengthDelimited)
        child.writeVarint(3)
        child.buffer.writeBytes([7, 8, 9])
        var outer = ProtoWriter()
        outer.writeBytes(field: 18, child.buffer)
        let input = outer.buffer
        let decoded = try AllTypes(decoding: input)
        let unknown = try XCTUnwrap(decoded.children.first?.unknownFields.bytes)
        XCTAssertEqual(unknown, child.buffer)
        let base = input.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        let inside = unknown.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        XCTAssertTrue(inside > base && inside < base + UInt(input.readableBytes), "unknown field was copied")
    }

    func testPackedFixedRunsFromTheReaderAndFromAByteBufferAgree() throws {
        let values: [Float] = [1, -2.5, .infinity, 0]
        var writer = ProtoWriter()
        ProtoFloat.writePackedForTest(values, to: &writer)
        var viaBuffer: [Float] = [9]
        var buffer = writer.buffer
        ProtoFloat.readPackedFixed(from: &buffer, into: &viaBuffer)
        XCTAssertEqual(viaBuffer, [9] + values)
        XCTAssertEqual(buffer.readableBytes, 0)
        var viaPointer: [Float] = [9]
        writer.buffer.withUnsafeReadableBytes { ProtoFloat.readPackedFixed($0, into: &viaPointer) }
        XCTAssertEqual(viaPointer, viaBuffer)
    }
}

extension ProtoFloat {
    /// The packed body (no tag, no length) of `values`.
    fileprivate static func writePackedForTest(_ values: [Float], to writer: inout ProtoWriter) {
        for value in values { write(value, to: &writer) }
    }
}
