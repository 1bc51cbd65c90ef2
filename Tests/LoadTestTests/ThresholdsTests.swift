import XCTest

@testable import LoadTest

final class ThresholdsTests: XCTestCase {
    private func step(concurrency: Int, calls: UInt64, errors: UInt64, p99: Double, p50: Double = 1) -> StepResult {
        StepResult(
            concurrency: concurrency, requestRate: nil, duration: 1, calls: calls, succeeded: calls - errors,
            errors: errors == 0 ? [:] : ["UNAVAILABLE": errors], throughput: Double(calls),
            latency: LatencySummary(count: calls - errors, p50: p50, p90: p50, p99: p99, p999: p99, max: p99, mean: p50),
            timeline: [], distribution: [])
    }

    func testLatencyObjectivesParseAsTheFlagSpellsThem() {
        XCTAssertEqual(LatencyObjective(parsing: "p99=20ms"), LatencyObjective(percentile: 99, limitMilliseconds: 20))
        XCTAssertEqual(LatencyObjective(parsing: "p99.9=1.5s"), LatencyObjective(percentile: 99.9, limitMilliseconds: 1500))
        XCTAssertEqual(LatencyObjective(parsing: "p50=800us"), LatencyObjective(percentile: 50, limitMilliseconds: 0.8))
        XCTAssertEqual(LatencyObjective(parsing: "max=100"), LatencyObjective(percentile: 100, limitMilliseconds: 100))
        XCTAssertEqual(LatencyObjective(parsing: "P90 = 5ms"), LatencyObjective(percentile: 90, limitMilliseconds: 5))
        for bad in ["p99", "p98=1ms", "p99=", "p99=-1ms", "p99=fast", "=3ms", "p99=0ms"] {
            XCTAssertNil(LatencyObjective(parsing: bad), bad)
        }
        XCTAssertEqual(LatencyObjective(parsing: "p99.9=2ms")?.description, "p99.9=2ms")
    }

    func testNoThresholdsNoViolations() {
        XCTAssertEqual(Thresholds().violations(in: [step(concurrency: 1, calls: 10, errors: 10, p99: 1e6)]), [])
        XCTAssertEqual(Thresholds.exitStatus(for: []), 0)
    }

    func testErrorRateIsJudgedPerStepAndExitsWith2() {
        let thresholds = Thresholds(maxErrorRate: 0.01)
        let steps = [step(concurrency: 1, calls: 1000, errors: 10, p99: 1), step(concurrency: 2, calls: 1000, errors: 11, p99: 1)]
        let violations = thresholds.violations(in: steps)
        XCTAssertEqual(violations.count, 1)
        XCTAssertEqual(violations[0].kind, .errorRate)
        XCTAssertEqual(violations[0].step, "concurrency 2")
        XCTAssertEqual(violations[0].measured, 0.011, accuracy: 1e-9)
        XCTAssertEqual(Thresholds.exitStatus(for: violations), ExitStatus.errorRate)
    }

    func testLatencyObjectiveBrokenExitsWith3AndErrorRateWins() {
        let latencyOnly = Thresholds(latency: [LatencyObjective(percentile: 99, limitMilliseconds: 20)])
        let steps = [step(concurrency: 4, calls: 100, errors: 0, p99: 20), step(concurrency: 8, calls: 100, errors: 1, p99: 20.5)]
        let violations = latencyOnly.violations(in: steps)
        XCTAssertEqual(violations.map(\.step), ["concurrency 8"])  // 20 ms is within a 20 ms limit
        XCTAssertEqual(violations[0].objective, "p99=20ms")
        XCTAssertEqual(Thresholds.exitStatus(for: violations), ExitStatus.latency)

        let both = Thresholds(maxErrorRate: 0, latency: latencyOnly.latency)
        let all = both.violations(in: steps)
        XCTAssertEqual(all.map(\.kind), [.errorRate, .latency])
        XCTAssertEqual(Thresholds.exitStatus(for: all), ExitStatus.errorRate)
    }

    func testRangesParseAsPerfAnalyzerSpellsThem() {
        XCTAssertEqual(LoadLevels.parse("1:16:4"), [1, 5, 9, 13])
        XCTAssertEqual(LoadLevels.parse("4"), [4])
        XCTAssertEqual(LoadLevels.parse("1:3"), [1, 2, 3])
        XCTAssertEqual(LoadLevels.parse("100:300:100"), [100, 200, 300])
        XCTAssertEqual(LoadLevels.parse("0.5:1.5:0.5"), [0.5, 1, 1.5])
        for bad in ["", "0", "4:2", "1:2:0", "a:b", "1:2:3:4", "1:1000000:1"] { XCTAssertNil(LoadLevels.parse(bad), bad) }
    }

    func testHeaderLinesBecomeMetadata() throws {
        let metadata = try MetadataLine.parse(["Authorization: Bearer abc:def", "x-api-key:k1"])
        XCTAssertEqual(metadata.firstString(named: "authorization"), "Bearer abc:def")
        XCTAssertEqual(metadata.firstString(named: "x-api-key"), "k1")
        XCTAssertThrowsError(try MetadataLine.parse(["no colon"]))
        XCTAssertThrowsError(try MetadataLine.parse(["grpc-timeout: 1S"]))
        XCTAssertThrowsError(try MetadataLine.parse([":path: /x"]))
    }
}
