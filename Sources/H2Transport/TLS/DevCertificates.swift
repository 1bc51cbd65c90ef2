import COpenSSL
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Development and test certificates, made with OpenSSL: a private CA, a server certificate
/// for localhost, and a client certificate for mutual TLS.
///
/// All keys are EC P-256, all certificates X.509 v3 with random 128-bit serials and SHA-256
/// signatures. Files are PEM; private keys are PKCS#8 and written with mode 0600. Every file is
/// written to a temporary name and renamed into place, so a server reloading concurrently never
/// reads half a file. This backs `switchyard certs` and the first-run certificates under
/// Certs/dev/; tests use it to make certificates that are expired, not yet valid, or from an
/// unknown CA. Nothing here is meant for production PKI.
public enum DevCertificates {
    /// When a certificate is valid, as offsets in seconds from the moment it is made.
    public struct Validity: Sendable, Hashable {
        /// Offset of notBefore from now; negative to tolerate clock skew.
        public var notBeforeOffset: Int
        /// Offset of notAfter from now.
        public var notAfterOffset: Int

        /// Creates a validity period from two offsets in seconds.
        public init(notBeforeOffset: Int, notAfterOffset: Int) {
            self.notBeforeOffset = notBeforeOffset
            self.notAfterOffset = notAfterOffset
        }

        private static let day = 86_400

        /// For leaf certificates: from an hour ago for 397 days (the limit browsers accept).
        public static let leaf = Validity(notBeforeOffset: -3_600, notAfterOffset: 397 * day)
        /// For a CA: from an hour ago for ten years.
        public static let authority = Validity(notBeforeOffset: -3_600, notAfterOffset: 3_650 * day)
        /// Expired yesterday.
        public static let expired = Validity(notBeforeOffset: -2 * day, notAfterOffset: -day)
        /// Valid from tomorrow.
        public static let notYetValid = Validity(notBeforeOffset: day, notAfterOffset: 2 * day)
    }

    /// What a leaf certificate may be used for (its extended key usage).
    public enum Usage: Sendable, Hashable {
        case server
        case client
        case serverAndClient
    }

    /// A leaf certificate to issue: its names, usage and validity.
    public struct Leaf: Sendable, Hashable {
        /// The subject's CN.
        public var commonName: String
        /// DNS subject alternative names.
        public var dnsNames: [String]
        /// IP address subject alternative names, as text.
        public var ipAddresses: [String]
        /// URI subject alternative names (e.g. a SPIFFE ID).
        public var uris: [String]
        /// Extended key usage.
        public var usage: Usage
        /// Validity period.
        public var validity: Validity

        /// Creates a leaf description.
        public init(
            commonName: String,
            dnsNames: [String] = [],
            ipAddresses: [String] = [],
            uris: [String] = [],
            usage: Usage,
            validity: Validity = .leaf
        ) {
            self.commonName = commonName
            self.dnsNames = dnsNames
            self.ipAddresses = ipAddresses
            self.uris = uris
            self.usage = usage
            self.validity = validity
        }

        /// A server certificate for this machine: DNS:localhost, IP:127.0.0.1, IP:::1.
        public static func localhostServer(validity: Validity = .leaf) -> Leaf {
            Leaf(
                commonName: "localhost",
                dnsNames: ["localhost"],
                ipAddresses: ["127.0.0.1", "::1"],
                usage: .server,
                validity: validity
            )
        }

        /// A client certificate with the given CN and, optionally, a URI such as a SPIFFE ID.
        public static func client(commonName: String, uri: String? = nil, validity: Validity = .leaf) -> Leaf {
            Leaf(commonName: commonName, uris: uri.map { [$0] } ?? [], usage: .client, validity: validity)
        }
    }

    /// The files of one generated set, by their fixed names in `directory`.
    public struct Files: Sendable, Hashable {
        /// The directory holding the files.
        public var directory: String

        /// Names the files in `directory`.
        public init(directory: String) { self.directory = directory }

