import Histogram

/// Latency percentiles of a set of calls, in milliseconds.
public struct LatencySummary: Codable, Sendable, Equatable {
    /// Calls in the histogram (those that ended OK).
    public var count: UInt64
    /// Median.
    public var p50: Double
    /// 90th percentile.
    public var p90: Double
    /// 99th percentile.
    public var p99: Double
    /// 99.9th percentile.
    public var p999: Double
    /// Largest.
    public var max: Double
    /// Arithmetic mean.
    public var mean: Double

    /// A summary from its values.
    public init(count: UInt64, p50: Double, p90: Double, p99: Double, p999: Double, max: Double, mean: Double) {
        self.count = count
        self.p50 = p50
        self.p90 = p90
        self.p99 = p99
        self.p999 = p999
        self.max = max
        self.mean = mean
    }

    /// The summary of a histogram in microseconds (all zero when it is empty).
    public init(_ histogram: Histogram<UInt64>) {
        guard histogram.totalCount > 0 else {
            self.init(count: 0, p50: 0, p90: 0, p99: 0, p999: 0, max: 0, mean: 0)
            return
        }
        func ms(_ micros: UInt64) -> Double { Double(micros) / 1000 }
        self.init(
            count: histogram.totalCount,
            p50: ms(histogram.valueAtPercentile(50)),
            p90: ms(histogram.valueAtPercentile(90)),
            p99: ms(histogram.valueAtPercentile(99)),
            p999: ms(histogram.valueAtPercentile(99.9)),
            max: ms(histogram.max),
            mean: histogram.mean / 1000
        )
    }

    /// The value at `percentile` among the reported ones (50, 90, 99, 99.9, 100), or nil.
    public func value(atPercentile percentile: Double) -> Double? {
        switch percentile {
        case 50: return p50
        case 90: return p90
        case 99: return p99
        case 99.9: return p999
        case 100: return max
        default: return nil
        }
    }
}

/// One point of a step's timeline: what happened in about one second.
public struct TimelinePoint: Codable, Sendable, Equatable {
    /// Seconds since the step's measurement began, at the end of the interval.
    public var time: Double
    /// Calls ended per second in the interval.
    public var throughput: Double
    /// Calls ended with an error in the interval.
    public var errors: UInt64
    /// Latencies of the interval's OK calls.
    public var latency: LatencySummary

    /// A point from its values.
    public init(time: Double, throughput: Double, errors: UInt64, latency: LatencySummary) {
        self.time = time
        self.throughput = throughput
        self.errors = errors
        self.latency = latency
    }
}

/// One point of a percentile distribution: the latency below which `percentile` % of calls were.
public struct PercentilePoint: Codable, Sendable, Equatable {
    /// 0 to 100.
    public var percentile: Double
    /// Milliseconds.
    public var latency: Double

    /// A point from its values.
    public init(percentile: Double, latency: Double) {
        self.percentile = percentile
        self.latency = latency
    }
}

/// The outcome of one load level (one concurrency or one request rate) of a run.
public struct StepResult: Codable, Sendable, Equatable {
    /// Calls in flight (closed loop), or nil.
    public var concurrency: Int?
    /// Intended calls per second (open loop), or nil.
    public var requestRate: Double?
    /// Seconds the measurement lasted.
    public var duration: Double
    /// Calls that ended in the measurement, whatever their status.
    public var calls: UInt64
    /// Calls that ended OK.
    public var succeeded: UInt64
    /// Calls that ended with an error, by gRPC status name (`UNAVAILABLE`, ...).
    public var errors: [String: UInt64]
    /// Calls ended per second.
    public var throughput: Double
    /// Latencies of the OK calls.
    public var latency: LatencySummary
    /// Once per second.
    public var timeline: [TimelinePoint]
    /// The latency distribution, for the percentile plot.
    public var distribution: [PercentilePoint]

    /// Calls with an error among all calls (0 when there were none).
    public var errorRate: Double { calls == 0 ? 0 : Double(calls - succeeded) / Double(calls) }

    /// The load level in words: "concurrency 8" or "rate 500/s".
    public var label: String {
        if let concurrency { return "concurrency \(concurrency)" }
        if let requestRate { return "rate \(Self.number(requestRate))/s" }
        return "step"
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }

    /// A step from its values.
    public init(
        concurrency: Int?, requestRate: Double?, duration: Double, calls: UInt64, succeeded: UInt64,
        errors: [String: UInt64], throughput: Double, latency: LatencySummary, timeline: [TimelinePoint],
        distribution: [PercentilePoint]
    ) {
        self.concurrency = concurrency
        self.requestRate = requestRate
        self.duration = duration
        self.calls = calls
        self.succeeded = succeeded
        self.errors = errors
        self.throughput = throughput
        self.latency = latency
        self.timeline = timeline
        self.distribution = distribution
    }

    /// The percentile distribution of a histogram in microseconds: 0 to 99.999 %, denser toward
    /// the tail, as HdrHistogram's percentile iteration gives it.
    public static func distribution(of histogram: Histogram<UInt64>) -> [PercentilePoint] {
        guard histogram.totalCount > 0 else { return [] }
        var points: [PercentilePoint] = []
        for value in histogram.percentiles(ticksPerHalfDistance: 5) {
            let point = PercentilePoint(percentile: value.percentileLevelIteratedTo, latency: Double(value.value) / 1000)
            if points.last?.percentile != point.percentile { points.append(point) }
            if point.percentile >= 99.999 { break }
        }
        return points
    }
}

/// Everything a run measured, for the table, the JSON file and the HTML report.
public struct LoadTestResult: Codable, Sendable, Equatable {
    /// What ran: target, method, model, load shape; for people reading the report.
    public var description: RunDescription
    /// One per load level, in the order run.
    public var steps: [StepResult]
    /// Calls made during the warm-up (not in any step; a server counts them too).
    public var warmupCalls: UInt64
    /// Why a capacity search stopped early, if it did.
    public var stoppedEarly: String?
    /// Thresholds that were broken (empty when all held or none were set).
    public var violations: [ThresholdViolation]

    /// A result from its values.
    public init(description: RunDescription, steps: [StepResult], warmupCalls: UInt64, stoppedEarly: String?, violations: [ThresholdViolation]) {
        self.description = description
        self.steps = steps
        self.warmupCalls = warmupCalls
        self.stoppedEarly = stoppedEarly
        self.violations = violations
    }

    /// Calls of all steps.
    public var calls: UInt64 { steps.reduce(0) { $0 + $1.calls } }
}

/// What a run did, in words and numbers a report shows.
public struct RunDescription: Codable, Sendable, Equatable {
    /// host:port.
    public var target: String
    /// The gRPC method path.
    public var method: String
    /// Model name and version, when inferring.
    public var model: String?
    /// "h2c", "tls" or "mtls".
    public var transport: String
    /// "closed" or "open" (and the distribution).
    public var loop: String
    /// HTTP/2 connections.
    public var connections: Int
    /// Event loops (threads) of the driver.
    public var threads: Int
    /// Whether ModelStreamInfer streams carried the calls.
    public var streaming: Bool
    /// ISO 8601 time the run started.
    public var startedAt: String

    /// A description from its values.
    public init(target: String, method: String, model: String?, transport: String, loop: String, connections: Int, threads: Int, streaming: Bool, startedAt: String) {
        self.target = target
        self.method = method
        self.model = model
        self.transport = transport
        self.loop = loop
        self.connections = connections
        self.threads = threads
        self.streaming = streaming
        self.startedAt = startedAt
    }
}
