import NIOCore
import XCTest

@testable import H2Transport

/// A well-formed request header block, with `changes` applied: a nil value removes the
/// field, a value replaces it (or adds it at the end).
func requestHeaders(_ changes: [(String, String?)] = [], adding extra: GRPCHeaderFields = []) -> GRPCHeaderFields {
    var fields: GRPCHeaderFields = [
        (":method", "POST"), (":scheme", "https"), (":path", "/inference.GRPCInferenceService/ModelInfer"),
        (":authority", "localhost:8443"), ("te", "trailers"), ("content-type", "application/grpc"),
        ("user-agent", "grpc-python/1.62.0"),
    ]
    for (name, value) in changes {
        if let index = fields.firstIndex(where: { $0.name == name }) {
            if let value { fields[index].value = value } else { fields.remove(at: index) }
        } else if let value {
            fields.append((name, value))
        }
    }
    return fields + extra
}

final class GRPCRequestHeadTests: XCTestCase {
    let now = NIODeadline.uptimeNanoseconds(1_000_000_000)

    private func validate(_ fields: GRPCHeaderFields, supported: [GRPCCompression.Algorithm] = GRPCCompression.Algorithm.all) -> GRPCRequestHead.Validation {
        GRPCRequestHead.validate(fields, receivedAt: now, supportedEncodings: supported)
    }

    private func head(_ fields: GRPCHeaderFields, file: StaticString = #filePath, line: UInt = #line) throws -> GRPCRequestHead {
        guard case .valid(let head) = validate(fields) else {
            XCTFail("expected a valid head, got \(validate(fields))", file: file, line: line)
            throw GRPCStatus(code: .internalError)
        }
        return head
    }

    func testAWellFormedRequestIsParsed() throws {
        let head = try head(
            requestHeaders([("grpc-timeout", "1S"), ("grpc-encoding", "gzip"), ("grpc-accept-encoding", "gzip, snappy,deflate")],
                adding: [("x-api-key", "k1"), ("trace-bin", "AQID"), ("grpc-accept-encoding", "identity,gzip")])
        )
        XCTAssertEqual(head.path, "/inference.GRPCInferenceService/ModelInfer")
        XCTAssertEqual(head.service, "inference.GRPCInferenceService")
        XCTAssertEqual(head.method, "ModelInfer")
        XCTAssertEqual(head.scheme, "https")
        XCTAssertEqual(head.authority, "localhost:8443")
        XCTAssertEqual(head.userAgent, "grpc-python/1.62.0")
        XCTAssertEqual(head.contentType, "application/grpc")
        XCTAssertEqual(head.timeout?.wireValue, "1S")
        XCTAssertEqual(head.deadline, now + .seconds(1))
        XCTAssertEqual(head.requestEncoding, .gzip)
        XCTAssertEqual(head.acceptedEncodings, [.gzip, .deflate, .identity])
        XCTAssertEqual(head.metadata.map(\.name), ["x-api-key", "trace-bin"])
        XCTAssertEqual(head.metadata.firstBinary(named: "trace-bin"), [1, 2, 3])
    }

    func testOptionalHeadersMayBeAbsent() throws {
        let head = try head(requestHeaders([(":authority", nil), ("user-agent", nil)]))
        XCTAssertNil(head.authority)
        XCTAssertNil(head.userAgent)
        XCTAssertNil(head.timeout)
        XCTAssertNil(head.deadline)
        XCTAssertNil(head.requestEncoding)
        XCTAssertEqual(head.acceptedEncodings, [])
        XCTAssertTrue(head.metadata.isEmpty)
        XCTAssertEqual(try self.head(requestHeaders([(":authority", nil), ("host", "example.com")])).authority, "example.com")
    }

    func testContentTypeDecidesWhetherThisIsGRPCAtAll() throws {
        let accepted = [
            "application/grpc", "application/grpc+proto", "application/grpc+json", "application/grpc;charset=utf-8",
            "application/grpc+proto; charset=utf-8", "Application/GRPC", "application/grpc+custom",
        ]
        for value in accepted {
            XCTAssertEqual(try head(requestHeaders([("content-type", value)])).contentType, value)
        }
        let refused: [(String?, String)] = [
            (nil, "missing content-type"),
            ("application/json", "'application/json' is not supported"),
            ("application/grpc-web", "is not supported"),
            ("application/grpc-web+proto", "is not supported"),
            ("application/grpcx", "is not supported"),
            ("application/grpc+", "is not supported"),
            ("text/plain", "is not supported"),
            ("", "is not supported"),
        ]
        for (value, message) in refused {
            guard case .rejectWithHTTPStatus(let rejection) = validate(requestHeaders([("content-type", value)])) else {
                XCTFail("\(value ?? "nil") should get HTTP 415")
                continue
            }
            XCTAssertEqual(rejection.status, 415)
            XCTAssertTrue(rejection.message.contains(message), rejection.message)
        }
        guard case .rejectWithHTTPStatus(let twice) = validate(requestHeaders(adding: [("content-type", "application/grpc")])) else {
            return XCTFail("two content-types should get HTTP 415")
        }
        XCTAssertEqual(twice.status, 415)
    }

