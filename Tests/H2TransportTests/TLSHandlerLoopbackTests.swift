import Foundation
import H2Transport
import Logging
import NIOCore
import NIOPosix
import XCTest

/// TLSHandler on both ends of real loopback sockets.
final class TLSHandlerLoopbackTests: XCTestCase {
    private var group: MultiThreadedEventLoopGroup!
    private var certificates: TestCertificates!

    override func setUpWithError() throws {
        self.group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        self.certificates = try TestCertificates()
    }

    override func tearDownWithError() throws {
        try self.group.syncShutdownGracefully()
        self.certificates.directory.remove()
    }

    private static func randomPayload(_ count: Int) -> ByteBuffer {
        var generator = SplitMix64(seed: UInt64(count))
        var buffer = ByteBuffer()
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { space in
            let words = space.bindMemory(to: UInt64.self)
            for index in 0..<(count / 8) {
                words[index] = generator.next()
            }
            return count / 8 * 8
        }
        return buffer
    }

    func testMutualTLSCarriesFourMebibytesEachWayWithALPNSNIAndPeerIdentities() throws {
        let serverContext = try TLSContext(configuration: self.certificates.serverConfiguration(verification: .required))
        let server = try TLSTestServer(context: serverContext, group: self.group)
        defer { server.stop() }
        let clientContext = try TLSContext(configuration: self.certificates.clientConfiguration())
        let client = try TLSTestClient.connect(context: clientContext, port: server.port, group: self.group)
        defer { _ = try? client.channel.close().wait() }

        let completed = try client.handshake.wait()
        XCTAssertEqual(completed.negotiatedProtocol, "h2")
        XCTAssertEqual(completed.tlsVersion, "TLSv1.3")
        XCTAssertEqual(completed.serverName, "localhost")
        let serverIdentity = try PeerIdentity(certificatePEMFile: self.certificates.files.serverCertificate)
        XCTAssertEqual(completed.peer, serverIdentity)
        XCTAssertEqual(completed.peer?.commonName, "localhost")
        XCTAssertEqual(completed.peer?.dnsNames, ["localhost"])
        XCTAssertEqual(completed.peer?.ipAddresses, ["127.0.0.1", "::1"])
        XCTAssertEqual(completed.peer?.sha256Fingerprint.count, 64)
        XCTAssertEqual(try client.peerIdentity(), serverIdentity)

        waitUntil("the server's handshake") { server.completions.count == 1 }
        let serverSide = try XCTUnwrap(server.completions.first)
        XCTAssertEqual(serverSide.negotiatedProtocol, "h2")
        XCTAssertEqual(serverSide.serverName, "localhost", "the server saw the client's SNI")
        XCTAssertEqual(serverSide.peer?.commonName, "test-client")
        XCTAssertEqual(serverSide.peer?.uris, [TestCertificates.clientURI])
        XCTAssertEqual(
            serverSide.peer?.sha256Fingerprint,
            try PeerIdentity(certificatePEMFile: self.certificates.files.clientCertificate).sha256Fingerprint
        )
        XCTAssertGreaterThan(serverSide.peer?.notAfter ?? .distantPast, Date())

        let payload = Self.randomPayload(4 * 1024 * 1024)
        let echoed = try client.roundTrip(payload)
        XCTAssertEqual(echoed.readableBytes, payload.readableBytes)
        XCTAssertTrue(echoed == payload, "4 MiB arrived at the server and came back intact")
        XCTAssertTrue(server.failures.isEmpty, "\(server.failures)")
    }

    func testTLS12IsNegotiatedWithAModernCipherWhenTheServerCapsTheVersion() throws {
        var configuration = self.certificates.serverConfiguration()
        configuration.maximumVersion = .tls12
        let server = try TLSTestServer(context: TLSContext(configuration: configuration), group: self.group)
        defer { server.stop() }
        let client = try TLSTestClient.connect(
            context: TLSContext(configuration: self.certificates.clientConfiguration(withCertificate: false)),
            port: server.port,
            group: self.group
        )
        defer { _ = try? client.channel.close().wait() }
        let completed = try client.handshake.wait()
        XCTAssertEqual(completed.tlsVersion, "TLSv1.2")
        XCTAssertTrue(completed.cipher.hasPrefix("ECDHE-ECDSA-"), completed.cipher)
        XCTAssertTrue(completed.cipher.contains("GCM") || completed.cipher.contains("CHACHA20"), completed.cipher)
        XCTAssertEqual(try client.roundTrip(ByteBuffer(string: "hello")), ByteBuffer(string: "hello"))
    }

