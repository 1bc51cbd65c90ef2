import H2Transport
import Logging
import NIOCore
import NIOEmbedded
import XCTest

/// TLSHandler driven through EmbeddedChannels: no sockets, every byte under the test's control.
final class TLSHandlerEmbeddedTests: XCTestCase {
    private var certificates: TestCertificates!
    private let logEntries = LockedBox<[CapturingLogHandler.Entry]>([])

    override func setUpWithError() throws {
        self.certificates = try TestCertificates()
    }

    override func tearDown() {
        self.certificates.directory.remove()
    }

    private var logger: Logger { CapturingLogHandler.logger(into: self.logEntries) }

    private func makeChannel(_ configuration: TLSConfiguration) throws -> (EmbeddedChannel, TLSHandler) {
        let handler = TLSHandler(context: try TLSContext(configuration: configuration), logger: self.logger)
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8443)).wait()
        return (channel, handler)
    }

    /// Moves everything `from` wrote to `to`, in pieces of `pieceSize` bytes. Returns whether
    /// any byte moved.
    @discardableResult
    private func shuttle(from: EmbeddedChannel, to: EmbeddedChannel, pieceSize: Int = 1) throws -> Bool {
        var moved = false
        while var buffer = try from.readOutbound(as: ByteBuffer.self) {
            while buffer.readableBytes > 0, to.isActive {
                let piece = buffer.readSlice(length: min(pieceSize, buffer.readableBytes))!
                try to.writeInbound(piece)
                moved = true
            }
        }
        return moved
    }

    private func drainInbound(_ channel: EmbeddedChannel) throws -> ByteBuffer {
        var all = ByteBuffer()
        while var buffer = try channel.readInbound(as: ByteBuffer.self) {
            all.writeBuffer(&buffer)
        }
        return all
    }

    func testMutualTLSHandshakeCompletesWhenEveryByteArrivesOnItsOwn() throws {
        let (server, serverHandler) = try self.makeChannel(self.certificates.serverConfiguration(verification: .required))
        let (client, clientHandler) = try self.makeChannel(self.certificates.clientConfiguration())
        defer {
            _ = try? server.finish(acceptAlreadyClosed: true)
            _ = try? client.finish(acceptAlreadyClosed: true)
        }

        var rounds = 0
        while clientHandler.handshakeResult == nil || serverHandler.handshakeResult == nil {
            rounds += 1
            let movedOut = try self.shuttle(from: client, to: server)
            let movedBack = try self.shuttle(from: server, to: client)
            guard movedOut || movedBack, rounds < 20 else {
                return XCTFail("the handshake stalled after \(rounds) rounds: \(self.logEntries.current)")
            }
        }
        XCTAssertEqual(clientHandler.handshakeResult?.negotiatedProtocol, "h2")
        XCTAssertEqual(serverHandler.peerIdentity()?.uris, [TestCertificates.clientURI])
        XCTAssertEqual(clientHandler.peerIdentity()?.dnsNames, ["localhost"])

        // Writes before a flush stay put; at the flush, small writes share one record.
        client.write(ByteBuffer(string: "hello, "), promise: nil)
        client.write(ByteBuffer(string: "server"), promise: nil)
        XCTAssertNil(try client.readOutbound(as: ByteBuffer.self))
        client.flush()
        let record = try XCTUnwrap(try client.readOutbound(as: ByteBuffer.self))
        XCTAssertNil(try client.readOutbound(as: ByteBuffer.self), "one record for both writes")
        try server.writeInbound(record)
        XCTAssertEqual(try self.drainInbound(server), ByteBuffer(string: "hello, server"))

        // Plaintext split into single bytes of ciphertext still arrives whole.
        try server.writeAndFlush(ByteBuffer(string: "hello, client")).wait()
        try self.shuttle(from: server, to: client)
        XCTAssertEqual(try self.drainInbound(client), ByteBuffer(string: "hello, client"))

        // Closing sends close_notify; the peer closes in turn.
        try client.close().wait()
        try self.shuttle(from: client, to: server)
        XCTAssertFalse(server.isActive, "close_notify closed the server side")
        XCTAssertTrue(self.logEntries.current.filter { $0.level == .warning }.isEmpty, "\(self.logEntries.current)")
    }

    func testClientHelloSplitAtEveryOffsetIsAnsweredWithAServerHello() throws {
        let (client, _) = try self.makeChannel(self.certificates.clientConfiguration(withCertificate: false))
        defer { _ = try? client.finish(acceptAlreadyClosed: true) }
        let clientHello = try XCTUnwrap(try client.readOutbound(as: ByteBuffer.self))
        XCTAssertGreaterThan(clientHello.readableBytes, 100)
        let serverContext = try TLSContext(configuration: self.certificates.serverConfiguration())

        for offset in 1..<clientHello.readableBytes {
            let server = EmbeddedChannel()
            try server.pipeline.syncOperations.addHandler(TLSHandler(context: serverContext, logger: self.logger))
            try server.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8443)).wait()
            var hello = clientHello
            try server.writeInbound(hello.readSlice(length: offset)!)
            XCTAssertNil(try server.readOutbound(as: ByteBuffer.self), "nothing to say before the hello is whole")
            try server.writeInbound(hello)
            let answer = try XCTUnwrap(try server.readOutbound(as: ByteBuffer.self), "offset \(offset)")
            XCTAssertEqual(answer.getInteger(at: answer.readerIndex, as: UInt8.self), 22, "a handshake record")
            XCTAssertTrue(server.isActive, "offset \(offset)")
            _ = try? server.finish(acceptAlreadyClosed: true)
        }
    }

    func testGarbageIsRefusedWithoutCrashingWhateverItsShape() throws {
        var generator = SplitMix64(seed: 0x5717_c4ad)
        let prefixes: [[UInt8]] = [
            Array("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8),
            Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8),
            [22, 3, 1, 0xff, 0xff],  // a handshake record claiming 64 KiB
            [22, 3, 3, 0, 4, 1, 0, 0, 0],  // an empty ClientHello
            [21, 3, 3, 0, 2, 2, 40],  // an alert instead of a hello
            [],
        ]
        var refused = 0
        for (index, prefix) in prefixes.enumerated() {
            for round in 0..<20 {
                let (server, _) = try self.makeChannel(self.certificates.serverConfiguration())
                var bytes = prefix
                let extra = Int(generator.next() % 600)
                bytes += (0..<extra).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
                var buffer = ByteBuffer(bytes: bytes)
                while buffer.readableBytes > 0, server.isActive {
                    let size = 1 + Int(generator.next() % 64)
                    // The handler reports the refusal as a TLSError, which EmbeddedChannel rethrows.
                    do {
                        try server.writeInbound(buffer.readSlice(length: min(size, buffer.readableBytes))!)
                    } catch let error as TLSError {
                        XCTAssertEqual(error.code, .handshakeFailed, "\(error)")
                        refused += 1
                    }
                }
                XCTAssertNil(try server.readInbound(as: ByteBuffer.self), "no plaintext from garbage \(index)/\(round)")
                _ = try? server.finish(acceptAlreadyClosed: true)
            }
        }
        XCTAssertGreaterThan(refused, 80, "most garbage is refused outright")
    }

    func testHandlerAddedToAnActiveChannelStartsTheHandshakeAtOnce() throws {
        let channel = EmbeddedChannel()
        defer { _ = try? channel.finish(acceptAlreadyClosed: true) }
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 8443)).wait()
        let context = try TLSContext(configuration: self.certificates.clientConfiguration(withCertificate: false))
        try channel.pipeline.syncOperations.addHandler(TLSHandler(context: context, logger: self.logger))
        let hello = try XCTUnwrap(try channel.readOutbound(as: ByteBuffer.self))
        XCTAssertEqual(hello.getInteger(at: hello.readerIndex, as: UInt8.self), 22, "a handshake record")
    }

    func testWritesBeforeTheHandshakeAreSentAfterItInOrder() throws {
        let (server, serverHandler) = try self.makeChannel(self.certificates.serverConfiguration())
        let (client, clientHandler) = try self.makeChannel(self.certificates.clientConfiguration(withCertificate: false))
        defer {
            _ = try? server.finish(acceptAlreadyClosed: true)
            _ = try? client.finish(acceptAlreadyClosed: true)
        }
        let first = client.eventLoop.makePromise(of: Void.self)
        client.write(ByteBuffer(string: "early "), promise: first)
        client.writeAndFlush(ByteBuffer(string: "bird"), promise: nil)
        for _ in 0..<5 {
            try self.shuttle(from: client, to: server, pieceSize: 4096)
            try self.shuttle(from: server, to: client, pieceSize: 4096)
        }
        XCTAssertNotNil(clientHandler.handshakeResult)
        XCTAssertNotNil(serverHandler.handshakeResult)
        XCTAssertNoThrow(try first.futureResult.wait())
        XCTAssertEqual(try self.drainInbound(server), ByteBuffer(string: "early bird"))
    }
}

/// A small deterministic generator, so that a failing garbage case can be replayed.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { self.state = seed }

    mutating func next() -> UInt64 {
        self.state &+= 0x9E37_79B9_7F4A_7C15
        var z = self.state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
