@testable import Gateway
import Foundation
@testable import H2Transport
import Logging
import NIOCore
import XCTest

final class ObservabilityTests: XCTestCase {
    // MARK: --log-level

    func testLogLevelsParseADefaultAndLevelsPerSubsystem() throws {
        let cases: [(String, Logger.Level, [String: Logger.Level], Bool)] = [
            ("info", .info, [:], true),
            ("debug", .debug, [:], true),
            ("warning,transport=debug", .warning, ["transport": .debug, "pool": .warning], true),
            ("info,pool=error,worker=trace", .info, ["pool": .error, "worker": .trace, "transport": .info], true),
            ("info,access=off", .info, [:], false),
            ("info,access=warning", .info, [:], false),
            ("error,access=info", .error, [:], true),
        ]
        for (text, defaultLevel, levels, access) in cases {
            let parsed = try LogLevels(parsing: text)
            XCTAssertEqual(parsed.defaultLevel, defaultLevel, text)
            for (subsystem, level) in levels { XCTAssertEqual(parsed.level(subsystem), level, "\(text): \(subsystem)") }
            XCTAssertEqual(parsed.accessLogEnabled, access, text)
        }
        XCTAssertEqual(try LogLevels(parsing: "warning,worker=trace").lowestLevel, .trace)
    }

    func testBadLogLevelsAreRefusedWithAMessageThatNamesTheMistake() {
        let cases: [(String, String)] = [
            ("loud", "unknown log level 'loud'"),
            ("info,pool=loud", "unknown log level 'loud' for pool"),
            ("info,network=debug", "unknown log subsystem 'network'; the subsystems are transport, pool, worker, admin, access"),
            ("info,pool=off", "only the access log can be 'off'"),
        ]
        for (text, message) in cases {
            XCTAssertThrowsError(try LogLevels(parsing: text), text) { error in
                XCTAssertTrue("\(error)".contains(message), "\(text): \(error)")
            }
        }
    }

    func testASubsystemLoggerTakesItsLevelAndNamesItsSubsystem() throws {
        let levels = try LogLevels(parsing: "info,transport=debug")
        var base = Logger(label: "test")
        base.logLevel = .info
        let transport = levels.logger(base, for: "transport")
        XCTAssertEqual(transport.logLevel, .debug)
        XCTAssertEqual(transport[metadataKey: "subsystem"], "transport")
        XCTAssertEqual(levels.logger(base, for: "pool").logLevel, .info)
    }

    func testTextLinesHaveTimeLevelLabelSortedMetadataSourceAndMessage() {
        let noon = timespec(tv_sec: 1_796_299_200, tv_nsec: 7_000_000)
        let line = TextLogFormat.line(
            level: .warning, message: "worker exited", label: "switchyard", source: "Gateway", metadata: ["worker": "simple-0", "pid": "12"], time: noon)
        XCTAssertEqual(line, "2026-12-03T12:00:00.007Z warning switchyard : pid=12 worker=simple-0 [Gateway] worker exited")
    }

    // MARK: Request ids

    func testGeneratedRequestIDsAreFifteenUnambiguousCharactersAndDoNotRepeat() {
        var generator = RequestIDGenerator()
        var seen: Set<String> = []
        let alphabet = Set("23456789abcdefghjkmnpqrstvwxyz")
        for _ in 0..<100_000 {
            let id = generator.next()
            XCTAssertEqual(id.count, 15)
            XCTAssertTrue(id.allSatisfy(alphabet.contains), id)
            XCTAssertTrue(seen.insert(id).inserted, "repeated \(id)")
        }
    }

    func testTheClientsRequestIDIsUsedOnlyWhenItIsVisibleASCIIOfAtMost128Characters() throws {
        let cases: [(String?, String)] = [
            ("abc-123", "abc-123"),
            (String(repeating: "x", count: 128), String(repeating: "x", count: 128)),
            (String(repeating: "x", count: 129), ""),
            ("with space", ""),
            ("tab\there", ""),
            ("ünïcode", ""),
            (nil, ""),
        ]
        for (given, expected) in cases {
            var metadata = GRPCMetadata()
            metadata.add("other", "1")
            if let given { metadata.add("x-request-id", given) }
            XCTAssertEqual(GRPCServerCall.clientRequestID(metadata), expected, given ?? "nil")
        }
    }

    // MARK: Histograms and text format

    func testABucketIsTheFirstBoundAtOrAboveTheValue() {
        let buckets = LatencyBuckets(seconds: [0.001, 0.01, 0.01, 0.1, -1])
        XCTAssertEqual(buckets.upperBoundsNanos, [1_000_000, 10_000_000, 100_000_000])
        let cases: [(UInt64, Int)] = [(0, 0), (1_000_000, 0), (1_000_001, 1), (10_000_000, 1), (99_999_999, 2), (100_000_000, 2), (100_000_001, 3)]
        for (value, index) in cases { XCTAssertEqual(buckets.index(of: value), index, "\(value)") }
    }

