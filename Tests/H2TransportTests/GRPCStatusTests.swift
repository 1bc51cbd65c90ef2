import XCTest

@testable import H2Transport

final class GRPCStatusTests: XCTestCase {
    func testEveryCodeHasItsNumberAndCanonicalName() {
        let table: [(GRPCStatus.Code, Int, String)] = [
            (.ok, 0, "OK"), (.cancelled, 1, "CANCELLED"), (.unknown, 2, "UNKNOWN"),
            (.invalidArgument, 3, "INVALID_ARGUMENT"), (.deadlineExceeded, 4, "DEADLINE_EXCEEDED"),
            (.notFound, 5, "NOT_FOUND"), (.alreadyExists, 6, "ALREADY_EXISTS"),
            (.permissionDenied, 7, "PERMISSION_DENIED"), (.resourceExhausted, 8, "RESOURCE_EXHAUSTED"),
            (.failedPrecondition, 9, "FAILED_PRECONDITION"), (.aborted, 10, "ABORTED"),
            (.outOfRange, 11, "OUT_OF_RANGE"), (.unimplemented, 12, "UNIMPLEMENTED"),
            (.internalError, 13, "INTERNAL"), (.unavailable, 14, "UNAVAILABLE"), (.dataLoss, 15, "DATA_LOSS"),
            (.unauthenticated, 16, "UNAUTHENTICATED"),
        ]
        XCTAssertEqual(table.count, 17)
        XCTAssertEqual(GRPCStatus.Code.allCases, table.map(\.0))
        for (code, number, name) in table {
            XCTAssertEqual(code.rawValue, number, name)
            XCTAssertEqual(code.description, name)
            XCTAssertEqual(code.wireValue, String(number))
            XCTAssertEqual(GRPCStatus.Code(rawValue: number), code)
        }
    }

    func testNumbersOutsideTheSeventeenCodesAreNotCodes() {
        for number in [-1, 17, 100, Int.max, Int.min] {
            XCTAssertNil(GRPCStatus.Code(rawValue: number), "\(number)")
        }
    }

    func testGRPCStatusHeaderValuesParseStrictly() {
        let table: [(String, GRPCStatus.Code?)] = [
            ("0", .ok), ("8", .resourceExhausted), ("16", .unauthenticated),
            ("17", .unknown), ("999", .unknown),  // well-formed but unknown: UNKNOWN
            ("", nil), ("08", nil), ("-1", nil), ("+1", nil), (" 1", nil), ("1 ", nil), ("1a", nil),
            ("0x1", nil), ("1234567890", nil),
        ]
        for (value, expected) in table {
            XCTAssertEqual(GRPCStatus.Code(wireValue: value), expected, "'\(value)'")
        }
    }

    func testStatusDescriptionNamesCodeAndMessage() {
        XCTAssertEqual(GRPCStatus.ok.description, "OK")
        XCTAssertEqual(GRPCStatus(code: .notFound, message: "model 'x' not found").description, "NOT_FOUND: model 'x' not found")
        XCTAssertEqual(GRPCStatus.ok, GRPCStatus(code: .ok, message: ""))
    }

    func testNon200HTTPStatusesMapAsTheGRPCMappingDocSays() {
        let table: [(Int, GRPCStatus.Code)] = [
            (400, .internalError), (401, .unauthenticated), (403, .permissionDenied), (404, .unimplemented),
            (429, .unavailable), (502, .unavailable), (503, .unavailable), (504, .unavailable),
            (415, .unknown), (500, .unknown), (302, .unknown),
        ]
        for (http, code) in table {
            let status = GRPCStatus(httpStatus: http)
            XCTAssertEqual(status.code, code, "HTTP \(http)")
            XCTAssertTrue(status.message.contains(String(http)))
        }
    }

    func testStreamResetCodesMapAsTheProtocolTableSays() {
        let table: [(UInt32, GRPCStatus.Code)] = [
            (0x0, .internalError), (0x1, .internalError), (0x2, .internalError), (0x3, .internalError),
            (0x4, .internalError), (0x6, .internalError), (0x7, .unavailable), (0x8, .cancelled),
            (0x9, .internalError), (0xA, .internalError), (0xB, .resourceExhausted), (0xC, .permissionDenied),
            (0xFFFF, .internalError),
        ]
        for (code, expected) in table {
            XCTAssertEqual(GRPCStatus(http2ResetCode: code).code, expected, "RST_STREAM \(code)")
        }
    }

    func testStatusIsAnError() {
        func fail() throws { throw GRPCStatus(code: .unavailable, message: "no worker") }
        XCTAssertThrowsError(try fail()) { error in
            XCTAssertEqual(error as? GRPCStatus, GRPCStatus(code: .unavailable, message: "no worker"))
        }
    }
}

final class GRPCRPCErrorTests: XCTestCase {
    func testRPCErrorCarriesStatusAndTrailers() {
        let error = RPCError(code: .permissionDenied, message: "key may not use model 'x'", trailers: GRPCMetadata(["x-reason": "acl"]))
        XCTAssertEqual(error.code, .permissionDenied)
        XCTAssertEqual(error.message, "key may not use model 'x'")
        XCTAssertEqual(error.trailers.firstString(named: "x-reason"), "acl")
        XCTAssertEqual(error.description, "PERMISSION_DENIED: key may not use model 'x' (trailers: x-reason)")
        XCTAssertEqual(RPCError(status: GRPCStatus(code: .aborted)).description, "ABORTED")
    }

    func testResourceExhaustedTellsWhenToRetryRoundedUp() {
        let table: [(Duration, String, String)] = [
            (.zero, "0", "0"),
            (.seconds(-3), "0", "0"),
            (.milliseconds(250), "1", "250"),
            (.milliseconds(1500), "2", "1500"),
            (.seconds(30), "30", "30000"),
            (.milliseconds(1) + .nanoseconds(1), "1", "2"),
            (.seconds(Int64.max), "1000000000", "1000000000000"),
        ]
        for (wait, seconds, milliseconds) in table {
            let error = RPCError.resourceExhausted("queue for model 'simple' is full", retryAfter: wait)
            XCTAssertEqual(error.code, .resourceExhausted)
            XCTAssertEqual(error.message, "queue for model 'simple' is full")
            XCTAssertEqual(error.trailers.firstString(named: "retry-after"), seconds, "\(wait)")
            XCTAssertEqual(error.trailers.firstString(named: "retry-after-ms"), milliseconds, "\(wait)")
        }
    }
}
