import CNGHTTP2
import Logging
import NIOCore

/// Ask a server connection to shut down gracefully: GOAWAY, let in-flight streams finish within
/// the drain timeout, then close. Send it with `channel.triggerUserOutboundEvent`. Open streams
/// hear `reason` (`HTTP2StreamDelegate.streamConnectionDraining`), so that long-lived ones can
/// tell their clients why they end.
public struct HTTP2GracefulShutdown: Sendable {
    /// Why the connection drains, for people: "the gateway is shutting down".
    public var reason: String

    public init(reason: String = "the server is shutting down") {
        self.reason = reason
    }
}

/// Fired inbound (`userInboundEventTriggered`) by `HTTP2ConnectionHandler` each time the peer's
/// SETTINGS frame has been applied: a client knows from the first one that the server speaks
/// HTTP/2 and how many concurrent streams it allows.
public struct HTTP2SettingsReceived: Sendable, Hashable {
    /// The peer's SETTINGS_MAX_CONCURRENT_STREAMS (UInt32.max when it set no limit).
    public var maxConcurrentStreams: UInt32
}

/// Fired inbound by `HTTP2ConnectionHandler` when the peer sends GOAWAY: it accepts no new
/// streams, and streams above `lastStreamID` were not processed (they end REFUSED_STREAM).
public struct HTTP2GoAwayReceived: Sendable, Hashable {
    /// The GOAWAY's error code (NO_ERROR for a graceful shutdown).
    public var code: HTTP2ErrorCode
    /// The last stream the peer processed or may still process.
    public var lastStreamID: Int32
}

/// The HTTP/2 connection: nghttp2 in memory mode inside a NIO channel handler.
///
/// Sits above the TLS handler (or directly on the socket for h2c) and exchanges plaintext
/// bytes with it. Streams are handed to the layer above through `HTTP2Stream` and its delegate.
/// Flow control is tied to NIO backpressure both ways: receive windows reopen only as the
/// application consumes body bytes, and while the channel is not writable the handler neither
/// pulls frames out of nghttp2 nor reads from the socket, so nothing buffers without bound.
/// Abuse — Rapid Reset, CONTINUATION floods, header lists past the limit, no-op frame floods,
/// ping floods — ends the offending connection with GOAWAY ENHANCE_YOUR_CALM.
public final class HTTP2ConnectionHandler: ChannelDuplexHandler, NGHTTP2SessionDelegate {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = Never
    public typealias OutboundIn = Never
    public typealias OutboundOut = ByteBuffer

    /// Creates the delegate for a new stream the peer opened (server); nil refuses the stream.
    public typealias StreamInitializer = (HTTP2Stream) -> HTTP2StreamDelegate?

    let configuration: HTTP2Configuration
    private let role: NGHTTP2Session.Role
    private let streamInitializer: StreamInitializer?
    private var logger: Logger
    private var session: NGHTTP2Session?
    private var context: ChannelHandlerContext?
    private var streams: [Int32: HTTP2Stream] = [:]
    /// The stream looked up last: callbacks come in runs for one stream (DATA, END_STREAM,
    /// the frames sent in answer), so most lookups need no hashing.
    private var lastStream: HTTP2Stream?
    /// The stream whose header block is arriving (set by beginHeaders, cleared when complete).
    private var headerStream: HTTP2Stream?
    /// The header block arriving now, and its size as SETTINGS_MAX_HEADER_LIST_SIZE counts it.
    /// One per connection: HTTP/2 forbids interleaving header blocks.
    private var headerBlock: [HTTP2HeaderField] = []
    private var headerBlockBytes = 0
    /// The output buffer of the last flush, for reuse (see flushOutput).
    private var spareOutput: ByteBuffer?
    private var connectionInfo = HTTP2ConnectionInfo(remoteAddress: "?", localAddress: "?", isSecure: false)