    func testHistogramsRenderCumulativeBucketsInSeconds() {
        let buckets = LatencyBuckets(seconds: [0.001, 0.01])
        var histogram = LatencyHistogram(buckets: buckets)
        for nanos: UInt64 in [500_000, 2_000_000, 3_000_000, 50_000_000] { histogram.record(nanos, buckets: buckets) }
        var text = PrometheusText()
        text.histogram("h_seconds", ["model": "a\"b"], histogram, buckets: buckets)
        XCTAssertEqual(
            text.text,
            """
            h_seconds_bucket{model="a\\"b",le="0.001"} 1
            h_seconds_bucket{model="a\\"b",le="0.01"} 3
            h_seconds_bucket{model="a\\"b",le="+Inf"} 4
            h_seconds_sum{model="a\\"b"} 0.0555
            h_seconds_count{model="a\\"b"} 4

            """)
    }

    func testStatisticsSplitFailuresByReasonAndSumAcrossShards() {
        var a = VariantStatistics()
        var b = VariantStatistics()
        let now = NIODeadline.now()
        a.recordSuccess(nanoseconds: 2_000_000, queueNanoseconds: 500_000, batchSize: 4, now: now)
        a.recordFailure(.rejected, nanoseconds: 10, now: now)
        b.recordFailure(.canceled, nanoseconds: 20, now: now)
        b.recordFailure(.canceled, nanoseconds: 30, now: now)
        b.recordFailure(InferenceFailureReason(afterDispatch: GRPCStatus(code: .internalError, message: "x")), nanoseconds: 1, now: now)
        let sum = a + b
        XCTAssertEqual(sum.successCount, 1)
        XCTAssertEqual(sum.inferenceCount, 4)
        XCTAssertEqual(sum.failCount, 4)
        XCTAssertEqual(sum.failures(.rejected), 1)
        XCTAssertEqual(sum.failures(.canceled), 2)
        XCTAssertEqual(sum.failures(.backend), 1)
        XCTAssertEqual(sum.requestDuration.count, 1)
        XCTAssertEqual(sum.queueDuration.sumNanos, 500_000)
        XCTAssertEqual(sum.computeDuration.sumNanos, 1_500_000)
    }

    // MARK: Transport reasons

    func testTLSFailuresAreClassifiedByKindAndOpenSSLsReason() {
        let cases: [(TLSError, TLSHandshakeFailureReason)] = [
            (TLSError(.handshakeTimedOut, "no handshake within 100 ms"), .timeout),
            (TLSError(.closedDuringHandshake, "closed"), .peerClosed),
            (TLSError(.noApplicationProtocol, "no ALPN"), .noSharedProtocol),
            (TLSError(.handshakeFailed, "error:0A000126:SSL routines::unexpected eof while reading; peer did not return a certificate"), .clientCertificate),
            (TLSError(.handshakeFailed, "error:0A00010B:SSL routines::wrong version number"), .notTLS),
            (TLSError(.handshakeFailed, "error:0A00009C:SSL routines::http request"), .notTLS),
            (TLSError(.handshakeFailed, "error:0A0000C1:SSL routines::no shared cipher"), .noSharedProtocol),
            (TLSError(.handshakeFailed, "something else"), .other),
        ]
        for (error, reason) in cases { XCTAssertEqual(TLSHandshakeFailureReason(error), reason, "\(error)") }
    }

    // MARK: Access log

    func testAccessLogStringsAreEscapedAndIntegersWritten() throws {
        var out: [UInt8] = []
        out.append(UInt8(ascii: "["))
        JSONBytes.appendString("a\"b\\c\nd\u{1}é", to: &out)
        out.append(UInt8(ascii: ","))
        JSONBytes.appendInteger(0, to: &out)
        out.append(UInt8(ascii: ","))
        JSONBytes.appendInteger(UInt64.max, to: &out)
        out.append(UInt8(ascii: ","))
        JSONBytes.appendOptionalString("", to: &out)
        out.append(UInt8(ascii: "]"))
        let parsed = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(out)) as? [Any])
        XCTAssertEqual(parsed[0] as? String, "a\"b\\c\nd\u{1}é")
        XCTAssertEqual((parsed[1] as? NSNumber)?.intValue, 0)
        XCTAssertEqual((parsed[2] as? NSNumber)?.uint64Value, UInt64.max)
        XCTAssertTrue(parsed[3] is NSNull)
    }

    func testTheAccessLogClockWritesRFC3339WithMilliseconds() {
        var clock = AccessLogClock()
        var out: [UInt8] = []
        clock.appendNow(to: &out)
        let text = String(decoding: out, as: UTF8.self)
        XCTAssertNotNil(text.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z/), text)
    }
}