    func testMethodOtherThanPOSTIsHTTP405() {
        for value in ["GET", "PUT", "post", nil] as [String?] {
            guard case .rejectWithHTTPStatus(let rejection) = validate(requestHeaders([(":method", value)])) else {
                XCTFail("\(value ?? "nil") should get HTTP 405")
                continue
            }
            XCTAssertEqual(rejection.status, 405)
            XCTAssertEqual(lines(rejection.headerFields).prefix(2), [":status: 405", "allow: POST"])
        }
    }

    func testContentTypeIsCheckedBeforeMethod() {
        guard case .rejectWithHTTPStatus(let rejection) = validate(requestHeaders([(":method", "GET"), ("content-type", "text/html")])) else {
            return XCTFail("expected an HTTP rejection")
        }
        XCTAssertEqual(rejection.status, 415)
    }

    func testHTTPRejectionHeadersCarryAGRPCStatusToo() {
        let rejection = GRPCRequestHead.HTTPRejection(status: 415, message: "content-type 'text/plain' is not supported")
        XCTAssertEqual(
            lines(rejection.headerFields),
            [":status: 415", "grpc-status: 13", "grpc-message: content-type 'text/plain' is not supported"]
        )
    }

    func testGRPCLevelRefusals() {
        let table: [(GRPCHeaderFields, GRPCStatus.Code, String)] = [
            (requestHeaders([("te", nil)]), .internalError, "expected header 'te: trailers' but found no te header"),
            (requestHeaders([("te", "gzip")]), .internalError, "but found te 'gzip'"),
            (requestHeaders(adding: [("te", "trailers")]), .internalError, "te 'trailers, trailers'"),
            (requestHeaders([(":scheme", nil)]), .internalError, "missing or repeated :scheme header"),
            (requestHeaders([(":path", nil)]), .internalError, "missing or repeated :path header"),
            (requestHeaders([(":path", "inference.Service/Method")]), .unimplemented, "malformed :path 'inference.Service/Method'"),
            (requestHeaders([(":path", "/")]), .unimplemented, "malformed :path"),
            (requestHeaders([(":path", "//Method")]), .unimplemented, "malformed :path"),
            (requestHeaders([(":path", "/inference.Service/")]), .unimplemented, "malformed :path"),
            (requestHeaders([(":path", "/inference.Service")]), .unimplemented, "malformed :path"),
            (requestHeaders([(":path", "/a/b/c")]), .unimplemented, "malformed :path"),
            (requestHeaders([("grpc-timeout", "soon")]), .internalError, "malformed grpc-timeout: grpc-timeout 'soon'"),
            (requestHeaders([("grpc-timeout", "123456789S")]), .internalError, "has 9 digits; at most 8 are allowed"),
            (requestHeaders([("grpc-timeout", "1S")], adding: [("grpc-timeout", "2S")]), .internalError, "more than one grpc-timeout"),
            (requestHeaders([("grpc-encoding", "snappy")]), .unimplemented, "grpc-encoding 'snappy' is not supported; supported encodings: identity,deflate,gzip"),
            (requestHeaders([("grpc-encoding", "gzip")], adding: [("grpc-encoding", "gzip")]), .internalError, "more than one grpc-encoding"),
            (requestHeaders(adding: [("x-bin", "!!!")]), .internalError, "malformed binary metadata in 'x-bin'"),
        ]
        for (fields, code, message) in table {
            guard case .rejectWithGRPCStatus(let status) = validate(fields) else {
                XCTFail("expected \(code) for \(lines(fields)), got \(validate(fields))")
                continue
            }
            XCTAssertEqual(status.code, code, status.message)
            XCTAssertTrue(status.message.contains(message), "'\(status.message)' should contain '\(message)'")
        }
    }

    func testTrailersTokenIsCaseInsensitive() throws {
        XCTAssertNoThrow(try head(requestHeaders([("te", "Trailers")])))
    }

    func testRequestEncodingMustBeOneTheServerSupports() throws {
        for (value, algorithm) in [("identity", GRPCCompression.Algorithm.identity), ("gzip", .gzip), ("deflate", .deflate), ("GZIP", .gzip)] {
            XCTAssertEqual(try head(requestHeaders([("grpc-encoding", value)])).requestEncoding, algorithm, value)
        }
        guard case .rejectWithGRPCStatus(let status) = validate(requestHeaders([("grpc-encoding", "gzip")]), supported: [.deflate]) else {
            return XCTFail("gzip is not supported here")
        }
        XCTAssertEqual(status.code, .unimplemented)
        XCTAssertTrue(status.message.hasSuffix("supported encodings: identity,deflate"), status.message)
        // identity needs no support.
        guard case .valid = validate(requestHeaders([("grpc-encoding", "identity")]), supported: []) else {
            return XCTFail("identity is always accepted")
        }
    }

