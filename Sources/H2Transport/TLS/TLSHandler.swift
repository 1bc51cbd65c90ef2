import Logging
import NIOCore

/// A channel handler that speaks TLS on the network side and plaintext on the application
/// side, as a server or a client depending on its `TLSContext`.
///
/// Ciphertext read from the channel is decrypted and passed on as `ByteBuffer`s; plaintext
/// written to it is encrypted at `flush` and written on, one ciphertext write per batch as it
/// is produced, so the channel's writability reflects what is really queued. Plaintext is
/// buffered only up to one network read; `read()` is passed on when the application asks for
/// data (and during the handshake, which needs the peer's bytes).
///
/// The handshake starts when the channel becomes active and must finish within the
/// configuration's `handshakeTimeout`. On success the handler fires `TLSHandshakeCompleted`
/// (ALPN protocol, version, cipher, peer identity) and then releases writes made before it. On
/// any failure (bad certificate, no shared protocol, timeout, not TLS at all) it logs one line
/// for the connection with the peer's address and OpenSSL's reason, fires the `TLSError` as an
/// error, and closes the channel. Closing the channel sends close_notify first; a peer's
/// close_notify closes the channel. Like every channel handler it belongs to its channel's
/// event loop and must only be used there.
public final class TLSHandler: ChannelDuplexHandler {
    public typealias InboundIn = ByteBuffer
    public typealias InboundOut = ByteBuffer
    public typealias OutboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    private enum State: Equatable {
        /// Added, channel not yet active.
        case idle
        case handshaking
        case active
        /// Failed, closed by either side, or channel inactive. Terminal.
        case closed
    }

    /// Writes at or below this size are copied together into one record at flush.
    private static let coalescingThreshold = 4 * 1024
    /// Plaintext is handed to OpenSSL in pieces of at most this size, so that ciphertext is
    /// written on as it is produced instead of piling up in the memory BIO.
    private static let encryptionChunk = 64 * 1024

    private let tlsContext: TLSContext
    private let serverName: String?
    private let logger: Logger
    /// Hears how the handshake went (metrics); nil when nobody listens.
    public var observer: (any GRPCServerObserver)?

    private var state: State = .idle
    private var connection: TLSConnection?
    private var handshakeTimer: Scheduled<Void>?
    private var completion: TLSHandshakeCompleted?
    private var peerAddress = "unknown peer"
    private var receivedBytes = false
    private var loggedFailure = false
    private var outputClosed = false
    /// Plaintext has been passed on since the last channelReadComplete.
    private var deliveredPlaintext = false
    /// The application called read() and has not yet been given plaintext.
    private var applicationWantsRead = false
    private var pendingWrites = MarkedCircularBuffer<(data: ByteBuffer, promise: EventLoopPromise<Void>?)>(
        initialCapacity: 16
    )
    /// An empty plaintext buffer kept from a read that produced nothing.
    private var spareBuffer: ByteBuffer?
    private var coalesced: ByteBuffer?
    private var coalescedPromises: [EventLoopPromise<Void>] = []

    /// Creates a handler for one connection.
    ///
    /// - Parameters:
    ///   - context: the shared TLS material; the handshake uses whatever is current when the
    ///     channel becomes active.
    ///   - serverName: for a client, the name (or IP address) the server must prove, overriding
    ///     the configuration's `serverName`. Ignored by servers.
    ///   - logger: where the one line about a failed connection goes (warning level).
    public init(context: TLSContext, serverName: String? = nil, logger: Logger) {
        self.tlsContext = context
        self.serverName = serverName
        self.logger = logger
    }

    /// The peer's verified certificate identity; nil before the handshake completes or when the
    /// peer presented no certificate. Call on the channel's event loop.
    public func peerIdentity() -> PeerIdentity? {
        self.completion?.peer
    }

    /// What the handshake negotiated; nil until it has completed. Call on the channel's event loop.
    public var handshakeResult: TLSHandshakeCompleted? {
        self.completion
    }

    // MARK: Lifecycle

    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive {
            self.startHandshake(context: context)
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        self.handshakeTimer?.cancel()
        self.handshakeTimer = nil
        self.failPendingWrites(ChannelError.ioOnClosedChannel)
        self.connection = nil
    }

    public func channelActive(context: ChannelHandlerContext) {
        // Announce activity first: handlers after us may write (an HTTP/2 preface); those
        // writes wait here until the handshake is done.
        context.fireChannelActive()
        self.startHandshake(context: context)
    }

