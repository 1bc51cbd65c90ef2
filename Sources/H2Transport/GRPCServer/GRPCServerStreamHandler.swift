import Logging
import NIOCore

/// Runs one gRPC call on one HTTP/2 stream: validates the request head, deframes request
/// messages for the method's handler, frames its responses, enforces the deadline, and turns a
/// client's RST_STREAM into cancellation. The rules live in `GRPCServerStreamStateMachine`;
/// this type does the I/O around it.
final class GRPCServerStreamHandler: HTTP2StreamDelegate {
    private let stream: HTTP2Stream
    private let registry: GRPCServiceRegistry
    private var machine: GRPCServerStreamStateMachine
    private var logger: Logger
    private var call: GRPCServerCall?
    /// Who takes the request: a handler object, or (unary methods) this type itself.
    private var handler: GRPCServerCallHandler?
    private var unaryResponder: GRPCServiceRegistry.UnaryResponder?
    private var unaryRequest: ByteBuffer?
    private var unaryRefused = false
    private var deadlineTimer: Scheduled<Void>?
    private var receivePaused = false
    private var pausedBytes = 0
    private var endPending = false
    private var headersSent = false
    private(set) var isFinished = false
    /// Hears the call's start, messages and end; nil when nobody listens.
    private let observer: (any GRPCServerObserver)?
    /// Whether the observer has heard the call's end (it hears it exactly once).
    private var observedEnd = true
    /// Whether the call's request id goes back in the response headers (or Trailers-Only).
    private let echoRequestID: Bool
    /// Admits calls before their handler runs; nil: every call runs.
    private let gate: (any GRPCServerCallGate)?
    /// Whether the gate admitted the call and has not yet heard it end (it hears it once).
    private var admitted = false

    init(
        stream: HTTP2Stream, registry: GRPCServiceRegistry, configuration: GRPCServerStreamStateMachine.Configuration, logger: Logger,
        observer: (any GRPCServerObserver)? = nil, gate: (any GRPCServerCallGate)? = nil, echoRequestID: Bool = false
    ) {
        self.stream = stream
        self.registry = registry
        self.machine = GRPCServerStreamStateMachine(configuration: configuration)
        self.logger = logger
        self.observer = observer
        self.gate = gate
        self.echoRequestID = echoRequestID
    }

    var isWritable: Bool { stream.isWritable }
    var bufferedOutboundBytes: Int { stream.outboundBytes }

    // MARK: HTTP2StreamDelegate

