import Foundation

/// A latency objective a run must meet, as `--max-latency p99=20ms` spells it.
public struct LatencyObjective: Codable, Sendable, Equatable, CustomStringConvertible {
    /// The percentile: 50, 90, 99, 99.9 or 100 (`max`).
    public var percentile: Double
    /// The limit, in milliseconds.
    public var limitMilliseconds: Double

    /// An objective from its values.
    public init(percentile: Double, limitMilliseconds: Double) {
        self.percentile = percentile
        self.limitMilliseconds = limitMilliseconds
    }

    /// Parses `p50=5ms`, `p99=20ms`, `p99.9=1.5s`, `max=100ms` (units `us`, `ms`, `s`; none means
    /// ms); nil for anything else.
    public init?(parsing text: String) {
        let parts = text.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard parts.count == 2 else { return nil }
        let name = parts[0]
        let percentile: Double
        switch name {
        case "max", "p100": percentile = 100
        case "median": percentile = 50
        default:
            guard name.hasPrefix("p"), let value = Double(name.dropFirst()), [50, 90, 99, 99.9].contains(value) else { return nil }
            percentile = value
        }
        guard let limit = Self.milliseconds(parts[1]), limit > 0 else { return nil }
        self.init(percentile: percentile, limitMilliseconds: limit)
    }

    /// `5ms`, `1.5s`, `800us`, `20` (ms) in milliseconds; nil when it is not a duration.
    public static func milliseconds(_ text: String) -> Double? {
        let text = text.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(String, Double)] = [("us", 0.001), ("µs", 0.001), ("ms", 1), ("s", 1000)]
        for (suffix, scale) in units where text.hasSuffix(suffix) {
            guard let value = Double(text.dropLast(suffix.count)), value.isFinite, value >= 0 else { return nil }
            return value * scale
        }
        guard let value = Double(text), value.isFinite, value >= 0 else { return nil }
        return value
    }

    /// `p99=20ms`.
    public var description: String {
        let name = percentile == 100 ? "max" : "p\(StepResult.number(percentile))"
        return "\(name)=\(StepResult.number(limitMilliseconds))ms"
    }
}

/// A threshold a step broke.
public struct ThresholdViolation: Codable, Sendable, Equatable, CustomStringConvertible {
    /// What was broken.
    public enum Kind: String, Codable, Sendable {
        /// `--max-error-rate`.
        case errorRate = "error_rate"
        /// A `--max-latency` objective.
        case latency
    }

    /// What was broken.
    public var kind: Kind
    /// The step's load level ("concurrency 8").
    public var step: String
    /// What was measured: the error rate (0 to 1) or the latency in ms.
    public var measured: Double
    /// The limit it exceeded.
    public var limit: Double
    /// The objective for a latency violation (`p99=20ms`).
    public var objective: String?

    /// A violation from its values.
    public init(kind: Kind, step: String, measured: Double, limit: Double, objective: String? = nil) {
        self.kind = kind
        self.step = step
        self.measured = measured
        self.limit = limit
        self.objective = objective
    }

    /// For people: "concurrency 8: p99 is 31.2 ms, over 20 ms".
    public var description: String {
        switch kind {
        case .errorRate:
            return "\(step): error rate \(formatPercent(measured)) is over \(formatPercent(limit))"
        case .latency:
            return "\(step): \(objective ?? "latency") broken, measured \(format(measured)) ms"
        }
    }

    private func formatPercent(_ value: Double) -> String { "\(format(value * 100)) %" }
    private func format(_ value: Double) -> String { String(Double((value * 1000).rounded()) / 1000) }
}

/// The thresholds a CI job sets with `--max-error-rate` and `--max-latency`, and how a run is
/// judged against them. Every step is judged: a capacity search that breaks an objective on its
/// last step fails.
public struct Thresholds: Codable, Sendable, Equatable {
    /// Largest accepted fraction of calls ending with an error (0 to 1); nil: no limit.
    public var maxErrorRate: Double?
    /// Latency objectives; all must hold.
    public var latency: [LatencyObjective]

    /// Thresholds from their values. Default: none.
    public init(maxErrorRate: Double? = nil, latency: [LatencyObjective] = []) {
        self.maxErrorRate = maxErrorRate
        self.latency = latency
    }

    /// The thresholds that `steps` break, error rates first.
    public func violations(in steps: [StepResult]) -> [ThresholdViolation] {
        var found: [ThresholdViolation] = []
        for step in steps {
            if let maxErrorRate, step.errorRate > maxErrorRate {
                found.append(ThresholdViolation(kind: .errorRate, step: step.label, measured: step.errorRate, limit: maxErrorRate))
            }
        }
        for step in steps {
            for objective in latency {
                guard let measured = step.latency.value(atPercentile: objective.percentile) else { continue }
                if measured > objective.limitMilliseconds {
                    found.append(ThresholdViolation(
                        kind: .latency, step: step.label, measured: measured, limit: objective.limitMilliseconds,
                        objective: objective.description))
                }
            }
        }
        return found
    }

    /// The exit status for `violations`: 0 when there are none, `ExitStatus.errorRate` when an
    /// error rate is over its limit, else `ExitStatus.latency`.
    public static func exitStatus(for violations: [ThresholdViolation]) -> Int32 {
        if violations.isEmpty { return ExitStatus.ok }
        return violations.contains { $0.kind == .errorRate } ? ExitStatus.errorRate : ExitStatus.latency
    }
}

/// Exit statuses of `switchyard loadtest` (docs/loadtest.md).
public enum ExitStatus {
    /// The run completed and every threshold held.
    public static let ok: Int32 = 0
    /// The run could not be made: the target refused the connection, ModelMetadata failed, a
    /// file could not be read or written.
    public static let runFailed: Int32 = 1
    /// `--max-error-rate` was exceeded.
    public static let errorRate: Int32 = 2
    /// A `--max-latency` objective was broken.
    public static let latency: Int32 = 3
    /// The command line or the scenario file is wrong (swift-argument-parser's usage status).
    public static let usage: Int32 = 64
}