    private var resetBucket: TokenBucket
    private var glitchBucket: TokenBucket
    private var pingStrikes = 0
    private var lastPingReceived: NIODeadline?
    private var pendingRead = false
    private var flushScheduled = false
    private var inChannelRead = false
    private var closing = false
    private var producingOutput = false
    private var closeAfterOutput = false
    private var goAwaySent = false
    /// A server's real GOAWAY (after the shutdown notice) went out: no stream above its last
    /// stream id will be accepted, so the connection may close once its streams are done.
    private var finalGoAwaySent = false
    private var lingerTimer: Scheduled<Void>?
    /// Why the connection drains, once it does.
    private var drainReason = ""
    private var calmReason: String?
    /// Hears the connection's life and GOAWAYs (metrics); nil when nobody listens.
    private var observer: (any GRPCServerObserver)?
    private var observedSecure = false
    private var observedOpen = false

    private var idleTimer: Scheduled<Void>?
    /// Since when no stream is open; nil while streams are open.
    private var idleSince: NIODeadline?
    private var keepaliveTimer: Scheduled<Void>?
    private var keepaliveTimeoutTimer: Scheduled<Void>?
    private var maxAgeTimer: Scheduled<Void>?
    private var drainTimer: Scheduled<Void>?
    private var prefaceTimer: Scheduled<Void>?

    /// A server connection.
    public init(server configuration: HTTP2Configuration, logger: Logger, streamInitializer: @escaping StreamInitializer) {
        self.configuration = configuration
        self.role = .server
        self.streamInitializer = streamInitializer
        self.logger = logger
        self.resetBucket = TokenBucket(burst: configuration.streamResetBurst, ratePerSecond: configuration.streamResetRate)
        self.glitchBucket = TokenBucket(burst: configuration.glitchBurst, ratePerSecond: configuration.glitchRate)
    }

    /// A client connection; open streams with `openStream`.
    public init(client configuration: HTTP2Configuration, logger: Logger) {
        self.configuration = configuration
        self.role = .client
        self.streamInitializer = nil
        self.logger = logger
        self.resetBucket = TokenBucket(burst: configuration.streamResetBurst, ratePerSecond: configuration.streamResetRate)
        self.glitchBucket = TokenBucket(burst: configuration.glitchBurst, ratePerSecond: configuration.glitchRate)
    }

    /// Reports this connection's life and GOAWAYs to `observer`. Call before the handler joins
    /// a pipeline.
    public func observe(with observer: any GRPCServerObserver, secure: Bool) {
        self.observer = observer
        self.observedSecure = secure
    }

    /// The streams open now.
    public var openStreamCount: Int { streams.count }

    // MARK: Channel lifecycle

