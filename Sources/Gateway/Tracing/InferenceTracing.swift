import H2Transport
import InferenceProtocol
import Tracing

/// Traces of inference requests (ModelInfer calls and each request of a ModelStreamInfer
/// stream), through any swift-distributed-tracing `Tracer`; `switchyard serve` hands it
/// swift-otel's OTLP/HTTP exporter.
///
/// The sampling decision is taken here, before any span exists, so that a request that is not
/// sampled costs a metadata lookup (and, without a `traceparent`, a random number), and no
/// allocation: a `traceparent` from the client decides by its sampled flag (parent-based), a
/// request without one (or with a malformed one) is sampled with `samplingRatio`. The tracer
/// behind it should sample every span it is asked for (parent-based, always on), or requests
/// would be sampled twice.
public struct InferenceTracing: Sendable {
    /// Where spans go.
    public let tracer: any Tracer
    /// The share of requests without a client `traceparent` that start a trace, 0 to 1.
    public let samplingRatio: Double

    /// - Parameter samplingRatio: clamped to 0...1.
    public init(tracer: any Tracer, samplingRatio: Double) {
        self.tracer = tracer
        self.samplingRatio = min(1, max(0, samplingRatio.isNaN ? 0 : samplingRatio))
    }

    /// Starts the server span of one inference request of `call`, or returns nil when it is not
    /// sampled. Runs on the call's event loop.
    ///
    /// - Parameter method: `ModelInfer` or `ModelStreamInfer`.
    func startRequest(of call: GRPCServerCall, method: String) -> InferenceTrace? {
        let metadata = call.head.metadata
        var parent = ServiceContext.topLevel
        if let traceparent = metadata.firstString(named: "traceparent"), let sampled = W3CTraceparent.sampledFlag(of: traceparent) {
            guard sampled else { return nil }
            tracer.extract(metadata, into: &parent, using: GRPCMetadataExtractor())
        } else {
            guard samplingRatio >= 1 || (samplingRatio > 0 && Double.random(in: 0..<1) < samplingRatio) else { return nil }
        }
        return InferenceTrace(tracer: tracer, parent: parent, call: call, method: method)
    }

    /// `startRequest` for a call with one request (ModelInfer): its spans end when the call
    /// ends, with the call's status.
    func startCall(_ call: GRPCServerCall, method: String) -> InferenceTrace? {
        guard let trace = startRequest(of: call, method: method) else { return nil }
        call.onEnded = { status in trace.end(status) }
        return trace
    }
}

/// The spans of one sampled inference request: the server span, and as children the wait in
/// the gateway's queue (submit to dispatch) and the worker's execution (dispatch to the last
/// reply). Confined to the call's event loop, like the call handler and the pool shard that
/// drive it. Every method is safe to call in any state; `end` ends every open span once.
final class InferenceTrace {
    /// Span names, as the docs list them.
    static let queueSpanName = "switchyard.queue"
    static let workerSpanName = "switchyard.worker"

    private let tracer: any Tracer
    private let server: any Span
    private var queue: (any Span)?
    private var worker: (any Span)?
    private var model = ""
    private var version = ""
    private var ended = false

    init(tracer: any Tracer, parent: ServiceContext, call: GRPCServerCall, method: String) {
        self.tracer = tracer
        let service = "inference.GRPCInferenceService"
        server = tracer.startSpan("\(service)/\(method)", context: parent, ofKind: .server, at: WallClockInstant.now())
        server.updateAttributes { attributes in
            attributes["rpc.system"] = "grpc"
            attributes["rpc.service"] = service
            attributes["rpc.method"] = method
            Self.setAddress(call.connection.localAddress, host: "server.address", port: "server.port", in: &attributes)
            Self.setAddress(call.connection.remoteAddress, host: "network.peer.address", port: "network.peer.port", in: &attributes)
            if let requestID = callRequestID(call) { attributes["switchyard.request_id"] = requestID }
        }
    }

    /// The request is routed and validated, and goes to the pool's queue now.
    func submitting(model: String, version: String, inferenceID: String) {
        guard !ended else { return }
        self.model = model
        self.version = version
        server.updateAttributes { attributes in
            attributes["switchyard.model.name"] = model
            attributes["switchyard.model.version"] = version
            if !inferenceID.isEmpty { attributes["switchyard.inference.id"] = inferenceID }
        }
        queue = tracer.startSpan(Self.queueSpanName, context: server.context, ofKind: .internal, at: WallClockInstant.now())
    }

    /// The pool sends the request to worker process `pid` now: the queue span ends, the worker
    /// span starts, and its trace context is what the worker receives. A request sent again
    /// (its first worker died) ends the earlier worker span with an error.
    func dispatched(toWorker name: String, pid: Int32) -> WorkerProtocol.TraceContext {
        guard !ended else { return WorkerProtocol.TraceContext() }
        let now = WallClockInstant.now()
        queue?.end(at: now)
        queue = nil
        if let earlier = worker {
            earlier.setStatus(SpanStatus(code: .error, message: "the worker died; the request was sent to another"))
            earlier.end(at: now)
        }
        let span = tracer.startSpan(Self.workerSpanName, context: server.context, ofKind: .client, at: now)
        span.updateAttributes { attributes in
            attributes["switchyard.worker.name"] = name
            attributes["switchyard.worker.pid"] = Int(pid)
            attributes["switchyard.model.name"] = model
            attributes["switchyard.model.version"] = version
        }
        worker = span
        var context = WorkerProtocol.TraceContext()
        tracer.inject(span.context, into: &context, using: WorkerTraceContextInjector())
        return context
    }

