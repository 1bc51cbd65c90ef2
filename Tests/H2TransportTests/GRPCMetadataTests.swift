import XCTest

@testable import H2Transport

/// "name: value" lines, for comparing header lists.
func lines(_ fields: GRPCHeaderFields) -> [String] {
    fields.map { "\($0.name): \($0.value)" }
}

final class GRPCMetadataTests: XCTestCase {
    func testNamesAreLowerCasedAndOrderAndDuplicatesKept() {
        var metadata = GRPCMetadata()
        metadata.add("X-Request-ID", "1")
        metadata.add("x-b", "2")
        metadata.add("x-request-id", "3")
        XCTAssertEqual(metadata.map(\.name), ["x-request-id", "x-b", "x-request-id"])
        XCTAssertEqual(metadata.values(named: "X-REQUEST-ID"), [.string("1"), .string("3")])
        XCTAssertEqual(metadata.firstString(named: "x-b"), "2")
        metadata.removeAll(named: "x-request-id")
        XCTAssertEqual(lines(metadata.headerFields), ["x-b: 2"])
    }

    func testTextAddedUnderABinaryNameIsStoredAsItsBytes() {
        var metadata = GRPCMetadata()
        metadata.add("trace-bin", "hi")
        XCTAssertEqual(metadata.firstBinary(named: "trace-bin"), Array("hi".utf8))
        XCTAssertEqual(lines(metadata.headerFields), ["trace-bin: aGk"])
    }

    func testBase64KnownVectorsPaddedAndUnpadded() {
        // RFC 4648 §10.
        let table: [(String, String, String)] = [
            ("", "", ""), ("f", "Zg==", "Zg"), ("fo", "Zm8=", "Zm8"), ("foo", "Zm9v", "Zm9v"),
            ("foob", "Zm9vYg==", "Zm9vYg"), ("fooba", "Zm9vYmE=", "Zm9vYmE"), ("foobar", "Zm9vYmFy", "Zm9vYmFy"),
        ]
        for (plain, padded, unpadded) in table {
            let bytes = Array(plain.utf8)
            XCTAssertEqual(Base64.encode(bytes, padded: true), padded)
            XCTAssertEqual(Base64.encode(bytes, padded: false), unpadded)
            XCTAssertEqual(Base64.decode(Array(padded.utf8)), bytes, padded)
            XCTAssertEqual(Base64.decode(Array(unpadded.utf8)), bytes, unpadded)
        }
    }

    func testBase64RejectsWhatNoEncoderProduces() {
        for text in ["Z", "Zg=", "Zm9v=", "Zg===", "=Zg", "Zg==Zg", "Zm9v!", "Zm 9v", "Zm9v\n", "Zm-_", "Zm9vY"] {
            XCTAssertNil(Base64.decode(Array(text.utf8)), "'\(text)'")
        }
    }

    func testBase64RoundTripsEveryLengthAndByte() {
        var generator = SystemRandomNumberGenerator()
        for length in 0...70 {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            for padded in [true, false] {
                XCTAssertEqual(Base64.decode(Array(Base64.encode(bytes, padded: padded).utf8)), bytes, "length \(length)")
            }
        }
        let all = Array(UInt8.min...UInt8.max)
        XCTAssertEqual(Base64.decode(Array(Base64.encode(all, padded: false).utf8)), all)
    }

    func testReceivedReservedNamesAreNotMetadata() {
        let reserved = [
            ":path", ":method", ":scheme", ":authority", ":status", "te", "content-type", "content-length",
            "user-agent", "host", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
            "grpc-timeout", "grpc-encoding", "grpc-accept-encoding", "grpc-message-type", "grpc-status", "grpc-message",
        ]
        for name in reserved {
            XCTAssertTrue(GRPCMetadata.isReservedName(name), name)
            XCTAssertTrue(try GRPCMetadata(headerFields: [(name, "v")] as GRPCHeaderFields).isEmpty, name)
        }
        let kept = ["authorization", "x-api-key", "grpc-status-details-bin", "grpc-trace-bin", "grpc-previous-rpc-attempts", "triton-grpc-protocol-x"]
        for name in kept {
            XCTAssertFalse(GRPCMetadata.isReservedName(name), name)
            XCTAssertEqual(try GRPCMetadata(headerFields: [(name, "AQID")] as GRPCHeaderFields).count, 1, name)
        }
    }

