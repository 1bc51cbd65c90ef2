import InferenceProtocol
import Logging
import NIOCore
import ProtoWire

/// Where a request's frames go: the connection that sent it. One receiver serves every request
/// of its connection, so starting a request allocates no closure. Called on the runtime's loop.
protocol InferenceCallReceiver: AnyObject {
    /// Takes one encoded frame for `call`; `final` is true on the last.
    func receive(_ frame: ByteBuffer, final: Bool, for call: InferenceCall)
    /// False while the receiver cannot take more frames (its socket's buffer is over its high
    /// watermark): a streaming call parks and asks `notifyWhenWritable`.
    var acceptsMoreFrames: Bool { get }
    /// Calls `RuntimeCore.resumeWritable(call)` once the receiver takes frames again.
    func notifyWhenWritable(_ call: InferenceCall)
}

extension InferenceCallReceiver {
    var acceptsMoreFrames: Bool { true }
    func notifyWhenWritable(_ call: InferenceCall) {}
}

/// A receiver that hands frames to a closure (for `WorkerRuntime.infer` and tests).
final class ClosureCallReceiver: InferenceCallReceiver {
    private let body: (_ frame: ByteBuffer, _ final: Bool) -> Void

    init(_ body: @escaping (_ frame: ByteBuffer, _ final: Bool) -> Void) {
        self.body = body
    }

    func receive(_ frame: ByteBuffer, final: Bool, for call: InferenceCall) { body(frame, final) }
}

/// One request inside the runtime, from its INFER_REQUEST frame to its last answer.
///
/// Lives on the runtime's event loop and is touched only there. The connection keeps it by
/// request id so that CANCEL, PAUSE and RESUME can find it; the runtime keeps it in a queue or a
/// running batch.
final class InferenceCall {
    enum Phase {
        /// Its bytes are being decoded and checked.
        case preparing
        /// Waiting in a batch queue or for a decoupled model's instance.
        case queued
        /// Executing (in a batch, or sending a decoupled model's responses).
        case running
        /// Answered for the last time, or cancelled: nothing more is sent.
        case finished
    }

    /// Where a paused decoupled stream stopped: the next response to send, its delay served.
    struct ParkedStream {
        var plan: DecoupledPlan
        var next: Int
    }

    let requestID: UInt64
    /// Receives every frame for the request, encoded.
    let receiver: any InferenceCallReceiver
    var phase: Phase = .preparing
    /// Set by CANCEL (or a closed connection): the request is dropped wherever it is.
    var isCancelled = false
    /// When the client's deadline passes; nil when it has none.
    var deadline: NIODeadline?
    /// The model's lane, once the request named a model the worker serves.
    var lane: ModelLane?
    var prepared: PreparedRequest?
    /// The bytes of the client's request, which decide whether a batch may run inline.
    var requestByteCount = 0
    /// The next scheduled step of a decoupled model's responses (or, while parked, the watch on
    /// its deadline).
    var pendingResponse: Scheduled<Void>?
    /// Set by PAUSE, cleared by RESUME: a decoupled stream sends nothing more meanwhile.
    var isPaused = false
    /// A decoupled stream waits for its connection's socket to drain (backpressure from the
    /// socket, whatever the gateway asks with PAUSE).
    var isWaitingForWritability = false
    /// The stream's position while it is paused with a response due.
    var parked: ParkedStream?
    /// When the request was queued (its inputs prepared), for statistics and logs.
    var queuedAt: NIODeadline?
    /// When its INFER_REQUEST arrived.
    let arrivedAt: NIODeadline
    /// `request_id` and `trace_id` for every log line about the request (from the
    /// INFER_REQUEST's `request_id` and `traceparent`); nil when it carried neither.
    var logMetadata: Logger.Metadata?

    init(requestID: UInt64, arrivedAt: NIODeadline, receiver: any InferenceCallReceiver) {
        self.requestID = requestID
        self.arrivedAt = arrivedAt
        self.receiver = receiver
    }

    /// Hands `frame` to the receiver.
    func send(_ frame: ByteBuffer, final: Bool) {
        receiver.receive(frame, final: final, for: self)
    }

    var isFinished: Bool { phase == .finished }
}

/// The frames the runtime sends for a request, each encoded straight into the buffer that is
/// written to the socket (header first, payload in place), so a response's tensors are copied
/// once, into that buffer, and never again.
enum AnswerFrame {
    /// INFER_RESPONSE carrying `response`; `timing` is asked for once the response is encoded.
    static func response(
        requestID: UInt64, _ response: ModelInferResponse, final: Bool, timing: () -> WorkerProtocol.Timing? = { nil }
    ) -> ByteBuffer {
        let tensorBytes = response.rawOutputContents.reduce(0) { $0 + $1.readableBytes }
        let capacity = 160 + 48 * response.outputs.count + tensorBytes
        return WorkerFrame.encoded(kind: .inferResponse, requestID: requestID, payloadCapacity: capacity) {
            WorkerProtocol.InferResponse.write(response: response, final: final, to: &$0, timing: timing)
        }
    }

    /// INFER_RESPONSE carrying the response `model` makes for `request` with `outputs`, which
    /// must pass `ServedModel.checkOutputs`: the same bytes as `response(requestID:_:final:timing:)`
    /// with `model.response(for:outputs:)`, but the tensors are written straight into the frame.
    static func response(
        requestID: UInt64, model: ServedModel, request: PreparedRequest, outputs: [String: Tensor], final: Bool,
        timing: () -> WorkerProtocol.Timing? = { nil }
    ) -> ByteBuffer {
        var tensorBytes = 0
        for (_, tensor) in outputs { tensorBytes += tensor.rawContentsByteCount }
        let capacity = 160 + 48 * outputs.count + tensorBytes
        return WorkerFrame.encoded(kind: .inferResponse, requestID: requestID, payloadCapacity: capacity) { writer in
            writer.writeLengthDelimited(field: 1) { model.writeResponse(for: request, outputs: outputs, to: &$0) }
            if final { writer.write(ProtoBool.self, field: 3, final) }
            if let timing = timing() { writer.writeMessage(field: 4, timing) }
        }
    }

    /// INFER_RESPONSE with an error status: the last word on a request.
    static func error(requestID: UInt64, _ error: InferenceError) -> ByteBuffer {
        var message = WorkerProtocol.InferResponse()
        message.status = error.status
        message.final = true
        return WorkerFrame.encoded(kind: .inferResponse, requestID: requestID, payloadCapacity: 16 + error.message.utf8.count) {
            message.encode(to: &$0)
        }
    }

    /// STREAM_END: no more responses for a decoupled model's request.
    static func streamEnd(requestID: UInt64) -> ByteBuffer {
        WorkerFrame.encoded(kind: .streamEnd, requestID: requestID, payloadCapacity: 0) { _ in }
    }
}

extension WorkerProtocol.InferRequest {
    /// The log metadata of the request: `request_id` (the call's x-request-id) and `trace_id`
    /// (from `traceparent`), each when present; nil when neither is.
    var logMetadata: Logger.Metadata? {
        guard !clientRequestID.isEmpty || !trace.traceparent.isEmpty else { return nil }
        var metadata: Logger.Metadata = [:]
        if !clientRequestID.isEmpty { metadata["request_id"] = "\(clientRequestID)" }
        if let traceID = trace.traceID { metadata["trace_id"] = "\(traceID)" }
        return metadata
    }
}
