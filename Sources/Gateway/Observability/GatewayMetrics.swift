import H2Transport
import NIOConcurrencyHelpers
import NIOCore
import Prometheus

#if canImport(Glibc)
import Glibc
#endif

/// What the gateway measures and how.
public struct MetricsConfiguration: Sendable {
    /// Upper bounds (seconds) of the latency histograms' buckets: gRPC handling time and the
    /// inference request, queue and compute times.
    public var latencyBucketsSeconds: [Double] = LatencyBuckets.default.upperBoundsNanos.map { Double($0) / 1e9 }
    /// The access log; nil (the library's default; `switchyard serve` turns it on) is off.
    public var accessLog: AccessLogConfiguration?
    /// The diagnostic log's writer (`--log-format json`), whose dropped lines are counted.
    public var diagnosticLogWriter: LogLineWriter?
    /// Whether every call's request id goes back to the client in `x-request-id`. Default true.
    public var echoRequestID = true

    public init() {}
}

/// The gateway's metrics: per-loop counters of calls and connections (`GatewayLoopObserver`,
/// plain integers changed only on their loop, so counting costs no lock and no allocation),
/// the worker pools' statistics, and a swift-prometheus registry for anything instrumented
/// through swift-metrics. `render` gathers them all for `GET /metrics`.
public final class GatewayMetrics: Sendable {
    /// swift-metrics' Prometheus registry: `switchyard serve` bootstraps swift-metrics with it,
    /// so whatever is counted through the swift-metrics API is served at /metrics too.
    public let registry = PrometheusCollectorRegistry()
    let buckets: LatencyBuckets
    private let observers: [ObjectIdentifier: NIOLoopBoundBox<GatewayLoopObserver>]
    private let observerList: [NIOLoopBoundBox<GatewayLoopObserver>]
    /// The access log's writer thread; nil with the access log off.
    let accessLogWriter: LogLineWriter?
    /// The diagnostic log's writer (JSON format), for its dropped-lines count.
    let diagnosticLogWriter: LogLineWriter?
    /// The principals `switchyard_rate_limited_total` names (the rest count as "other").
    let limitedPrincipals = NIOLockedValueBox(PrincipalLabels())

    /// Observers for every loop of `group` (the loops that serve calls).
    public init(configuration: MetricsConfiguration, group: EventLoopGroup) throws {
        let buckets = LatencyBuckets(seconds: configuration.latencyBucketsSeconds)
        self.buckets = buckets
        self.diagnosticLogWriter = configuration.diagnosticLogWriter
        var writer: LogLineWriter?
        var sampleRate = 1.0
        if let accessLog = configuration.accessLog {
            writer = LogLineWriter(descriptor: try Self.open(accessLog.destination), capacity: accessLog.capacity)
            sampleRate = accessLog.sampleRate
        }
        self.accessLogWriter = writer
        var observers: [ObjectIdentifier: NIOLoopBoundBox<GatewayLoopObserver>] = [:]
        var list: [NIOLoopBoundBox<GatewayLoopObserver>] = []
        for loop in group.makeIterator() {
            let batcher = writer.map { AccessLogBatcher(eventLoop: loop, writer: $0, sampleRate: sampleRate) }
            let box = NIOLoopBoundBox.makeBoxSendingValue(GatewayLoopObserver(eventLoop: loop, buckets: buckets, accessLog: batcher), eventLoop: loop)
            observers[ObjectIdentifier(loop)] = box
            list.append(box)
        }
        self.observers = observers
        self.observerList = list
    }

    /// The observer of `loop` (called on `loop`); nil for a loop that does not serve calls.
    func observer(on loop: EventLoop) -> GatewayLoopObserver? {
        observers[ObjectIdentifier(loop)]?.value
    }

    /// The counters of every loop, summed.
    func snapshot() async -> LoopCounters {
        var total = LoopCounters(buckets: buckets)
        for box in observerList {
            if let counters = try? await box.eventLoop.submit({ box.value.snapshot() }).get() {
                total = total + counters
            }
        }
        return total
    }

    /// Writes what the access log holds (every loop's last batch included) and stops its
    /// thread. The serving loops must still run.
    public func shutdown() async {
        guard let accessLogWriter else { return }
        for box in observerList {
            try? await box.eventLoop.submit { box.value.flushAccessLog() }.get()
        }
        accessLogWriter.shutdown()
    }