    func testTheLargestTimeoutSaturatesTheDeadline() throws {
        let head = try head(requestHeaders([("grpc-timeout", "99999999H")]))
        XCTAssertEqual(head.timeout?.duration, .seconds(99_999_999 * 3600))
        XCTAssertEqual(head.deadline, now + .nanoseconds(.max))
        XCTAssertEqual(try self.head(requestHeaders([("grpc-timeout", "0n")])).deadline, now)
    }

    func testAcceptEncodingValue() {
        XCTAssertEqual(GRPCRequestHead.acceptEncodingValue([]), "identity")
        XCTAssertEqual(GRPCRequestHead.acceptEncodingValue([.gzip, .identity, .gzip]), "identity,gzip")
        XCTAssertEqual(GRPCRequestHead.acceptEncodingValue(GRPCCompression.Algorithm.all), "identity,deflate,gzip")
    }

    // MARK: Validation in place (positions into the header block, byte-level lists)

    func testAcceptEncodingListsAreSplitOnBytesLikeTheirTokens() throws {
        let cases: [([String], [GRPCCompression.Algorithm])] = [
            (["gzip"], [.gzip]),
            (["GZIP ,\tDeflate\t, identity"], [.gzip, .deflate, .identity]),
            ([",, ,gzip,,"], [.gzip]),
            (["", " "], []),
            (["snappy, gzip2, gzi, zip, identityx"], []),
            (["gzip,gzip", "deflate, gzip", "identity"], [.gzip, .deflate, .identity]),
            (["\u{e9}gzip, gzip\u{301}, deflate"], [.deflate]),
        ]
        for (lists, expected) in cases {
            let head = try head(requestHeaders(adding: lists.map { ("grpc-accept-encoding", $0) }))
            XCTAssertEqual(head.acceptedEncodings, expected, "\(lists)")
        }
    }

    func testRequestEncodingNamesAreCaseInsensitiveBytes() throws {
        XCTAssertEqual(try head(requestHeaders([("grpc-encoding", "GZip")])).requestEncoding, .gzip)
        XCTAssertEqual(try head(requestHeaders([("grpc-encoding", "IDENTITY")])).requestEncoding, .identity)
        guard case .rejectWithGRPCStatus(let status) = validate(requestHeaders([("grpc-encoding", "gzip ")])) else {
            return XCTFail("a name with a trailing space is not an encoding")
        }
        XCTAssertEqual(status.code, .unimplemented)
    }

    func testInPlaceValidationMatchesTheSequenceForm() {
        let blocks: [GRPCHeaderFields] = [
            requestHeaders(),
            requestHeaders([(":authority", nil)], adding: [("host", "h1"), ("host", "h2"), ("user-agent", "second")]),
            requestHeaders(adding: [("x-a", "1"), ("te", "trailers"), ("x-b-bin", "AQ")]),
            requestHeaders(adding: [("te", "gzip")]),
            requestHeaders([("te", nil)]),
            requestHeaders([("content-type", "text/plain")]),
            requestHeaders([(":path", "/a/b/c")]),
            requestHeaders(adding: [("grpc-timeout", "1S"), ("grpc-timeout", "2S")]),
            requestHeaders(adding: [("X-Upper", "v"), ("grpc-accept-encoding", "deflate")]),
        ]
        for block in blocks {
            let fields = block.map { HTTP2HeaderField($0.name, $0.value) }
            XCTAssertEqual(
                GRPCRequestHead.validate(fields: fields, receivedAt: now, supportedEncodings: GRPCCompression.Algorithm.all),
                validate(block), "\(block)")
        }
    }

    func testRepeatedTeValuesAreAllNamedInTheRefusal() {
        guard case .rejectWithGRPCStatus(let status) = validate(requestHeaders([("te", "trailers")], adding: [("x", "y"), ("te", "gzip")])) else {
            return XCTFail("two te headers are refused")
        }
        XCTAssertTrue(status.message.contains("te 'trailers, gzip'"), status.message)
    }

    func testAuthorityFallsBackToTheFirstHost() throws {
        let head = try head(requestHeaders([(":authority", nil)], adding: [("host", "h1"), ("host", "h2")]))
        XCTAssertEqual(head.authority, "h1")
        let withBoth = try self.head(requestHeaders(adding: [("host", "h1")]))
        XCTAssertEqual(withBoth.authority, "localhost:8443")
    }
}
