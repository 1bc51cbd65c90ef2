import Logging
import NIOCore
import NIOPosix

/// A gRPC client connection: one TCP connection (TLS with ALPN h2, or h2c with prior
/// knowledge) carrying any number of concurrent calls as HTTP/2 streams.
///
/// Thread-safe: calls may start from any task. All HTTP/2 and gRPC work happens on the
/// connection's event loop; the async API hops there and back. Calls beyond the server's
/// SETTINGS_MAX_CONCURRENT_STREAMS wait in nghttp2's queue until a stream closes.
///
/// Failures are `RPCError`s with the status a gRPC client reports: UNAVAILABLE when the
/// connection is lost, closing, or the server sent GOAWAY (new calls fail at once; calls the
/// server did not process, above its GOAWAY's last stream id, fail with UNAVAILABLE and are
/// safe to retry elsewhere), DEADLINE_EXCEEDED when the timeout passes, CANCELLED when the
/// task is cancelled, and whatever status the server sent.
///
/// Close it with `close()`; a connection that is dropped without it keeps its socket open.
public final class GRPCClientConnection: Sendable {
    /// How the connection and its calls behave. Read top to bottom; the defaults suit a client
    /// of Switchyard or any gRPC server.
    public struct Configuration: Sendable {
        /// HTTP/2 settings and protections. Default: `HTTP2Configuration()` without its idle
        /// timeout (a client keeps its connection until it closes it).
        public var http2: HTTP2Configuration
        /// Message limits, accepted response encodings and the user agent of every call.
        public var calls = GRPCClientStreamStateMachine.Configuration()
        /// How long connecting may take: TCP, the TLS handshake and the server's first
        /// SETTINGS. Default 10 seconds.
        public var connectTimeout: TimeAmount = .seconds(10)
        /// Response messages a streaming call reads ahead of its consumer before it stops
        /// acknowledging DATA (the server's window then closes). Default 16.
        public var responseReadAhead: Int = 16

        /// The defaults.
        public init() {
            var http2 = HTTP2Configuration()
            http2.idleTimeout = nil
            self.http2 = http2
        }
    }

    /// The event loop that runs this connection and all its calls.
    public let eventLoop: EventLoop
    /// The server's address as given to `connect`, as "host:port".
    public let target: String

    private let channel: Channel
    private let http2: NIOLoopBoundBox<HTTP2ConnectionHandler?>
    private let state: GRPCClientConnectionState
    private let configuration: Configuration
    private let scheme: String
    private let authority: String
    private let logger: Logger

    private init(
        channel: Channel,
        http2: NIOLoopBoundBox<HTTP2ConnectionHandler?>,
        state: GRPCClientConnectionState,
        configuration: Configuration,
        scheme: String,
        authority: String,
        target: String,
        logger: Logger
    ) {
        self.channel = channel
        self.eventLoop = channel.eventLoop
        self.http2 = http2
        self.state = state
        self.configuration = configuration
        self.scheme = scheme
        self.authority = authority
        self.target = target
        self.logger = logger
    }

