import Foundation
import H2Transport
import NIOPosix
import XCTest

/// A NIOPosix server with TLSHandler, probed by `openssl s_client`, an independent TLS stack.
///
/// Every s_client run uses `-ign_eof` and sends one line: a refused client sees the server's
/// alert (or its own handshake failure) and exits non-zero; an accepted one gets its line
/// echoed, then the server closes with close_notify and s_client exits 0. No timing races.
final class TLSHandlerOpenSSLClientTests: XCTestCase {
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

    private func startServer(
        verification: TLSConfiguration.ClientCertificateVerification = .none
    ) throws -> TLSTestServer {
        let context = try TLSContext(configuration: self.certificates.serverConfiguration(verification: verification))
        return try TLSTestServer(context: context, group: self.group, closeAfterEcho: true)
    }

    private struct Run {
        var status: Int32
        var output: String
        var accepted: Bool { self.status == 0 && self.output.contains("ping-from-s_client") }
    }

    /// Runs s_client against `server` with the usual trust and SNI, plus `extra` arguments.
    private func sClient(
        _ server: TLSTestServer,
        _ extra: [String],
        alpn: String? = "h2",
        certificate: (String, String)? = nil
    ) throws -> Run {
        var arguments = [
            "s_client", "-connect", "127.0.0.1:\(server.port)", "-servername", "localhost",
            "-CAfile", self.certificates.files.caCertificate, "-verify_return_error", "-ign_eof",
        ]
        if let alpn { arguments += ["-alpn", alpn] }
        if let (cert, key) = certificate { arguments += ["-cert", cert, "-key", key] }
        arguments += extra
        let result = try runOpenSSL(arguments, input: "ping-from-s_client\n")
        return Run(status: result.status, output: result.output)
    }

    private var validClient: (String, String) {
        (self.certificates.files.clientCertificate, self.certificates.files.clientKey)
    }

