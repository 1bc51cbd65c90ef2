import Foundation

/// Who the other end of a TLS connection proved to be: the names in its (verified) leaf
/// certificate, that certificate's fingerprint, and when it expires.
///
/// The gateway's authentication uses this to map a client certificate to a principal, for
/// example by its SPIFFE ID in `uris`. A value is a plain copy of the certificate's fields: it
/// holds no OpenSSL state and may cross threads freely.
public struct PeerIdentity: Sendable, Hashable {
    /// The subject's common name (CN), if it has one.
    public var commonName: String?
    /// DNS names from the subject alternative name extension, in certificate order.
    public var dnsNames: [String]
    /// URIs from the subject alternative name extension (e.g. "spiffe://switchyard/client").
    public var uris: [String]
    /// IP addresses from the subject alternative name extension, as text ("127.0.0.1", "::1").
    public var ipAddresses: [String]
    /// SHA-256 of the leaf certificate's DER encoding, as lowercase hex without separators.
    public var sha256Fingerprint: String
    /// The end of the certificate's validity period.
    public var notAfter: Date

    /// Creates an identity from its parts.
    public init(
        commonName: String?,
        dnsNames: [String],
        uris: [String],
        ipAddresses: [String],
        sha256Fingerprint: String,
        notAfter: Date
    ) {
        self.commonName = commonName
        self.dnsNames = dnsNames
        self.uris = uris
        self.ipAddresses = ipAddresses
        self.sha256Fingerprint = sha256Fingerprint
        self.notAfter = notAfter
    }

    /// Reads the first certificate of a PEM file: what a peer presenting it would be seen as.
    ///
    /// - Throws: `TLSError` with OpenSSL's reason if the file cannot be read or parsed.
    public init(certificatePEMFile path: String) throws {
        self = try X509Certificate(pemFile: path).identity
    }
}
