import InferenceProtocol
import NIOCore

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
    /// Receives every frame for the request; `final` is true on the last.
    let sink: (_ frame: WorkerFrame, _ final: Bool) -> Void
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
    /// The stream's position while it is paused with a response due.
    var parked: ParkedStream?
    /// When the request was queued (its inputs prepared), for statistics and logs.
    var queuedAt: NIODeadline?
    /// When its INFER_REQUEST arrived.
    let arrivedAt: NIODeadline

    init(requestID: UInt64, arrivedAt: NIODeadline, sink: @escaping (_ frame: WorkerFrame, _ final: Bool) -> Void) {
        self.requestID = requestID
        self.arrivedAt = arrivedAt
        self.sink = sink
    }

    var isFinished: Bool { phase == .finished }
}

extension WorkerFrame {
    /// INFER_RESPONSE carrying `response`.
    static func inferResponse(requestID: UInt64, response: ByteBuffer, final: Bool, timing: WorkerProtocol.Timing? = nil) -> WorkerFrame {
        var message = WorkerProtocol.InferResponse()
        message.response = response
        message.final = final
        message.timing = timing
        return WorkerFrame(kind: .inferResponse, requestID: requestID, message: message)
    }

    /// INFER_RESPONSE with an error status: the last word on a request.
    static func inferResponse(requestID: UInt64, error: InferenceError) -> WorkerFrame {
        var message = WorkerProtocol.InferResponse()
        message.status = error.status
        message.final = true
        return WorkerFrame(kind: .inferResponse, requestID: requestID, message: message)
    }

    /// STREAM_END: no more responses for a decoupled model's request.
    static func streamEnd(requestID: UInt64) -> WorkerFrame {
        WorkerFrame(kind: .streamEnd, requestID: requestID, payload: ByteBuffer())
    }
}
