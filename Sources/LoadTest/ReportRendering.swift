import Foundation

/// The end-of-run table for people, the JSON document for machines and the CSV file of
/// perf_analyzer's `-f`.
public enum ReportRendering {
    /// A fixed-width table: one row per level, then errors and broken thresholds.
    public static func table(_ result: LoadTestResult) -> String {
        let header = ["level", "calls", "calls/s", "errors", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"]
        var rows = [header]
        for step in result.steps {
            rows.append([
                step.label, String(step.calls), fixed(step.throughput, 1), String(step.calls - step.succeeded),
                fixed(step.latency.p50, 3), fixed(step.latency.p90, 3), fixed(step.latency.p99, 3),
                fixed(step.latency.p999, 3), fixed(step.latency.max, 3),
            ])
        }
        let widths = header.indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        var lines: [String] = []
        let d = result.description
        lines.append("\(d.method) on \(d.target) (\(d.transport))\(d.model.map { ", model \($0)" } ?? ""), \(d.loop) loop, \(d.connections) connection(s), \(d.threads) thread(s)\(d.streaming ? ", streaming" : "")")
        for (index, row) in rows.enumerated() {
            let cells = row.enumerated().map { column, cell in
                column == 0 ? cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[column] - cell.count) + cell
            }
            lines.append(cells.joined(separator: "  "))
            if index == 0 { lines.append(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")) }
        }
        for step in result.steps where !step.errors.isEmpty {
            let list = step.errors.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            lines.append("errors at \(step.label): \(list)")
        }
        if result.warmupCalls > 0 { lines.append("warm-up: \(result.warmupCalls) calls, not measured") }
        if let stopped = result.stoppedEarly { lines.append("capacity search stopped: \(stopped)") }
        for violation in result.violations { lines.append("FAILED \(violation)") }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The result as pretty-printed JSON with sorted keys (docs/loadtest.md describes it).
    public static func json(_ result: LoadTestResult) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(result)
    }

    /// One line per level, perf_analyzer's CSV columns that apply (latencies in microseconds).
    public static func csv(_ result: LoadTestResult) -> String {
        var lines = ["Concurrency,Request Rate,Inferences/Second,Client Send Recv,p50 latency,p90 latency,p95 latency,p99 latency,Avg latency,Errors"]
        for step in result.steps {
            let us = { (ms: Double) in String(Int((ms * 1000).rounded())) }
            lines.append([
                step.concurrency.map(String.init) ?? "", step.requestRate.map { StepResult.number($0) } ?? "",
                fixed(step.throughput, 2), "", us(step.latency.p50), us(step.latency.p90), "", us(step.latency.p99),
                us(step.latency.mean), String(step.calls - step.succeeded),
            ].joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// The live progress line: "[  3s] concurrency 8  12345 calls/s  p50 0.420  p99 1.300 ms  errors 0".
    public static func progressLine(_ report: ProgressReport) -> String {
        let seconds = String(Int(report.elapsed.rounded()))
        let padded = String(repeating: " ", count: max(0, 3 - seconds.count)) + seconds
        return "[\(padded)s] \(report.step)  \(fixed(report.point.throughput, 0)) calls/s  p50 \(fixed(report.point.latency.p50, 3))  p99 \(fixed(report.point.latency.p99, 3))  max \(fixed(report.point.latency.max, 3)) ms  errors \(report.point.errors)  calls \(report.calls)"
    }

    static func fixed(_ value: Double, _ digits: Int) -> String {
        String(format: "%.\(digits)f", value)
    }
}
