import Foundation
import H2Transport
import Histogram
import InferenceProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ProtoWire

/// A failure that stops a run before it measures: the target cannot be reached, its metadata
/// is unusable, the inputs do not fit.
public struct LoadTestError: Error, CustomStringConvertible {
    /// What happened and, where it helps, what to do.
    public var description: String
    /// An error with its message.
    public init(_ description: String) { self.description = description }
}

/// What the live progress line shows, once per second.
public struct ProgressReport: Sendable {
    /// The level being measured ("concurrency 8"), or "warm-up".
    public var step: String
    /// Seconds since the level began.
    public var elapsed: Double
    /// The last second.
    public var point: TimelinePoint
    /// Calls ended in the level so far.
    public var calls: UInt64
}

/// Runs a load test: connects, prepares the request bodies, runs the warm-up and each load level,
/// and returns what it measured. The calls run on the connections' event loops
/// (`ConnectionRunner`); this type only starts and stops phases and collects, once per second,
/// what each loop recorded.
public final class LoadDriver: Sendable {
    /// What to run.
    public let configuration: LoadTestConfiguration
    private let logger: Logger

    /// A driver for `configuration`; `logger` gets connection events at debug level.
    public init(configuration: LoadTestConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Runs the test. `progress` is called once per second of each level (from a task, not an
    /// event loop).
    ///
    /// - Throws: `LoadTestError` when the run cannot start (connection, metadata, inputs).
    public func run(progress: @escaping @Sendable (ProgressReport) -> Void = { _ in }) async throws -> LoadTestResult {
        let configuration = self.configuration
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, configuration.threads))
        defer { group.shutdownGracefully { _ in } }
        let startedAt = ISO8601DateFormatter().string(from: Date())

        let tls: TLSContext?
        do {
            tls = try configuration.tls.map { try TLSContext(configuration: $0) }
        } catch {
            throw LoadTestError("cannot set up TLS: \(error)")
        }
        var connections: [GRPCClientConnection] = []
        defer {
            let toClose = connections
            Task { for connection in toClose { await connection.close() } }
        }
        for _ in 0..<max(1, configuration.connections) {
            do {
                connections.append(try await GRPCClientConnection.connect(
                    host: configuration.host, port: configuration.port, tls: tls, group: group, logger: logger))
            } catch {
                throw LoadTestError("cannot connect to \(configuration.host):\(configuration.port) (\(configuration.transport)): \(error)")
            }
        }

        let bodies = try await requestBodies(using: connections[0])
        var loops: [LoopRecorder] = []
        var runners: [ConnectionRunner] = []
        for connection in connections {
            let loop: LoopRecorder
            if let existing = loops.first(where: { $0.eventLoop === connection.eventLoop }) {
                loop = existing
            } else {
                loop = LoopRecorder(eventLoop: connection.eventLoop)
                loops.append(loop)
            }
            runners.append(ConnectionRunner(
                connection: connection, loop: loop, path: configuration.path, metadata: configuration.metadata,
                bodies: bodies, streaming: configuration.streaming && Self.isInfer(configuration.method),
                rawHTTP2: { if case .rawHTTP2 = configuration.method { return true } else { return false } }(),
                callTimeout: configuration.callTimeout))
        }

        var description = RunDescription(
            target: "\(configuration.host):\(configuration.port)", method: configuration.path, model: nil,
            transport: configuration.transport, loop: "closed", connections: connections.count,
            threads: configuration.threads, streaming: configuration.streaming, startedAt: startedAt)
        if case .infer(let model, let version) = configuration.method {
            description.model = version.isEmpty ? model : "\(model) version \(version)"
        }

        let levels: [Level]
        switch configuration.load {
        case .concurrency(let values):
            levels = values.map { .concurrency($0) }
        case .requestRate(let rates, let distribution):
            description.loop = "open (\(distribution.rawValue))"
            levels = rates.map { .rate($0, distribution) }
        }

        var warmupCalls: UInt64 = 0
        if configuration.warmup > .zero, let first = levels.first {
            _ = try await runPhase(first, duration: configuration.warmup, budget: nil, runners: runners, loops: loops, measuring: false, progress: { _ in })
            warmupCalls = try await collectUnmeasured(loops)
        }

        var steps: [StepResult] = []
        var stoppedEarly: String?
        for level in levels {
            let step = try await runPhase(
                level, duration: configuration.duration, budget: configuration.requests,
                runners: runners, loops: loops, measuring: true, progress: progress)
            steps.append(step)
            if let threshold = configuration.latencyThreshold,
               let measured = step.latency.value(atPercentile: configuration.thresholdPercentile), measured > threshold {
                if level != levels.last {
                    stoppedEarly = "\(step.label): p\(StepResult.number(configuration.thresholdPercentile)) \(measured) ms is over the latency threshold \(StepResult.number(threshold)) ms"
                }
                break
            }
        }
        for connection in connections { await connection.close() }
        connections.removeAll()
        return LoadTestResult(
            description: description, steps: steps, warmupCalls: warmupCalls, stoppedEarly: stoppedEarly,
            violations: configuration.thresholds.violations(in: steps))
    }