    private static func open(_ destination: String) throws -> CInt {
        switch destination {
        case "stdout", "-": return 1
        case "stderr": return 2
        default:
            let descriptor = Glibc.open(destination, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else {
                throw MetricsError(message: "cannot open the access log '\(destination)': \(String(cString: strerror(errno)))")
            }
            return descriptor
        }
    }

    // MARK: Rendering

    /// Everything, in Prometheus text format 0.0.4.
    func render(methods: [GRPCMethodDescriptor], repository: ModelRepository, version: String) async -> String {
        let counters = await snapshot()
        var out = PrometheusText()
        out.family("switchyard_build_info", .gauge, "Always 1; the version label says which Switchyard serves.")
        out.sample("switchyard_build_info", ["version": version], UInt64(1))
        renderCalls(counters, methods: methods, into: &out)
        renderTransport(counters, into: &out)
        await renderModels(repository, into: &out)
        let shadowPairs = await repository.shadowComparisonStatistics()
        renderShadowComparisons(shadowPairs, into: &out)
        renderLogs(counters, into: &out)
        renderLimits(repository.catalog.auth, into: &out)
        var registryBytes: [UInt8] = []
        registry.emit(into: &registryBytes)
        out.append(String(decoding: registryBytes, as: UTF8.self))
        return out.text
    }

    private func renderCalls(_ counters: LoopCounters, methods: [GRPCMethodDescriptor], into out: inout PrometheusText) {
        // Methods that saw calls, plus the "unknown" row when paths named no method.
        var rows: [(type: String, service: String, method: String, counters: LoopCounters.Method)] = []
        for descriptor in methods where descriptor.index < counters.methods.count && counters.methods[descriptor.index].started > 0 {
            rows.append((descriptor.type.label, descriptor.service, descriptor.name, counters.methods[descriptor.index]))
        }
        if counters.unknown.started > 0 { rows.append(("unary", "unknown", "unknown", counters.unknown)) }

        out.family("grpc_server_started_total", .counter, "RPCs started on the server.")
        for row in rows {
            out.sample("grpc_server_started_total", ["grpc_type": row.type, "grpc_service": row.service, "grpc_method": row.method], row.counters.started)
        }
        out.family("grpc_server_handled_total", .counter, "RPCs completed on the server, by gRPC status code.")
        for row in rows {
            for code in GRPCStatus.Code.allCases where code == .ok || row.counters.handled[code.rawValue] > 0 {
                out.sample(
                    "grpc_server_handled_total",
                    ["grpc_type": row.type, "grpc_service": row.service, "grpc_method": row.method, "grpc_code": code.description],
                    row.counters.handled[code.rawValue])
            }
        }
        out.family("grpc_server_msg_received_total", .counter, "Request messages received on the server.")
        for row in rows {
            out.sample("grpc_server_msg_received_total", ["grpc_type": row.type, "grpc_service": row.service, "grpc_method": row.method], row.counters.received)
        }
        out.family("grpc_server_msg_sent_total", .counter, "Response messages sent by the server.")
        for row in rows {
            out.sample("grpc_server_msg_sent_total", ["grpc_type": row.type, "grpc_service": row.service, "grpc_method": row.method], row.counters.sent)
        }
        out.family("grpc_server_handling_seconds", .histogram, "Time from a call's request headers to its status, in seconds.")
        for row in rows {
            out.histogram(
                "grpc_server_handling_seconds", ["grpc_type": row.type, "grpc_service": row.service, "grpc_method": row.method], row.counters.handling,
                buckets: buckets)
        }
        out.family("switchyard_grpc_calls_in_flight", .gauge, "Calls open now (for streaming methods: open streams).")
        for row in rows {
            out.sample("switchyard_grpc_calls_in_flight", ["grpc_type": row.type, "grpc_service": row.service, "grpc_method": row.method], row.counters.inFlight)
        }
    }

    private func renderTransport(_ counters: LoopCounters, into out: inout PrometheusText) {
        let listeners = ["plaintext", "tls"]
        out.family("switchyard_connections_accepted_total", .counter, "Connections accepted, by listener.")
        for (index, listener) in listeners.enumerated() {
            out.sample("switchyard_connections_accepted_total", ["listener": listener], counters.connectionsOpened[index])
        }
        out.family("switchyard_connections_open", .gauge, "Connections open now, by listener.")
        for (index, listener) in listeners.enumerated() {
            out.sample("switchyard_connections_open", ["listener": listener], counters.connectionsOpened[index] &- counters.connectionsClosed[index])
        }
        out.family("switchyard_tls_handshakes_total", .counter, "TLS handshakes completed; resumed=\"true\" for resumed sessions.")
        out.sample("switchyard_tls_handshakes_total", ["resumed": "false"], counters.tlsHandshakes[0])
        out.sample("switchyard_tls_handshakes_total", ["resumed": "true"], counters.tlsHandshakes[1])
        out.family("switchyard_tls_handshake_failures_total", .counter, "TLS handshakes that failed, by reason.")
        for reason in TLSHandshakeFailureReason.allCases {
            out.sample("switchyard_tls_handshake_failures_total", ["reason": reason.label], counters.tlsFailures[reason.rawValue])
        }
        out.family("switchyard_http2_goaways_sent_total", .counter, "Connections the gateway ended or began to end (GOAWAY), by reason.")
        for reason in HTTP2GoAwayReason.allCases {
            out.sample("switchyard_http2_goaways_sent_total", ["reason": reason.label], counters.goAways[reason.rawValue])
        }
        out.family(
            "switchyard_http2_hostile_peer_disconnects_total", .counter,
            "Connections cut off with GOAWAY ENHANCE_YOUR_CALM for abusive or broken behaviour, by reason.")
        for reason in HTTP2GoAwayReason.allCases where reason.isHostilePeer {
            out.sample("switchyard_http2_hostile_peer_disconnects_total", ["reason": reason.label], counters.goAways[reason.rawValue])
        }
    }

    private func renderModels(_ repository: ModelRepository, into out: inout PrometheusText) async {
        var rows: [(model: String, version: String, pool: WorkerPool, statistics: VariantStatistics, outstanding: Int)] = []
        for key in repository.variants {
            guard let pool = repository.pool(for: key) else { continue }
            rows.append((key.model, key.version, pool, await pool.statistics(), await pool.outstanding()))
        }
        func counter(_ name: String, _ help: String, _ value: (VariantStatistics) -> UInt64) {
            out.family(name, .counter, help)
            for row in rows { out.sample(name, ["model": row.model, "version": row.version], value(row.statistics)) }
        }
        counter("nv_inference_request_success", "Number of successful inference requests, all batch sizes.") { $0.successCount }
        out.family("nv_inference_request_failure", .counter, "Number of failed inference requests, all batch sizes, by reason.")
        for row in rows {
            for reason in InferenceFailureReason.allCases {
                out.sample(
                    "nv_inference_request_failure", ["model": row.model, "version": row.version, "reason": reason.label],
                    row.statistics.failures(reason))
            }
        }
        counter("nv_inference_count", "Number of inferences performed (a batch of n counts n).") { $0.inferenceCount }
        counter("nv_inference_exec_count", "Number of model executions performed (a batch counts once).") { $0.executionCount }
        counter("nv_inference_request_duration_us", "Cumulative inference request duration in microseconds.") {
            ($0.successNanos &+ $0.failNanos) / 1000
        }
        counter("nv_inference_queue_duration_us", "Cumulative inference queuing duration in microseconds (gateway and worker queues).") {
            $0.queueNanos / 1000
        }
        counter("nv_inference_compute_input_duration_us", "Cumulative compute input duration in microseconds.") { $0.computeInputNanos / 1000 }
        counter("nv_inference_compute_infer_duration_us", "Cumulative compute inference duration in microseconds.") { $0.computeInferNanos / 1000 }
        counter("nv_inference_compute_output_duration_us", "Cumulative compute output duration in microseconds.") { $0.computeOutputNanos / 1000 }
        out.family("nv_inference_pending_request_count", .gauge, "Requests in the gateway's queue or on a worker now.")
        for row in rows { out.sample("nv_inference_pending_request_count", ["model": row.model, "version": row.version], UInt64(row.outstanding)) }

        func histogram(_ name: String, _ help: String, _ value: (VariantStatistics) -> LatencyHistogram) {
            out.family(name, .histogram, help)
            for row in rows { out.histogram(name, ["model": row.model, "version": row.version], value(row.statistics), buckets: buckets) }
        }
        histogram("switchyard_inference_request_duration_seconds", "Successful inference requests' time in the gateway, from receipt to answer.") {
            $0.requestDuration
        }
        histogram("switchyard_inference_queue_duration_seconds", "Successful inference requests' time waiting in the gateway's and the worker's queues.") {
            $0.queueDuration
        }
        histogram("switchyard_inference_compute_duration_seconds", "Successful inference requests' time executing on the worker.") {
            $0.computeDuration
        }

        let workers = await repository.workerStatuses()
        func workersOf(_ row: (model: String, version: String, pool: WorkerPool, statistics: VariantStatistics, outstanding: Int)) -> [WorkerStatus] {
            workers.filter { $0.model == row.model && $0.version == row.version }
        }
        out.family("switchyard_workers", .gauge, "Worker processes of each model variant, by state.")
        for row in rows {
            let mine = workersOf(row)
            for state in WorkerStatus.states {
                out.sample(
                    "switchyard_workers", ["model": row.model, "version": row.version, "state": state], UInt64(mine.filter { $0.state == state }.count))
            }
        }
        out.family("switchyard_worker_restarts_total", .counter, "Worker processes started again after the first (crashes, stalls, operator restarts).")
        for row in rows {
            out.sample("switchyard_worker_restarts_total", ["model": row.model, "version": row.version], UInt64(workersOf(row).reduce(0) { $0 + $1.restarts }))
        }
        out.family("switchyard_worker_requests_in_flight", .gauge, "Requests sent to the variant's workers and not answered yet.")
        for row in rows {
            out.sample("switchyard_worker_requests_in_flight", ["model": row.model, "version": row.version], UInt64(workersOf(row).reduce(0) { $0 + $1.inFlight }))
        }
        out.family("switchyard_worker_requests_queued", .gauge, "Requests of the variant waiting in the gateway for a worker.")
        for row in rows {
            out.sample("switchyard_worker_requests_queued", ["model": row.model, "version": row.version], UInt64(max(0, row.outstanding - workersOf(row).reduce(0) { $0 + $1.inFlight })))
        }
        counter("switchyard_shadow_requests_shed_total", "Shadow copies not sent to this variant because its workers were all busy (shadow load is shed first).") {
            $0.shadowShed
        }
        counter("switchyard_worker_requests_redispatched_total", "Requests of a worker that died, sent to another worker.") { $0.redispatched }
        out.family(
            "switchyard_worker_requests_lost_total", .counter,
            "Requests failed because their worker died: reason=\"poison\" (it was on two workers that both died) or \"not_idempotent\".")
        for row in rows {
            out.sample("switchyard_worker_requests_lost_total", ["model": row.model, "version": row.version, "reason": "poison"], row.statistics.poisoned)
            out.sample(
                "switchyard_worker_requests_lost_total", ["model": row.model, "version": row.version, "reason": "not_idempotent"],
                row.statistics.failedOnWorkerExit)
        }
    }

    /// Per shadow pair (model, primary version, shadow version; all from configuration).
    func renderShadowComparisons(_ statistics: [ShadowPairKey: ShadowPairStatistics], into out: inout PrometheusText) {
        let rows = statistics.sorted { ($0.key.model, $0.key.version, $0.key.shadowVersion) < ($1.key.model, $1.key.version, $1.key.shadowVersion) }
        out.family(
            "switchyard_shadow_comparisons_total", .counter,
            "Shadowed calls by how the comparison of the primary's and the shadow's answers ended.")
        for (pair, row) in rows {
            for result in ShadowComparisonResult.allCases {
                out.sample(
                    "switchyard_shadow_comparisons_total",
                    ["model": pair.model, "version": pair.version, "shadow_version": pair.shadowVersion, "result": result.label], row.count(result))
            }
        }
        for (name, help, value) in [
            ("switchyard_shadow_compared_elements_total", "Output elements compared between primary and shadow answers.", \ShadowPairStatistics.comparedElements),
            (
                "switchyard_shadow_mismatched_elements_total",
                "Compared output elements that differ (exactly for integers, BOOL and BYTES; beyond the tolerance for floating point).",
                \ShadowPairStatistics.mismatchedElements
            ),
        ] {
            out.family(name, .counter, help)
            for (pair, row) in rows {
                out.sample(name, ["model": pair.model, "version": pair.version, "shadow_version": pair.shadowVersion], row[keyPath: value])
            }
        }
        out.family(
            "switchyard_shadow_max_abs_difference", .histogram,
            "The largest absolute difference between a primary's and its shadow's numeric output elements, per compared call.")
        for (pair, row) in rows {
            out.histogram(
                "switchyard_shadow_max_abs_difference", ["model": pair.model, "version": pair.version, "shadow_version": pair.shadowVersion],
                counts: row.maxAbsoluteDifference.counts, upperBounds: DifferenceHistogram.upperBounds, sum: row.maxAbsoluteDifference.sum)
        }
        out.family(
            "switchyard_shadow_request_duration_seconds", .histogram,
            "Time to a successful answer of each side of compared shadowed calls: side=\"primary\" from receipt, \"shadow\" from the copy's submission.")
        for (pair, row) in rows {
            for (side, histogram) in [("primary", row.primaryDuration), ("shadow", row.shadowDuration)] {
                out.histogram(
                    "switchyard_shadow_request_duration_seconds",
                    ["model": pair.model, "version": pair.version, "shadow_version": pair.shadowVersion, "side": side], histogram, buckets: buckets)
            }
        }
    }

    /// Calls and requests refused by rate and concurrency limits, by limit and principal: the
    /// `PrincipalLabels.capacity` principals refused most get their own label, the others count
    /// together as principal="other". JWKS refreshes, with `auth.jwt`.
    private func renderLimits(_ policy: CompiledAuthPolicy?, into out: inout PrometheusText) {
        guard let policy else { return }
        out.family(
            "switchyard_rate_limited_total", .counter,
            "Calls and inference requests refused with RESOURCE_EXHAUSTED by a limit (principal, model, principal_model, concurrency), by principal (\(PrincipalLabels.capacity) at most, the rest as \"other\").")
        let counts = policy.allPrincipals.map { principal in (principal.name, LimitKind.allCases.map { principal.refusals.value($0) }) }
        let labelled = limitedPrincipals.withLockedValue { $0.labels(for: counts, generation: policy.generation) }
        var other = [UInt64](repeating: 0, count: LimitKind.allCases.count)
        for (name, values) in counts {
            guard labelled.contains(name) else {
                for index in values.indices { other[index] += values[index] }
                continue
            }
            for (index, kind) in LimitKind.allCases.enumerated() {
                out.sample("switchyard_rate_limited_total", ["limit": kind.label, "principal": name], values[index])
            }
        }
        if labelled.count < counts.count {
            for (index, kind) in LimitKind.allCases.enumerated() {
                out.sample("switchyard_rate_limited_total", ["limit": kind.label, "principal": PrincipalLabels.other], other[index])
            }
        }
        guard let jwt = policy.jwt else { return }
        out.family("switchyard_jwks_refreshes_total", .counter, "Reads of the JWKS file that installed changed keys (loaded) or failed and kept the keys in use (failed).")
        let refreshes = jwt.refreshCounts
        out.sample("switchyard_jwks_refreshes_total", ["result": "loaded"], refreshes.loaded)
        out.sample("switchyard_jwks_refreshes_total", ["result": "failed"], refreshes.failed)
        out.family("switchyard_jwks_keys", .gauge, "Verification keys of the JWKS in use.")
        out.sample("switchyard_jwks_keys", [:], UInt64(jwt.keyIDs.count))
    }

    private func renderLogs(_ counters: LoopCounters, into out: inout PrometheusText) {
        out.family("switchyard_log_lines_dropped_total", .counter, "Log lines dropped because the writer fell behind, by log.")
        out.sample("switchyard_log_lines_dropped_total", ["log": "diagnostic"], UInt64(diagnosticLogWriter?.droppedLines ?? 0))
        out.sample("switchyard_log_lines_dropped_total", ["log": "access"], UInt64(accessLogWriter?.droppedLines ?? 0))
        out.family("switchyard_access_log_sampled_out_total", .counter, "Successful calls left out of the access log by sampling.")
        out.sample("switchyard_access_log_sampled_out_total", [:], counters.accessLogSampledOut)
    }
}

/// A metrics or access-log setting that cannot work.
public struct MetricsError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Which principals get their own label in a metric: at most `capacity`, chosen at each scrape
/// among those not yet labelled by how many refusals they have, and kept from then on (until
/// the policy changes), so that the "other" series only grows, as a counter must.
struct PrincipalLabels {
    static let capacity = 50
    static let other = "other"
    private var generation = -1
    private var names: Set<String> = []

    mutating func labels(for counts: [(name: String, values: [UInt64])], generation: Int) -> Set<String> {
        if generation != self.generation {
            names = []
            self.generation = generation
        }
        // With room for everyone, everyone (no "other" series at all).
        if counts.count <= Self.capacity { return Set(counts.map(\.name)) }
        let candidates = counts.filter { !names.contains($0.name) && $0.values.contains { $0 > 0 } }
            .sorted { ($0.values.reduce(0, +), $1.name) > ($1.values.reduce(0, +), $0.name) }
        for candidate in candidates.prefix(max(0, Self.capacity - names.count)) { names.insert(candidate.name) }
        return names
    }
}
