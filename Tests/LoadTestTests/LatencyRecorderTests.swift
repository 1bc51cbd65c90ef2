import Histogram
import XCTest

@testable import LoadTest

final class LatencyRecorderTests: XCTestCase {
    func testSummaryOfKnownLatencies() {
        var recorder = LatencyRecorder()
        // 1 ms … 1000 ms, one call each.
        for ms in 1...1000 { recorder.record(nanoseconds: UInt64(ms) * 1_000_000, statusCode: 0) }
        let summary = LatencySummary(recorder.total)
        XCTAssertEqual(summary.count, 1000)
        // HdrHistogram with 3 significant digits: within 0.1 %.
        XCTAssertEqual(summary.p50, 500, accuracy: 0.5)
        XCTAssertEqual(summary.p90, 900, accuracy: 1)
        XCTAssertEqual(summary.p99, 990, accuracy: 1)
        XCTAssertEqual(summary.p999, 999, accuracy: 1)
        XCTAssertEqual(summary.max, 1000, accuracy: 1)
        XCTAssertEqual(summary.mean, 500.5, accuracy: 0.5)
    }

    func testErrorsAreCountedByStatusAndKeptOutOfTheLatencies() {
        var recorder = LatencyRecorder()
        recorder.record(nanoseconds: 2_000_000, statusCode: 0)
        recorder.record(nanoseconds: 1_000, statusCode: 14)
        recorder.record(nanoseconds: 1_000, statusCode: 14)
        recorder.record(nanoseconds: 1_000, statusCode: 8)
        recorder.record(nanoseconds: 1_000, statusCode: 99)  // not a gRPC code: UNKNOWN
        XCTAssertEqual(recorder.callsByStatus[0], 1)
        XCTAssertEqual(recorder.callsByStatus[14], 2)
        XCTAssertEqual(recorder.callsByStatus[8], 1)
        XCTAssertEqual(recorder.callsByStatus[2], 1)
        XCTAssertEqual(recorder.total.totalCount, 1)
        XCTAssertEqual(LatencySummary(recorder.total).p50, 2, accuracy: 0.01)
    }

    func testMergingLoopsEqualsRecordingEverythingInOne() {
        var a = LatencyRecorder()
        var b = LatencyRecorder()
        var all = LatencyRecorder()
        var random = SplitMix64(seed: 3)
        for index in 0..<10_000 {
            let nanos = random.next() % 50_000_000 + 1_000
            let code = index % 97 == 0 ? 4 : 0
            if index % 3 == 0 { a.record(nanoseconds: nanos, statusCode: code) } else { b.record(nanoseconds: nanos, statusCode: code) }
            all.record(nanoseconds: nanos, statusCode: code)
        }
        var merged = LatencyRecorder()
        merged.merge(a)
        merged.merge(b)
        XCTAssertEqual(merged.callsByStatus, all.callsByStatus)
        XCTAssertEqual(LatencySummary(merged.total), LatencySummary(all.total))
        XCTAssertEqual(merged.total.totalCount, all.total.totalCount)
    }

    func testTakingAnIntervalStartsTheNextFromZeroAndKeepsTheTotal() {
        var recorder = LatencyRecorder()
        recorder.record(nanoseconds: 5_000_000, statusCode: 0)
        recorder.record(nanoseconds: 5_000_000, statusCode: 13)
        let first = recorder.takeInterval()
        XCTAssertEqual(first.calls, 2)
        XCTAssertEqual(first.errors, 1)
        XCTAssertEqual(first.latencies.totalCount, 1)
        recorder.record(nanoseconds: 7_000_000, statusCode: 0)
        let second = recorder.takeInterval()
        XCTAssertEqual(second.calls, 1)
        XCTAssertEqual(second.errors, 0)
        XCTAssertEqual(LatencySummary(second.latencies).max, 7, accuracy: 0.01)
        XCTAssertEqual(recorder.total.totalCount, 2)
        recorder.reset()
        XCTAssertEqual(recorder.total.totalCount, 0)
        XCTAssertEqual(recorder.callsByStatus.reduce(0, +), 0)
    }

    func testLatenciesBeyondAnHourAreClampedNotLost() {
        var recorder = LatencyRecorder()
        recorder.record(nanoseconds: 2 * 3_600_000_000_000, statusCode: 0)
        XCTAssertEqual(recorder.total.totalCount, 1)
    }

    func testPercentileDistributionIsMonotonicAndReachesTheTail() {
        var recorder = LatencyRecorder()
        for ms in 1...10_000 { recorder.record(nanoseconds: UInt64(ms) * 100_000, statusCode: 0) }
        let points = StepResult.distribution(of: recorder.total)
        XCTAssertGreaterThan(points.count, 20)
        XCTAssertEqual(points.first?.percentile ?? -1, 0, accuracy: 1)
        XCTAssertGreaterThanOrEqual(points.last!.percentile, 99.9)
        for (a, b) in zip(points, points.dropFirst()) {
            XCTAssertLessThan(a.percentile, b.percentile)
            XCTAssertLessThanOrEqual(a.latency, b.latency)
        }
    }
}