    // MARK: Request bodies

    private static func isInfer(_ method: LoadTestConfiguration.Method) -> Bool {
        if case .infer = method { return true }
        return false
    }

    /// The encoded request messages, asking the server for the model's inputs when none are given.
    private func requestBodies(using connection: GRPCClientConnection) async throws -> [ByteBuffer] {
        switch configuration.method {
        case .health(let service):
            return [HealthCheckRequest(service: service).encoded()]
        case .rawHTTP2:
            return [ByteBuffer()]
        case .infer(let model, let version):
            var inputs = configuration.inputs
            if inputs == nil {
                var request = ModelMetadataRequest()
                request.name = model
                request.version = version
                let metadata: ModelMetadataResponse
                do {
                    let response = try await connection.unary(
                        path: "/inference.GRPCInferenceService/ModelMetadata", request: request.encoded(),
                        metadata: configuration.metadata, timeout: .seconds(10))
                    metadata = try ModelMetadataResponse(decoding: response.message)
                } catch {
                    throw LoadTestError("cannot read the metadata of model '\(model)' (give its inputs with --input NAME:DATATYPE:SHAPE to skip this): \(error)")
                }
                do {
                    inputs = try InferRequestBodies.resolve(metadata: metadata.inputs, shapes: configuration.shapes, batchSize: configuration.batchSize)
                } catch {
                    throw LoadTestError("\(error)")
                }
            }
            do {
                return try InferRequestBodies.make(model: model, version: version, inputs: inputs ?? [], data: configuration.inputData, seed: configuration.seed)
            } catch {
                throw LoadTestError("\(error)")
            }
        }
    }

    // MARK: Phases

    enum Level: Equatable {
        case concurrency(Int)
        case rate(Double, ArrivalSchedule.Distribution)
    }

    /// Plans of each connection for `level`: concurrency and budget split evenly (the first
    /// connections take the remainder), the rate split evenly with a seed per connection.
    static func plans(for level: Level, connections: Int, budget: Int?, start: UInt64, end: UInt64, maxInFlight: Int, seed: UInt64) -> [ConnectionPlan] {
        func share(_ total: Int, _ index: Int) -> Int { total / connections + (index < total % connections ? 1 : 0) }
        return (0..<connections).map { index in
            var plan = ConnectionPlan()
            plan.budget = budget.map { share($0, index) }
            plan.maxInFlight = maxInFlight
            switch level {
            case .concurrency(let total):
                plan.concurrency = share(total, index)
            case .rate(let rate, let distribution):
                let perConnection = rate / Double(connections)
                plan.schedule = ArrivalSchedule(rate: perConnection, distribution: distribution, seed: seed &+ UInt64(index) &* 0x9E37_79B9)
                // Constant arrivals: connections take turns, so the sum stays evenly spaced.
                let offset = distribution == .constant ? UInt64(Double(index) * 1e9 / rate) : 0
                plan.startTime = start &+ offset
                plan.endTime = end
            }
            return plan
        }
    }

