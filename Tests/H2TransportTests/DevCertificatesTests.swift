import Foundation
import H2Transport
import XCTest

final class DevCertificatesTests: XCTestCase {
    private var directory: TemporaryDirectory!

    override func setUpWithError() throws {
        self.directory = try TemporaryDirectory()
    }

    override func tearDown() {
        self.directory.remove()
    }

    private func text(of certificate: String) throws -> String {
        let result = try runOpenSSL(["x509", "-in", certificate, "-noout", "-text"])
        XCTAssertEqual(result.status, 0, result.output)
        return result.output
    }

    func testGenerateWritesSixPEMFilesWithPrivateKeysReadableOnlyByTheOwner() throws {
        let files = try DevCertificates.generate(in: self.directory.path + "/nested/dev")
        XCTAssertTrue(files.allExist)
        for key in [files.caKey, files.serverKey, files.clientKey] {
            let attributes = try FileManager.default.attributesOfItem(atPath: key)
            XCTAssertEqual((attributes[.posixPermissions] as? NSNumber)?.intValue, 0o600, key)
            XCTAssertTrue(try String(contentsOfFile: key, encoding: .utf8).hasPrefix("-----BEGIN PRIVATE KEY-----"))
        }
        for certificate in [files.caCertificate, files.serverCertificate, files.clientCertificate] {
            XCTAssertTrue(try String(contentsOfFile: certificate, encoding: .utf8).hasPrefix("-----BEGIN CERTIFICATE-----"))
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: files.directory).filter { $0.contains(".tmp") }
        XCTAssertEqual(leftovers, [])
    }

    func testGeneratedCertificatesVerifyWithOpenSSLAndCarryTheRequestedExtensions() throws {
        let files = try DevCertificates.generate(
            in: self.directory.path,
            client: .client(commonName: "test-client", uri: "spiffe://switchyard/test-client")
        )
        for leaf in [files.serverCertificate, files.clientCertificate] {
            let verify = try runOpenSSL(["verify", "-CAfile", files.caCertificate, leaf])
            XCTAssertEqual(verify.status, 0, verify.output)
            XCTAssertTrue(verify.output.contains("\(leaf): OK"), verify.output)
        }
        let purpose = try runOpenSSL([
            "verify", "-CAfile", files.caCertificate, "-purpose", "sslserver", files.clientCertificate,
        ])
        XCTAssertNotEqual(purpose.status, 0, "a client certificate is not a server certificate: \(purpose.output)")

        let ca = try self.text(of: files.caCertificate)
        XCTAssertTrue(ca.contains("CA:TRUE"), ca)
        XCTAssertTrue(ca.contains("Certificate Sign"), ca)
        XCTAssertTrue(ca.contains("Version: 3"), ca)
        XCTAssertTrue(ca.contains("ASN1 OID: prime256v1"), ca)

        let server = try self.text(of: files.serverCertificate)
        XCTAssertTrue(server.contains("ecdsa-with-SHA256"), server)
        XCTAssertTrue(server.contains("CA:FALSE"), server)
        XCTAssertTrue(server.contains("TLS Web Server Authentication"), server)
        XCTAssertTrue(server.contains("DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1"), server)
        XCTAssertTrue(server.contains("X509v3 Authority Key Identifier"), server)

        let client = try self.text(of: files.clientCertificate)
        XCTAssertTrue(client.contains("TLS Web Client Authentication"), client)
        XCTAssertTrue(client.contains("URI:spiffe://switchyard/test-client"), client)
        XCTAssertTrue(client.contains("CN = test-client"), client)

        let identity = try PeerIdentity(certificatePEMFile: files.clientCertificate)
        XCTAssertEqual(identity.commonName, "test-client")
        XCTAssertEqual(identity.uris, ["spiffe://switchyard/test-client"])
        XCTAssertEqual(identity.dnsNames, [])
        let fingerprint = try runOpenSSL(["x509", "-in", files.clientCertificate, "-noout", "-fingerprint", "-sha256"])
        let expected = fingerprint.output.split(separator: "=").last.map {
            $0.replacingOccurrences(of: ":", with: "").trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
        }
        XCTAssertEqual(identity.sha256Fingerprint, expected)
    }

    func testSerialNumbersAreRandomAndPositive() throws {
        let first = try DevCertificates.generate(in: self.directory.path + "/a")
        let second = try DevCertificates.generate(in: self.directory.path + "/b")
        var serials: Set<String> = []
        for certificate in [first.caCertificate, first.serverCertificate, second.caCertificate, second.serverCertificate] {
            let result = try runOpenSSL(["x509", "-in", certificate, "-noout", "-serial"])
            let serial = result.output.trimmingCharacters(in: .whitespacesAndNewlines)
            XCTAssertEqual(serial.count, "serial=".count + 32, serial)
            serials.insert(serial)
        }
        XCTAssertEqual(serials.count, 4)
    }

