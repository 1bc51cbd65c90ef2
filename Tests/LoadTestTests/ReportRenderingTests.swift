import Foundation
import XCTest

@testable import LoadTest

final class ReportRenderingTests: XCTestCase {
    /// A fixed result: two levels of a capacity search, the second with errors and a broken objective.
    static let result: LoadTestResult = {
        func latency(_ base: Double) -> LatencySummary {
            LatencySummary(count: 100, p50: base, p90: base * 2, p99: base * 4, p999: base * 6, max: base * 10, mean: base * 1.2)
        }
        let first = StepResult(
            concurrency: 1, requestRate: nil, duration: 2, calls: 2000, succeeded: 2000, errors: [:], throughput: 1000,
            latency: latency(0.5),
            timeline: [
                TimelinePoint(time: 1, throughput: 990, errors: 0, latency: latency(0.5)),
                TimelinePoint(time: 2, throughput: 1010, errors: 0, latency: latency(0.6)),
            ],
            distribution: [PercentilePoint(percentile: 0, latency: 0.1), PercentilePoint(percentile: 50, latency: 0.5), PercentilePoint(percentile: 99, latency: 2), PercentilePoint(percentile: 99.9, latency: 3)])
        var second = first
        second.concurrency = 4
        second.calls = 3000
        second.succeeded = 2990
        second.errors = ["UNAVAILABLE": 10]
        second.throughput = 1500
        second.latency = latency(2)
        let description = RunDescription(
            target: "localhost:8001", method: "/inference.GRPCInferenceService/ModelInfer", model: "simple", transport: "h2c",
            loop: "closed", connections: 2, threads: 2, streaming: false, startedAt: "2026-12-03T18:00:00Z")
        return LoadTestResult(
            description: description, steps: [first, second], warmupCalls: 42, stoppedEarly: nil,
            violations: Thresholds(latency: [LatencyObjective(percentile: 99, limitMilliseconds: 5)]).violations(in: [first, second]))
    }()

    func testJSONHasTheDocumentedFieldsAndRoundTrips() throws {
        let data = try ReportRendering.json(Self.result)
        let decoded = try JSONDecoder().decode(LoadTestResult.self, from: data)
        XCTAssertEqual(decoded, Self.result)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        let steps = try XCTUnwrap(object["steps"] as? [[String: Any]])
        XCTAssertEqual(steps.count, 2)
        XCTAssertEqual(steps[1]["calls"] as? Int, 3000)
        XCTAssertEqual((steps[1]["errors"] as? [String: Int])?["UNAVAILABLE"], 10)
        let latency = try XCTUnwrap(steps[0]["latency"] as? [String: Any])
        XCTAssertEqual(Set(latency.keys), ["count", "p50", "p90", "p99", "p999", "max", "mean"])
        XCTAssertEqual(object["warmupCalls"] as? Int, 42)
        XCTAssertEqual((object["violations"] as? [[String: Any]])?.first?["objective"] as? String, "p99=5ms")
    }

    func testTableShowsEveryLevelErrorsAndFailures() {
        let table = ReportRendering.table(Self.result)
        XCTAssertTrue(table.contains("concurrency 1"))
        XCTAssertTrue(table.contains("concurrency 4"))
        XCTAssertTrue(table.contains("1500.0"))
        XCTAssertTrue(table.contains("errors at concurrency 4: UNAVAILABLE 10"))
        XCTAssertTrue(table.contains("FAILED concurrency 4: p99=5ms broken, measured 8.0 ms"), table)
        XCTAssertTrue(table.contains("warm-up: 42 calls"))
    }

    func testCSVHasPerfAnalyzerColumnsInMicroseconds() {
        let lines = ReportRendering.csv(Self.result).split(separator: "\n")
        XCTAssertEqual(lines.count, 3)
        XCTAssertTrue(lines[0].hasPrefix("Concurrency,Request Rate,Inferences/Second"))
        XCTAssertEqual(lines[1], "1,,1000.00,,500,1000,,2000,600,0")
    }

    func testHTMLIsOneSelfContainedFileWithDrawnPlots() throws {
        let html = HTMLReport.render(Self.result)
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"))
        // Nothing fetched: no scripts, no external references.
        XCTAssertFalse(html.contains("<script"))
        XCTAssertFalse(html.contains("src="))
        XCTAssertFalse(html.contains("href="))
        XCTAssertFalse(html.replacingOccurrences(of: "http://www.w3.org/2000/svg", with: "").contains("http"))
        // Per level: latency over time, percentile distribution, throughput; plus the capacity plots.
        for id in ["latency-over-time-0", "percentiles-0", "throughput-0", "latency-over-time-1", "capacity-latency", "capacity-throughput"] {
            XCTAssertTrue(html.contains("<svg id=\"\(id)\""), id)
        }
        let paths = html.components(separatedBy: "<path class=\"series\"").count - 1
        XCTAssertEqual(paths, 2 * (4 + 1 + 1) + 3)
        XCTAssertTrue(html.contains("d=\"M"))
        XCTAssertTrue(html.contains("<circle"))
        XCTAssertTrue(html.contains("FAILED concurrency 4"))
    }

    func testHTMLEscapesText() {
        var result = Self.result
        result.description.target = "<host>&"
        let html = HTMLReport.render(result)
        XCTAssertTrue(html.contains("&lt;host&gt;&amp;"))
        XCTAssertFalse(html.contains("<host>"))
    }

    func testProgressLine() {
        let point = TimelinePoint(time: 3, throughput: 12345.4, errors: 2, latency: LatencySummary(count: 1, p50: 0.42, p90: 1, p99: 1.3, p999: 2, max: 2.5, mean: 0.5))
        XCTAssertEqual(
            ReportRendering.progressLine(ProgressReport(step: "concurrency 8", elapsed: 3, point: point, calls: 37000)),
            "[  3s] concurrency 8  12345 calls/s  p50 0.420  p99 1.300  max 2.500 ms  errors 2  calls 37000")
    }
}
