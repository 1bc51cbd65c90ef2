import H2Transport
import NIOCore

/// Everything a load-test run needs, read top to bottom. `switchyard loadtest` fills it from its
/// flags and scenario file (docs/loadtest.md); the defaults are perf_analyzer's where it has one.
public struct LoadTestConfiguration: Sendable {
    /// Which RPC each call makes.
    public enum Method: Sendable, Equatable {
        /// `inference.GRPCInferenceService/ModelInfer` (or, when `streaming`, one request and its
        /// response on a `ModelStreamInfer` stream).
        case infer(model: String, version: String)
        /// `grpc.health.v1.Health/Check` for `service` ("" for the server as a whole).
        case health(service: String)
        /// A plain HTTP/2 GET of `path` (not gRPC), answered OK when the status is 200: for
        /// comparing the driver with h2load against a static file server such as nghttpd.
        case rawHTTP2(path: String)
    }

    /// How calls are offered to the server.
    public enum Load: Sendable, Equatable {
        /// Closed loop: each level keeps that many calls in flight, a new one starting as soon as
        /// one ends (perf_analyzer's `--concurrency-range`).
        case concurrency([Int])
        /// Open loop: each level starts that many calls per second whatever the server does,
        /// latency counted from each call's intended start (`--request-rate-range`).
        case requestRate([Double], ArrivalSchedule.Distribution)
    }

    /// Server host name or address.
    public var host: String
    /// Server port. Default 8001 (Triton's and Switchyard's h2c port).
    public var port: Int = 8001
    /// TLS (and, with a client certificate, mutual TLS); nil for h2c. Default nil.
    public var tls: TLSConfiguration?
    /// Metadata sent with every call (`-H 'authorization: Bearer X'`). Default none.
    public var metadata = GRPCMetadata()
    /// The RPC. Default: ModelInfer of `simple`.
    public var method: Method = .infer(model: "simple", version: "")
    /// Whether inference goes over ModelStreamInfer streams, one request in flight per stream,
    /// like perf_analyzer's `--streaming`. Default false.
    public var streaming = false
    /// The inputs to send; nil: ask the server (ModelMetadata) and apply `shapes` and
    /// `batchSize`, like perf_analyzer. Default nil.
    public var inputs: [InputTensorSpec]?
    /// `--shape NAME:1,16` overrides for variable dimensions. Default none.
    public var shapes: [String: [Int64]] = [:]
    /// Fills a leading variable (batch) dimension. Default 1.
    public var batchSize = 1
    /// Tensor data. Default random.
    public var inputData: InputDataSource = .random
    /// HTTP/2 connections the calls are spread over. Default 1 (perf_analyzer uses one).
    public var connections = 1
    /// Event loops (threads) of the driver. Default: the machine's cores.
    public var threads = System.coreCount
    /// The load levels. Default: concurrency 1.
    public var load: Load = .concurrency([1])
    /// How long each level is measured. Default 5 seconds (perf_analyzer's measurement interval).
    public var duration: TimeAmount = .seconds(5)
    /// When set, each level ends after this many calls instead of after `duration`.
    public var requests: Int?
    /// Calls before the first level, not measured. Default 0 (none).
    public var warmup: TimeAmount = .zero
    /// A capacity search stops after the first level whose latency at `thresholdPercentile`
    /// exceeds this many milliseconds (perf_analyzer's `--latency-threshold`). Default nil.
    public var latencyThreshold: Double?
    /// The percentile `latencyThreshold` looks at. Default 99.
    public var thresholdPercentile: Double = 99
    /// Limits that make the run fail (exit status), checked on every level. Default none.
    public var thresholds = Thresholds()
    /// Most calls one connection keeps outstanding in an open loop; calls due beyond it wait,
    /// with their latency still counted from their intended start. Default 10 000.
    public var maxInFlightPerConnection = 10_000
    /// A deadline for each call (`grpc-timeout`); nil for none. Default nil.
    public var callTimeout: Duration?
    /// How long to wait for calls in flight when a level ends, before abandoning them.
    /// Default 10 seconds.
    public var drainTimeout: TimeAmount = .seconds(10)
    /// Seed of open-loop gaps and random data, so that runs repeat. Default 42.
    public var seed: UInt64 = 42

    /// A configuration for `host` with the defaults above.
    public init(host: String) {
        self.host = host
    }

    /// The gRPC path each call (or each stream) uses.
    public var path: String {
        switch method {
        case .health: return "/grpc.health.v1.Health/Check"
        case .rawHTTP2(let path): return path
        case .infer: return streaming ? "/inference.GRPCInferenceService/ModelStreamInfer" : "/inference.GRPCInferenceService/ModelInfer"
        }
    }

    /// "h2c", "tls" or "mtls".
    public var transport: String {
        guard let tls else { return "h2c" }
        return tls.certificateChainPath == nil ? "tls" : "mtls"
    }
}