    func testValidityOffsetsMakeExpiredAndNotYetValidCertificates() throws {
        let files = try DevCertificates.generate(in: self.directory.path)
        let cases: [(DevCertificates.Validity, String)] = [
            (.expired, "certificate has expired"),
            (.notYetValid, "certificate is not yet valid"),
        ]
        for (validity, complaint) in cases {
            let certificate = self.directory.path + "/leaf.pem"
            try DevCertificates.issue(
                .localhostServer(validity: validity),
                caCertificatePath: files.caCertificate,
                caKeyPath: files.caKey,
                certificatePath: certificate,
                keyPath: self.directory.path + "/leaf-key.pem"
            )
            let verify = try runOpenSSL(["verify", "-CAfile", files.caCertificate, certificate])
            XCTAssertNotEqual(verify.status, 0)
            XCTAssertTrue(verify.output.contains(complaint), verify.output)
            let notAfter = try PeerIdentity(certificatePEMFile: certificate).notAfter
            let expected = Date().addingTimeInterval(TimeInterval(validity.notAfterOffset))
            XCTAssertEqual(notAfter.timeIntervalSince1970, expected.timeIntervalSince1970, accuracy: 60)
        }
    }

    func testIssueRefusesANameThatOpenSSLsExtensionSyntaxCannotCarry() throws {
        let files = try DevCertificates.generate(in: self.directory.path)
        XCTAssertThrowsError(
            try DevCertificates.issue(
                DevCertificates.Leaf(commonName: "x", uris: ["spiffe://a,b"], usage: .client),
                caCertificatePath: files.caCertificate,
                caKeyPath: files.caKey,
                certificatePath: self.directory.path + "/x.pem",
                keyPath: self.directory.path + "/x-key.pem"
            )
        ) { error in
            XCTAssertEqual((error as? TLSError)?.code, .certificateGeneration)
        }
    }

    func testIssueFromAMissingCAReportsTheFile() throws {
        XCTAssertThrowsError(
            try DevCertificates.issue(
                .localhostServer(),
                caCertificatePath: self.directory.path + "/missing-ca.pem",
                caKeyPath: self.directory.path + "/missing-ca-key.pem",
                certificatePath: self.directory.path + "/x.pem",
                keyPath: self.directory.path + "/x-key.pem"
            )
        ) { error in
            XCTAssertTrue("\(error)".contains("missing-ca.pem"), "\(error)")
        }
    }

    func testGenerateIfMissingKeepsAnExistingSet() throws {
        let files = try DevCertificates.generateIfMissing(in: self.directory.path)
        let before = try PeerIdentity(certificatePEMFile: files.serverCertificate)
        try DevCertificates.generateIfMissing(in: self.directory.path)
        XCTAssertEqual(try PeerIdentity(certificatePEMFile: files.serverCertificate), before)
    }
}

final class TLSContextConfigurationTests: XCTestCase {
    func testMissingCertificateFileIsReportedWithItsPathAndOpenSSLsReason() throws {
        let configuration = TLSConfiguration.server(
            certificateChainPath: "/nonexistent/server.pem",
            privateKeyPath: "/nonexistent/server-key.pem"
        )
        XCTAssertThrowsError(try TLSContext(configuration: configuration)) { error in
            let tlsError = error as? TLSError
            XCTAssertEqual(tlsError?.code, .invalidConfiguration)
            XCTAssertTrue(tlsError?.message.contains("/nonexistent/server.pem") ?? false, "\(error)")
            XCTAssertTrue(tlsError?.message.contains("No such file") ?? false, "\(error)")
        }
    }

    func testUnsafeOrIncompleteConfigurationsAreRefused() throws {
        var noALPN = TLSConfiguration.client(serverName: "localhost")
        noALPN.applicationProtocols = []
        var requiredWithoutRoots = TLSConfiguration.server(certificateChainPath: "/a", privateKeyPath: "/b")
        requiredWithoutRoots.clientCertificateVerification = .required
        var inverted = TLSConfiguration.client(serverName: "localhost")
        inverted.minimumVersion = .tls13
        inverted.maximumVersion = .tls12
        var weakCiphers = TLSConfiguration.client(serverName: "localhost")
        weakCiphers.tls12CipherList = "NO-SUCH-CIPHER"
        for configuration in [noALPN, requiredWithoutRoots, inverted, weakCiphers] {
            XCTAssertThrowsError(try TLSContext(configuration: configuration)) { error in
                XCTAssertEqual((error as? TLSError)?.code, .invalidConfiguration, "\(error)")
            }
        }
    }

    func testDefaultsAreTheSafeOnes() {
        let configuration = TLSConfiguration.server(certificateChainPath: "/a", privateKeyPath: "/b")
        XCTAssertEqual(configuration.minimumVersion, .tls12)
        XCTAssertEqual(configuration.maximumVersion, .tls13)
        XCTAssertEqual(configuration.applicationProtocols, ["h2"])
        XCTAssertEqual(configuration.clientCertificateVerification, .none)
        XCTAssertEqual(configuration.handshakeTimeout, .seconds(10))
        for suite in configuration.tls12CipherList.split(separator: ":") {
            XCTAssertTrue(suite.hasPrefix("ECDHE-"), String(suite))
            XCTAssertTrue(suite.contains("GCM") || suite.contains("CHACHA20-POLY1305"), String(suite))
        }
    }
}
