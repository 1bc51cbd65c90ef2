import NIOCore
import ProtoWire
import XCTest

@testable import InferenceProtocol

/// Requests that FuzzTesting/ showed to cost time quadratic in their size: a singular message
/// field, or a oneof member, split into very many small occurrences, each of which copied all
/// that the earlier ones had decoded. At 256 KiB such a ModelInferRequest took about 30 s to
/// decode and a ServerReflectionRequest about 10 s, growing with the square of the size, and the
/// gateway decodes both on its event loop with a 64 MiB limit.
///
/// The tests feed the occurrences to `decodeField` one at a time and watch the storage that
/// holds what was merged so far: merging in place moves it only when it grows (geometrically,
/// about log2(20,000) = 15 times), copying moved it on every occurrence. Counting moves instead
/// of timing keeps the tests exact on a loaded machine.
/// Tests/ProtoWireTests/FuzzRegressionTests.swift checks ProtoWire's side the same way.
final class InferenceFuzzRegressionTests: XCTestCase {
    static let occurrences = 20_000
    static let maxMoves = 40

    /// Feeds `occurrences` copies of a field to `message.decodeField` and counts how often the
    /// storage that `address` reports changed.
    func moves<M: ProtoMessage>(
        into message: inout M, occurrence: (Int) -> [UInt8], address: (M) -> UnsafeRawPointer?
    ) throws -> Int {
        var bytes = ByteBuffer()
        for i in 0..<Self.occurrences { bytes.writeBytes(occurrence(i)) }
        var reader = try ProtoReader(buffer: bytes)
        var moves = 0
        var last: UnsafeRawPointer?
        while let tag = try reader.nextTag() {
            try message.decodeField(tag, from: &reader)
            let now = address(message)
            if now != last { moves += 1 }
            last = now
        }
        return moves
    }

    /// `InferInputTensor.contents` (an Optional message, field 5) arriving 20,000 times, each
    /// holding one `int_contents` value (2a 02 10 vv).
    func testModelInferRequestContentsSplitIntoManyOccurrencesMergesInPlace() throws {
        var tensor = ModelInferRequest.InferInputTensor()
        let moves = try moves(into: &tensor, occurrence: { [0x2a, 0x02, 0x10, UInt8($0 % 100)] }) {
            $0.contents?.intContents.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }
        }
        XCTAssertEqual(tensor.contents?.intContents, (0..<Self.occurrences).map { Int32($0 % 100) })
        XCTAssertLessThanOrEqual(moves, Self.maxMoves, "int_contents moved on \(moves) of \(Self.occurrences) occurrences")
    }

    /// `file_containing_extension` (a oneof member, field 5) arriving 20,000 times, each with a
    /// field that `ExtensionRequest` does not know (2a 02 18 01), kept in its unknown fields.
    func testReflectionOneofMemberSplitIntoManyOccurrencesMergesInPlace() throws {
        var request = ServerReflectionRequest()
        let moves = try moves(into: &request, occurrence: { _ in [0x2a, 0x02, 0x18, 0x01] }) { request in
            guard case .fileContainingExtension(let value)? = request.messageRequest else { return nil }
            return value.unknownFields.bytes?.withUnsafeReadableBytes { $0.baseAddress }
        }
        guard case .fileContainingExtension(let value)? = request.messageRequest else {
            return XCTFail("expected file_containing_extension, got \(String(describing: request.messageRequest))")
        }
        XCTAssertEqual(value.unknownFields.bytes?.readableBytes, 2 * Self.occurrences)
        XCTAssertLessThanOrEqual(moves, Self.maxMoves, "unknown fields moved on \(moves) of \(Self.occurrences) occurrences")
    }

    /// `ModelConfig.version_policy` (an Optional message, field 3) arriving 20,000 times, each
    /// with its `specific` oneof member holding one version (1a 04 1a 02 08 vv): both kinds of
    /// merge, nested.
    func testModelConfigVersionPolicySplitIntoManyOccurrencesMergesInPlace() throws {
        var config = ModelConfig()
        let moves = try moves(into: &config, occurrence: { [0x1a, 0x04, 0x1a, 0x02, 0x08, UInt8($0 % 100)] }) { config in
            guard case .specific(let specific)? = config.versionPolicy?.policyChoice else { return nil }
            return specific.versions.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }
        }
        guard case .specific(let specific)? = config.versionPolicy?.policyChoice else {
            return XCTFail("expected a specific version policy, got \(String(describing: config.versionPolicy))")
        }
        XCTAssertEqual(specific.versions, (0..<Self.occurrences).map { Int64($0 % 100) })
        XCTAssertLessThanOrEqual(moves, Self.maxMoves, "versions moved on \(moves) of \(Self.occurrences) occurrences")
    }
}
