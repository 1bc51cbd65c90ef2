import NIOCore

/// How one side of Switchyard's TLS connections is set up: which certificate it shows, whom it
/// trusts, and what it accepts.
///
/// The defaults are the safe ones, readable top to bottom: TLS 1.2 and 1.3 only, forward-secret
/// AEAD cipher suites only, ALPN required and "h2" offered, peers' certificates verified against
/// the CA bundle (a client always verifies the server, including its name), and a handshake
/// that must finish within 10 seconds. A `TLSContext` turns a configuration into OpenSSL state
/// and reports anything wrong with it (a missing file, a key that does not match the
/// certificate, a cipher list OpenSSL rejects) as a `TLSError`.
public struct TLSConfiguration: Sendable, Hashable {
    /// Which end of the connection this configuration is for.
    public enum Role: Sendable, Hashable {
        /// Accepts connections (the gateway's listeners).
        case server
        /// Opens connections (load tests, health probes, tests).
        case client
    }

    /// Whether a server asks its clients for a certificate, and what it does with the answer.
    public enum ClientCertificateVerification: Sendable, Hashable {
        /// The server does not ask for a client certificate.
        case none
        /// The server asks; a client may send none, but a certificate that is sent must verify
        /// against the CA bundle, or the handshake fails.
        case optional
        /// The server asks, and the handshake fails without a certificate that verifies.
        case required
    }

    /// A TLS protocol version that Switchyard speaks. TLS 1.0 and 1.1 are not representable:
    /// they are always refused.
    public enum ProtocolVersion: Int, Sendable, Hashable, Comparable {
        case tls12 = 0x0303
        case tls13 = 0x0304

        public static func < (lhs: ProtocolVersion, rhs: ProtocolVersion) -> Bool {
            lhs.rawValue < rhs.rawValue
        }
    }