    private func runPhase(
        _ level: Level, duration: TimeAmount, budget: Int?, runners: [ConnectionRunner], loops: [LoopRecorder],
        measuring: Bool, progress: @escaping @Sendable (ProgressReport) -> Void
    ) async throws -> StepResult {
        // Start from nothing on every loop.
        try await EventLoopFuture.andAllSucceed(loops.map { loop in
            loop.eventLoop.submit {
                loop.recorder.reset()
                loop.measuring = measuring
            }
        }, on: loops[0].eventLoop).get()

        let start = NIODeadline.now().uptimeNanoseconds
        let end = budget == nil ? start &+ UInt64(duration.nanoseconds) : .max
        let plans = Self.plans(
            for: level, connections: runners.count, budget: budget, start: start, end: end,
            maxInFlight: configuration.maxInFlightPerConnection, seed: configuration.seed)
        let finishedCount = NIOLockedValueBox(0)
        for (runner, plan) in zip(runners, plans) {
            let finished = runner.eventLoop.makePromise(of: Void.self)
            finished.futureResult.whenComplete { _ in finishedCount.withLockedValue { $0 += 1 } }
            runner.eventLoop.execute { runner.begin(plan, finished: finished) }
        }

        let label: String
        switch level {
        case .concurrency(let value): label = "concurrency \(value)"
        case .rate(let value, _): label = "rate \(StepResult.number(value))/s"
        }
        var timeline: [TimelinePoint] = []
        var lastTick = start
        while true {
            let now = NIODeadline.now().uptimeNanoseconds
            let elapsed = now &- start
            if budget == nil, elapsed >= UInt64(duration.nanoseconds) { break }
            if budget != nil, finishedCount.withLockedValue({ $0 }) == runners.count { break }
            let nextTick = lastTick &+ 1_000_000_000
            var wait = nextTick > now ? nextTick - now : 0
            if budget == nil { wait = min(wait, UInt64(duration.nanoseconds) &- elapsed) }
            if budget != nil { wait = min(wait, 50_000_000) }
            try? await Task.sleep(nanoseconds: wait)
            let tick = NIODeadline.now().uptimeNanoseconds
            // The level's last second is sampled after the drain, with the calls that end in it.
            if budget == nil, tick &- start >= UInt64(duration.nanoseconds) { break }
            if tick &- lastTick >= 1_000_000_000 {
                let point = try await sample(loops, seconds: Double(tick &- lastTick) / 1e9, at: Double(tick &- start) / 1e9)
                lastTick = tick
                if measuring {
                    timeline.append(point)
                    progress(ProgressReport(step: label, elapsed: point.time, point: point, calls: try await measuredCalls(loops)))
                }
            }
        }

        // Stop starting calls and let those in flight end; they belong to this level.
        let drained = EventLoopFuture.andAllComplete(runners.map { runner in
            runner.eventLoop.flatSubmit { runner.stop() }
        }, on: loops[0].eventLoop)
        let drainDeadline = loops[0].eventLoop.scheduleTask(in: configuration.drainTimeout) {
            for runner in runners { runner.eventLoop.execute { runner.abandon() } }
        }
        try await drained.get()
        drainDeadline.cancel()
        let stopped = NIODeadline.now().uptimeNanoseconds
        if stopped &- lastTick > 0, measuring {
            let point = try await sample(loops, seconds: Double(stopped &- lastTick) / 1e9, at: Double(stopped &- start) / 1e9)
            if point.latency.count > 0 || point.errors > 0 { timeline.append(point) }
        }

        var merged = LatencyRecorder()
        var lastCallEnded = start
        for loop in loops {
            let (recorder, ended) = try await loop.eventLoop.submit { (loop.recorder, loop.lastCallEnded) }.get()
            merged.merge(recorder)
            lastCallEnded = max(lastCallEnded, ended)
        }
        // The level lasted until its last call ended (not until the driver noticed).
        let seconds = Double((lastCallEnded > start ? lastCallEnded : stopped) &- start) / 1e9
        var errors: [String: UInt64] = [:]
        for (code, count) in merged.callsByStatus.enumerated() where code != 0 && count > 0 {
            errors[GRPCStatus.Code(rawValue: code)?.description ?? "\(code)"] = count
        }
        let total = merged.callsByStatus.reduce(0, +)
        return StepResult(
            concurrency: { if case .concurrency(let value) = level { return value } else { return nil } }(),
            requestRate: { if case .rate(let value, _) = level { return value } else { return nil } }(),
            duration: seconds, calls: total, succeeded: merged.callsByStatus[0], errors: errors,
            throughput: seconds > 0 ? Double(total) / seconds : 0,
            latency: LatencySummary(merged.total), timeline: timeline,
            distribution: StepResult.distribution(of: merged.total))
    }

    /// The interval that just ended, merged over the loops.
    private func sample(_ loops: [LoopRecorder], seconds: Double, at time: Double) async throws -> TimelinePoint {
        var merged = IntervalSample()
        for loop in loops {
            merged.merge(try await loop.eventLoop.submit { loop.recorder.takeInterval() }.get())
        }
        return TimelinePoint(
            time: time, throughput: seconds > 0 ? Double(merged.calls) / seconds : 0, errors: merged.errors,
            latency: LatencySummary(merged.latencies))
    }

    private func measuredCalls(_ loops: [LoopRecorder]) async throws -> UInt64 {
        var total: UInt64 = 0
        for loop in loops {
            total += try await loop.eventLoop.submit { loop.recorder.callsByStatus.reduce(0, +) }.get()
        }
        return total
    }

    private func collectUnmeasured(_ loops: [LoopRecorder]) async throws -> UInt64 {
        var total: UInt64 = 0
        for loop in loops {
            total += try await loop.eventLoop.submit {
                defer { loop.unmeasuredCalls = 0 }
                return loop.unmeasuredCalls
            }.get()
        }
        return total
    }
}
