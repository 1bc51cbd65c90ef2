import NIOCore
import XCTest

@testable import ProtoWire

/// ProtoWire against protoc, over a schema with every kind of field (Fixtures/wire_test.proto).
final class ProtocDifferentialTests: XCTestCase {
    let fixtures = Protoc.repositoryRoot.appendingPathComponent("Tests/ProtoWireTests/Fixtures")

    func testBytesProtocEncodesFromTextDecodeToTheExpectedValues() throws {
        let text = """
            i32: -7 i64: -9000000000 u32: 4294967295 u64: 18446744073709551615
            s32: -2147483648 s64: -9223372036854775808 flag: true color: GREEN
            f32: 3735928559 f64: 1 sf32: -1 sf64: -2 real: 0.5 dbl: -1e+300
            text: "h\\303\\251llo" blob: "\\000\\001\\377"
            inner { a: 3 b: [1, 2, 3] s: "in" }
            children { i32: 1 } children { text: "two" }
            packed_ints: [0, -1, 300] packed_floats: [1.5, -2.25]
            labels { key: "b" value: "2" } labels { key: "a" value: "1" }
            number: 99 sints: [-1, 1, -1000] doubles: [0.125] strings: "x" strings: ""
            """
        let bytes = try Protoc.encode("switchyard.wiretest.AllTypes", text: text, protoFile: "wire_test.proto", includePath: fixtures)
        let message = try AllTypes(decodingBytes: bytes)
        XCTAssertEqual(message.i32, -7)
        XCTAssertEqual(message.i64, -9_000_000_000)
        XCTAssertEqual(message.u32, .max)
        XCTAssertEqual(message.u64, .max)
        XCTAssertEqual(message.s32, .min)
        XCTAssertEqual(message.s64, .min)
        XCTAssertTrue(message.flag)
        XCTAssertEqual(message.color, 2)
        XCTAssertEqual(message.f32, 0xDEAD_BEEF)
        XCTAssertEqual(message.f64, 1)
        XCTAssertEqual(message.sf32, -1)
        XCTAssertEqual(message.sf64, -2)
        XCTAssertEqual(message.real, 0.5)
        XCTAssertEqual(message.dbl, -1e300)
        XCTAssertEqual(message.text, "héllo")
        XCTAssertEqual(Array(message.blob.readableBytesView), [0, 1, 255])
        XCTAssertEqual(message.inner?.a, 3)
        XCTAssertEqual(message.inner?.b, [1, 2, 3])
        XCTAssertEqual(message.inner?.s, "in")
        XCTAssertEqual(message.children.map(\.i32), [1, 0])
        XCTAssertEqual(message.children.map(\.text), ["", "two"])
        XCTAssertEqual(message.packedInts, [0, -1, 300])
        XCTAssertEqual(message.packedFloats, [1.5, -2.25])
        XCTAssertEqual(message.labels, ["a": "1", "b": "2"])
        XCTAssertEqual(message.choice, .number(99))
        XCTAssertEqual(message.sints, [-1, 1, -1000])
        XCTAssertEqual(message.doubles, [0.125])
        XCTAssertEqual(message.strings, ["x", ""])
        XCTAssertTrue(message.unknownFields.isEmpty)
    }

    func testUnpackedEncodingFromProtocDecodesLikePacked() throws {
        let text = "packed_ints: [5, -6, 70000] packed_floats: [0.5, 8] sints: [-3, 3] doubles: [2.5, -0.5]"
        let unpacked = try Protoc.encode("switchyard.wiretest.AllTypesUnpacked", text: text, protoFile: "wire_test.proto", includePath: fixtures)
        let packed = try Protoc.encode("switchyard.wiretest.AllTypes", text: text, protoFile: "wire_test.proto", includePath: fixtures)
        XCTAssertNotEqual(unpacked, packed, "protoc should have produced two different encodings")
        let a = try AllTypes(decodingBytes: unpacked)
        let b = try AllTypes(decodingBytes: packed)
        XCTAssertEqual(a, b)
        XCTAssertEqual(a.packedInts, [5, -6, 70000])
        XCTAssertEqual(a.doubles, [2.5, -0.5])
        // Our packed encoding is byte-for-byte what protoc writes.
        XCTAssertEqual(b.encodedBytes(), packed)
    }

    func testBytesWeEncodeDecodeWithProtocToTheExpectedText() throws {
        var message = AllTypes()
        message.i32 = -1
        message.s64 = -2
        message.text = "gateway"
        message.inner = Inner()
        message.inner?.b = [7, 8]
        message.labels = ["model": "simple"]
        message.choice = .name("n")
        message.packedFloats = [0.25]
        let text = try Protoc.decode("switchyard.wiretest.AllTypes", bytes: message.encodedBytes(), protoFile: "wire_test.proto", includePath: fixtures)
        XCTAssertEqual(
            text,
            """
            i32: -1
            s64: -2
            text: "gateway"
            inner {
              b: 7
              b: 8
            }
            packed_floats: 0.25
            labels {
              key: "model"
              value: "simple"
            }
            name: "n"

            """)
    }