    /// TLS 1.2 cipher suites (OpenSSL names): ECDHE key exchange with AES-GCM or
    /// ChaCha20-Poly1305 only; no RSA key exchange, no CBC, no SHA-1 MACs.
    public static let modernTLS12CipherList = [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")

    /// TLS 1.3 cipher suites: OpenSSL's defaults, all of which are AEADs.
    public static let defaultTLS13CipherSuites =
        "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"

    /// Server or client.
    public var role: Role

    /// PEM file with this side's certificate first, then any intermediates. Required for a
    /// server; for a client, set it (with `privateKeyPath`) to present a client certificate.
    public var certificateChainPath: String?

    /// PEM file with the private key of the first certificate in `certificateChainPath`.
    public var privateKeyPath: String?

    /// PEM file of the certificates this side trusts to have issued the peer's certificate.
    /// A server needs it to verify client certificates (and sends their names to clients as
    /// acceptable issuers); a client without it trusts the system's default roots.
    public var trustRootsPath: String?

    /// Whether a server asks for and verifies client certificates. Ignored by clients.
    /// Default: `.none`.
    public var clientCertificateVerification: ClientCertificateVerification

    /// The oldest protocol version accepted. Default: TLS 1.2.
    public var minimumVersion: ProtocolVersion

    /// The newest protocol version offered. Default: TLS 1.3.
    public var maximumVersion: ProtocolVersion

    /// Cipher suites for TLS 1.2, in OpenSSL's cipher-list syntax. Default:
    /// `modernTLS12CipherList`.
    public var tls12CipherList: String

    /// Cipher suites for TLS 1.3, in OpenSSL's ciphersuites syntax. Default:
    /// `defaultTLS13CipherSuites`.
    public var tls13CipherSuites: String

    /// ALPN protocol identifiers, most preferred first. Must not be empty: a server refuses a
    /// client that offers none of them (or offers no ALPN at all) with a
    /// no_application_protocol alert, and a client refuses a server that selects none.
    /// Default: `["h2"]`.
    public var applicationProtocols: [String]

    /// For a client: the name of the server, sent as SNI (unless it is an IP address) and
    /// checked against the server certificate's subject alternative names. A `TLSHandler` may
    /// override it per connection. Ignored by servers.
    public var serverName: String?

    /// How long a peer has to complete the handshake after the connection becomes active.
    /// Default: 10 seconds.
    public var handshakeTimeout: TimeAmount

    /// Creates a configuration with every setting given; prefer `server(…)` and `client(…)`.
    public init(
        role: Role,
        certificateChainPath: String? = nil,
        privateKeyPath: String? = nil,
        trustRootsPath: String? = nil,
        clientCertificateVerification: ClientCertificateVerification = .none,
        minimumVersion: ProtocolVersion = .tls12,
        maximumVersion: ProtocolVersion = .tls13,
        tls12CipherList: String = TLSConfiguration.modernTLS12CipherList,
        tls13CipherSuites: String = TLSConfiguration.defaultTLS13CipherSuites,
        applicationProtocols: [String] = ["h2"],
        serverName: String? = nil,
        handshakeTimeout: TimeAmount = .seconds(10)
    ) {
        self.role = role
        self.certificateChainPath = certificateChainPath
        self.privateKeyPath = privateKeyPath
        self.trustRootsPath = trustRootsPath
        self.clientCertificateVerification = clientCertificateVerification
        self.minimumVersion = minimumVersion
        self.maximumVersion = maximumVersion
        self.tls12CipherList = tls12CipherList
        self.tls13CipherSuites = tls13CipherSuites
        self.applicationProtocols = applicationProtocols
        self.serverName = serverName
        self.handshakeTimeout = handshakeTimeout
    }

    /// A server configuration with the safe defaults.
    ///
    /// - Parameters:
    ///   - certificateChainPath: PEM certificate chain, leaf first.
    ///   - privateKeyPath: PEM private key of the leaf.
    ///   - trustRootsPath: PEM CA bundle for verifying client certificates; needed unless
    ///     `clientCertificateVerification` is `.none`.
    ///   - clientCertificateVerification: whether to ask for client certificates.
    public static func server(
        certificateChainPath: String,
        privateKeyPath: String,
        trustRootsPath: String? = nil,
        clientCertificateVerification: ClientCertificateVerification = .none
    ) -> TLSConfiguration {
        TLSConfiguration(
            role: .server,
            certificateChainPath: certificateChainPath,
            privateKeyPath: privateKeyPath,
            trustRootsPath: trustRootsPath,
            clientCertificateVerification: clientCertificateVerification
        )
    }

    /// A client configuration with the safe defaults: the server's certificate is verified
    /// against `trustRootsPath` (or the system roots) and must name `serverName`.
    ///
    /// - Parameters:
    ///   - serverName: host name or IP address the server's certificate must carry.
    ///   - trustRootsPath: PEM CA bundle; `nil` for the system's default roots.
    ///   - certificateChainPath: client certificate chain for mutual TLS, if any.
    ///   - privateKeyPath: the client certificate's private key, if any.
    public static func client(
        serverName: String?,
        trustRootsPath: String? = nil,
        certificateChainPath: String? = nil,
        privateKeyPath: String? = nil
    ) -> TLSConfiguration {
        TLSConfiguration(
            role: .client,
            certificateChainPath: certificateChainPath,
            privateKeyPath: privateKeyPath,
            trustRootsPath: trustRootsPath,
            serverName: serverName
        )
    }
}

extension TLSConfiguration {
    /// Checks what can be checked without touching files, so that a mistake is reported with
    /// the setting's name rather than as an OpenSSL failure.
    func validate() throws {
        guard self.minimumVersion <= self.maximumVersion else {
            throw TLSError(.invalidConfiguration, "minimumVersion is newer than maximumVersion")
        }
        guard !self.applicationProtocols.isEmpty else {
            throw TLSError(.invalidConfiguration, "applicationProtocols is empty; ALPN is required")
        }
        for name in self.applicationProtocols {
            guard (1...255).contains(name.utf8.count) else {
                throw TLSError(.invalidConfiguration, "ALPN identifier \"\(name)\" must be 1 to 255 bytes long")
            }
        }
        guard handshakeTimeout.nanoseconds > 0 else {
            throw TLSError(.invalidConfiguration, "handshakeTimeout must be positive")
        }
        switch self.role {
        case .server:
            guard self.certificateChainPath != nil, self.privateKeyPath != nil else {
                throw TLSError(.invalidConfiguration, "a server needs certificateChainPath and privateKeyPath")
            }
            if self.clientCertificateVerification != .none, self.trustRootsPath == nil {
                throw TLSError(
                    .invalidConfiguration,
                    "clientCertificateVerification \(self.clientCertificateVerification) needs trustRootsPath"
                )
            }
        case .client:
            guard (self.certificateChainPath == nil) == (self.privateKeyPath == nil) else {
                throw TLSError(.invalidConfiguration, "a client certificate needs both certificateChainPath and privateKeyPath")
            }
        }
    }

    /// The ALPN list in TLS wire format: each identifier preceded by its length byte.
    var alpnWireFormat: [UInt8] {
        var bytes: [UInt8] = []
        for name in self.applicationProtocols {
            bytes.append(UInt8(name.utf8.count))
            bytes.append(contentsOf: name.utf8)
        }
        return bytes
    }
}
