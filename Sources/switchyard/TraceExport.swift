import Gateway
import Logging
import OTel
import ServiceLifecycle
import Tracing

/// `switchyard serve`'s trace export: swift-otel's batch span processor and OTLP/HTTP
/// (protobuf) exporter behind the gateway's `InferenceTracing`.
///
/// Where spans go: `--otlp-endpoint` (a base URL, `/v1/traces` is appended), else
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (the full URL, as is), else `OTEL_EXPORTER_OTLP_ENDPOINT`
/// (a base URL). None of them: tracing is off. The flags win over the environment; the other
/// standard variables (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`,
/// `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_BSP_*` …) are honoured by
/// swift-otel. Sampling is the gateway's (`--trace-sampling-ratio`, parent-based), so
/// `OTEL_TRACES_SAMPLER` is not read; the protocol is OTLP/HTTP with protobuf and the propagator
/// W3C trace context, whatever `OTEL_EXPORTER_OTLP_PROTOCOL` and `OTEL_PROPAGATORS` say.
enum TraceExport {
    /// Variables the gateway decides itself; swift-otel does not see them.
    static let ownedVariables: Set<String> = [
        "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
        "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_PROPAGATORS", "OTEL_TRACES_EXPORTER",
        "OTEL_SDK_DISABLED",
    ]

    /// The URL spans are posted to, or nil when tracing is off (no endpoint anywhere, or
    /// `OTEL_SDK_DISABLED=true`).
    static func tracesURL(flag: String?, environment: [String: String]) -> String? {
        if let flag { return appendingTracesPath(flag) }
        if environment["OTEL_SDK_DISABLED"]?.lowercased() == "true" { return nil }
        if let url = environment["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"], !url.isEmpty { return url }
        if let base = environment["OTEL_EXPORTER_OTLP_ENDPOINT"], !base.isEmpty { return appendingTracesPath(base) }
        return nil
    }

    /// A base URL with OTLP/HTTP's path for traces, as the OpenTelemetry spec builds it from
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`.
    static func appendingTracesPath(_ base: String) -> String {
        base.hasSuffix("/") ? base + "v1/traces" : base + "/v1/traces"
    }

    /// The gateway's tracing over swift-otel, and the service that exports its spans: run it in
    /// the service group *before* the gateway's, so that it shuts down after the gateway and
    /// flushes the last spans (within the batch processor's export timeout, 5 s by default).
    ///
    /// Bootstraps the process-wide `InstrumentationSystem` (traces only; logging and metrics
    /// stay the gateway's own). Call once.
    static func start(
        url: String, samplingRatio: Double, environment: [String: String], logger: Logger
    ) throws -> (tracing: InferenceTracing, service: any Service) {
        var configuration = OTel.Configuration.default
        configuration.serviceName = "switchyard"
        configuration.diagnosticLogger = .custom(logger)
        configuration.logs.enabled = false
        configuration.metrics.enabled = false
        configuration.traces.enabled = true
        configuration.propagators = [.traceContext]
        // Every span the gateway starts is sampled: it decides before starting one.
        configuration.traces.sampler = .parentBasedAlwaysOn
        configuration.traces.exporter = .otlp
        configuration.traces.otlpExporter.protocol = .httpProtobuf
        configuration.traces.otlpExporter.endpoint = url
        configuration.traces.otlpExporter.timeout = .seconds(5)
        // Bounded: at most maxQueueSize spans wait (more are dropped, counted and logged by
        // swift-otel); a batch of at most maxExportBatchSize goes out every scheduleDelay.
        configuration.traces.batchSpanProcessor.scheduleDelay = .seconds(1)
        configuration.traces.batchSpanProcessor.exportTimeout = .seconds(5)
        configuration.traces.batchSpanProcessor.maxQueueSize = 2048
        configuration.traces.batchSpanProcessor.maxExportBatchSize = 512
        let service = try OTel.bootstrap(configuration: configuration, environment: environment.filter { !ownedVariables.contains($0.key) })
        return (InferenceTracing(tracer: InstrumentationSystem.tracer, samplingRatio: samplingRatio), service)
    }
}
