import Foundation
import InferenceProtocol
import NIOCore
import ProtoWire
import XCTest

/// `ModelInferRequestScan` against the full decode (`ModelInferRequest(decoding:limits:)`): on
/// every input both accept or both reject; a rejection is the same `ProtoDecodingError` (code,
/// detail, field path) and an acceptance extracts the same model, version, id, parameters,
/// inputs (name, datatype, shape, parameters, contents element counts), raw contents and output
/// names. Inputs: the fuzzing seed corpus, hand-built requests of every content type and
/// encoding, and thousands of seeded random mutations and truncations of them.
final class ModelInferRequestScanTests: XCTestCase {
    // MARK: The differential check

    /// Compares the scan with the full decode on `bytes`; returns true when both accepted.
    @discardableResult
    private func assertAgree(
        _ bytes: ByteBuffer, limits: ProtoLimits = .default, _ label: @autoclosure () -> String,
        file: StaticString = #filePath, line: UInt = #line
    ) -> Bool {
        let full = Result { try ModelInferRequest(decoding: bytes, limits: limits) }
        let scan = Result { try ModelInferRequestScan(decoding: bytes, limits: limits) }
        switch (full, scan) {
        case (.failure(let fullError), .failure(let scanError)):
            XCTAssertEqual(
                fullError as? ProtoDecodingError, scanError as? ProtoDecodingError,
                "\(label()): different errors", file: file, line: line)
            return false
        case (.success, .failure(let scanError)):
            XCTFail("\(label()): full decode accepted, scan rejected with \(scanError)", file: file, line: line)
            return false
        case (.failure(let fullError), .success):
            XCTFail("\(label()): full decode rejected with \(fullError), scan accepted", file: file, line: line)
            return false
        case (.success(let request), .success(let scanned)):
            let differences = Self.differences(request, scanned)
            XCTAssert(differences.isEmpty, "\(label()): \(differences.joined(separator: "; "))", file: file, line: line)
            // The summary of the decoded value is the scan (compared as values: NaN parameters aside).
            if Self.sameParameters(request.parameters, scanned.parameters), request.parameters.values.allSatisfy({ $0 == $0 }),
                request.inputs.allSatisfy({ $0.parameters.values.allSatisfy { $0 == $0 } }),
                request.outputs.allSatisfy({ $0.parameters.values.allSatisfy { $0 == $0 } })
            {
                XCTAssertEqual(ModelInferRequestScan(request), scanned, "\(label()): init(_:) differs", file: file, line: line)
            }
            return true
        }
    }

    /// Every field the scan extracts, compared with the full decode's; empty when they agree.
    static func differences(_ request: ModelInferRequest, _ scan: ModelInferRequestScan) -> [String] {
        var found: [String] = []
        func check(_ same: Bool, _ what: @autoclosure () -> String) { if !same { found.append(what()) } }
        check(request.modelName == scan.modelName, "model name \(request.modelName) vs \(scan.modelName)")
        check(request.modelVersion == scan.modelVersion, "version \(request.modelVersion) vs \(scan.modelVersion)")
        check(request.id == scan.id, "id \(request.id) vs \(scan.id)")
        check(sameParameters(request.parameters, scan.parameters), "request parameters")
        check(request.inputs.count == scan.inputs.count, "\(request.inputs.count) vs \(scan.inputs.count) inputs")
        for (index, (input, scanned)) in zip(request.inputs, scan.inputs).enumerated() {
            check(input.name == scanned.name, "input \(index) name \(input.name) vs \(scanned.name)")
            check(input.datatype == scanned.datatype, "input \(index) datatype \(input.datatype) vs \(scanned.datatype)")
            check(input.shape == scanned.shape, "input \(index) shape \(input.shape) vs \(scanned.shape)")
            check(sameParameters(input.parameters, scanned.parameters), "input \(index) parameters")
            check(input.contents.map(ModelInferRequestScan.ContentsSummary.init) == scanned.contents, "input \(index) contents \(String(describing: scanned.contents))")
        }
        check(request.outputs.map(\.name) == scan.outputs.map(\.name), "output names")
        check(
            request.outputs.count == scan.outputs.count
                && zip(request.outputs, scan.outputs).allSatisfy { sameParameters($0.parameters, $1.parameters) },
            "output parameters")
        check(request.rawInputContents == scan.rawInputContents, "raw contents")
        return found
    }

