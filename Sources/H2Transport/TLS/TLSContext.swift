import COpenSSL
import NIOConcurrencyHelpers

/// The TLS state shared by every connection of one listener (or one client): an OpenSSL
/// `SSL_CTX` built from a `TLSConfiguration`, replaceable while connections are open.
///
/// `reload()` re-reads the certificate chain, private key and CA bundle and swaps in a new
/// `SSL_CTX` atomically: handshakes that start afterwards use the new material, connections
/// already open keep theirs, and a failed reload leaves the previous material in place. All
/// members are safe to call from any thread; a lock guards the current `SSL_CTX`.
public final class TLSContext: Sendable {
    private let current: NIOLockedValueBox<SSLContextHandle>

    /// Builds the OpenSSL context, reading the files the configuration names.
    ///
    /// - Throws: `TLSError` (`.invalidConfiguration`) with OpenSSL's reason when a file is
    ///   missing or unreadable, the key does not match the certificate, or a setting is invalid.
    public init(configuration: TLSConfiguration) throws {
        self.current = NIOLockedValueBox(try SSLContextHandle.make(configuration: configuration))
    }

    /// The configuration the current material was loaded from.
    public var configuration: TLSConfiguration {
        self.current.withLockedValue { $0.configuration }
    }

    /// The identity this side presents: the first certificate of the current chain, if any.
    public var certificate: PeerIdentity? {
        self.current.withLockedValue { $0.certificate }
    }

    /// Re-reads the configured certificate chain, private key and CA bundle, and makes them the
    /// material for new handshakes. Open connections are not affected.
    ///
    /// The gateway calls this on SIGHUP and from its admin API, after replacing the files.
    ///
    /// - Returns: the identity of the newly loaded certificate, if the configuration has one.
    /// - Throws: `TLSError` with OpenSSL's reason; the previous material then stays in use.
    @discardableResult
    public func reload() throws -> PeerIdentity? {
        try self.reload(configuration: self.configuration)
    }

    /// Like `reload()`, but with a changed configuration (new paths, a new verification
    /// policy). The role cannot change.
    ///
    /// - Throws: `TLSError`; the previous material and configuration then stay in use.
    @discardableResult
    public func reload(configuration: TLSConfiguration) throws -> PeerIdentity? {
        guard configuration.role == self.configuration.role else {
            throw TLSError(.invalidConfiguration, "reload cannot change the role of a TLSContext")
        }
        // Build outside the lock: it reads files, and a slow disk must not stall handshakes.
        let replacement = try SSLContextHandle.make(configuration: configuration)
        self.current.withLockedValue { $0 = replacement }
        return replacement.certificate
    }

    /// Creates the per-connection engine for one handshake, from the current material.
    func makeConnection(serverName: String?) throws -> TLSConnection {
        let handle = self.current.withLockedValue { $0 }
        return try TLSConnection(context: handle, serverName: serverName)
    }
}

