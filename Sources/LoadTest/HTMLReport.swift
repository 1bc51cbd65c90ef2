import Foundation

/// The HTML report: one self-contained file (inline CSS and SVG, no script, nothing fetched)
/// with the summary table and, per level, plots of the latency percentiles over time, the
/// percentile distribution and the throughput over time.
public enum HTMLReport {
    /// The report of `result`.
    public static func render(_ result: LoadTestResult) -> String {
        let d = result.description
        var html = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <title>switchyard loadtest: \(escape(d.target))</title>
            <style>
            body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}
            table{border-collapse:collapse;margin:8px 0 16px}
            th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}
            th:first-child,td:first-child{text-align:left}
            .plots{display:flex;flex-wrap:wrap;gap:16px}
            .fail{color:#b00020;font-weight:bold}
            svg{background:#fafafa;border:1px solid #ddd}
            </style></head><body>
            <h1>Load test of \(escape(d.target))</h1>
            <p>\(escape(d.method)) (\(escape(d.transport)))\(d.model.map { ", model " + escape($0) } ?? ""), \(escape(d.loop)) loop, \
            \(d.connections) connection(s), \(d.threads) thread(s)\(d.streaming ? ", streaming" : ""). Started \(escape(d.startedAt)).</p>

            """
        html += "<table id=\"summary\"><tr><th>level</th><th>calls</th><th>calls/s</th><th>errors</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th></tr>\n"
        for step in result.steps {
            let cells = [
                String(step.calls), ReportRendering.fixed(step.throughput, 1), String(step.calls - step.succeeded),
                ReportRendering.fixed(step.latency.p50, 3), ReportRendering.fixed(step.latency.p90, 3),
                ReportRendering.fixed(step.latency.p99, 3), ReportRendering.fixed(step.latency.p999, 3),
                ReportRendering.fixed(step.latency.max, 3),
            ]
            html += "<tr><td>\(escape(step.label))</td>" + cells.map { "<td>\($0)</td>" }.joined() + "</tr>\n"
        }
        html += "</table>\n"
        for step in result.steps where !step.errors.isEmpty {
            html += "<p>Errors at \(escape(step.label)): " + step.errors.sorted { $0.key < $1.key }.map { "\(escape($0.key)) \($0.value)" }.joined(separator: ", ") + "</p>\n"
        }
        if let stopped = result.stoppedEarly { html += "<p>Capacity search stopped: \(escape(stopped))</p>\n" }
        for violation in result.violations { html += "<p class=\"fail\">FAILED \(escape(violation.description))</p>\n" }

        if result.steps.count > 1 {
            html += "<h2>Capacity</h2><div class=\"plots\">\n"
            let x: (StepResult) -> Double = { Double($0.concurrency ?? 0) + ($0.requestRate ?? 0) }
            html += SVGPlot(
                title: "Latency by load level", xLabel: result.steps.first?.concurrency != nil ? "concurrency" : "request rate (/s)",
                yLabel: "ms",
                series: [
                    .init(name: "p50", color: "#1f77b4", points: result.steps.map { (x($0), $0.latency.p50) }),
                    .init(name: "p99", color: "#d62728", points: result.steps.map { (x($0), $0.latency.p99) }),
                ]
            ).render(id: "capacity-latency")
            html += SVGPlot(
                title: "Throughput by load level", xLabel: result.steps.first?.concurrency != nil ? "concurrency" : "request rate (/s)",
                yLabel: "calls/s",
                series: [.init(name: "calls/s", color: "#2ca02c", points: result.steps.map { (x($0), $0.throughput) })]
            ).render(id: "capacity-throughput")
            html += "</div>\n"
        }

        for (index, step) in result.steps.enumerated() {
            html += "<h2>\(escape(step.label))</h2><div class=\"plots\">\n"
            let t = step.timeline
            html += SVGPlot(
                title: "Latency percentiles over time", xLabel: "s", yLabel: "ms",
                series: [
                    .init(name: "p50", color: "#1f77b4", points: t.map { ($0.time, $0.latency.p50) }),
                    .init(name: "p90", color: "#ff7f0e", points: t.map { ($0.time, $0.latency.p90) }),
                    .init(name: "p99", color: "#d62728", points: t.map { ($0.time, $0.latency.p99) }),
                    .init(name: "max", color: "#7f7f7f", points: t.map { ($0.time, $0.latency.max) }),
                ]
            ).render(id: "latency-over-time-\(index)")
            html += SVGPlot(
                title: "Latency by percentile", xLabel: "percentile", yLabel: "ms",
                series: [.init(name: "latency", color: "#9467bd", points: step.distribution.map { (Self.nines($0.percentile), $0.latency) })],
                xTicks: [(0, "0"), (1, "90"), (2, "99"), (3, "99.9"), (4, "99.99"), (5, "99.999")]
            ).render(id: "percentiles-\(index)")
            html += SVGPlot(
                title: "Throughput over time", xLabel: "s", yLabel: "calls/s",
                series: [.init(name: "calls/s", color: "#2ca02c", points: t.map { ($0.time, $0.throughput) })]
            ).render(id: "throughput-\(index)")
            html += "</div>\n"
        }
        html += "</body></html>\n"
        return html
    }

    /// A percentile on a "number of nines" scale (90 → 1, 99 → 2, 99.9 → 3), so that the tail
    /// gets room, as HdrHistogram's plots draw it.
    static func nines(_ percentile: Double) -> Double {
        let remaining = max(1e-6, 1 - percentile / 100)
        return min(6, -log10(remaining))
    }

    static func escape(_ text: String) -> String {
        var out = ""
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            default: out.append(character)
            }
        }
        return out
    }
}

/// A line plot as inline SVG: axes with ticks, one polyline and its points per series, a legend.
struct SVGPlot {
    struct Series {
        var name: String
        var color: String
        var points: [(Double, Double)]
    }

    var title: String
    var xLabel: String
    var yLabel: String
    var series: [Series]
    /// Fixed x ticks (value, label); nil: five evenly spaced ones.
    var xTicks: [(Double, String)]? = nil

    let width = 460.0
    let height = 280.0
    let left = 60.0
    let right = 16.0
    let top = 28.0
    let bottom = 44.0

    func render(id: String) -> String {
        let all = series.flatMap(\.points).filter { $0.0.isFinite && $0.1.isFinite }
        let xMin = xTicks?.first?.0 ?? (all.map(\.0).min() ?? 0)
        var xMax = xTicks?.last?.0 ?? (all.map(\.0).max() ?? 1)
        if xMax <= xMin { xMax = xMin + 1 }
        var yMax = (all.map(\.1).max() ?? 1) * 1.1
        if yMax <= 0 { yMax = 1 }
        let plotWidth = width - left - right
        let plotHeight = height - top - bottom
        func px(_ x: Double) -> Double { left + (x - xMin) / (xMax - xMin) * plotWidth }
        func py(_ y: Double) -> Double { top + plotHeight - y / yMax * plotHeight }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }

        var svg = "<svg id=\"\(id)\" xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" role=\"img\" aria-label=\"\(HTMLReport.escape(title))\">\n"
        svg += "<text x=\"\(f(width / 2))\" y=\"18\" text-anchor=\"middle\" font-size=\"13\">\(HTMLReport.escape(title))</text>\n"
        svg += "<g class=\"axes\" stroke=\"#444\" fill=\"none\"><line x1=\"\(f(left))\" y1=\"\(f(top + plotHeight))\" x2=\"\(f(left + plotWidth))\" y2=\"\(f(top + plotHeight))\"/><line x1=\"\(f(left))\" y1=\"\(f(top))\" x2=\"\(f(left))\" y2=\"\(f(top + plotHeight))\"/></g>\n"
        svg += "<g class=\"ticks\" font-size=\"10\" fill=\"#444\">"
        for i in 0...4 {
            let y = yMax * Double(i) / 4
            svg += "<text x=\"\(f(left - 4))\" y=\"\(f(py(y) + 3))\" text-anchor=\"end\">\(Self.label(y))</text>"
            svg += "<line x1=\"\(f(left))\" y1=\"\(f(py(y)))\" x2=\"\(f(left + plotWidth))\" y2=\"\(f(py(y)))\" stroke=\"#e4e4e4\"/>"
        }
        let ticks = xTicks ?? (0...4).map { i in
            let x = xMin + (xMax - xMin) * Double(i) / 4
            return (x, Self.label(x))
        }
        for (x, text) in ticks {
            svg += "<text x=\"\(f(px(x)))\" y=\"\(f(top + plotHeight + 14))\" text-anchor=\"middle\">\(HTMLReport.escape(text))</text>"
        }
        svg += "<text x=\"\(f(left + plotWidth / 2))\" y=\"\(f(height - 8))\" text-anchor=\"middle\">\(HTMLReport.escape(xLabel))</text>"
        svg += "<text x=\"12\" y=\"\(f(top + plotHeight / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 12 \(f(top + plotHeight / 2)))\">\(HTMLReport.escape(yLabel))</text>"
        svg += "</g>\n"
        for (index, s) in series.enumerated() {
            let points = s.points.filter { $0.0.isFinite && $0.1.isFinite }
            if !points.isEmpty {
                let d = points.enumerated().map { i, p in "\(i == 0 ? "M" : "L")\(f(px(p.0))),\(f(py(p.1)))" }.joined(separator: " ")
                svg += "<path class=\"series\" data-series=\"\(HTMLReport.escape(s.name))\" d=\"\(d)\" fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"1.5\"/>\n"
                svg += "<g class=\"points\" fill=\"\(s.color)\">"
                for p in points { svg += "<circle cx=\"\(f(px(p.0)))\" cy=\"\(f(py(p.1)))\" r=\"2\"/>" }
                svg += "</g>\n"
            }
            let lx = left + 8 + Double(index) * 80
            svg += "<g class=\"legend\" font-size=\"10\"><rect x=\"\(f(lx))\" y=\"\(f(top + 2))\" width=\"10\" height=\"3\" fill=\"\(s.color)\"/><text x=\"\(f(lx + 14))\" y=\"\(f(top + 7))\">\(HTMLReport.escape(s.name))</text></g>\n"
        }
        svg += "</svg>\n"
        return svg
    }

    static func label(_ value: Double) -> String {
        if value == 0 { return "0" }
        if abs(value) >= 100 { return String(Int(value.rounded())) }
        if abs(value) >= 1 { return String(format: "%.1f", value) }
        return String(format: "%.3g", value)
    }
}