    /// After a refusal, the server still accepts a well-behaved client.
    private func assertStillServing(
        _ server: TLSTestServer,
        certificate: (String, String)? = nil,
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws {
        let run = try self.sClient(server, [], certificate: certificate)
        XCTAssertTrue(run.accepted, "a valid connection after the refusal: \(run.output)", file: file, line: line)
        XCTAssertTrue(run.output.contains("ALPN protocol: h2"), run.output, file: file, line: line)
        XCTAssertTrue(run.output.contains("Verify return code: 0 (ok)"), run.output, file: file, line: line)
    }

    /// Asserts that s_client was refused with `alert` in its output, and that the server
    /// recorded exactly one failure whose reason contains `reason`.
    private func assertRefused(
        _ run: Run,
        alert: String,
        server: TLSTestServer,
        reason: String,
        file: StaticString = #filePath,
        line: UInt = #line
    ) {
        XCTAssertNotEqual(run.status, 0, run.output, file: file, line: line)
        XCTAssertFalse(run.output.contains("ping-from-s_client"), "no data got through", file: file, line: line)
        XCTAssertTrue(run.output.contains(alert), "expected \"\(alert)\" in: \(run.output)", file: file, line: line)
        waitUntil(file: file, line: line, "the server's failure") { server.failures.count == 1 }
        let message = server.failures.first?.message ?? ""
        XCTAssertTrue(message.contains(reason), "expected \"\(reason)\" in: \(message)", file: file, line: line)
        XCTAssertTrue(server.completions.isEmpty, "\(server.completions)", file: file, line: line)
    }

    func testTLS11IsRefusedWithAProtocolVersionAlert() throws {
        let server = try self.startServer()
        defer { server.stop() }
        // SECLEVEL=0 lets s_client itself offer TLS 1.1 at all.
        let run = try self.sClient(server, ["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"])
        self.assertRefused(run, alert: "alert protocol version", server: server, reason: "unsupported protocol")
        try self.assertStillServing(server)
    }

    func testTLS12WithACBCCipherIsRefused() throws {
        let server = try self.startServer()
        defer { server.stop() }
        let run = try self.sClient(server, ["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA"])
        self.assertRefused(run, alert: "alert handshake failure", server: server, reason: "no shared cipher")
        let modern = try self.sClient(server, ["-tls1_2"])
        XCTAssertTrue(modern.accepted, modern.output)
        XCTAssertTrue(modern.output.contains("Cipher is ECDHE-ECDSA-AES128-GCM-SHA256"), "server preference: \(modern.output)")
    }

    func testClientOfferingOnlyHTTP11IsRefusedWithNoApplicationProtocol() throws {
        let server = try self.startServer()
        defer { server.stop() }
        let run = try self.sClient(server, [], alpn: "http/1.1")
        self.assertRefused(run, alert: "alert no application protocol", server: server, reason: "http/1.1")
        try self.assertStillServing(server)
    }

    func testClientOfferingNoALPNIsRefusedWithNoApplicationProtocol() throws {
        let server = try self.startServer()
        defer { server.stop() }
        let run = try self.sClient(server, [], alpn: nil)
        self.assertRefused(run, alert: "alert no application protocol", server: server, reason: "client offered no ALPN")
        try self.assertStillServing(server)
    }

    func testRequiredMTLSRefusesAClientWithoutCertificate() throws {
        let server = try self.startServer(verification: .required)
        defer { server.stop() }
        let run = try self.sClient(server, [])
        self.assertRefused(
            run,
            alert: "alert certificate required",
            server: server,
            reason: "peer did not return a certificate"
        )
        try self.assertStillServing(server, certificate: self.validClient)
    }

    func testRequiredMTLSRefusesACertificateFromAnUnknownCA() throws {
        let server = try self.startServer(verification: .required)
        defer { server.stop() }
        let other = self.certificates.otherFiles
        let run = try self.sClient(server, [], certificate: (other.clientCertificate, other.clientKey))
        self.assertRefused(run, alert: "alert unknown ca", server: server, reason: "unable to get local issuer certificate")
        try self.assertStillServing(server, certificate: self.validClient)
    }

    func testRequiredMTLSRefusesAnExpiredCertificate() throws {
        let server = try self.startServer(verification: .required)
        defer { server.stop() }
        let run = try self.sClient(server, [], certificate: self.certificates.expiredClient)
        self.assertRefused(run, alert: "alert certificate expired", server: server, reason: "certificate has expired")
        try self.assertStillServing(server, certificate: self.validClient)
    }

    func testRequiredMTLSRefusesANotYetValidCertificate() throws {
        let server = try self.startServer(verification: .required)
        defer { server.stop() }
        let run = try self.sClient(server, [], certificate: self.certificates.notYetValidClient)
        self.assertRefused(run, alert: "alert bad certificate", server: server, reason: "certificate is not yet valid")
        try self.assertStillServing(server, certificate: self.validClient)
    }

    func testRequiredMTLSAcceptsAValidCertificateAndSeesItsIdentity() throws {
        let server = try self.startServer(verification: .required)
        defer { server.stop() }
        try self.assertStillServing(server, certificate: self.validClient)
        waitUntil("the server's handshake") { server.completions.count == 1 }
        XCTAssertEqual(server.completions.first?.peer?.uris, [TestCertificates.clientURI])
    }

    func testOptionalMTLSAcceptsAClientWithoutCertificate() throws {
        let server = try self.startServer(verification: .optional)
        defer { server.stop() }
        let run = try self.sClient(server, [])
        XCTAssertTrue(run.accepted, run.output)
        waitUntil("the server's handshake") { server.completions.count == 1 }
        XCTAssertNil(server.completions.first?.peer)
        XCTAssertTrue(server.failures.isEmpty, "\(server.failures)")
    }

    func testOptionalMTLSRefusesABadCertificate() throws {
        let server = try self.startServer(verification: .optional)
        defer { server.stop() }
        let other = self.certificates.otherFiles
        let run = try self.sClient(server, [], certificate: (other.clientCertificate, other.clientKey))
        self.assertRefused(run, alert: "alert unknown ca", server: server, reason: "unable to get local issuer certificate")
        try self.assertStillServing(server, certificate: self.validClient)
        try self.assertStillServing(server)
    }
}