/// The one owner of an OpenSSL `SSL_CTX*`, configured once and never changed afterwards.
///
/// Sendability: the pointer is immutable after `make` returns, and the only operations that
/// touch the `SSL_CTX` from then on (`SSL_new`, reference counting, the session cache) are
/// documented by OpenSSL as safe on a shared `SSL_CTX` and are guarded by OpenSSL's own locks.
/// That is why this class is `@unchecked Sendable`; it has no mutable Swift state.
final class SSLContextHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    let configuration: TLSConfiguration
    /// The configured ALPN identifiers as bytes, in preference order, for the server's choice.
    let applicationProtocols: [[UInt8]]
    let certificate: PeerIdentity?

    private init(pointer: OpaquePointer, configuration: TLSConfiguration, certificate: PeerIdentity?) {
        self.pointer = pointer
        self.configuration = configuration
        self.applicationProtocols = configuration.applicationProtocols.map { Array($0.utf8) }
        self.certificate = certificate
    }

    deinit {
        SSL_CTX_free(self.pointer)
    }

    static func make(configuration: TLSConfiguration) throws -> SSLContextHandle {
        try configuration.validate()
        OpenSSLErrorQueue.clear()
        let method = configuration.role == .server ? TLS_server_method() : TLS_client_method()
        guard let ctx = SSL_CTX_new(method) else {
            throw TLSError.fromOpenSSL(.invalidConfiguration, "SSL_CTX_new failed")
        }
        do {
            try configure(ctx, configuration)
            var certificate: PeerIdentity? = nil
            if let path = configuration.certificateChainPath {
                certificate = try X509Certificate(pemFile: path).identity
            }
            return SSLContextHandle(pointer: ctx, configuration: configuration, certificate: certificate)
        } catch {
            SSL_CTX_free(ctx)
            throw error
        }
    }

    private static func configure(_ ctx: OpaquePointer, _ configuration: TLSConfiguration) throws {
        func check(_ ok: Bool, _ what: @autoclosure () -> String) throws {
            if !ok { throw TLSError.fromOpenSSL(.invalidConfiguration, what()) }
        }

        try check(
            switchyard_SSL_CTX_set_min_proto_version(ctx, CInt(configuration.minimumVersion.rawValue)) == 1,
            "cannot set the minimum TLS version"
        )
        try check(
            switchyard_SSL_CTX_set_max_proto_version(ctx, CInt(configuration.maximumVersion.rawValue)) == 1,
            "cannot set the maximum TLS version"
        )
        var options = switchyard_ssl_op_no_renegotiation() | switchyard_ssl_op_no_compression()
        if configuration.role == .server {
            options |= switchyard_ssl_op_cipher_server_preference()
        }
        _ = SSL_CTX_set_options(ctx, options)
        // Idle connections give their 16 KiB read and write buffers back; a gateway holds many.
        _ = switchyard_SSL_CTX_set_mode(ctx, Int(SSL_MODE_RELEASE_BUFFERS))
        try check(
            SSL_CTX_set_cipher_list(ctx, configuration.tls12CipherList) == 1,
            "invalid tls12CipherList \"\(configuration.tls12CipherList)\""
        )
        try check(
            SSL_CTX_set_ciphersuites(ctx, configuration.tls13CipherSuites) == 1,
            "invalid tls13CipherSuites \"\(configuration.tls13CipherSuites)\""
        )
        try check(switchyard_SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384") == 1, "cannot set key-exchange groups")

        if let chain = configuration.certificateChainPath, let key = configuration.privateKeyPath {
            try check(
                SSL_CTX_use_certificate_chain_file(ctx, chain) == 1,
                "cannot load certificate chain \(chain)"
            )
            try check(
                SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1,
                "cannot load private key \(key)"
            )
            try check(SSL_CTX_check_private_key(ctx) == 1, "private key \(key) does not match certificate \(chain)")
        }

        switch configuration.role {
        case .server:
            try configureServer(ctx, configuration, check: check)
        case .client:
            try configureClient(ctx, configuration, check: check)
        }
    }

    private static func configureServer(
        _ ctx: OpaquePointer,
        _ configuration: TLSConfiguration,
        check: (Bool, @autoclosure () -> String) throws -> Void
    ) throws {
        var mode = SSL_VERIFY_NONE
        switch configuration.clientCertificateVerification {
        case .none:
            break
        case .optional:
            mode = SSL_VERIFY_PEER
        case .required:
            mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
        }
        if let roots = configuration.trustRootsPath, mode != SSL_VERIFY_NONE {
            try check(SSL_CTX_load_verify_file(ctx, roots) == 1, "cannot load CA bundle \(roots)")
            // The CertificateRequest names these issuers, so a client with several
            // certificates knows which one to send.
            guard let names = SSL_load_client_CA_file(roots) else {
                throw TLSError.fromOpenSSL(.invalidConfiguration, "no CA names in \(roots)")
            }
            SSL_CTX_set_client_CA_list(ctx, names)
        }
        SSL_CTX_set_verify(ctx, mode, nil)

        // With peer verification on, OpenSSL refuses to resume a session whose context is
        // unset ("session id context uninitialized"); one fixed value is right for one listener.
        let sessionContext = Array("switchyard".utf8)
        try check(
            SSL_CTX_set_session_id_context(ctx, sessionContext, UInt32(sessionContext.count)) == 1,
            "cannot set the session id context"
        )

        // ALPN is required. The select callback only runs when the client offers ALPN, so a
        // ClientHello without the extension is refused here, before any other processing.
        SSL_CTX_set_client_hello_cb(
            ctx,
            { ssl, alert, _ in
                guard let ssl else { return SSL_CLIENT_HELLO_ERROR }
                return TLSConnection.owner(of: ssl).checkClientHello(alert: alert)
            },
            nil
        )
        SSL_CTX_set_alpn_select_cb(
            ctx,
            { ssl, selected, selectedLength, offered, offeredLength, _ in
                guard let ssl, let selected, let selectedLength, let offered else {
                    return SSL_TLSEXT_ERR_ALERT_FATAL
                }
                return TLSConnection.owner(of: ssl).selectApplicationProtocol(
                    offered: UnsafeBufferPointer(start: offered, count: Int(offeredLength)),
                    selected: selected,
                    selectedLength: selectedLength
                )
            },
            nil
        )
    }

    private static func configureClient(
        _ ctx: OpaquePointer,
        _ configuration: TLSConfiguration,
        check: (Bool, @autoclosure () -> String) throws -> Void
    ) throws {
        if let roots = configuration.trustRootsPath {
            try check(SSL_CTX_load_verify_file(ctx, roots) == 1, "cannot load CA bundle \(roots)")
        } else {
            try check(SSL_CTX_set_default_verify_paths(ctx) == 1, "cannot load the system's trust roots")
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nil)
        let wire = configuration.alpnWireFormat
        // Unlike nearly every other OpenSSL call, this one returns 0 on success.
        try check(SSL_CTX_set_alpn_protos(ctx, wire, UInt32(wire.count)) == 0, "cannot set ALPN protocols")
    }
}
