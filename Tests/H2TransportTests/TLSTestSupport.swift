import Foundation
import H2Transport
import Logging
import NIOCore
import NIOPosix
import XCTest

/// A value guarded by a lock, for test state shared between event loops and the test thread.
/// `@unchecked Sendable` because every access goes through `lock`.
final class LockedBox<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
        self.lock.lock()
        defer { self.lock.unlock() }
        return try body(&self.value)
    }

    var current: Value { self.withLock { $0 } }
}

/// Polls `condition` until it holds or `timeout` passes (a test failure); returns whether it held.
@discardableResult
func waitUntil(
    timeout: TimeInterval = 5,
    file: StaticString = #filePath,
    line: UInt = #line,
    _ what: String,
    _ condition: () -> Bool
) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while !condition() {
        if Date() > deadline {
            XCTFail("timed out waiting for \(what)", file: file, line: line)
            return false
        }
        usleep(5_000)
    }
    return true
}

/// A fresh temporary directory, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        let base = FileManager.default.temporaryDirectory.path
        self.path = "\(base)/switchyard-tls-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: self.path, withIntermediateDirectories: true)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: self.path)
    }
}

/// A log handler that keeps every message, to assert on what was logged.
struct CapturingLogHandler: LogHandler {
    struct Entry: Sendable {
        var level: Logger.Level
        var message: String
    }

    let entries: LockedBox<[Entry]>
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        self.entries.withLock { $0.append(Entry(level: event.level, message: "\(event.message)")) }
    }

    static func logger(into entries: LockedBox<[Entry]>) -> Logger {
        Logger(label: "switchyard.tls.test") { _ in CapturingLogHandler(entries: entries) }
    }
}

/// What the server side of a test saw: one outcome per connection.
enum HandshakeOutcome: Sendable {
    case completed(TLSHandshakeCompleted)
    case failed(TLSError)
}

/// Records the handshake outcome of each connection, then echoes plaintext back (and, if
/// asked, closes the connection after the first echo, so that a command-line client exits).
final class RecordingEchoHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let outcomes: LockedBox<[HandshakeOutcome]>
    private let closeAfterEcho: Bool

    init(outcomes: LockedBox<[HandshakeOutcome]>, closeAfterEcho: Bool = false) {
        self.outcomes = outcomes
        self.closeAfterEcho = closeAfterEcho
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let completed = event as? TLSHandshakeCompleted {
            self.outcomes.withLock { $0.append(.completed(completed)) }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if let error = error as? TLSError {
            self.outcomes.withLock { $0.append(.failed(error)) }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.write(data, promise: nil)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
        if self.closeAfterEcho {
            context.close(promise: nil)
        }
    }
}

/// Client-side test handler: completes `handshake` with the event or the error, and collects
/// plaintext until `expectedBytes` have arrived.
final class ClientProbeHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let handshake: EventLoopPromise<TLSHandshakeCompleted>
    private var received: ByteBuffer
    private var expectedBytes: Int
    private var receivedAll: EventLoopPromise<ByteBuffer>?

    init(handshake: EventLoopPromise<TLSHandshakeCompleted>) {
        self.handshake = handshake
        self.received = ByteBuffer()
        self.expectedBytes = 0
    }

    /// Collects the next `count` bytes; call on the event loop.
    func expect(_ count: Int, promise: EventLoopPromise<ByteBuffer>) {
        self.received.clear()
        self.expectedBytes = count
        self.receivedAll = promise
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let completed = event as? TLSHandshakeCompleted {
            self.handshake.succeed(completed)
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        self.handshake.fail(error)
        self.receivedAll?.fail(error)
        self.receivedAll = nil
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.handshake.fail(ChannelError.eof)
        self.receivedAll?.fail(ChannelError.eof)
        self.receivedAll = nil
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = self.unwrapInboundIn(data)
        self.received.writeBuffer(&buffer)
        if let promise = self.receivedAll, self.received.readableBytes >= self.expectedBytes {
            self.receivedAll = nil
            promise.succeed(self.received)
        }
    }
}

/// A TLS server on 127.0.0.1 with an echoing application behind the `TLSHandler`.
final class TLSTestServer {
    let group: MultiThreadedEventLoopGroup
    let channel: Channel
    let outcomes = LockedBox<[HandshakeOutcome]>([])
    let logEntries = LockedBox<[CapturingLogHandler.Entry]>([])

    var port: Int { self.channel.localAddress!.port! }

    init(context: TLSContext, group: MultiThreadedEventLoopGroup, closeAfterEcho: Bool = false) throws {
        self.group = group
        let outcomes = self.outcomes
        let logger = CapturingLogHandler.logger(into: self.logEntries)
        self.channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(
                        TLSHandler(context: context, logger: logger),
                        RecordingEchoHandler(outcomes: outcomes, closeAfterEcho: closeAfterEcho)
                    )
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .wait()
    }

    func stop() {
        try? self.channel.close().wait()
    }

    /// The failures recorded so far.
    var failures: [TLSError] {
        self.outcomes.current.compactMap {
            if case .failed(let error) = $0 { return error }
            return nil
        }
    }

    /// The successful handshakes recorded so far.
    var completions: [TLSHandshakeCompleted] {
        self.outcomes.current.compactMap {
            if case .completed(let completion) = $0 { return completion }
            return nil
        }
    }
}

/// A connected TLS client channel whose pipeline ends in a `ClientProbeHandler`.
struct TLSTestClient: Sendable {
    let channel: Channel
    let handshake: EventLoopFuture<TLSHandshakeCompleted>

    static func connect(
        context: TLSContext,
        serverName: String? = nil,
        port: Int,
        group: EventLoopGroup,
        logger: Logger = Logger(label: "switchyard.tls.test.client") { _ in SwiftLogNoOpLogHandler() }
    ) throws -> TLSTestClient {
        let eventLoop = group.next()
        let handshake = eventLoop.makePromise(of: TLSHandshakeCompleted.self)
        let channel = try ClientBootstrap(group: eventLoop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(
                        TLSHandler(context: context, serverName: serverName, logger: logger),
                        ClientProbeHandler(handshake: handshake)
                    )
                }
            }
            .connect(host: "127.0.0.1", port: port)
            .wait()
        return TLSTestClient(channel: channel, handshake: handshake.futureResult)
    }

    /// Writes `payload` and waits until the same number of bytes has come back.
    func roundTrip(_ payload: ByteBuffer) throws -> ByteBuffer {
        let channel = self.channel
        return try channel.eventLoop.flatSubmit {
            let promise = channel.eventLoop.makePromise(of: ByteBuffer.self)
            do {
                let probe = try channel.pipeline.syncOperations.handler(type: ClientProbeHandler.self)
                probe.expect(payload.readableBytes, promise: promise)
                channel.writeAndFlush(payload, promise: nil)
            } catch {
                promise.fail(error)
            }
            return promise.futureResult
        }.wait()
    }

    /// The `TLSHandler`'s view of the peer, read on the event loop.
    func peerIdentity() throws -> PeerIdentity? {
        let channel = self.channel
        return try channel.eventLoop.submit {
            try channel.pipeline.syncOperations.handler(type: TLSHandler.self).peerIdentity()
        }.wait()
    }
}