        /// The CA certificate: the trust root for both sides.
        public var caCertificate: String { self.directory + "/ca.pem" }
        /// The CA's private key (to issue more leaves).
        public var caKey: String { self.directory + "/ca-key.pem" }
        /// The server certificate.
        public var serverCertificate: String { self.directory + "/server.pem" }
        /// The server's private key.
        public var serverKey: String { self.directory + "/server-key.pem" }
        /// The client certificate.
        public var clientCertificate: String { self.directory + "/client.pem" }
        /// The client's private key.
        public var clientKey: String { self.directory + "/client-key.pem" }

        /// Whether every file of the set exists.
        public var allExist: Bool {
            [caCertificate, caKey, serverCertificate, serverKey, clientCertificate, clientKey].allSatisfy {
                FileManager.default.fileExists(atPath: $0)
            }
        }
    }

    /// Generates a CA, a localhost server certificate and a client certificate into
    /// `directory` (created if missing), replacing files of the same names.
    ///
    /// - Parameters:
    ///   - directory: where ca.pem, ca-key.pem, server.pem, server-key.pem, client.pem and
    ///     client-key.pem go.
    ///   - caCommonName: the CA's CN.
    ///   - caValidity: the CA's validity.
    ///   - server: the server certificate to issue.
    ///   - client: the client certificate to issue.
    /// - Throws: `TLSError` (`.certificateGeneration`) with OpenSSL's or the system's reason.
    @discardableResult
    public static func generate(
        in directory: String,
        caCommonName: String = "Switchyard Development CA",
        caValidity: Validity = .authority,
        server: Leaf = .localhostServer(),
        client: Leaf = .client(commonName: "switchyard-dev-client", uri: "spiffe://switchyard/dev-client")
    ) throws -> Files {
        let files = Files(directory: directory)
        try self.createDirectory(directory)
        try self.generateAuthority(
            commonName: caCommonName,
            validity: caValidity,
            certificatePath: files.caCertificate,
            keyPath: files.caKey
        )
        try self.issue(
            server,
            caCertificatePath: files.caCertificate,
            caKeyPath: files.caKey,
            certificatePath: files.serverCertificate,
            keyPath: files.serverKey
        )
        try self.issue(
            client,
            caCertificatePath: files.caCertificate,
            caKeyPath: files.caKey,
            certificatePath: files.clientCertificate,
            keyPath: files.clientKey
        )
        return files
    }

    /// The first-run behaviour: keeps an existing complete set in `directory`, or generates one.
    @discardableResult
    public static func generateIfMissing(in directory: String) throws -> Files {
        let files = Files(directory: directory)
        if files.allExist { return files }
        return try self.generate(in: directory)
    }

    /// Generates a self-signed CA (basicConstraints CA:TRUE, keyUsage keyCertSign and cRLSign).
    ///
    /// - Throws: `TLSError` (`.certificateGeneration`).
    public static func generateAuthority(
        commonName: String,
        validity: Validity = .authority,
        certificatePath: String,
        keyPath: String
    ) throws {
        let key = try PrivateKey.generateP256()
        let certificate = try self.makeCertificate(
            commonName: commonName,
            subjectKey: key,
            issuer: nil,
            issuerKey: key,
            validity: validity,
            extensions: [
                (NID_basic_constraints, "critical,CA:TRUE"),
                (NID_key_usage, "critical,keyCertSign,cRLSign"),
                (NID_subject_key_identifier, "hash"),
            ]
        )
        try self.writePEM(to: keyPath, mode: 0o600) { PEM_write_bio_PrivateKey($0, key.pointer, nil, nil, 0, nil, nil) }
        try self.writePEM(to: certificatePath, mode: 0o644) { bio in
            certificate.withPointer { PEM_write_bio_X509(bio, $0) }
        }
    }