    func testReceivedBinaryValuesAreSplitOnCommasAndDecodedPaddedOrNot() throws {
        let table: [(String, [[UInt8]])] = [
            ("AQID", [[1, 2, 3]]),
            ("AQ==", [[1]]),
            ("AQ", [[1]]),
            ("AQ,Ag==", [[1], [2]]),
            ("AQ, Ag", [[1], [2]]),
            ("", [[]]),
        ]
        for (value, expected) in table {
            let metadata = try GRPCMetadata(headerFields: [("x-bin", value)] as GRPCHeaderFields)
            XCTAssertEqual(metadata.values(named: "x-bin"), expected.map { .binary($0) }, "'\(value)'")
        }
    }

    func testMalformedBinaryValueIsAnInternalError() {
        XCTAssertThrowsError(try GRPCMetadata(headerFields: [("ok", "1"), ("trace-bin", "not base64!")] as GRPCHeaderFields)) { error in
            let status = error as? GRPCStatus
            XCTAssertEqual(status?.code, .internalError)
            XCTAssertTrue(status?.message.contains("trace-bin") ?? false)
        }
    }

    func testReceivedTextIsKeptAsIs() throws {
        let metadata = try GRPCMetadata(headerFields: [("x-a", "  spaced  "), ("x-b", "é")] as GRPCHeaderFields)
        XCTAssertEqual(metadata.firstString(named: "x-a"), "  spaced  ")
        XCTAssertEqual(metadata.firstString(named: "x-b"), "é")
    }

    func testSendingLeavesOutFieldsThatCannotGoOnTheWire() {
        var metadata = GRPCMetadata()
        metadata.add("x-ok", "fine value ~")
        metadata.add("grpc-status", "0")
        metadata.add(":path", "/x/y")
        metadata.add("content-type", "text/plain")
        metadata.add("bad name", "v")
        metadata.add("bad@name", "v")
        metadata.add("", "v")
        metadata.add("x-newline", "a\r\nb")
        metadata.add("x-unicode", "é")
        metadata.add("x-empty", "")
        metadata.add("grpc-status-details-bin", binary: [0xFF, 0x00])
        XCTAssertEqual(lines(metadata.headerFields), ["x-ok: fine value ~", "x-empty: ", "grpc-status-details-bin: /wA"])
    }

    func testNameAndValueGrammar() {
        for name in ["a", "x-request-id", "a.b_c-9"] { XCTAssertTrue(GRPCMetadata.isValidName(name), name) }
        for name in ["", "A", "a b", "a:b", "é"] { XCTAssertFalse(GRPCMetadata.isValidName(name), name) }
        for value in ["", " ", "~", "a b"] { XCTAssertTrue(GRPCMetadata.isValidASCIIValue(value), value) }
        for value in ["\t", "\u{7F}", "é", "\n"] { XCTAssertFalse(GRPCMetadata.isValidASCIIValue(value), value) }
        XCTAssertTrue(GRPCMetadata.isBinaryName("x-bin"))
        XCTAssertFalse(GRPCMetadata.isBinaryName("-bin"))
        XCTAssertFalse(GRPCMetadata.isBinaryName("x-binary"))
    }

    func testWireFormRoundTrips() throws {
        var metadata = GRPCMetadata(["x-a": "1", "x-b": "two"])
        metadata.add("x-c-bin", binary: [0, 1, 2, 250])
        metadata.add("x-a", "3")
        let decoded = try GRPCMetadata(headerFields: metadata.headerFields)
        XCTAssertEqual(decoded, metadata)
    }
}