/// A set of development certificates for a test, and the extra ones tests need.
struct TestCertificates {
    let directory: TemporaryDirectory
    let files: DevCertificates.Files
    /// A second, unrelated CA with a client certificate of its own.
    let otherFiles: DevCertificates.Files
    let expiredClient: (certificate: String, key: String)
    let notYetValidClient: (certificate: String, key: String)

    static let clientURI = "spiffe://switchyard/test-client"

    init() throws {
        self.directory = try TemporaryDirectory()
        self.files = try DevCertificates.generate(
            in: self.directory.path + "/main",
            client: .client(commonName: "test-client", uri: Self.clientURI)
        )
        self.otherFiles = try DevCertificates.generate(in: self.directory.path + "/other", caCommonName: "Unknown CA")
        let expired = (self.directory.path + "/expired.pem", self.directory.path + "/expired-key.pem")
        try DevCertificates.issue(
            .client(commonName: "expired-client", validity: .expired),
            caCertificatePath: self.files.caCertificate,
            caKeyPath: self.files.caKey,
            certificatePath: expired.0,
            keyPath: expired.1
        )
        self.expiredClient = expired
        let early = (self.directory.path + "/early.pem", self.directory.path + "/early-key.pem")
        try DevCertificates.issue(
            .client(commonName: "early-client", validity: .notYetValid),
            caCertificatePath: self.files.caCertificate,
            caKeyPath: self.files.caKey,
            certificatePath: early.0,
            keyPath: early.1
        )
        self.notYetValidClient = early
    }

    func serverConfiguration(
        verification: TLSConfiguration.ClientCertificateVerification = .none
    ) -> TLSConfiguration {
        .server(
            certificateChainPath: self.files.serverCertificate,
            privateKeyPath: self.files.serverKey,
            trustRootsPath: self.files.caCertificate,
            clientCertificateVerification: verification
        )
    }

    func clientConfiguration(withCertificate: Bool = true, serverName: String = "localhost") -> TLSConfiguration {
        .client(
            serverName: serverName,
            trustRootsPath: self.files.caCertificate,
            certificateChainPath: withCertificate ? self.files.clientCertificate : nil,
            privateKeyPath: withCertificate ? self.files.clientKey : nil
        )
    }
}

/// Runs /usr/bin/openssl with `arguments`, feeding `input` on stdin (then closing it), and
/// returns its exit status and combined output. Kills it after `timeout` seconds.
func runOpenSSL(_ arguments: [String], input: String = "", timeout: TimeInterval = 10) throws -> (
    status: Int32, output: String
) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
    process.arguments = arguments
    let stdin = Pipe()
    let output = Pipe()
    process.standardInput = stdin
    process.standardOutput = output
    process.standardError = output
    try process.run()
    let collected = LockedBox(Data())
    let reader = Thread {
        let data = output.fileHandleForReading.readDataToEndOfFile()
        collected.withLock { $0 = data }
    }
    reader.start()
    if !input.isEmpty {
        stdin.fileHandleForWriting.write(Data(input.utf8))
    }
    try stdin.fileHandleForWriting.close()
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning, Date() < deadline {
        usleep(5_000)
    }
    if process.isRunning {
        process.terminate()
    }
    process.waitUntilExit()
    waitUntil(timeout: 5, "openssl output") { reader.isFinished }
    return (process.terminationStatus, String(decoding: collected.current, as: UTF8.self))
}