    /// Issues a leaf certificate from an existing CA (its PEM certificate and key), with a new
    /// key pair.
    ///
    /// - Throws: `TLSError` (`.certificateGeneration`), e.g. when the CA files cannot be read or
    ///   a name contains a comma (which OpenSSL's extension syntax cannot carry).
    public static func issue(
        _ leaf: Leaf,
        caCertificatePath: String,
        caKeyPath: String,
        certificatePath: String,
        keyPath: String
    ) throws {
        let authority: X509Certificate
        do {
            authority = try X509Certificate(pemFile: caCertificatePath)
        } catch let error as TLSError {
            throw TLSError(.certificateGeneration, error.message)
        }
        let authorityKey = try PrivateKey(pemFile: caKeyPath)
        let key = try PrivateKey.generateP256()

        var alternativeNames: [String] = []
        alternativeNames += leaf.dnsNames.map { "DNS:\($0)" }
        alternativeNames += leaf.ipAddresses.map { "IP:\($0)" }
        alternativeNames += leaf.uris.map { "URI:\($0)" }
        if let bad = alternativeNames.first(where: { $0.contains(",") }) {
            throw TLSError(.certificateGeneration, "subject alternative name \(bad) contains a comma")
        }
        let extendedUsage: String
        switch leaf.usage {
        case .server: extendedUsage = "serverAuth"
        case .client: extendedUsage = "clientAuth"
        case .serverAndClient: extendedUsage = "serverAuth,clientAuth"
        }
        var extensions: [(CInt, String)] = [
            (NID_basic_constraints, "critical,CA:FALSE"),
            (NID_key_usage, "critical,digitalSignature"),
            (NID_ext_key_usage, extendedUsage),
            (NID_subject_key_identifier, "hash"),
            (NID_authority_key_identifier, "keyid:always"),
        ]
        if !alternativeNames.isEmpty {
            extensions.append((NID_subject_alt_name, alternativeNames.joined(separator: ",")))
        }
        let certificate = try self.makeCertificate(
            commonName: leaf.commonName,
            subjectKey: key,
            issuer: authority,
            issuerKey: authorityKey,
            validity: leaf.validity,
            extensions: extensions
        )
        try self.writePEM(to: keyPath, mode: 0o600) { PEM_write_bio_PrivateKey($0, key.pointer, nil, nil, 0, nil, nil) }
        try self.writePEM(to: certificatePath, mode: 0o644) { bio in
            certificate.withPointer { PEM_write_bio_X509(bio, $0) }
        }
    }

    // MARK: Building