    public func channelInactive(context: ChannelHandlerContext) {
        self.handshakeTimer?.cancel()
        self.handshakeTimer = nil
        switch self.state {
        case .handshaking:
            let error = TLSError(.closedDuringHandshake, "the peer closed the connection during the handshake")
            self.state = .closed
            self.logFailure(error)
            self.failPendingWrites(error)
            context.fireErrorCaught(error)
        case .idle, .active, .closed:
            self.state = .closed
            self.failPendingWrites(ChannelError.ioOnClosedChannel)
        }
        context.fireChannelInactive()
    }

    private func startHandshake(context: ChannelHandlerContext) {
        guard self.state == .idle else { return }
        if let address = context.channel.remoteAddress {
            self.peerAddress = Self.describe(address)
        }
        let connection: TLSConnection
        do {
            connection = try self.tlsContext.makeConnection(serverName: self.serverName)
        } catch {
            self.fail(context: context, error: error as? TLSError ?? TLSError(.handshakeFailed, "\(error)"))
            return
        }
        self.connection = connection
        self.state = .handshaking
        let timeout = connection.context.configuration.handshakeTimeout
        self.handshakeTimer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) {
            guard self.state == .handshaking else { return }
            let millis = timeout.nanoseconds / 1_000_000
            self.fail(context: context, error: TLSError(.handshakeTimedOut, "no handshake within \(millis) ms"))
        }
        self.advanceHandshake(context: context)
    }

    private func advanceHandshake(context: ChannelHandlerContext) {
        guard self.state == .handshaking, let connection = self.connection else { return }
        switch connection.handshake() {
        case .wantRead:
            self.writeOutput(context: context, flush: true)
            // The handshake needs the peer's bytes whether or not the application asked.
            context.read()
        case .failed(let error):
            // The alert, if OpenSSL produced one, goes out before the channel closes.
            self.writeOutput(context: context, flush: true)
            self.fail(context: context, error: error)
        case .complete:
            self.handshakeTimer?.cancel()
            self.handshakeTimer = nil
            let expected = connection.context.configuration.applicationProtocols
            guard let negotiated = connection.negotiatedProtocol, expected.contains(negotiated) else {
                let error = TLSError(
                    .noApplicationProtocol,
                    "handshake completed without ALPN agreement (expected \(expected))"
                )
                self.fail(context: context, error: error)
                return
            }
            let completion = TLSHandshakeCompleted(
                negotiatedProtocol: negotiated,
                tlsVersion: connection.protocolVersion,
                cipher: connection.cipherName,
                peer: connection.peerIdentity(),
                serverName: connection.serverNameIndication
            )
            self.completion = completion
            self.state = .active
            self.observer?.tlsHandshakeSucceeded(resumed: connection.sessionReused)
            // Session tickets and the like.
            self.writeOutput(context: context, flush: true)
            context.fireUserInboundEventTriggered(completion)
            // Application data that arrived with the peer's last handshake flight.
            self.decryptAndDeliver(context: context)
            // Writes made during the handshake, if they were flushed.
            self.encryptPendingWrites(context: context)
        }
    }

    // MARK: Inbound

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let ciphertext = self.unwrapInboundIn(data)
        self.receivedBytes = true
        guard let connection = self.connection else { return }
        switch self.state {
        case .handshaking:
            connection.feed(ciphertext)
            self.advanceHandshake(context: context)
        case .active:
            connection.feed(ciphertext)
            self.decryptAndDeliver(context: context, sizeHint: ciphertext.readableBytes)
        case .idle, .closed:
            break
        }
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        if self.deliveredPlaintext {
            self.deliveredPlaintext = false
            context.fireChannelReadComplete()
        } else if self.state == .active, self.applicationWantsRead, !Self.autoRead(context) {
            // The bytes read were not a whole record: the application's read is still unmet.
            context.read()
        }
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed, self.state == .handshaking {
            let error = TLSError(.closedDuringHandshake, "the peer closed its side during the handshake")
            self.fail(context: context, error: error)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// Decrypts every complete record received, passes the plaintext on in one buffer, and
    /// acts on close_notify or a record error after that. `sizeHint` is the ciphertext just
    /// fed: the plaintext is at most that plus one partly received record.
    private func decryptAndDeliver(context: ChannelHandlerContext, sizeHint: Int = 0) {
        guard self.state == .active, let connection = self.connection else { return }
        // A buffer that came back empty last time is reused, so a read that ends inside a
        // record allocates nothing; a buffer that was passed on is never written again.
        var plaintext = self.spareBuffer ?? context.channel.allocator.buffer(capacity: 0)
        self.spareBuffer = nil
        plaintext.reserveCapacity(minimumWritableBytes: sizeHint + TLSConnection.maximumRecordSize)
        let result = connection.read(into: &plaintext)
        // Reading can produce records for the peer (a TLS 1.3 KeyUpdate answer).
        self.writeOutput(context: context, flush: true)
        if plaintext.readableBytes > 0 {
            self.deliveredPlaintext = true
            // Cleared before the call-out: a read() made while handling this data is a new one.
            self.applicationWantsRead = false
            context.fireChannelRead(self.wrapInboundOut(plaintext))
        } else {
            self.spareBuffer = plaintext
        }
        switch result {
        case .wantRead:
            break
        case .closed:
            self.closeAfterPeerCloseNotify(context: context)
        case .failed(let error):
            self.fail(context: context, error: error)
        }
    }

    private func closeAfterPeerCloseNotify(context: ChannelHandlerContext) {
        guard self.state == .active else { return }
        self.state = .closed
        self.failPendingWrites(ChannelError.ioOnClosedChannel)
        self.sendCloseNotify(context: context)
        context.close(promise: nil)
    }

    // MARK: Outbound

    public func read(context: ChannelHandlerContext) {
        self.applicationWantsRead = true
        context.read()
    }

    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if self.state == .closed {
            promise?.fail(ChannelError.ioOnClosedChannel)
        } else if self.outputClosed {
            promise?.fail(ChannelError.outputClosed)
        } else {
            self.pendingWrites.append((self.unwrapOutboundIn(data), promise))
        }
    }

    public func flush(context: ChannelHandlerContext) {
        self.pendingWrites.mark()
        if self.state == .active {
            self.encryptPendingWrites(context: context)
        }
    }

    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        switch mode {
        case .all:
            let wasActive = self.state == .active
            self.handshakeTimer?.cancel()
            self.handshakeTimer = nil
            self.state = .closed
            self.failPendingWrites(ChannelError.ioOnClosedChannel)
            if wasActive, !self.outputClosed {
                self.sendCloseNotify(context: context)
            }
            context.close(mode: .all, promise: promise)
        case .output:
            if self.state == .active, !self.outputClosed {
                self.outputClosed = true
                self.failPendingWrites(ChannelError.outputClosed)
                self.sendCloseNotify(context: context)
            }
            context.close(mode: .output, promise: promise)
        case .input:
            context.close(mode: .input, promise: promise)
        }
    }

    /// Encrypts the flushed writes, in order, writing ciphertext on as it is produced: small
    /// writes share records, large ones are cut into chunks. Then flushes the channel.
    private func encryptPendingWrites(context: ChannelHandlerContext) {
        guard self.pendingWrites.hasMark else { return }
        while self.state == .active, self.pendingWrites.hasMark {
            let (data, promise) = self.pendingWrites.removeFirst()
            if data.readableBytes <= Self.coalescingThreshold {
                if let staged = self.coalesced?.readableBytes,
                    staged + data.readableBytes > TLSConnection.maximumRecordSize,
                    !self.encryptCoalesced(context: context)
                {
                    promise?.fail(ChannelError.ioOnClosedChannel)
                    return
                }
                if self.coalesced == nil {
                    self.coalesced = context.channel.allocator.buffer(capacity: TLSConnection.maximumRecordSize)
                }
                self.coalesced!.writeImmutableBuffer(data)
                if let promise { self.coalescedPromises.append(promise) }
            } else {
                guard self.encryptCoalesced(context: context) else {
                    promise?.fail(ChannelError.ioOnClosedChannel)
                    return
                }
                guard self.encryptLarge(data, promise: promise, context: context) else { return }
            }
        }
        if self.encryptCoalesced(context: context) {
            context.flush()
        }
    }

    /// Encrypts the staged small writes as one record. Returns false if the connection failed.
    private func encryptCoalesced(context: ChannelHandlerContext) -> Bool {
        guard let staged = self.coalesced, staged.readableBytes > 0 || !self.coalescedPromises.isEmpty else {
            return self.state == .active
        }
        self.coalesced!.clear()
        let promise = Self.combine(self.coalescedPromises, on: context.eventLoop)
        self.coalescedPromises.removeAll(keepingCapacity: true)
        return self.encrypt(staged, promise: promise, context: context)
    }

    /// Encrypts one large write in chunks; the promise goes with the last chunk's ciphertext.
    private func encryptLarge(_ data: ByteBuffer, promise: EventLoopPromise<Void>?, context: ChannelHandlerContext) -> Bool {
        var remaining = data
        while remaining.readableBytes > Self.encryptionChunk {
            let chunk = remaining.readSlice(length: Self.encryptionChunk)!
            guard self.encrypt(chunk, promise: nil, context: context) else {
                promise?.fail(ChannelError.ioOnClosedChannel)
                return false
            }
        }
        return self.encrypt(remaining, promise: promise, context: context)
    }

    private func encrypt(_ plaintext: ByteBuffer, promise: EventLoopPromise<Void>?, context: ChannelHandlerContext) -> Bool {
        guard self.state == .active, let connection = self.connection else {
            promise?.fail(ChannelError.ioOnClosedChannel)
            return false
        }
        if let error = connection.write(plaintext) {
            promise?.fail(error)
            self.fail(context: context, error: error)
            return false
        }
        if let ciphertext = connection.takeOutput(allocator: context.channel.allocator) {
            context.write(self.wrapOutboundOut(ciphertext), promise: promise)
        } else if let promise {
            // An empty write keeps the promise in order with the writes around it.
            context.write(self.wrapOutboundOut(context.channel.allocator.buffer(capacity: 0)), promise: promise)
        }
        return true
    }

    // MARK: Helpers

    private func writeOutput(context: ChannelHandlerContext, flush: Bool) {
        guard let connection = self.connection,
            let ciphertext = connection.takeOutput(allocator: context.channel.allocator)
        else { return }
        context.write(self.wrapOutboundOut(ciphertext), promise: nil)
        if flush {
            context.flush()
        }
    }

    private func sendCloseNotify(context: ChannelHandlerContext) {
        guard let connection = self.connection else { return }
        connection.shutdown()
        self.writeOutput(context: context, flush: true)
    }

    /// Ends the connection after a failure: one log line, the error down the pipeline, close.
    private func fail(context: ChannelHandlerContext, error: TLSError) {
        guard self.state != .closed else { return }
        if self.completion == nil, let observer = self.observer {
            observer.tlsHandshakeFailed(TLSHandshakeFailureReason(error))
        }
        self.state = .closed
        self.handshakeTimer?.cancel()
        self.handshakeTimer = nil
        self.logFailure(error)
        self.failPendingWrites(error)
        context.fireErrorCaught(error)
        context.close(promise: nil)
    }

    /// Logs a connection's failure, once. A connection that closes before sending a single byte
    /// (a port probe, a load balancer's TCP check) is logged at debug level only.
    private func logFailure(_ error: TLSError) {
        guard !self.loggedFailure else { return }
        self.loggedFailure = true
        let level: Logger.Level = error.code == .closedDuringHandshake && !self.receivedBytes ? .debug : .warning
        self.logger.log(
            level: level,
            "TLS connection with \(self.peerAddress) failed: \(error.message)",
            metadata: ["tls.peer": "\(self.peerAddress)", "tls.error": "\(error.code)"]
        )
    }

    private func failPendingWrites(_ error: Error) {
        while let write = self.pendingWrites.popFirst() {
            write.promise?.fail(error)
        }
        let promises = self.coalescedPromises
        self.coalescedPromises.removeAll()
        self.coalesced?.clear()
        for promise in promises { promise.fail(error) }
    }

    private static func combine(_ promises: [EventLoopPromise<Void>], on eventLoop: EventLoop) -> EventLoopPromise<Void>? {
        switch promises.count {
        case 0:
            return nil
        case 1:
            return promises[0]
        default:
            let combined = eventLoop.makePromise(of: Void.self)
            combined.futureResult.whenComplete { result in
                for promise in promises { promise.completeWith(result) }
            }
            return combined
        }
    }

    private static func autoRead(_ context: ChannelHandlerContext) -> Bool {
        (try? context.channel.syncOptions?.getOption(ChannelOptions.autoRead)) ?? true
    }

    private static func describe(_ address: SocketAddress) -> String {
        address.hostAndPort
    }
}

extension SocketAddress {
    /// "127.0.0.1:5000", "[::1]:5000" or a Unix socket's path: how logs and access logs name
    /// a peer.
    public var hostAndPort: String {
        guard let ip = ipAddress, let port else { return pathname ?? "\(self)" }
        if case .v6 = self { return "[\(ip)]:\(port)" }
        return "\(ip):\(port)"
    }
}

@available(*, unavailable)
extension TLSHandler: Sendable {}