    public func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if let observer, !observedOpen {
            observedOpen = true
            observer.connectionOpened(secure: observedSecure)
        }
        if context.channel.isActive { start(context: context) }
    }

    public func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    private func start(context: ChannelHandlerContext) {
        guard session == nil else { return }
        connectionInfo = HTTP2ConnectionInfo(
            remoteAddress: context.channel.remoteAddress?.hostAndPort ?? "?",
            localAddress: context.channel.localAddress?.hostAndPort ?? "?",
            isSecure: connectionInfo.isSecure, tls: connectionInfo.tls)
        logger[metadataKey: "peer"] = "\(connectionInfo.remoteAddress)"
        do {
            let session = try NGHTTP2Session(role: role, configuration: configuration)
            session.delegate = self
            try session.submitSettings(configuration)
            self.session = session
        } catch {
            logger.error("cannot start HTTP/2 session", metadata: ["error": "\(error)"])
            context.close(promise: nil)
            return
        }
        armIdleTimer()
        scheduleKeepalive()
        if let timeout = configuration.prefaceTimeout {
            prefaceTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [self] in
                self.logger.info("closing a connection that did not complete the HTTP/2 preface", metadata: ["timeout": "\(timeout)"])
                self.observer?.goAwaySent(.prefaceTimeout)
                self.context?.close(promise: nil)
            }
        }
        if let age = configuration.maxConnectionAge {
            maxAgeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: age) { [self] in
                self.logger.debug("connection reached its maximum age; draining")
                self.beginGracefulShutdown(reason: "the connection reached its maximum age", kind: .maxAge)
            }
        }
        flushOutput()
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        tearDown(reason: .cancel)
        if observedOpen, let observer {
            observedOpen = false
            observer.connectionClosed(secure: observedSecure)
        }
        self.context = nil
    }

    public func channelInactive(context: ChannelHandlerContext) {
        tearDown(reason: .cancel)
        context.fireChannelInactive()
    }

    private func tearDown(reason: HTTP2ErrorCode) {
        for timer in [idleTimer, keepaliveTimer, keepaliveTimeoutTimer, maxAgeTimer, drainTimer, prefaceTimer, lingerTimer] { timer?.cancel() }
        let open = streams
        streams.removeAll()
        headerStream = nil
        lastStream = nil
        for stream in open.values where !stream.isClosed {
            stream.isClosed = true
            stream.delegate?.stream(stream, wasReset: reason)
            stream.delegate?.streamClosed(stream)
            stream.delegate = nil
        }
        session?.delegate = nil
        session = nil
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let handshake = event as? TLSHandshakeCompleted {
            connectionInfo = HTTP2ConnectionInfo(
                remoteAddress: connectionInfo.remoteAddress, localAddress: connectionInfo.localAddress, isSecure: true, tls: handshake)
        }
        context.fireUserInboundEventTriggered(event)
    }

    public func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        if let shutdown = event as? HTTP2GracefulShutdown {
            beginGracefulShutdown(reason: shutdown.reason, kind: .shutdown)
            promise?.succeed(())
        } else {
            context.triggerUserOutboundEvent(event, promise: promise)
        }
    }

    // MARK: Reading

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // Closing: what the peer still sends is read and dropped (see closeWhenFlushed).
        guard let session, !closing else { return }
        let buffer = unwrapInboundIn(data)
        inChannelRead = true
        defer { inChannelRead = false }
        do {
            try session.receive(buffer)
        } catch {
            // nghttp2 queues GOAWAY itself for the protocol errors it answers; the errors it
            // returns instead (floods, too many CONTINUATIONs, a bad preface) come with none.
            logger.debug("HTTP/2 protocol error from peer", metadata: ["error": "\(error)"])
            failSession(error)
            flushOutput()
            closeWhenFlushed()
            return
        }
    }

    /// Queues the GOAWAY that nghttp2 leaves to us when `receive` fails.
    private func failSession(_ error: Error) {
        switch (error as? NGHTTP2Error)?.code {
        case NGHTTP2_ERR_TOO_MANY_CONTINUATIONS.rawValue:
            calm("too many CONTINUATION frames (more than \(configuration.maxContinuations))", kind: .continuationFlood)
        case NGHTTP2_ERR_FLOODED.rawValue:
            calm("too many SETTINGS or PING frames left unacknowledged (peer does not read)", kind: .unreadControlFrames)
        case NGHTTP2_ERR_BAD_CLIENT_MAGIC.rawValue:
            observer?.goAwaySent(.protocolError)
            session?.terminate(code: .protocolError)
        default:
            observer?.goAwaySent(.protocolError)
            session?.terminate(code: .internalError)
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        flushOutput()
        context.fireChannelReadComplete()
    }

    public func read(context: ChannelHandlerContext) {
        // Stop reading a socket we cannot write to: its answers would pile up in memory. A
        // closing connection reads on regardless: it only drops what arrives.
        if context.channel.isWritable || closing {
            context.read()
        } else {
            pendingRead = true
        }
    }

    public func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            flushOutput()
            if pendingRead {
                pendingRead = false
                context.read()
            }
        }
        context.fireChannelWritabilityChanged()
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.debug("connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    // MARK: Writing

    /// Pulls frames out of nghttp2 into the channel while it is writable.
    func flushOutput() {
        guard let context, let session else { return }
        var wrote = false
        while context.channel.isWritable {
            // The last output buffer is reused once the layers below have let go of it (TLS
            // encrypts it during the flush): clear() keeps its storage when it is ours alone,
            // and copies on write otherwise.
            var buffer = spareOutput ?? context.channel.allocator.buffer(capacity: 16_384)
            spareOutput = nil
            buffer.clear()
            let more: Bool
            do {
                producingOutput = true
                defer { producingOutput = false }
                more = try session.produceOutput(into: &buffer, limit: 65_536)
            } catch {
                logger.debug("HTTP/2 session failed while sending", metadata: ["error": "\(error)"])
                context.close(promise: nil)
                return
            }
            if buffer.readableBytes > 0 {
                context.write(wrapOutboundOut(buffer), promise: nil)
                wrote = true
            }
            if buffer.capacity <= 65_536 + 16_384 { spareOutput = buffer }
            if !more { break }
        }
        if wrote { context.flush() }
        if closeAfterOutput {
            closeAfterOutput = false
            closeWhenFlushed()
        } else if !session.wantsIO {
            closeWhenFlushed()
        }
    }

    /// Coalesces flushes requested by streams outside a read into one per event-loop tick.
    private func scheduleFlush() {
        guard !inChannelRead, !flushScheduled, let context else { return }
        flushScheduled = true
        context.eventLoop.assumeIsolated().execute { [self] in
            self.flushScheduled = false
            self.flushOutput()
        }
    }

    private func closeWhenFlushed() {
        // A stream can close while nghttp2 produces output (the frame that ends the last
        // stream of a draining connection was just serialized): those bytes are still in
        // flushOutput's buffer, so the close waits until flushOutput has written them.
        if producingOutput {
            closeAfterOutput = true
            return
        }
        guard !closing, let context else { return }
        closing = true
        // A lingering close: everything written, then FIN (half-close), then the peer's bytes
        // read and dropped until it closes its side or 5 s pass. Closing at once with
        // its bytes unread in our socket (requests it sent before it saw GOAWAY) would make the
        // kernel answer with RST, and an RST can destroy responses the peer has received but
        // not yet read.
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).assumeIsolated().whenComplete { [self] _ in
            context.close(mode: .output, promise: nil)
            self.lingerTimer = context.eventLoop.assumeIsolated().scheduleTask(in: .seconds(5)) { context.close(promise: nil) }
            if self.pendingRead {
                self.pendingRead = false
                context.read()
            }
        }
    }

    // MARK: Protections

    /// Ends the connection with GOAWAY ENHANCE_YOUR_CALM, once, logging why.
    private func calm(_ reason: String, kind: HTTP2GoAwayReason, debugData: String = "") {
        guard calmReason == nil, let session else { return }
        calmReason = reason
        observer?.goAwaySent(kind)
        logger.warning("closing abusive HTTP/2 connection", metadata: ["reason": "\(reason)"])
        session.submitGoAway(code: .enhanceYourCalm, debugData: debugData.isEmpty ? reason : debugData)
        session.terminate(code: .enhanceYourCalm)
        scheduleFlush()
    }

    private func glitch(_ what: String) {
        if !glitchBucket.take() { calm("too many no-op or invalid frames (last: \(what))", kind: .invalidFrames) }
    }

    // MARK: Timers

    /// Notes that the connection has no open streams from now on and makes sure a timer will
    /// look at it after the idle timeout. A stream that opens meanwhile does not cancel the
    /// timer (which would cost a schedule and a cancel per call on a connection that carries
    /// one call at a time); the timer checks when it fires and re-arms for the rest.
    private func armIdleTimer() {
        guard configuration.idleTimeout != nil, streams.isEmpty else { return }
        idleSince = .now()
        if idleTimer == nil { scheduleIdleCheck(at: idleSince! + configuration.idleTimeout!) }
    }

    private func scheduleIdleCheck(at deadline: NIODeadline) {
        guard let context else { return }
        idleTimer = context.eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            self.idleTimer = nil
            guard self.streams.isEmpty, let idleSince = self.idleSince, let timeout = self.configuration.idleTimeout else { return }
            let due = idleSince + timeout
            if due > .now() {
                self.scheduleIdleCheck(at: due)
                return
            }
            self.logger.debug("closing idle connection")
            self.observer?.goAwaySent(.idle)
            self.session?.submitGoAway(code: .noError, debugData: "idle")
            self.flushOutput()
            self.closeWhenFlushed()
        }
    }

    private func scheduleKeepalive() {
        keepaliveTimer?.cancel()
        guard let interval = configuration.keepaliveInterval, let context else { return }
        keepaliveTimer = context.eventLoop.assumeIsolated().scheduleTask(in: interval) { [self] in
            guard let context = self.context else { return }
            self.session?.submitPing()
            self.flushOutput()
            self.keepaliveTimeoutTimer = context.eventLoop.assumeIsolated().scheduleTask(in: self.configuration.keepaliveTimeout) { [self] in
                self.logger.info("keepalive ping not acknowledged; closing connection")
                self.observer?.goAwaySent(.keepaliveTimeout)
                self.context?.close(promise: nil)
            }
        }
    }

    /// GOAWAY (after a shutdown notice), then close once the open streams finish or the drain
    /// timeout passes. Open streams hear `reason` at once, and again when the drain timeout
    /// passes (their last chance to send a status before the connection closes).
    func beginGracefulShutdown(reason: String, kind: HTTP2GoAwayReason) {
        guard !goAwaySent, let session, let context else { return }
        goAwaySent = true
        observer?.goAwaySent(kind)
        drainReason = reason
        if role == .client {
            // A client processes no streams of the server's, so it has no last stream to
            // settle: GOAWAY at once (nghttp2 refuses shutdown notices from clients).
            session.submitGoAway(code: .noError)
            flushOutput()
            if streams.isEmpty { closeWhenFlushed() }
            drainTimer = context.eventLoop.assumeIsolated().scheduleTask(in: configuration.drainTimeout) { [self] in
                self.context?.close(promise: nil)
            }
            return
        }
        session.submitShutdownNotice()
        for stream in Array(streams.values) where !stream.isClosed {
            stream.delegate?.streamConnectionDraining(stream, reason: reason)
        }
        flushOutput()
        // A round trip later, the real GOAWAY names the last stream we accept.
        context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(100)) { [self] in
            self.session?.submitGoAway(code: .noError)
            self.finalGoAwaySent = true
            self.flushOutput()
            if self.streams.isEmpty { self.closeWhenFlushed() }
        }
        drainTimer = context.eventLoop.assumeIsolated().scheduleTask(in: configuration.drainTimeout) { [self] in
            self.logger.info("drain timeout passed; closing connection", metadata: ["open_streams": "\(self.streams.count)"])
            for stream in Array(self.streams.values) where !stream.isClosed {
                stream.delegate?.streamDrainTimedOut(stream, reason: reason)
            }
            self.flushOutput()
            // The streams' last words go out before the close, unless the peer does not read
            // them within a second.
            self.closeWhenFlushed()
            self.context?.eventLoop.assumeIsolated().scheduleTask(in: .seconds(1)) { [self] in self.context?.close(promise: nil) }
        }
    }

    // MARK: Streams (client)

    /// Opens a client stream with request headers. The body follows with `sendData`/`sendEnd`.
    public func openStream(headers: [HTTP2HeaderField], delegate: HTTP2StreamDelegate, endStream: Bool = false) throws -> HTTP2Stream {
        guard let session, let context else { throw NGHTTP2Error(code: -1, message: "connection is not active") }
        let id = try session.submitRequest(headers: .fields(headers), hasBody: !endStream)
        let stream = HTTP2Stream(id: id, connection: self, eventLoop: context.eventLoop, connectionInfo: connectionInfo)
        stream.delegate = delegate
        stream.sentHeaders = true
        stream.outboundEnded = endStream
        streams[id] = stream
        idleSince = nil
        scheduleFlush()
        return stream
    }

    // MARK: Streams (called by HTTP2Stream)

    func streamSendHeaders(_ stream: HTTP2Stream, _ headers: HTTP2HeaderBlock, endStream: Bool) {
        guard !stream.isClosed, !stream.sentHeaders, let session else { return }
        stream.sentHeaders = true
        pingStrikes = 0
        do {
            if endStream {
                stream.outboundEnded = true
                try session.submitResponse(streamID: stream.id, headers: headers, hasBody: false)
            } else {
                try session.submitResponse(streamID: stream.id, headers: headers, hasBody: true)
            }
        } catch {
            logger.debug("cannot send headers", metadata: ["stream": "\(stream.id)", "error": "\(error)"])
            session.submitReset(streamID: stream.id, code: .internalError)
        }
        scheduleFlush()
    }

    func streamSendData(_ stream: HTTP2Stream, _ data: ByteBuffer) {
        guard !stream.isClosed, !stream.outboundEnded else { return }
        stream.outbound.append(data)
        stream.outboundBytes += data.readableBytes
        if stream.reportedWritable && !stream.isWritable {
            stream.reportedWritable = false
            stream.delegate?.stream(stream, writabilityChanged: false)
        }
        resume(stream)
    }

    func streamSendEnd(_ stream: HTTP2Stream, trailers: HTTP2HeaderBlock?) {
        guard !stream.isClosed, !stream.outboundEnded else { return }
        stream.outboundEnded = true
        stream.trailers = trailers
        resume(stream)
    }

    private func resume(_ stream: HTTP2Stream) {
        if stream.providerDeferred {
            stream.providerDeferred = false
            session?.resumeData(streamID: stream.id)
        }
        scheduleFlush()
    }

    func streamReset(_ stream: HTTP2Stream, code: HTTP2ErrorCode) {
        guard !stream.isClosed, let session else { return }
        if code == .noError && stream.outboundEnded && !stream.endStreamSent {
            stream.resetAfterEndStream = true
            return
        }
        session.submitReset(streamID: stream.id, code: code)
        scheduleFlush()
    }

    func streamConsume(_ stream: HTTP2Stream, bytes: Int) {
        guard let session, bytes > 0 else { return }
        let amount = min(bytes, stream.unconsumedBytes)
        stream.unconsumedBytes -= amount
        session.consume(streamID: stream.id, bytes: amount)
        scheduleFlush()
    }

    /// The open stream with `id`, if any.
    private func stream(_ id: Int32) -> HTTP2Stream? {
        if let lastStream, lastStream.id == id { return lastStream }
        let found = streams[id]
        if found != nil { lastStream = found }
        return found
    }

    // MARK: NGHTTP2SessionDelegate

    func session(_ session: NGHTTP2Session, beginFrame type: UInt8, flags: UInt8, streamID: Int32, length: Int) -> Bool {
        switch Int(type) {
        case Int(NGHTTP2_DATA.rawValue):
            if length == 0 && flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) == 0 { glitch("empty DATA frame") }
        case Int(NGHTTP2_WINDOW_UPDATE.rawValue):
            break  // a zero increment is judged when the payload is known (invalid frame callback)
        case Int(NGHTTP2_PRIORITY.rawValue):
            glitch("PRIORITY frame")
        case Int(NGHTTP2_RST_STREAM.rawValue):
            if role == .server && !resetBucket.take() { calm("too many stream resets (Rapid Reset)", kind: .rapidReset) }
        case Int(NGHTTP2_HEADERS.rawValue), Int(NGHTTP2_CONTINUATION.rawValue), Int(NGHTTP2_SETTINGS.rawValue),
            Int(NGHTTP2_PING.rawValue), Int(NGHTTP2_GOAWAY.rawValue), Int(NGHTTP2_PUSH_PROMISE.rawValue):
            break
        default:
            glitch("unknown frame type \(type)")
        }
        return true
    }

    func session(_ session: NGHTTP2Session, beginHeadersOn streamID: Int32) {
        headerBlock.removeAll(keepingCapacity: true)
        headerBlockBytes = 0
        if let stream = stream(streamID) {
            headerStream = stream
            return
        }
        headerStream = nil
        guard role == .server, let context else { return }
        let stream = HTTP2Stream(id: streamID, connection: self, eventLoop: context.eventLoop, connectionInfo: connectionInfo)
        streams[streamID] = stream
        headerStream = stream
        idleSince = nil
    }

    func session(_ session: NGHTTP2Session, header: consuming HTTP2HeaderField, on streamID: Int32) -> Bool {
        // A header block arrives as one run of callbacks for one stream (HTTP/2 forbids
        // interleaving), so the stream found at its start serves every field. Only a Bool is
        // kept (not the stream), so the reference is not retained per field.
        let isOpen: Bool
        if let headerStream, headerStream.id == streamID {
            isOpen = !headerStream.isClosed
        } else {
            isOpen = stream(streamID).map { !$0.isClosed } ?? false
        }
        guard isOpen else { return false }
        let size = header.name.utf8.count + header.value.utf8.count + 32
        headerBlockBytes += size
        guard headerBlockBytes <= configuration.maxHeaderListSize else {
            if headerBlockBytes - size <= configuration.maxHeaderListSize {
                logger.debug("header list exceeds the limit", metadata: ["stream": "\(streamID)", "limit": "\(configuration.maxHeaderListSize)"])
                glitch("header list larger than \(configuration.maxHeaderListSize) bytes")
            }
            return false
        }
        headerBlock.append(header)
        return true
    }

    func session(_ session: NGHTTP2Session, headersCompleteOn streamID: Int32, endStream: Bool) {
        let found = headerStream?.id == streamID ? headerStream : stream(streamID)
        headerStream = nil
        guard let stream = found, !stream.isClosed else { return }
        // The delegate reads the block during the call (the gRPC layer validates it at once);
        // the array is then reused for the next block, so a call's headers cost no allocation.
        defer { headerBlock.removeAll(keepingCapacity: true) }
        if stream.delegate == nil && role == .server {
            guard !goAwaySent || streamID <= session.lastProcessedStreamID, let delegate = streamInitializer?(stream) else {
                session.submitReset(streamID: streamID, code: .refusedStream)
                return
            }
            stream.delegate = delegate
            stream.delegate?.stream(stream, receivedHeaders: headerBlock, endStream: endStream)
            if endStream { stream.delegate?.streamReceivedEnd(stream) }
            // Accepted in the shutdown notice's round trip: it drains like the others.
            if goAwaySent && !stream.isClosed { stream.delegate?.streamConnectionDraining(stream, reason: drainReason) }
            return
        }
        stream.delegate?.stream(stream, receivedHeaders: headerBlock, endStream: endStream)
        if endStream { stream.delegate?.streamReceivedEnd(stream) }
    }

    func session(_ session: NGHTTP2Session, data: ByteBuffer, on streamID: Int32) {
        guard let stream = stream(streamID), let delegate = stream.delegate else {
            // Data for a stream we reset or refused still counts against the connection window.
            session.consume(streamID: 0, bytes: data.readableBytes)
            return
        }
        stream.unconsumedBytes += data.readableBytes
        delegate.stream(stream, receivedData: data)
    }

    func session(_ session: NGHTTP2Session, endStreamOn streamID: Int32) {
        guard let stream = stream(streamID) else { return }
        stream.delegate?.streamReceivedEnd(stream)
    }

    func session(_ session: NGHTTP2Session, resetReceived code: HTTP2ErrorCode, on streamID: Int32) {
        guard let stream = stream(streamID), !stream.isClosed else { return }
        stream.delegate?.stream(stream, wasReset: code)
    }

    func session(_ session: NGHTTP2Session, streamClosed streamID: Int32, code: HTTP2ErrorCode) {
        if headerStream?.id == streamID { headerStream = nil }
        if lastStream?.id == streamID { lastStream = nil }
        guard let stream = streams.removeValue(forKey: streamID) else { return }
        let wasReset = code != .noError && !stream.isClosed
        stream.isClosed = true
        if stream.unconsumedBytes > 0 {
            session.consume(streamID: 0, bytes: stream.unconsumedBytes)
            stream.unconsumedBytes = 0
        }
        if wasReset { stream.delegate?.stream(stream, wasReset: code) }
        stream.delegate?.streamClosed(stream)
        stream.delegate = nil
        if streams.isEmpty {
            // After a server's shutdown notice, new streams may still come until the real GOAWAY.
            if goAwaySent && (role == .client || finalGoAwaySent) {
                closeWhenFlushed()
            } else if !goAwaySent {
                armIdleTimer()
            }
        }
    }

    func sessionReceivedPing(_ session: NGHTTP2Session) {
        guard role == .server else { return }
        let now = NIODeadline.now()
        if let last = lastPingReceived, now - last < configuration.minimumPingInterval {
            pingStrikes += 1
            if pingStrikes > configuration.maxPingStrikes {
                calm("client pings more often than allowed", kind: .pingFlood, debugData: "too_many_pings")
            }
        }
        lastPingReceived = now
    }

    func sessionReceivedSettings(_ session: NGHTTP2Session) {
        prefaceTimer?.cancel()
        prefaceTimer = nil
        context?.fireUserInboundEventTriggered(HTTP2SettingsReceived(maxConcurrentStreams: session.remoteMaxConcurrentStreams))
    }

    func sessionReceivedPingAck(_ session: NGHTTP2Session) {
        keepaliveTimeoutTimer?.cancel()
        keepaliveTimeoutTimer = nil
        scheduleKeepalive()
    }

    func session(_ session: NGHTTP2Session, goAwayReceived code: HTTP2ErrorCode, lastStreamID: Int32) {
        logger.debug("peer sent GOAWAY", metadata: ["code": "\(code)", "last_stream": "\(lastStreamID)"])
        context?.fireUserInboundEventTriggered(HTTP2GoAwayReceived(code: code, lastStreamID: lastStreamID))
        for (id, stream) in streams where id > lastStreamID && role == .client {
            stream.delegate?.stream(stream, wasReset: .refusedStream)
        }
    }

    func session(_ session: NGHTTP2Session, invalidFrame type: UInt8, on streamID: Int32, error: Int32) {
        glitch("invalid frame of type \(type): \(String(cString: nghttp2_strerror(error)))")
    }

    func session(_ session: NGHTTP2Session, sentFrame type: UInt8, flags: UInt8, streamID: Int32, errorCode: UInt32) {
        switch Int(type) {
        case Int(NGHTTP2_RST_STREAM.rawValue):
            // Resets we send because of the peer's frames (MadeYouReset) count; CANCEL and
            // REFUSED_STREAM are our own choices.
            let code = HTTP2ErrorCode(rawValue: errorCode)
            if code != .cancel && code != .refusedStream && code != .noError { glitch("peer provoked a stream reset (\(code))") }
        case Int(NGHTTP2_HEADERS.rawValue), Int(NGHTTP2_DATA.rawValue):
            pingStrikes = 0
            lastPingReceived = nil
            if flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0, let stream = stream(streamID) {
                stream.endStreamSent = true
                if stream.resetAfterEndStream {
                    stream.resetAfterEndStream = false
                    session.submitReset(streamID: streamID, code: .noError)
                }
            }
        default:
            break
        }
    }

    func session(_ session: NGHTTP2Session, readBody streamID: Int32, into target: UnsafeMutableRawBufferPointer) -> NGHTTP2Session.BodyRead {
        guard let stream = stream(streamID) else {
            return .bytes(0, endOfBody: true, trailers: nil)
        }
        var copied = 0
        while copied < target.count, !stream.outbound.isEmpty {
            let emptied = stream.outbound.withFirst { chunk -> Bool in
                let count = min(chunk.readableBytes, target.count - copied)
                chunk.withUnsafeReadableBytes { source in
                    UnsafeMutableRawBufferPointer(rebasing: target[copied..<(copied + count)]).copyMemory(
                        from: UnsafeRawBufferPointer(rebasing: source[0..<count]))
                }
                chunk.moveReaderIndex(forwardBy: count)
                copied += count
                return chunk.readableBytes == 0
            }
            if emptied { stream.outbound.removeFirst() }
        }
        stream.outboundBytes -= copied
        if !stream.reportedWritable && stream.outboundBytes <= configuration.streamWriteHighWatermark / 2 {
            stream.reportedWritable = true
            stream.delegate?.stream(stream, writabilityChanged: true)
        }
        if stream.outbound.isEmpty && stream.outboundEnded {
            return .bytes(copied, endOfBody: true, trailers: stream.trailers.flatMap { $0.isEmpty ? nil : $0 })
        }
        if copied == 0 {
            stream.providerDeferred = true
            return .deferred
        }
        return .bytes(copied, endOfBody: false, trailers: nil)
    }
}