    func testClientVerifiesAnIPAddressServerNameAgainstTheCertificate() throws {
        let server = try TLSTestServer(
            context: TLSContext(configuration: self.certificates.serverConfiguration()),
            group: self.group
        )
        defer { server.stop() }
        let clientContext = try TLSContext(configuration: self.certificates.clientConfiguration(withCertificate: false))
        let client = try TLSTestClient.connect(
            context: clientContext,
            serverName: "127.0.0.1",
            port: server.port,
            group: self.group
        )
        defer { _ = try? client.channel.close().wait() }
        let completed = try client.handshake.wait()
        XCTAssertNil(completed.serverName, "no SNI is sent for an IP address")
        waitUntil("the server's handshake") { server.completions.count == 1 }
        XCTAssertNil(server.completions.first?.peer, "no client certificate was asked for")
    }

    func testClientRefusesAServerWhoseCertificateDoesNotCarryTheName() throws {
        let server = try TLSTestServer(
            context: TLSContext(configuration: self.certificates.serverConfiguration()),
            group: self.group
        )
        defer { server.stop() }
        let clientContext = try TLSContext(configuration: self.certificates.clientConfiguration(withCertificate: false))
        let client = try TLSTestClient.connect(
            context: clientContext,
            serverName: "switchyard.example.com",
            port: server.port,
            group: self.group
        )
        XCTAssertThrowsError(try client.handshake.wait()) { error in
            let tlsError = error as? TLSError
            XCTAssertEqual(tlsError?.code, .handshakeFailed, "\(error)")
            XCTAssertTrue(tlsError?.message.contains("hostname mismatch") ?? false, "\(error)")
        }
        try client.channel.closeFuture.wait()
    }

    func testClientRefusesAServerFromAnUntrustedCA() throws {
        let server = try TLSTestServer(
            context: TLSContext(configuration: self.certificates.serverConfiguration()),
            group: self.group
        )
        defer { server.stop() }
        var configuration = self.certificates.clientConfiguration(withCertificate: false)
        configuration.trustRootsPath = self.certificates.otherFiles.caCertificate
        let client = try TLSTestClient.connect(
            context: TLSContext(configuration: configuration),
            port: server.port,
            group: self.group
        )
        XCTAssertThrowsError(try client.handshake.wait()) { error in
            XCTAssertTrue("\(error)".contains("certificate verify failed"), "\(error)")
        }
        waitUntil("the server's failure") { server.failures.count == 1 }
        XCTAssertTrue(server.failures.first?.message.contains("unknown ca") ?? false, "\(server.failures)")
    }

    func testSilentConnectionIsClosedAfterTheHandshakeTimeoutAndLoggedOnce() throws {
        var configuration = self.certificates.serverConfiguration()
        configuration.handshakeTimeout = .milliseconds(200)
        let server = try TLSTestServer(context: TLSContext(configuration: configuration), group: self.group)
        defer { server.stop() }

        let started = Date()
        let raw = try ClientBootstrap(group: self.group).connect(host: "127.0.0.1", port: server.port).wait()
        let guardTimer = raw.eventLoop.scheduleTask(in: .seconds(5)) { raw.close(promise: nil) }
        try raw.closeFuture.wait()
        guardTimer.cancel()
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertGreaterThanOrEqual(elapsed, 0.19)
        XCTAssertLessThan(elapsed, 2, "closed by the 200 ms handshake timeout, not by the guard")

        waitUntil("the failure") { server.failures.count == 1 }
        XCTAssertEqual(server.failures.first?.code, .handshakeTimedOut)
        let warnings = server.logEntries.current.filter { $0.level == .warning }
        XCTAssertEqual(warnings.count, 1, "\(warnings)")
        XCTAssertTrue(warnings.first?.message.contains("127.0.0.1:") ?? false, "\(warnings)")
        XCTAssertTrue(warnings.first?.message.contains("no handshake within 200 ms") ?? false, "\(warnings)")
    }