    func stream(_ stream: HTTP2Stream, receivedHeaders headers: [HTTP2HeaderField], endStream: Bool) {
        let action: GRPCServerStreamStateMachine.ReceiveHeadersAction
        do {
            action = try machine.receiveHeaders(fields: headers, endStream: endStream, receivedAt: .now())
        } catch {
            logger.debug("unexpected header block", metadata: ["stream": "\(stream.id)", "error": "\(error)"])
            stream.reset(.protocolError)
            return
        }
        // `consume`: the head moves into the call instead of being copied out of the action.
        switch consume action {
        case .reject(let headers, let resetStream):
            isFinished = true
            stream.sendHeaders(pairs: headers, endStream: true)
            if resetStream { stream.reset(.noError) }
        case .accept(let head):
            let deadline = head.deadline
            let call = GRPCServerCall(
                head: head, connection: stream.connectionInfo, eventLoop: stream.eventLoop, logger: logger, streamHandler: self, startedAt: .now())
            self.call = call
            let method = registry.method(for: call.head.path)
            call.method = method?.descriptor
            if let observer {
                observedEnd = false
                observer.callStarted(call)
            }
            guard let method else {
                finish(GRPCStatus(code: .unimplemented, message: "method \(call.head.path) is not served here"), trailers: GRPCMetadata())
                return
            }
            if let gate {
                if let refusal = gate.admit(call) {
                    finish(refusal.status, trailers: refusal.trailers)
                    return
                }
                admitted = true
            }
            if let deadline {
                deadlineTimer = stream.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
                    self.deadlineExceeded()
                }
            }
            switch method.kind {
            case .handler(let factory): handler = factory(call)
            case .unary(let responder): unaryResponder = responder
            }
            if endStream { deliverMessages() }
        }
    }

    func stream(_ stream: HTTP2Stream, receivedData data: ByteBuffer) {
        call?.bytesReceived &+= data.readableBytes
        do {
            try machine.receiveMessageBytes(data)
        } catch {
            stream.reset(.protocolError)
            return
        }
        if receivePaused {
            pausedBytes += data.readableBytes
        } else {
            stream.consume(data.readableBytes)
            deliverMessages()
        }
    }

    func streamReceivedEnd(_ stream: HTTP2Stream) {
        do {
            try machine.receiveEnd()
        } catch {
            return  // END_STREAM on the headers was already reported with them
        }
        deliverMessages()
    }

    func stream(_ stream: HTTP2Stream, wasReset code: HTTP2ErrorCode) {
        if let status = machine.receiveReset(errorCode: code.rawValue) {
            cancel(status)
        }
        isFinished = true
    }

    func streamClosed(_ stream: HTTP2Stream) {
        deadlineTimer?.cancel()
        if !isFinished {
            isFinished = true
            cancel(GRPCStatus(code: .cancelled, message: "the stream closed before the call finished"))
        }
        observeEnd(GRPCStatus(code: .cancelled, message: "the stream was reset"))
        handler = nil
        unaryResponder = nil
        unaryRequest = nil
        call?.onWritabilityChanged = nil
        call?.onEnded = nil
        call?.streamHandler = nil
    }

    func stream(_ stream: HTTP2Stream, writabilityChanged isWritable: Bool) {
        call?.onWritabilityChanged?(isWritable)
    }

    func streamConnectionDraining(_ stream: HTTP2Stream, reason: String) {
        guard !isFinished else { return }
        handler?.callDraining(reason: reason)
    }

    func streamDrainTimedOut(_ stream: HTTP2Stream, reason: String) {
        guard !isFinished else { return }
        let status = GRPCStatus(
            code: .unavailable, message: "\(reason), and this call did not finish within the drain timeout; retry it on a new connection")
        finish(status, trailers: GRPCMetadata())
        cancel(status)
    }

    // MARK: Inbound

    private func deliverMessages() {
        guard !receivePaused else { return }
        while handler != nil || unaryResponder != nil, !isFinished {
            switch machine.nextInboundMessage() {
            case .message(let message):
                if let observer, let call { observer.callReceivedMessage(call) }
                if let handler {
                    handler.callReceived(message: message)
                } else {
                    unaryReceived(message)
                }
                if receivePaused { return }
            case .awaitingMoreData:
                return
            case .endOfRequest:
                if !endPending {
                    endPending = true
                    if let handler {
                        handler.callReceivedEnd()
                    } else {
                        unaryReceivedEnd()
                    }
                }
                return
            case .failed(let status):
                finish(status, trailers: GRPCMetadata())
                cancel(status)
                return
            }
        }
    }

    /// A unary method takes exactly one request message.
    private func unaryReceived(_ message: ByteBuffer) {
        if unaryRequest == nil {
            unaryRequest = message
        } else if !unaryRefused, let call {
            unaryRefused = true
            finish(GRPCStatus(code: .internalError, message: "unary method \(call.head.path) received more than one request message"), trailers: GRPCMetadata())
        }
    }

    private func unaryReceivedEnd() {
        guard !unaryRefused, let call, let responder = unaryResponder else { return }
        guard let request = unaryRequest else {
            finish(GRPCStatus(code: .internalError, message: "unary method \(call.head.path) received no request message"), trailers: GRPCMetadata())
            return
        }
        unaryRequest = nil
        responder(request, call)
    }

    func setReceivePaused(_ paused: Bool) {
        guard paused != receivePaused else { return }
        receivePaused = paused
        if !paused {
            if pausedBytes > 0 {
                stream.consume(pausedBytes)
                pausedBytes = 0
            }
            deliverMessages()
        }
    }

    // MARK: Outbound

    func sendHeaders(_ metadata: GRPCMetadata) {
        guard !isFinished else { return }
        do {
            // The request id (never indexed: unique per call) and the implementation's extra field.
            var extras: HTTP2ExtraHeaders?
            if echoRequestID, let call, !call.requestID.isEmpty { extras = HTTP2ExtraHeaders(first: ("x-request-id", call.requestID, true)) }
            if let call, let extra = call.responseHeader {
                if extras == nil {
                    extras = HTTP2ExtraHeaders(first: (extra.name, extra.value, false))
                } else {
                    extras!.second = (extra.name, extra.value, false)
                }
            }
            if let extras {
                if metadata.isEmpty {
                    // The usual case: the prepared default headers and the extras after them.
                    let headers = try machine.sendHeaders(metadata)
                    headersSent = true
                    stream.sendHeaders(pairs: headers, extras: extras)
                    return
                }
                var metadata = metadata
                for index in 0..<extras.count { metadata.add(extras[index].name, extras[index].value) }
                let headers = try machine.sendHeaders(metadata)
                headersSent = true
                stream.sendHeaders(pairs: headers)
                return
            }
            let headers = try machine.sendHeaders(metadata)
            headersSent = true
            stream.sendHeaders(pairs: headers)
        } catch {
            logger.debug("sendHeaders refused", metadata: ["error": "\(error)"])
        }
    }

    func sendMessage(_ message: some GRPCMessageEncodable, compress: Bool) {
        guard !isFinished else { return }
        do {
            if !headersSent { sendHeaders(GRPCMetadata()) }
            switch try machine.sendMessage(message, compress: compress) {
            case .framed:
                if let observer, let call { observer.callSentMessage(call) }
                if let bytes = machine.nextOutboundBytes() {
                    call?.bytesSent &+= bytes.readableBytes
                    stream.sendData(bytes)
                }
            case .refused(let status):
                finish(status, trailers: GRPCMetadata())
            }
        } catch {
            logger.debug("sendMessage refused", metadata: ["error": "\(error)"])
        }
    }

    func finish(_ status: GRPCStatus, trailers: GRPCMetadata) {
        guard !isFinished else { return }
        isFinished = true
        deadlineTimer?.cancel()
        observeEnd(status)
        call?.ended(status)
        do {
            var trailers = trailers
            if !headersSent, echoRequestID, let call, !call.requestID.isEmpty { trailers.add("x-request-id", call.requestID) }
            let action = try machine.sendStatus(status, trailers: trailers)
            if action.isTrailersOnly {
                stream.sendHeaders(pairs: action.headers, endStream: true)
            } else {
                if let data = action.data {
                    call?.bytesSent &+= data.readableBytes
                    stream.sendData(data)
                }
                stream.sendEnd(pairs: action.headers)
            }
            if action.resetStream { stream.reset(.noError) }
        } catch {
            logger.debug("sendStatus refused", metadata: ["error": "\(error)"])
        }
    }

    /// Tells the gate (when it admitted the call) and the observer how the call ended, once.
    private func observeEnd(_ status: GRPCStatus) {
        if admitted, let gate, let call {
            admitted = false
            gate.admittedCallEnded(call)
        }
        guard !observedEnd, let observer, let call else { return }
        observedEnd = true
        observer.callFinished(call, status: status)
    }

    private func cancel(_ status: GRPCStatus) {
        observeEnd(status)
        deadlineTimer?.cancel()
        unaryResponder = nil
        unaryRequest = nil
        let handler = self.handler
        self.handler = nil
        call?.ended(status)
        handler?.callCancelled(status)
    }

    private func deadlineExceeded() {
        guard !isFinished else { return }
        let status = GRPCStatus(code: .deadlineExceeded, message: "deadline of \(call?.head.timeout.map { "\($0)" } ?? "?") exceeded")
        finish(status, trailers: GRPCMetadata())
        cancel(status)
    }
}