    /// Parameters compared by their encodings, since a double parameter may be NaN.
    static func sameParameters(_ lhs: [String: InferParameter], _ rhs: [String: InferParameter]) -> Bool {
        lhs.count == rhs.count && lhs.allSatisfy { key, value in rhs[key].map { $0.encodedBytes() == value.encodedBytes() } ?? false }
    }

    // MARK: Inputs

    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The ModelInferRequests of the fuzzing seed corpus (and of `Tests/InferenceProtocolTests/Fixtures`,
    /// if any), each with its name.
    static func corpus() throws -> [(String, ByteBuffer)] {
        var found: [(String, ByteBuffer)] = []
        let manager = FileManager.default
        for folder in ["FuzzTesting/Corpus/FuzzModelInferRequest", "Tests/InferenceProtocolTests/Fixtures"] {
            let directory = repositoryRoot.appendingPathComponent(folder)
            for name in (try? manager.contentsOfDirectory(atPath: directory.path))?.sorted() ?? [] where !name.hasPrefix(".") {
                let data = try Data(contentsOf: directory.appendingPathComponent(name))
                found.append(("\(folder)/\(name)", ByteBuffer(bytes: data)))
            }
        }
        // FuzzGatewayRequests inputs whose selector byte picks ModelInferRequest (0 mod 23).
        let gateway = repositoryRoot.appendingPathComponent("FuzzTesting/Corpus/FuzzGatewayRequests")
        for name in (try? manager.contentsOfDirectory(atPath: gateway.path))?.sorted() ?? [] {
            let data = try Data(contentsOf: gateway.appendingPathComponent(name))
            if let selector = data.first, selector % 23 == 0 {
                found.append(("FuzzGatewayRequests/\(name)", ByteBuffer(bytes: data.dropFirst())))
            }
        }
        return found
    }

    /// Requests built here: every typed contents field packed and unpacked, negative and large
    /// varints, split occurrences, BYTES, parameters of every kind, outputs, unknown fields.
    static func builtRequests() -> [(String, ByteBuffer)] {
        var built: [(String, ByteBuffer)] = []
        func input(_ name: String, _ datatype: String, _ shape: TensorShape) -> ModelInferRequest.InferInputTensor {
            var input = ModelInferRequest.InferInputTensor()
            input.name = name
            input.datatype = datatype
            input.shape = shape
            return input
        }
        var simple = ModelInferRequest()
        simple.modelName = "simple"
        simple.id = "42"
        simple.inputs = [input("INPUT0", "INT32", [1, 16]), input("INPUT1", "INT32", [1, 16])]
        simple.outputs = [.init(), .init()]
        simple.outputs[0].name = "OUTPUT0"
        simple.outputs[1].name = "OUTPUT1"
        simple.outputs[1].parameters = ["binary_data": .init(.bool(true))]
        simple.rawInputContents = [ByteBuffer(repeating: 1, count: 64), ByteBuffer(repeating: 2, count: 64)]
        simple.parameters = [
            "sequence_id": .init(.int64(-7)), "priority": .init(.uint64(3)), "flag": .init(.bool(true)),
            "name": .init(.string("é")), "ratio": .init(.double(.nan)), "none": .init(),
        ]
        built.append(("simple raw", simple.encoded()))

        var typed = ModelInferRequest()
        typed.modelName = "every type"
        typed.modelVersion = "1"
        var contents = InferTensorContents()
        contents.boolContents = [true, false, true]
        contents.intContents = [0, 1, -1, 127, 128, -129, .max, .min, 300, -300_000]
        contents.int64Contents = [0, -1, .max, .min, 1 << 35, -(1 << 35)]
        contents.uintContents = [0, 1, 127, 128, .max, 1 << 20]
        contents.uint64Contents = [0, .max, 1 << 63, 1 << 56, 1 << 49, 1 << 42]
        contents.fp32Contents = [0, 1.5, -.infinity, .nan]
        contents.fp64Contents = [0, 2.5, .greatestFiniteMagnitude]
        contents.bytesContents = [ByteBuffer(string: "a"), ByteBuffer(), ByteBuffer(string: "ccc")]
        var all = input("ALL", "FP32", [4])
        all.contents = contents
        all.parameters = ["shared_memory_region": .init(.string("r0")), "shared_memory_byte_size": .init(.int64(16))]
        var empty = input("EMPTY", "INT32", [0])
        empty.contents = InferTensorContents()
        var wide = input("WIDE", "INT32", [1, 2, 3, 4, 5, 6])
        var many = InferTensorContents()
        // Every length of varint from 1 to 10 bytes, at every alignment of an 8-byte word.
        many.intContents = (0..<200).map { index in Int32(truncatingIfNeeded: (Int64(1) << (index % 33)) * (index % 3 == 0 ? -1 : 1)) }
        many.int64Contents = (0..<200).map { index in (Int64(1) << (index % 64)) &* (index % 5 == 0 ? -1 : 1) }
        wide.contents = many
        typed.inputs = [all, empty, wide]
        built.append(("every typed field packed", typed.encoded()))

        // The same contents unpacked, in several occurrences of each field and of `contents`.
        var writer = ProtoWriter()
        writer.writeString(field: 1, "unpacked")
        writer.writeLengthDelimited(field: 5) { tensor in
            tensor.writeString(field: 1, "ALL")
            tensor.writeString(field: 2, "INT64")
            tensor.writeUnpacked(ProtoInt64.self, field: 3, [2, 3])
            for _ in 0..<2 {
                tensor.writeLengthDelimited(field: 5) { body in
                    body.writeUnpacked(ProtoBool.self, field: 1, contents.boolContents)
                    body.writeUnpacked(ProtoInt32.self, field: 2, contents.intContents)
                    body.writePacked(ProtoInt32.self, field: 2, contents.intContents)
                    body.writeUnpacked(ProtoInt64.self, field: 3, contents.int64Contents)
                    body.writeUnpacked(ProtoUInt32.self, field: 4, contents.uintContents)
                    body.writeUnpacked(ProtoUInt64.self, field: 5, contents.uint64Contents)
                    body.writeUnpacked(ProtoFloat.self, field: 6, contents.fp32Contents)
                    body.writePacked(ProtoFloat.self, field: 6, contents.fp32Contents)
                    body.writeUnpacked(ProtoDouble.self, field: 7, contents.fp64Contents)
                    body.writeBytes(field: 8, [1, 2, 3])
                    body.write(ProtoUInt64.self, field: 99, 5)  // unknown
                }
            }
            tensor.write(ProtoFixed32.self, field: 77, 1)  // unknown
            // A group (field 50), unknown, holding a varint.
            tensor.writeTag(50, .startGroup)
            tensor.write(ProtoInt32.self, field: 1, 1)
            tensor.writeTag(50, .endGroup)
        }
        writer.writeLengthDelimited(field: 6) { output in
            output.writeString(field: 1, "OUT")
            output.write(ProtoInt32.self, field: 9, 9)  // unknown
        }
        writer.writeBytes(field: 7, [9, 9, 9, 9])
        writer.write(ProtoFixed64.self, field: 1000, 1)  // unknown
        writer.writeString(field: 1, "unpacked, last name wins")
        built.append(("unpacked and split", writer.buffer))

        // Present-but-empty contents beside raw contents; unknown-only contents.
        writer = ProtoWriter()
        writer.writeLengthDelimited(field: 5) { tensor in
            tensor.writeString(field: 1, "A")
            tensor.writeLengthDelimited(field: 5) { _ in }
        }
        writer.writeLengthDelimited(field: 5) { tensor in
            tensor.writeString(field: 1, "B")
            tensor.writeLengthDelimited(field: 5) { body in body.write(ProtoInt32.self, field: 12, 1) }
        }
        writer.writeBytes(field: 7, [UInt8]())
        writer.writeBytes(field: 7, [1])
        built.append(("empty and unknown-only contents", writer.buffer))
        return built
    }

    // MARK: Tests

    func testScanAgreesWithFullDecodeOnTheCorpusAndBuiltRequests() throws {
        let inputs = try Self.corpus() + Self.builtRequests()
        XCTAssertGreaterThanOrEqual(inputs.count, 14, "the seed corpus was not found")
        for (name, bytes) in inputs {
            XCTAssertTrue(assertAgree(bytes, name), "\(name) should be a valid request")
            // Under tight limits, most fail at the same point in both.
            for depth in 0...4 {
                assertAgree(bytes, limits: ProtoLimits(maxDepth: depth), "\(name), max depth \(depth)")
            }
            assertAgree(bytes, limits: ProtoLimits(maxMessageSize: bytes.readableBytes - 1), "\(name), too large")
        }
    }

    func testScanAgreesWithFullDecodeOnEveryTruncation() throws {
        for (name, bytes) in try Self.corpus() + Self.builtRequests() {
            for length in 0..<bytes.readableBytes {
                assertAgree(bytes.getSlice(at: bytes.readerIndex, length: length)!, "\(name) cut to \(length) bytes")
            }
        }
    }

    func testScanAgreesWithFullDecodeOnRandomMutations() throws {
        var random = SplitMix64(seed: 0x5CA7_0001)
        let seeds = try Self.corpus() + Self.builtRequests()
        var accepted = 0
        var cases = 0
        for round in 0..<6000 {
            let (name, original) = seeds[round % seeds.count]
            var bytes = Array(original.readableBytesView)
            let edits = 1 + Int(random.next() % 4)
            for _ in 0..<edits { Self.mutate(&bytes, &random) }
            let limits = random.next() % 8 == 0 ? ProtoLimits(maxDepth: Int(random.next() % 5)) : .default
            cases += 1
            if assertAgree(ByteBuffer(bytes: bytes), limits: limits, "\(name), mutation round \(round): \(bytes)") {
                accepted += 1
            }
        }
        // Both outcomes must be well represented for the comparison to mean something.
        XCTAssertGreaterThan(accepted, cases / 20, "too few mutated requests decode")
        XCTAssertLessThan(accepted, cases - cases / 20, "too few mutated requests fail")
    }

    /// Random runs of packed varints (well-formed, 10-byte, over-long, overflowing, cut short)
    /// inside well-formed framing, so the counting fast path meets every fault at every
    /// alignment; the full decode must fail or succeed identically.
    func testPackedVarintCountingAgreesWithFullDecode() throws {
        var random = SplitMix64(seed: 0x5CA7_0002)
        for round in 0..<4000 {
            var run: [UInt8] = []
            let varints = Int(random.next() % 40)
            for _ in 0..<varints {
                let length = 1 + Int(random.next() % 11)
                for index in 0..<length {
                    let last = index == length - 1
                    var byte = UInt8(truncatingIfNeeded: random.next())
                    byte = last ? byte & 0x7F : byte | 0x80
                    if last, length == 10, random.next() % 2 == 0 { byte &= 1 }
                    run.append(byte)
                }
            }
            if random.next() % 4 == 0, !run.isEmpty { run.removeLast(1 + Int(random.next() % UInt64(min(run.count, 3)))) }
            let field = [1, 2, 3, 4, 5][Int(random.next() % 5)]
            var writer = ProtoWriter()
            writer.writeString(field: 1, "varints")
            writer.writeLengthDelimited(field: 5) { tensor in
                tensor.writeString(field: 1, "IN")
                tensor.writeLengthDelimited(field: 5) { body in
                    body.writeBytes(field: field, ByteBuffer(repeating: 0, count: Int(random.next() % 8)))
                    body.writeBytes(field: field, run)
                }
            }
            assertAgree(writer.buffer, "packed varints round \(round): field \(field) run \(run)")
        }
    }

    func testCountingStepsOverContentsWithoutMaterialisingThem() throws {
        var request = ModelInferRequest()
        request.modelName = "m"
        var input = ModelInferRequest.InferInputTensor()
        input.name = "X"
        input.datatype = "INT32"
        input.shape = [1, 4096]
        var contents = InferTensorContents()
        contents.intContents = (0..<4096).map { Int32($0) - 2048 }
        input.contents = contents
        request.inputs = [input]
        let scan = try ModelInferRequestScan(decoding: request.encoded())
        XCTAssertEqual(scan.inputs.first?.contents?.intCount, 4096)
        XCTAssertEqual(scan.inputs.first?.contents?.elementCount(for: .int32), 4096)
        XCTAssertEqual(scan.inputs.first?.contents?.isEmpty, false)
    }

    /// Long packed runs (the counting sums its byte lanes every 255 words) of varints of every
    /// length, long ones (10 bytes) rare or frequent.
    func testLongPackedRunsAreCountedExactly() throws {
        var random = SplitMix64(seed: 0x5CA7_0003)
        for (count, negativeEvery) in [(100_000, 0), (70_001, 1000), (5_000, 3), (2_041, 0)] {
            var contents = InferTensorContents()
            contents.intContents = (0..<count).map { index in
                let magnitude = Int32(truncatingIfNeeded: random.next() >> UInt64(33 + random.next() % 31))
                return negativeEvery > 0 && index % negativeEvery == 0 ? -1 - magnitude : magnitude
            }
            contents.uint64Contents = (0..<count).map { _ in random.next() >> (random.next() % 64) }
            var input = ModelInferRequest.InferInputTensor()
            input.name = "X"
            input.contents = contents
            var request = ModelInferRequest()
            request.inputs = [input]
            let bytes = request.encoded()
            XCTAssertTrue(assertAgree(bytes, "\(count) varints"))
            let scan = try ModelInferRequestScan(decoding: bytes)
            XCTAssertEqual(scan.inputs.first?.contents?.intCount, count)
            XCTAssertEqual(scan.inputs.first?.contents?.uint64Count, count)
        }
    }

    func testRawContentsAreSlicesOfTheScannedBuffer() throws {
        let (_, bytes) = Self.builtRequests()[0]
        let scan = try ModelInferRequestScan(decoding: bytes)
        let base = bytes.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
        XCTAssertEqual(scan.rawInputContents.count, 2)
        for raw in scan.rawInputContents {
            let start = raw.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
            XCTAssertTrue(start > base && start < base + UInt(bytes.readableBytes), "raw contents were copied")
        }
    }

    // MARK: Mutations

    static func mutate(_ bytes: inout [UInt8], _ random: inout SplitMix64) {
        let interesting: [UInt8] = [0x00, 0x01, 0x02, 0x7F, 0x80, 0xFF, 0x08, 0x0A, 0x12, 0x1A, 0x22, 0x2A, 0x32, 0x3A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F]
        func position(_ extra: Int = 0) -> Int { Int(random.next() % UInt64(bytes.count + extra)) }
        switch random.next() % 9 {
        case 0 where !bytes.isEmpty: bytes[position()] ^= UInt8(1) << (random.next() % 8)
        case 1 where !bytes.isEmpty: bytes[position()] = interesting[Int(random.next() % UInt64(interesting.count))]
        case 2: bytes.insert(interesting[Int(random.next() % UInt64(interesting.count))], at: position(1))
        case 3 where !bytes.isEmpty: bytes.remove(at: position())
        case 4 where !bytes.isEmpty: bytes.removeLast(1 + position() / 4)
        case 5 where !bytes.isEmpty: bytes[position()] = UInt8(truncatingIfNeeded: random.next())
        case 6 where bytes.count > 2:
            // Duplicate a span (repeats fields, splits lengths).
            let start = position()
            let length = min(1 + Int(random.next() % 16), bytes.count - start)
            bytes.insert(contentsOf: bytes[start..<start + length], at: position(1))
        case 7 where !bytes.isEmpty:
            // A length byte one off.
            let index = position()
            bytes[index] = bytes[index] &+ (random.next() % 2 == 0 ? 1 : 0xFF)
        default:
            if !bytes.isEmpty { bytes[position()] |= 0x80 }
        }
    }
}

/// A small seeded generator, so every run tests the same cases.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D4_9BB8_3013_3EB
        return z ^ (z >> 31)
    }
}