    func testPlaintextHTTPOnTheTLSPortIsRefusedAndTheServerKeepsServing() throws {
        let server = try TLSTestServer(
            context: TLSContext(configuration: self.certificates.serverConfiguration()),
            group: self.group
        )
        defer { server.stop() }

        let raw = try ClientBootstrap(group: self.group).connect(host: "127.0.0.1", port: server.port).wait()
        let guardTimer = raw.eventLoop.scheduleTask(in: .seconds(5)) { raw.close(promise: nil) }
        try raw.writeAndFlush(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")).wait()
        try raw.closeFuture.wait()
        guardTimer.cancel()

        waitUntil("the failure") { server.failures.count == 1 }
        XCTAssertEqual(server.failures.first?.code, .handshakeFailed)
        let warnings = server.logEntries.current.filter { $0.level == .warning }
        XCTAssertEqual(warnings.count, 1, "one line per failed connection: \(warnings)")
        XCTAssertTrue(warnings.first?.message.contains("http request") ?? false, "\(warnings)")

        let client = try TLSTestClient.connect(
            context: TLSContext(configuration: self.certificates.clientConfiguration(withCertificate: false)),
            port: server.port,
            group: self.group
        )
        defer { _ = try? client.channel.close().wait() }
        XCTAssertEqual(try client.handshake.wait().negotiatedProtocol, "h2")
    }

    func testPortProbeThatSendsNothingAndClosesIsLoggedOnlyAtDebugLevel() throws {
        let server = try TLSTestServer(
            context: TLSContext(configuration: self.certificates.serverConfiguration()),
            group: self.group
        )
        defer { server.stop() }
        let raw = try ClientBootstrap(group: self.group).connect(host: "127.0.0.1", port: server.port).wait()
        try raw.close().wait()
        waitUntil("the failure") { server.failures.count == 1 }
        XCTAssertEqual(server.failures.first?.code, .closedDuringHandshake)
        let entries = server.logEntries.current
        XCTAssertEqual(entries.map(\.level), [.debug], "\(entries)")
    }

    func testWithAutoReadOffPlaintextArrivesOnlyWhenTheApplicationReads() throws {
        let received = LockedBox(0)
        let children = LockedBox<[Channel]>([])
        let serverContext = try TLSContext(configuration: self.certificates.serverConfiguration())
        let logger = Logger(label: "switchyard.tls.test") { _ in SwiftLogNoOpLogHandler() }
        let server = try ServerBootstrap(group: self.group)
            .childChannelOption(.autoRead, value: false)
            .childChannelOption(.maxMessagesPerRead, value: 1)
            .childChannelInitializer { channel in
                children.withLock { $0.append(channel) }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers(
                        TLSHandler(context: serverContext, logger: logger),
                        ByteCountingHandler(received: received)
                    )
                }
            }
            .bind(host: "127.0.0.1", port: 0)
            .wait()
        defer { _ = try? server.close().wait() }

        let client = try TLSTestClient.connect(
            context: TLSContext(configuration: self.certificates.clientConfiguration(withCertificate: false)),
            port: server.localAddress!.port!,
            group: self.group
        )
        defer { _ = try? client.channel.close().wait() }
        XCTAssertEqual(try client.handshake.wait().negotiatedProtocol, "h2", "the handshake reads by itself")

        let total = 1024 * 1024
        try client.channel.writeAndFlush(Self.randomPayload(total)).wait()
        usleep(200_000)
        XCTAssertLessThan(received.current, total / 2, "nothing is read beyond what the handshake needed")

        let child = try XCTUnwrap(children.current.first)
        var reads = 0
        while received.current < total, reads < 1_000 {
            let before = received.current
            reads += 1
            child.read()
            // Each read the application asks for is met with plaintext, even when a socket read
            // ends inside a record.
            guard waitUntil(timeout: 2, "plaintext for read \(reads)", { received.current > before }) else { break }
        }
        XCTAssertEqual(received.current, total)
        XCTAssertGreaterThan(reads, 4)
    }