    private static func makeCertificate(
        commonName: String,
        subjectKey: PrivateKey,
        issuer: X509Certificate?,
        issuerKey: PrivateKey,
        validity: Validity,
        extensions: [(CInt, String)]
    ) throws -> X509Certificate {
        OpenSSLErrorQueue.clear()
        guard let raw = X509_new() else { throw failure("X509_new failed") }
        let certificate = X509Certificate(taking: raw)
        try certificate.withPointer { x509 in
            guard X509_set_version(x509, 2) == 1 else { throw failure("cannot set version 3") }
            try self.setRandomSerial(x509)
            guard X509_gmtime_adj(X509_getm_notBefore(x509), validity.notBeforeOffset) != nil,
                X509_gmtime_adj(X509_getm_notAfter(x509), validity.notAfterOffset) != nil
            else { throw failure("cannot set the validity period") }

            guard let name = X509_NAME_new() else { throw failure("X509_NAME_new failed") }
            defer { X509_NAME_free(name) }
            guard X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, commonName, -1, -1, 0) == 1 else {
                throw failure("invalid common name \(commonName)")
            }
            guard X509_set_subject_name(x509, name) == 1 else { throw failure("cannot set the subject") }
            let issuerName = issuer?.withPointer { X509_get_subject_name($0) } ?? name
            guard X509_set_issuer_name(x509, issuerName) == 1 else { throw failure("cannot set the issuer") }
            guard X509_set_pubkey(x509, subjectKey.pointer) == 1 else { throw failure("cannot set the public key") }

            try self.withExtensionContext(subject: x509, issuer: issuer) { context in
                for (nid, value) in extensions {
                    guard let ext = X509V3_EXT_conf_nid(nil, context, nid, value) else {
                        throw failure("invalid extension \(String(cString: OBJ_nid2sn(nid))) = \(value)")
                    }
                    defer { X509_EXTENSION_free(ext) }
                    guard X509_add_ext(x509, ext, -1) == 1 else { throw failure("cannot add extension") }
                }
            }
            guard X509_sign(x509, issuerKey.pointer, EVP_sha256()) > 0 else { throw failure("cannot sign") }
        }
        return certificate
    }

    private static func withExtensionContext(
        subject: OpaquePointer,
        issuer: X509Certificate?,
        _ body: (UnsafeMutablePointer<X509V3_CTX>) throws -> Void
    ) throws {
        var context = X509V3_CTX()
        if let issuer {
            issuer.withPointer { X509V3_set_ctx(&context, $0, subject, nil, nil, 0) }
        } else {
            X509V3_set_ctx(&context, subject, subject, nil, nil, 0)
        }
        try body(&context)
    }

    private static func setRandomSerial(_ x509: OpaquePointer) throws {
        var bytes = [UInt8](repeating: 0, count: 16)
        guard RAND_bytes(&bytes, CInt(bytes.count)) == 1 else { throw failure("RAND_bytes failed") }
        // Positive, and exactly 16 bytes long (RFC 5280 allows up to 20).
        bytes[0] = (bytes[0] & 0x7f) | 0x40
        guard let number = BN_bin2bn(bytes, CInt(bytes.count), nil) else { throw failure("BN_bin2bn failed") }
        defer { BN_free(number) }
        guard BN_to_ASN1_INTEGER(number, X509_get_serialNumber(x509)) != nil else {
            throw failure("cannot set the serial number")
        }
    }

    // MARK: Files

    private static func createDirectory(_ path: String) throws {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw TLSError(.certificateGeneration, "cannot create directory \(path): \(error)")
        }
    }

    /// Renders PEM into memory with `render`, then writes it to a temporary file with `mode`
    /// and renames that over `path`.
    private static func writePEM(to path: String, mode: mode_t, _ render: (OpaquePointer) -> CInt) throws {
        OpenSSLErrorQueue.clear()
        guard let bio = BIO_new(BIO_s_mem()) else { throw failure("BIO_new failed") }
        defer { BIO_free(bio) }
        guard render(bio) == 1 else { throw failure("cannot encode PEM for \(path)") }
        var data: UnsafeMutablePointer<CChar>? = nil
        let length = switchyard_BIO_get_mem_data(bio, &data)
        guard let data, length > 0 else { throw failure("empty PEM for \(path)") }

        let temporary = path + ".tmp-\(getpid())"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
        guard descriptor >= 0 else { throw systemFailure("cannot create \(temporary)") }
        var ok = fchmod(descriptor, mode) == 0
        var written = 0
        while ok, written < length {
            let result = write(descriptor, data + written, length - written)
            if result < 0, errno == EINTR { continue }
            ok = result > 0
            if ok { written += result }
        }
        let writeErrno = errno
        if close(descriptor) != 0 { ok = false }
        guard ok else {
            unlink(temporary)
            errno = writeErrno
            throw systemFailure("cannot write \(temporary)")
        }
        guard rename(temporary, path) == 0 else {
            let error = systemFailure("cannot rename \(temporary) to \(path)")
            unlink(temporary)
            throw error
        }
    }

    private static func failure(_ context: String) -> TLSError {
        TLSError.fromOpenSSL(.certificateGeneration, context)
    }

    private static func systemFailure(_ context: String) -> TLSError {
        TLSError(.certificateGeneration, "\(context): \(String(cString: strerror(errno)))")
    }
}

/// The one owner of an OpenSSL `EVP_PKEY*`, freed in `deinit`.
final class PrivateKey {
    let pointer: OpaquePointer

    private init(taking pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        EVP_PKEY_free(self.pointer)
    }

    /// A new EC key on P-256.
    static func generateP256() throws -> PrivateKey {
        OpenSSLErrorQueue.clear()
        guard let key = switchyard_EVP_EC_gen("P-256") else {
            throw TLSError.fromOpenSSL(.certificateGeneration, "cannot generate a P-256 key")
        }
        return PrivateKey(taking: key)
    }

    /// Reads an unencrypted PEM private key.
    convenience init(pemFile path: String) throws {
        OpenSSLErrorQueue.clear()
        guard let bio = BIO_new_file(path, "r") else {
            throw TLSError.fromOpenSSL(.certificateGeneration, "cannot open private key \(path)")
        }
        defer { BIO_free(bio) }
        guard let key = PEM_read_bio_PrivateKey(bio, nil, nil, nil) else {
            throw TLSError.fromOpenSSL(.certificateGeneration, "cannot read a PEM private key from \(path)")
        }
        self.init(taking: key)
    }
}
