import NIOCore

/// One streaming gRPC call from the client side: request messages go out with `send`, response
/// messages come in through `messages`, and the call ends with `status`.
///
/// Backpressure works both ways. `send` returns once the message is queued and the stream's
/// send queue is below its watermark, so a fast sender waits for the network and the server's
/// flow-control window. `messages` reads at most a bounded number of messages ahead of its
/// consumer (`GRPCClientConnection.Configuration.responseReadAhead`); beyond that, received
/// bytes are not acknowledged to HTTP/2 flow control and the server stops sending.
///
/// Thread-safe: every member may be called from any task; the work happens on the
/// connection's event loop. `messages` may be iterated once. Dropping the iterator before the
/// end, or cancelling the task iterating it, cancels the call.
public final class GRPCClientStream: Sendable {
    /// The response messages, in order. The sequence ends normally when the call ends OK, and
    /// throws the call's `RPCError` otherwise, after the messages that came before it.
    public let messages: Messages

    private let call: NIOLoopBoundBox<GRPCClientCall?>
    private let eventLoop: EventLoop
    private let headersFuture: EventLoopFuture<GRPCMetadata>
    private let outcomeFuture: EventLoopFuture<GRPCClientCallOutcome>

    init(
        messages: Messages,
        call: NIOLoopBoundBox<GRPCClientCall?>,
        eventLoop: EventLoop,
        headers: EventLoopFuture<GRPCMetadata>,
        outcome: EventLoopFuture<GRPCClientCallOutcome>
    ) {
        self.messages = messages
        self.call = call
        self.eventLoop = eventLoop
        self.headersFuture = headers
        self.outcomeFuture = outcome
    }

    /// Sends one request message, compressed when the call compresses and `compress` allows.
    /// Returns once it is queued and the send queue is below its watermark.
    ///
    /// - Throws: the call's `RPCError` when it has ended with an error (after an OK end the
    ///   message is dropped silently: the server reads no more); FAILED_PRECONDITION after
    ///   `finish()`. Cancelling the waiting task cancels the call.
    public func send(_ message: ByteBuffer, compress: Bool = true) async throws {
        let call = self.call
        let sent = eventLoop.flatSubmit { () -> EventLoopFuture<Void> in
            guard let driver = call.value else {
                return call.eventLoop.makeFailedFuture(RPCError(code: .internalError, message: "the call was not started"))
            }
            return driver.send(message, compress: compress)
        }
        try await withTaskCancellationHandler {
            try await sent.get()
        } onCancel: {
            self.cancel()
        }
    }

    /// Ends the request stream (half-close, END_STREAM) after the messages already sent. The
    /// response goes on. Calling it again, or after the call ended, does nothing.
    public func finish() {
        let call = self.call
        eventLoop.execute { call.value?.finishRequest() }
    }

    /// Cancels the call: RST_STREAM CANCEL to the server, and the call ends with CANCELLED
    /// (unless it had already ended).
    public func cancel() {
        let call = self.call
        eventLoop.execute {
            call.value?.cancel(with: GRPCStatus(code: .cancelled, message: "the call was cancelled by the client"))
        }
    }

    /// The response headers' custom metadata, once they arrive (empty for a Trailers-Only
    /// response that ended OK).
    /// - Throws: the call's `RPCError` when it ended with an error and without headers.
    public var headers: GRPCMetadata {
        get async throws { try await headersFuture.get() }
    }

    /// The call's status, once it has ended. Waits behind response messages that have not been
    /// read: read `messages` (or cancel) first.
    public var status: GRPCStatus {
        get async {
            // The future is never failed.
            (try? await outcomeFuture.get().status) ?? GRPCStatus(code: .unknown, message: "the call's outcome was lost")
        }
    }

    /// The server's trailers, once the call has ended (empty when it sent none).
    public var trailers: GRPCMetadata {
        get async { (try? await outcomeFuture.get().trailers) ?? GRPCMetadata() }
    }
}

extension GRPCClientStream {
    /// The response messages of a streaming call, read with `for try await`.
    public struct Messages: AsyncSequence, Sendable {
        /// One response message, decompressed, without its 5-byte prefix.
        public typealias Element = ByteBuffer

        typealias Producer = NIOThrowingAsyncSequenceProducer<
            ByteBuffer, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark, Demand
        >
        typealias Source = Producer.Source

        let producer: Producer

        /// Iterates the messages; `next()` returns nil after the last message of a call that
        /// ended OK and throws the call's `RPCError` otherwise.
        public struct AsyncIterator: AsyncIteratorProtocol {
            var base: Producer.AsyncIterator

            /// The next message; nil at the end of a call that ended OK.
            /// - Throws: the call's `RPCError`, after the messages that came before the error.
            public mutating func next() async throws -> ByteBuffer? {
                try await base.next()
            }
        }

        /// The iterator. Make only one: the messages are delivered once.
        public func makeAsyncIterator() -> AsyncIterator {
            AsyncIterator(base: producer.makeAsyncIterator())
        }

        /// Tells the call, on its event loop, when its consumer wants more or has gone.
        struct Demand: NIOAsyncSequenceProducerDelegate {
            let call: NIOLoopBoundBox<GRPCClientCall?>

            func produceMore() {
                let call = self.call
                call.eventLoop.execute { call.value?.resumeReading() }
            }

            func didTerminate() {
                let call = self.call
                call.eventLoop.execute { call.value?.messagesAbandoned() }
            }
        }
    }
}