    /// Random messages: ours → protoc --decode → text → protoc --encode → ours must give back the
    /// same values, and our own round trip must too.
    func testRandomMessagesRoundTripThroughProtoc() throws {
        var generator = SeededGenerator(seed: 0x5EED_2026)
        var root = AllTypes()
        for _ in 0..<300 {
            let message = AllTypes.random(using: &generator, depth: 0)
            XCTAssertEqual(try AllTypes(decoding: message.encoded()), message)
            root.children.append(message)
        }
        let text = try Protoc.decode("switchyard.wiretest.AllTypes", bytes: root.encodedBytes(), protoFile: "wire_test.proto", includePath: fixtures)
        let bytes = try Protoc.encode("switchyard.wiretest.AllTypes", text: text, protoFile: "wire_test.proto", includePath: fixtures)
        let back = try AllTypes(decodingBytes: bytes)
        XCTAssertEqual(back.children.count, root.children.count)
        for (index, (ours, theirs)) in zip(root.children, back.children).enumerated() where ours != theirs {
            XCTFail("message \(index) changed through protoc:\nours:   \(ours)\ntheirs: \(theirs)")
            break
        }
    }
}

extension AllTypes {
    static func random(using generator: inout SeededGenerator, depth: Int) -> AllTypes {
        func maybe(_ probability: Double = 0.5) -> Bool { Double.random(in: 0..<1, using: &generator) < probability }
        func anyInt<T: FixedWidthInteger>(_: T.Type) -> T {
            // Mix edge values with uniformly random ones.
            switch Int.random(in: 0..<6, using: &generator) {
            case 0: return T.min
            case 1: return T.max
            case 2: return 0
            case 3: return T(truncatingIfNeeded: Int.random(in: -300...300, using: &generator))
            default: return T.random(in: T.min...T.max, using: &generator)
            }
        }
        func anyFloat() -> Float {
            maybe(0.2) ? [0, -0.0, .infinity, -.infinity, .leastNonzeroMagnitude, .greatestFiniteMagnitude].randomElement(using: &generator)!
                : Float(bitPattern: UInt32.random(in: 0...UInt32.max, using: &generator)).nanFree
        }
        func anyDouble() -> Double {
            maybe(0.2) ? [0, .infinity, -.leastNormalMagnitude, .greatestFiniteMagnitude].randomElement(using: &generator)!
                : Double(bitPattern: UInt64.random(in: 0...UInt64.max, using: &generator)).nanFree
        }
        func anyString() -> String {
            let alphabet: [Character] = ["a", "Z", "0", " ", "\"", "\\", "\n", "é", "✓", "🚀", "\u{0}", "\u{7F}"]
            return String((0..<Int.random(in: 0..<12, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
        }
        var m = AllTypes()
        if maybe() { m.i32 = anyInt(Int32.self) }
        if maybe() { m.i64 = anyInt(Int64.self) }
        if maybe() { m.u32 = anyInt(UInt32.self) }
        if maybe() { m.u64 = anyInt(UInt64.self) }
        if maybe() { m.s32 = anyInt(Int32.self) }
        if maybe() { m.s64 = anyInt(Int64.self) }
        if maybe() { m.flag = true }
        if maybe() { m.color = Int32.random(in: 0...2, using: &generator) }
        if maybe() { m.f32 = anyInt(UInt32.self) }
        if maybe() { m.f64 = anyInt(UInt64.self) }
        if maybe() { m.sf32 = anyInt(Int32.self) }
        if maybe() { m.sf64 = anyInt(Int64.self) }
        if maybe() { m.real = anyFloat() }
        if maybe() { m.dbl = anyDouble() }
        if maybe() { m.text = anyString() }
        if maybe() { m.blob = ByteBuffer(bytes: (0..<Int.random(in: 0..<40, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }) }
        if maybe(0.3) {
            var inner = Inner()
            inner.a = anyInt(Int32.self)
            inner.b = (0..<Int.random(in: 0..<5, using: &generator)).map { _ in anyInt(Int32.self) }
            inner.s = anyString()
            m.inner = inner
        }
        if depth < 3 && maybe(0.2) {
            m.children = (0..<Int.random(in: 1..<3, using: &generator)).map { _ in random(using: &generator, depth: depth + 1) }
        }
        if maybe() { m.packedInts = (0..<Int.random(in: 0..<20, using: &generator)).map { _ in anyInt(Int32.self) } }
        if maybe() { m.packedFloats = (0..<Int.random(in: 0..<20, using: &generator)).map { _ in anyFloat() } }
        if maybe(0.3) { for _ in 0..<Int.random(in: 0..<4, using: &generator) { m.labels[anyString()] = anyString() } }
        if maybe(0.3) { m.choice = maybe() ? .name(anyString()) : .number(anyInt(Int64.self)) }
        if maybe() { m.sints = (0..<Int.random(in: 0..<10, using: &generator)).map { _ in anyInt(Int64.self) } }
        if maybe() { m.doubles = (0..<Int.random(in: 0..<10, using: &generator)).map { _ in anyDouble() } }
        if maybe() { m.strings = (0..<Int.random(in: 0..<4, using: &generator)).map { _ in anyString() } }
        return m
    }
}

extension BinaryFloatingPoint {
    /// NaN has many bit patterns and text format keeps none of them; use 1 instead.
    var nanFree: Self { isNaN ? 1 : self }
}