    /// Connects to `host`:`port` and returns once the server's HTTP/2 SETTINGS have arrived
    /// (after the TLS handshake, when `tls` is given).
    ///
    /// - Parameters:
    ///   - host: a host name or IP address.
    ///   - port: the TCP port.
    ///   - tls: a client `TLSContext` (its configuration says which CAs to trust and, for
    ///     mutual TLS, which certificate to present); nil for plaintext h2c.
    ///   - serverName: the name the server's certificate must carry, sent as SNI unless it
    ///     is an IP address, and used as `:authority`. Default: the TLS configuration's
    ///     `serverName`, else `host`.
    ///   - configuration: limits and behaviour; see `Configuration`.
    ///   - group: where the connection's event loop comes from.
    ///   - logger: for connection and call events (debug level, failures at warning).
    /// - Throws: the connect error (`NIOConnectionError`, `ChannelError`), a `TLSError` when
    ///   the handshake fails, or `ChannelError.connectTimeout`.
    public static func connect(
        host: String,
        port: Int,
        tls: TLSContext? = nil,
        serverName: String? = nil,
        configuration: Configuration = Configuration(),
        group: EventLoopGroup,
        logger: Logger
    ) async throws -> GRPCClientConnection {
        let eventLoop = group.next()
        let state = GRPCClientConnectionState()
        let ready = eventLoop.makePromise(of: Void.self)
        let http2 = NIOLoopBoundBox.makeEmptyBox(valueType: HTTP2ConnectionHandler.self, eventLoop: eventLoop)
        let name = serverName ?? tls?.configuration.serverName ?? host
        let target = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        let authority = name.contains(":") ? "[\(name)]:\(port)" : "\(name):\(port)"
        var logger = logger
        logger[metadataKey: "grpc.target"] = "\(target)"
        let connectionLogger = logger

        let timeout = eventLoop.scheduleTask(in: configuration.connectTimeout) {
            if state.claimReadiness() { ready.fail(ChannelError.connectTimeout(configuration.connectTimeout)) }
        }
        let channel: Channel
        do {
            channel = try await ClientBootstrap(group: eventLoop)
                .connectTimeout(configuration.connectTimeout)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let sync = channel.pipeline.syncOperations
                        if let tls {
                            try sync.addHandler(TLSHandler(context: tls, serverName: name, logger: connectionLogger))
                        }
                        let handler = HTTP2ConnectionHandler(client: configuration.http2, logger: connectionLogger)
                        http2.value = handler
                        try sync.addHandler(GRPCClientConnectionObserver(state: state, ready: ready))
                        try sync.addHandler(handler)
                        try sync.addHandler(GRPCClientConnectionObserver(state: state, ready: ready))
                    }
                }
                .connect(host: host, port: port)
                .get()
        } catch {
            timeout.cancel()
            if state.claimReadiness() { ready.fail(error) }
            throw error
        }
        do {
            try await ready.futureResult.get()
            timeout.cancel()
        } catch {
            timeout.cancel()
            try? await channel.close()
            throw error
        }
        logger.debug("connected", metadata: ["max_concurrent_streams": "\(state.maxConcurrentStreams.map { "\($0)" } ?? "?")"])
        return GRPCClientConnection(
            channel: channel,
            http2: http2,
            state: state,
            configuration: configuration,
            scheme: tls == nil ? "http" : "https",
            authority: authority,
            target: target,
            logger: logger
        )
    }

    /// Whether new calls can start: false once GOAWAY was sent or received, or the connection
    /// closed. A load generator reconnects when this turns false.
    public var isAcceptingCalls: Bool { state.phase == .ready }

    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS (UInt32.max when it set no limit).
    public var maxConcurrentStreams: UInt32 { state.maxConcurrentStreams ?? UInt32.max }

    /// Completes when the connection's channel has closed.
    public var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    // MARK: Calls

    /// Makes a unary call: one request message, one response message.
    ///
    /// - Parameters:
    ///   - path: `/package.Service/Method`.
    ///   - request: the serialized request message.
    ///   - metadata: custom request metadata (`-bin` names carry bytes).
    ///   - timeout: the deadline, counted from now, sent as `grpc-timeout`; the call fails with
    ///     DEADLINE_EXCEEDED when it passes. nil: no deadline.
    ///   - compression: compresses the request (and says so in `grpc-encoding`); nil: none.
    /// - Returns: the response headers' metadata, the message and the trailers.
    /// - Throws: `RPCError` with the call's status when it is not OK (its `trailers` are the
    ///   server's). Cancelling the task cancels the call (RST_STREAM CANCEL, CANCELLED).
    public func unary(
        path: String,
        request: ByteBuffer,
        metadata: GRPCMetadata = GRPCMetadata(),
        timeout: Duration? = nil,
        compression: GRPCCompression.Algorithm? = nil
    ) async throws -> GRPCClientResponse {
        let promise = eventLoop.makePromise(of: GRPCClientResponse.self)
        let call = startCall(path: path, metadata: metadata, timeout: timeout, compression: compression, mode: .unary(promise)) { call in
            _ = call.send(request, compress: true)
            call.finishRequest()
        }
        return try await withTaskCancellationHandler {
            try await promise.futureResult.get()
        } onCancel: {
            call.eventLoop.execute {
                call.value?.cancel(with: GRPCStatus(code: .cancelled, message: "the call was cancelled by the client"))
            }
        }
    }

    /// Starts a bidirectional streaming call: send with `send`, end the request with
    /// `finish()`, read `messages`, then `status`. The stream opens at once; requests and
    /// responses flow independently.
    ///
    /// - Parameters:
    ///   - path: `/package.Service/Method`.
    ///   - metadata: custom request metadata.
    ///   - timeout: the deadline for the whole call, counted from now; nil: none.
    ///   - compression: compresses the request messages; nil: none.
    public func bidirectionalStream(
        path: String,
        metadata: GRPCMetadata = GRPCMetadata(),
        timeout: Duration? = nil,
        compression: GRPCCompression.Algorithm? = nil
    ) -> GRPCClientStream {
        makeStream(path: path, metadata: metadata, timeout: timeout, compression: compression) { _ in }
    }

    /// Starts a server-streaming call: sends `request`, ends the request stream, and returns
    /// the call for reading its `messages` and `status`.
    public func serverStreaming(
        path: String,
        request: ByteBuffer,
        metadata: GRPCMetadata = GRPCMetadata(),
        timeout: Duration? = nil,
        compression: GRPCCompression.Algorithm? = nil
    ) -> GRPCClientStream {
        makeStream(path: path, metadata: metadata, timeout: timeout, compression: compression) { call in
            _ = call.send(request, compress: true)
            call.finishRequest()
        }
    }

    /// Starts a call from the connection's event loop and drives it there with callbacks: no
    /// task, hop or promise per call, for clients that keep many calls in flight from loop-bound
    /// state (the load-test driver). Send the request messages with the returned call's `send`,
    /// end them with `finish()`.
    ///
    /// Must be called on `eventLoop`; the callbacks run there too. `onMessage` receives each
    /// response message as it is deframed; `onEnd` receives the status exactly once, also when
    /// the call could not start (UNAVAILABLE) or was cancelled.
    public func startCallOnEventLoop(
        path: String,
        metadata: GRPCMetadata = GRPCMetadata(),
        timeout: Duration? = nil,
        compression: GRPCCompression.Algorithm? = nil,
        onMessage: @escaping (ByteBuffer) -> Void,
        onEnd: @escaping (GRPCStatus) -> Void
    ) -> GRPCClientLoopCall {
        eventLoop.preconditionInEventLoop()
        let head = GRPCClientStreamStateMachine.RequestHead(
            path: path, scheme: scheme, authority: authority, metadata: metadata, compression: compression)
        let deadline = timeout.map { NIODeadline.now() + Self.timeAmount($0) }
        let callbacks = NIOLoopBound(GRPCClientLoopCall.Callbacks(onMessage: onMessage, onEnd: onEnd), eventLoop: eventLoop)
        let call = GRPCClientCall(
            head: head, deadline: deadline, mode: .callbacks(callbacks), configuration: configuration.calls,
            connectionState: state, eventLoop: eventLoop, logger: logger)
        if let handler = http2.value {
            call.start(on: handler)
        } else {
            call.cancel(with: GRPCStatus(code: .unavailable, message: "the connection has no HTTP/2 handler"))
        }
        return GRPCClientLoopCall(call: call)
    }

    /// Sends a plain HTTP/2 request (not gRPC) from the connection's event loop: `:method`,
    /// `:scheme`, `:authority` and `:path`, then `headers`, then `body` if any. The response body
    /// is read and dropped; `onEnd` receives the `:status` once the response has ended, or nil
    /// when the stream was reset or could not open. For comparing the gRPC client with h2load
    /// against a static file (`switchyard loadtest --raw-http2`).
    ///
    /// Must be called on `eventLoop`; `onEnd` runs there, exactly once.
    public func startRequestOnEventLoop(
        method: String = "GET",
        path: String,
        headers: [HTTP2HeaderField] = [],
        body: ByteBuffer? = nil,
        onEnd: @escaping (Int?) -> Void
    ) {
        eventLoop.preconditionInEventLoop()
        guard let handler = http2.value, state.unavailableReason == nil else {
            onEnd(nil)
            return
        }
        var fields = [
            HTTP2HeaderField(":method", method), HTTP2HeaderField(":scheme", scheme),
            HTTP2HeaderField(":authority", authority), HTTP2HeaderField(":path", path),
        ]
        fields.append(contentsOf: headers)
        let request = HTTP2PlainRequest(onEnd: onEnd)
        do {
            let stream = try handler.openStream(headers: fields, delegate: request, endStream: body == nil)
            if let body {
                stream.sendData(body)
                stream.sendEnd(trailers: nil)
            }
        } catch {
            request.end()
        }
    }

    // MARK: Closing

    /// Closes gracefully: no new calls start, GOAWAY goes to the server, calls in flight run to
    /// their end (within the HTTP/2 configuration's `drainTimeout`), then the connection
    /// closes. Returns when it has.
    public func close() async {
        state.goingAway(GRPCStatus(code: .unavailable, message: "the connection is closing"))
        channel.triggerUserOutboundEvent(HTTP2GracefulShutdown(), promise: nil)
        try? await channel.closeFuture.get()
    }

    // MARK: Private

    private func makeStream(
        path: String,
        metadata: GRPCMetadata,
        timeout: Duration?,
        compression: GRPCCompression.Algorithm?,
        then: @escaping @Sendable (GRPCClientCall) -> Void
    ) -> GRPCClientStream {
        let box = NIOLoopBoundBox.makeEmptyBox(valueType: GRPCClientCall.self, eventLoop: eventLoop)
        let readAhead = max(1, configuration.responseReadAhead)
        let producer = GRPCClientStream.Messages.Producer.makeSequence(
            elementType: ByteBuffer.self,
            failureType: (any Error).self,
            backPressureStrategy: .init(lowWatermark: max(1, readAhead / 2), highWatermark: readAhead),
            finishOnDeinit: false,
            delegate: GRPCClientStream.Messages.Demand(call: box)
        )
        let headers = eventLoop.makePromise(of: GRPCMetadata.self)
        let outcome = eventLoop.makePromise(of: GRPCClientCallOutcome.self)
        startCall(
            into: box, path: path, metadata: metadata, timeout: timeout, compression: compression,
            mode: .streaming(producer.source)
        ) { call in
            // A streaming call always has both promises.
            call.headersPromise?.futureResult.cascade(to: headers)
            call.outcomePromise?.futureResult.cascade(to: outcome)
            then(call)
        }
        return GRPCClientStream(
            messages: GRPCClientStream.Messages(producer: producer.sequence),
            call: box,
            eventLoop: eventLoop,
            headers: headers.futureResult,
            outcome: outcome.futureResult
        )
    }

    @discardableResult
    private func startCall(
        into box: NIOLoopBoundBox<GRPCClientCall?>? = nil,
        path: String,
        metadata: GRPCMetadata,
        timeout: Duration?,
        compression: GRPCCompression.Algorithm?,
        mode: GRPCClientCall.Mode,
        then: @escaping @Sendable (GRPCClientCall) -> Void
    ) -> NIOLoopBoundBox<GRPCClientCall?> {
        let box = box ?? NIOLoopBoundBox.makeEmptyBox(valueType: GRPCClientCall.self, eventLoop: eventLoop)
        let head = GRPCClientStreamStateMachine.RequestHead(
            path: path, scheme: scheme, authority: authority, metadata: metadata, compression: compression)
        let deadline = timeout.map { NIODeadline.now() + Self.timeAmount($0) }
        let configuration = self.configuration.calls
        let state = self.state
        let http2 = self.http2
        let logger = self.logger
        let eventLoop = self.eventLoop
        eventLoop.execute {
            let call = GRPCClientCall(
                head: head, deadline: deadline, mode: mode, configuration: configuration,
                connectionState: state, eventLoop: eventLoop, logger: logger)
            box.value = call
            if let handler = http2.value {
                call.start(on: handler)
            } else {
                call.cancel(with: GRPCStatus(code: .unavailable, message: "the connection has no HTTP/2 handler"))
            }
            then(call)
        }
        return box
    }

    /// `duration` as a TimeAmount, saturating where nanoseconds no longer fit in Int64.
    private static func timeAmount(_ duration: Duration) -> TimeAmount {
        let (seconds, attoseconds) = duration.components
        guard seconds < Int64.max / 1_000_000_000 - 1 else { return .nanoseconds(.max) }
        return .nanoseconds(max(0, seconds * 1_000_000_000 + attoseconds / 1_000_000_000))
    }
}
