import XCTest

@testable import H2Transport

final class GRPCTimeoutTests: XCTestCase {
    func testValidValuesParseIntoDurations() throws {
        let table: [(String, Duration)] = [
            ("1H", .seconds(3600)), ("1M", .seconds(60)), ("1S", .seconds(1)), ("1m", .milliseconds(1)),
            ("1u", .microseconds(1)), ("1n", .nanoseconds(1)), ("0n", .zero), ("0S", .zero),
            ("250m", .milliseconds(250)), ("00000001S", .seconds(1)), ("12345678u", .microseconds(12_345_678)),
            ("99999999H", .seconds(99_999_999 * 3600)),
        ]
        for (value, duration) in table {
            let timeout = try GRPCTimeout(parsing: value)
            XCTAssertEqual(timeout.duration, duration, value)
            XCTAssertEqual(timeout.wireValue, value.trimmingLeadingZerosOfAmount(), value)
        }
    }

    func testMalformedValuesSayWhichRuleTheyBreak() {
        let table: [(String, GRPCTimeout.ParseError.Reason)] = [
            ("", .empty),
            ("S", .missingAmount),
            ("123456789S", .tooManyDigits(9)),
            ("0000000001n", .tooManyDigits(10)),
            ("1", .unknownUnit), ("1s", .unknownUnit), ("1x", .unknownUnit), ("1 ", .unknownUnit), ("1Ş", .unknownUnit),
            ("-1S", .notADigit), ("+1S", .notADigit), (" 1S", .notADigit), ("1 S", .notADigit), ("1.5S", .notADigit),
            ("0x1S", .notADigit), ("١S", .notADigit),
        ]
        for (value, reason) in table {
            XCTAssertThrowsError(try GRPCTimeout(parsing: value), "'\(value)'") { error in
                XCTAssertEqual((error as? GRPCTimeout.ParseError)?.reason, reason, "'\(value)'")
            }
        }
    }

    func testParseErrorDescriptionsArePrecise() {
        let table: [(String, String)] = [
            ("", "grpc-timeout is empty"),
            ("123456789S", "grpc-timeout '123456789S' has 9 digits; at most 8 are allowed"),
            ("10s", "grpc-timeout '10s' does not end in a unit (H, M, S, m, u or n)"),
            ("S", "grpc-timeout 'S' has no digits before its unit"),
            ("1e3S", "grpc-timeout '1e3S' has a character other than a digit before its unit"),
        ]
        for (value, text) in table {
            XCTAssertThrowsError(try GRPCTimeout(parsing: value)) { error in
                XCTAssertEqual("\(error)", text)
            }
        }
    }

    func testDurationsFormatShortestExactOrFinestRoundedUp() {
        let table: [(Duration, String)] = [
            (.zero, "0n"), (.seconds(-5), "0n"),
            (.seconds(1), "1S"), (.seconds(90), "90S"), (.seconds(120), "2M"), (.seconds(5400), "90M"),
            (.seconds(3600), "1H"), (.seconds(7200), "2H"),
            (.milliseconds(100), "100m"), (.milliseconds(1500), "1500m"), (.microseconds(1), "1u"),
            (.microseconds(1500), "1500u"), (.nanoseconds(1), "1n"), (.nanoseconds(99_999_999), "99999999n"),
            (.nanoseconds(100_000_000), "100m"),
            // Not exact within 8 digits: the finest unit that fits, rounded up.
            (.nanoseconds(100_000_001), "100001u"),
            (.seconds(1) + .nanoseconds(1), "1000001u"),
            (.seconds(99_999) + .nanoseconds(1), "99999001m"),
            (.seconds(99_999_999), "99999999S"),
            (.seconds(100_000_000), "1666667M"),
            (.seconds(100_000_000) + .nanoseconds(1), "1666667M"),
            (.seconds(99_999_999 * 60 + 1), "1666667H"),
            // Beyond the largest value: clamped.
            (.seconds(99_999_999 * 3600), "99999999H"),
            (.seconds(Int64.max), "99999999H"),
            // Below a nanosecond: rounded up to one.
            (Duration(secondsComponent: 0, attosecondsComponent: 1), "1n"),
            (Duration(secondsComponent: 1, attosecondsComponent: 999_999_999_999_999_999), "2S"),
        ]
        for (duration, wire) in table {
            XCTAssertEqual(GRPCTimeout(rounding: duration).wireValue, wire, "\(duration)")
        }
    }

    func testFormattingNeverShortensTheTimeAndStaysWithinEightDigits() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<5_000 {
            let duration = Duration(
                secondsComponent: Int64.random(in: 0...300_000_000_000, using: &generator) >> Int64.random(in: 0...38, using: &generator),
                attosecondsComponent: Int64.random(in: 0..<1_000_000_000_000_000_000, using: &generator)
            )
            let timeout = GRPCTimeout(rounding: duration)
            XCTAssertLessThanOrEqual(timeout.amount, GRPCTimeout.maxAmount)
            let parsed = try GRPCTimeout(parsing: timeout.wireValue)
            XCTAssertEqual(parsed, timeout)
            XCTAssertGreaterThanOrEqual(parsed.duration, duration, "\(duration) → \(timeout)")
        }
    }

    func testAmountsOutsideEightDigitsAreNotTimeouts() {
        XCTAssertNil(GRPCTimeout(amount: 100_000_000, unit: .seconds))
        XCTAssertNil(GRPCTimeout(amount: -1, unit: .seconds))
        XCTAssertEqual(GRPCTimeout(amount: 5, unit: .minutes)?.description, "5M")
    }
}

extension String {
    /// "00000001S" → "1S": the wire form a parsed value is written back as.
    fileprivate func trimmingLeadingZerosOfAmount() -> String {
        let digits = dropLast().drop { $0 == "0" }
        return (digits.isEmpty ? "0" : String(digits)) + String(last!)
    }
}