    /// Where the worker says its time went (the reply that carries `Timing`).
    func workerReported(_ timing: WorkerProtocol.Timing?) {
        guard let timing, let worker, !ended else { return }
        worker.updateAttributes { attributes in
            attributes["switchyard.worker.queue_ns"] = Int(clamping: timing.queueNs)
            attributes["switchyard.worker.compute_input_ns"] = Int(clamping: timing.computeInputNs)
            attributes["switchyard.worker.compute_infer_ns"] = Int(clamping: timing.computeInferNs)
            attributes["switchyard.worker.compute_output_ns"] = Int(clamping: timing.computeOutputNs)
        }
    }

    /// The request ended with `status`: every open span ends, with an error status when it is
    /// not OK (the worker span only when the worker was running it).
    func end(_ status: GRPCStatus) {
        guard !ended else { return }
        ended = true
        let now = WallClockInstant.now()
        let failed = status.code != .ok
        let error = SpanStatus(code: .error, message: "\(status.code): \(status.message)")
        if let queue {
            if failed { queue.setStatus(error) }
            queue.end(at: now)
        }
        if let worker {
            if failed { worker.setStatus(error) }
            worker.end(at: now)
        }
        queue = nil
        worker = nil
        server.attributes["rpc.grpc.status_code"] = status.code.rawValue
        if failed { server.setStatus(error) }
        server.end(at: now)
    }

    /// An address as `HTTP2ConnectionInfo` gives it (SwiftNIO's `SocketAddress` description,
    /// `[IPv4]host/127.0.0.1:8001`, `[IPv6]::1:8001`) as OpenTelemetry's address and port.
    private static func setAddress(_ description: String, host hostKey: String, port portKey: String, in attributes: inout SpanAttributes) {
        var address = Substring(description)
        if address.hasPrefix("["), let tagEnd = address.firstIndex(of: "]") { address = address[address.index(after: tagEnd)...] }
        if let slash = address.lastIndex(of: "/") { address = address[address.index(after: slash)...] }
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
            if !address.isEmpty && address != "?" { attributes[hostKey] = String(address) }
            return
        }
        attributes[hostKey] = String(address[..<colon])
        attributes[portKey] = port
    }
}

/// The call's request id: the client's `x-request-id`, or the one the gateway made for it
/// (`GatewayLoopObserver`); nil only when no observer runs (some tests).
func callRequestID(_ call: GRPCServerCall) -> String? {
    call.requestID.isEmpty ? nil : call.requestID
}

/// A W3C `traceparent` header value, as far as sampling needs it
/// (https://www.w3.org/TR/trace-context/#traceparent-header).
enum W3CTraceparent {
    /// The sampled flag of a well-formed `traceparent`, or nil for a malformed one (which the
    /// spec says to treat as absent): `version-traceid-parentid-flags`, lowercase hex, a trace
    /// id and a parent id that are not all zeros, version not `ff`; version 00 is exactly 55
    /// characters, a later version may append `-` and more.
    static func sampledFlag(of value: String) -> Bool? {
        var value = value
        return value.withUTF8 { sampledFlag(of: $0) }
    }

    private static func sampledFlag(of bytes: UnsafeBufferPointer<UInt8>) -> Bool? {
        guard bytes.count >= 55 else { return nil }
        func hex(_ byte: UInt8) -> UInt8? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
            default: nil
            }
        }
        /// True when bytes[range] are hex digits, not all zero.
        func nonZeroHex(_ range: Range<Int>) -> Bool? {
            var any = false
            for index in range {
                guard let digit = hex(bytes[index]) else { return nil }
                if digit != 0 { any = true }
            }
            return any
        }
        guard let v0 = hex(bytes[0]), let v1 = hex(bytes[1]), !(v0 == 15 && v1 == 15) else { return nil }
        guard bytes[2] == UInt8(ascii: "-"), bytes[35] == UInt8(ascii: "-"), bytes[52] == UInt8(ascii: "-") else { return nil }
        guard nonZeroHex(3..<35) == true, nonZeroHex(36..<52) == true else { return nil }
        guard let f0 = hex(bytes[53]), let f1 = hex(bytes[54]) else { return nil }
        if v0 == 0 && v1 == 0 {
            guard bytes.count == 55 else { return nil }
        } else if bytes.count > 55 {
            guard bytes[55] == UInt8(ascii: "-") else { return nil }
        }
        return (f0 << 4 | f1) & 1 == 1
    }
}

/// A wall-clock time for span starts and ends (spans are exported in Unix nanoseconds).
struct WallClockInstant: TracerInstant {
    let nanosecondsSinceEpoch: UInt64

    static func now() -> WallClockInstant {
        WallClockInstant(nanosecondsSinceEpoch: UInt64(max(0, WorkerProtocol.unixTimeNanoseconds())))
    }

    static func < (lhs: WallClockInstant, rhs: WallClockInstant) -> Bool { lhs.nanosecondsSinceEpoch < rhs.nanosecondsSinceEpoch }
}

/// Reads W3C trace context headers from a call's metadata.
struct GRPCMetadataExtractor: Extractor {
    func extract(key: String, from carrier: GRPCMetadata) -> String? {
        carrier.firstString(named: key)
    }
}

/// Writes a span's W3C trace context into the worker protocol's fields.
struct WorkerTraceContextInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout WorkerProtocol.TraceContext) {
        switch key {
        case "traceparent": carrier.traceparent = value
        case "tracestate": carrier.tracestate = value
        default: break
        }
    }
}