    func testReloadServesTheNewCertificateToNewConnectionsWhileOpenConnectionsContinue() throws {
        let root = self.certificates.directory.path
        let first = try DevCertificates.generate(in: root + "/first", caCommonName: "First CA")
        let second = try DevCertificates.generate(in: root + "/second", caCommonName: "Second CA")
        let live = DevCertificates.Files(directory: root + "/live")
        try FileManager.default.createDirectory(atPath: live.directory, withIntermediateDirectories: true)
        func install(_ files: DevCertificates.Files) throws {
            for (from, to) in [
                (files.serverCertificate, live.serverCertificate), (files.serverKey, live.serverKey),
            ] {
                try? FileManager.default.removeItem(atPath: to)
                try FileManager.default.copyItem(atPath: from, toPath: to)
            }
        }
        try install(first)
        let serverContext = try TLSContext(
            configuration: .server(certificateChainPath: live.serverCertificate, privateKeyPath: live.serverKey)
        )
        let firstFingerprint = try PeerIdentity(certificatePEMFile: first.serverCertificate).sha256Fingerprint
        let secondFingerprint = try PeerIdentity(certificatePEMFile: second.serverCertificate).sha256Fingerprint
        XCTAssertEqual(serverContext.certificate?.sha256Fingerprint, firstFingerprint)
        let server = try TLSTestServer(context: serverContext, group: self.group)
        defer { server.stop() }

        let old = try TLSTestClient.connect(
            context: TLSContext(configuration: .client(serverName: "localhost", trustRootsPath: first.caCertificate)),
            port: server.port,
            group: self.group
        )
        defer { _ = try? old.channel.close().wait() }
        XCTAssertEqual(try old.handshake.wait().peer?.sha256Fingerprint, firstFingerprint)

        try install(second)
        let reloaded = try serverContext.reload()
        XCTAssertEqual(reloaded?.sha256Fingerprint, secondFingerprint)
        XCTAssertEqual(serverContext.certificate?.sha256Fingerprint, secondFingerprint)

        let new = try TLSTestClient.connect(
            context: TLSContext(configuration: .client(serverName: "localhost", trustRootsPath: second.caCertificate)),
            port: server.port,
            group: self.group
        )
        defer { _ = try? new.channel.close().wait() }
        XCTAssertEqual(try new.handshake.wait().peer?.sha256Fingerprint, secondFingerprint)

        let payload = Self.randomPayload(64 * 1024)
        XCTAssertTrue(try old.roundTrip(payload) == payload, "the connection opened before the reload still works")
        XCTAssertTrue(try new.roundTrip(payload) == payload)
    }

    func testFailedReloadReportsOpenSSLsReasonAndKeepsThePreviousMaterial() throws {
        let root = self.certificates.directory.path
        let live = try DevCertificates.generate(in: root + "/live")
        let other = try DevCertificates.generate(in: root + "/other-live")
        let serverContext = try TLSContext(
            configuration: .server(certificateChainPath: live.serverCertificate, privateKeyPath: live.serverKey)
        )
        let before = serverContext.certificate

        // A key that belongs to another certificate.
        try FileManager.default.removeItem(atPath: live.serverKey)
        try FileManager.default.copyItem(atPath: other.serverKey, toPath: live.serverKey)
        XCTAssertThrowsError(try serverContext.reload()) { error in
            let tlsError = error as? TLSError
            XCTAssertEqual(tlsError?.code, .invalidConfiguration)
            XCTAssertTrue(tlsError?.message.contains("key values mismatch") ?? false, "OpenSSL's reason: \(error)")
        }
        // A key file that is not PEM at all.
        try Data("not a key".utf8).write(to: URL(fileURLWithPath: live.serverKey))
        XCTAssertThrowsError(try serverContext.reload()) { error in
            XCTAssertTrue("\(error)".contains("cannot load private key \(live.serverKey)"), "\(error)")
        }
        XCTAssertEqual(serverContext.certificate, before)

        let server = try TLSTestServer(context: serverContext, group: self.group)
        defer { server.stop() }
        let client = try TLSTestClient.connect(
            context: TLSContext(configuration: .client(serverName: "localhost", trustRootsPath: live.caCertificate)),
            port: server.port,
            group: self.group
        )
        defer { _ = try? client.channel.close().wait() }
        XCTAssertEqual(try client.handshake.wait().peer, before, "the old certificate and key are still served")
    }
}

/// Counts plaintext bytes; never calls read() by itself.
final class ByteCountingHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let received: LockedBox<Int>

    init(received: LockedBox<Int>) { self.received = received }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let count = self.unwrapInboundIn(data).readableBytes
        self.received.withLock { $0 += count }
    }
}
