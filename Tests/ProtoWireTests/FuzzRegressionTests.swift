import NIOCore
import XCTest

@testable import ProtoWire

/// Inputs that FuzzTesting/ (libFuzzer over the decoders) showed to cost far more than their
/// size, pinned down here so that `swift test` keeps them fixed without a fuzzing build.
///
/// Each splits one field into very many small occurrences, which protobuf allows and which must
/// merge in time linear in the input. Before the fixes every occurrence copied all that the
/// earlier ones had decoded: a ModelInferRequest of 256 KiB took about 30 s to decode, and the
/// gateway accepts 64 MiB. The tests count the copies and reallocations themselves rather than
/// time them, so they are exact on any machine.
final class FuzzRegressionTests: XCTestCase {
    static let occurrences = 20_000

    /// Integers in a class box that counts how often copy-on-write had to copy it: a stand-in
    /// for the arrays and buffers inside a real message.
    struct CountedValues: Hashable, @unchecked Sendable {
        final class Box {
            var values: [Int32] = []
            var copies = 0
        }
        private var box = Box()

        var values: [Int32] { box.values }
        var copies: Int { box.copies }

        mutating func append(_ value: Int32) {
            if !isKnownUniquelyReferenced(&box) {
                let copy = Box()
                copy.values = box.values
                copy.copies = box.copies + 1
                box = copy
            }
            box.values.append(value)
        }

        static func == (lhs: Self, rhs: Self) -> Bool { lhs.box.values == rhs.box.values }
        func hash(into hasher: inout Hasher) { hasher.combine(box.values) }
    }

    /// A message whose repeated field is a `CountedValues`.
    struct Tally: ProtoMessage, Hashable {
        static let protoMessageName = "switchyard.fuzzregression.Tally"
        var values = CountedValues()  // = 1, repeated int32 (unpacked here)

        mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: values.append(try reader.read(ProtoInt32.self, tag))
            default: try reader.skipField(tag)
            }
        }

        func encode(to writer: inout ProtoWriter) {
            for value in values.values { writer.write(ProtoInt32.self, field: 1, value) }
        }
    }

    /// A singular message field held as an Optional and merged with the library's
    /// `merge(_:into:)` for optionals, as InferenceProtocol's messages do.
    struct Holder: ProtoMessage, Hashable {
        static let protoMessageName = "switchyard.fuzzregression.Holder"
        var tally: Tally?  // = 1

        mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: try reader.merge(tag, into: &tally)
            default: try reader.skipField(tag)
            }
        }

        func encode(to writer: inout ProtoWriter) {
            if let tally { writer.writeMessage(field: 1, tally) }
        }
    }

    /// `Holder.tally` sent as 20,000 occurrences of field 1, each `Tally { values: [i % 100] }`
    /// (0a 02 08 vv). The Optional used to keep a second reference to the value while an
    /// occurrence merged into a copy of it, so every occurrence copied every value before it.
    func testOptionalMessageFieldSplitIntoManyOccurrencesMergesWithoutCopying() throws {
        var bytes: [UInt8] = []
        for i in 0..<Self.occurrences {
            bytes += [0x0a, 0x02, 0x08, UInt8(i % 100)]
        }
        let holder = try Holder(decodingBytes: bytes)
        XCTAssertEqual(holder.tally?.values.values, (0..<Self.occurrences).map { Int32($0 % 100) })
        XCTAssertEqual(holder.tally?.values.copies, 0, "merging an occurrence copied the value merged so far")
    }

    /// What was merged so far is kept when a later occurrence fails to decode (the Optional is
    /// only emptied while an occurrence merges).
    func testOptionalMessageFieldKeepsEarlierOccurrencesWhenALaterOneFails() throws {
        var reader = try ProtoReader(buffer: ByteBuffer(bytes: [0x0a, 0x02, 0x08, 0x05, 0x0a, 0x02, 0x08]))
        var tally: Tally?
        let first = try XCTUnwrap(reader.nextTag())
        try reader.merge(first, into: &tally)
        let second = try XCTUnwrap(reader.nextTag())
        XCTAssertThrowsError(try reader.merge(second, into: &tally))
        XCTAssertEqual(tally?.values.values, [5])
    }

    /// Reads `runs` one after another into one array, as a message's decodeField does, and
    /// counts how often the array had to move to new storage.
    func reallocations<Codec: ProtoScalarCodec>(
        reading codec: Codec.Type, runs: ByteBuffer, into values: inout [Codec.Value]
    ) throws -> Int {
        var reader = try ProtoReader(buffer: runs)
        var moves = 0
        var storage = values.withUnsafeBufferPointer { $0.baseAddress }
        while let tag = try reader.nextTag() {
            try reader.readRepeated(codec, tag, into: &values)
            let now = values.withUnsafeBufferPointer { $0.baseAddress }
            if now != storage { moves += 1 }
            storage = now
        }
        return moves
    }

    /// A packed int32 field sent as 20,000 runs of one element each (0a 01 vv). Each run used to `reserveCapacity(count + 1)`, which moves
    /// the array to storage of exactly that size: 20,000 moves, each copying the whole array.
    /// Growing geometrically, as `append` does, moves it about log2(20,000) = 15 times.
    func testPackedVarintFieldSplitIntoManyRunsGrowsGeometrically() throws {
        var runs = ByteBuffer()
        for i in 0..<Self.occurrences {
            runs.writeBytes([0x0a, 0x01, UInt8(i % 100)])
        }
        var values: [Int32] = []
        let moves = try reallocations(reading: ProtoInt32.self, runs: runs, into: &values)
        XCTAssertEqual(values, (0..<Self.occurrences).map { Int32($0 % 100) })
        XCTAssertLessThanOrEqual(moves, 40, "the array moved on \(moves) of \(Self.occurrences) runs")
    }

    /// A packed float field sent as 20,000 runs of one element each (0a 04 + 4 bytes): the same
    /// exact-size reservation, in the fixed-width bulk reader.
    func testPackedFixedFieldSplitIntoManyRunsGrowsGeometrically() throws {
        var runs = ByteBuffer()
        for i in 0..<Self.occurrences {
            runs.writeBytes([0x0a, 0x04])
            runs.writeInteger(Float(i % 100).bitPattern, endianness: .little)
        }
        var values: [Float] = []
        let moves = try reallocations(reading: ProtoFloat.self, runs: runs, into: &values)
        XCTAssertEqual(values, (0..<Self.occurrences).map { Float($0 % 100) })
        XCTAssertLessThanOrEqual(moves, 40, "the array moved on \(moves) of \(Self.occurrences) runs")
    }

    /// A whole message with a packed field split into 20,000 runs still decodes to one array.
    func testPackedFieldSplitIntoManyRunsDecodesToOneArray() throws {
        var bytes: [UInt8] = []
        for i in 0..<Self.occurrences {
            bytes += [0x9a, 0x01, 0x01, UInt8(i % 100)]  // AllTypes.packed_ints (19), one-element runs
        }
        let message = try AllTypes(decodingBytes: bytes)
        XCTAssertEqual(message.packedInts, (0..<Self.occurrences).map { Int32($0 % 100) })
    }
}
