import COpenSSL
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The ex_data slot of an `SSL` that points back at its `TLSConnection`, so that OpenSSL's C
/// callbacks (which cannot capture) can find the Swift object they run for.
private let connectionExDataIndex: CInt = CRYPTO_get_ex_new_index(CRYPTO_EX_INDEX_SSL, 0, nil, nil, nil, nil)

/// One TLS connection's engine: the one owner of an OpenSSL `SSL*` and its two memory BIOs,
/// all freed in `deinit`.
///
/// It does no I/O. Bytes from the network go in with `feed`, `handshake`/`read`/`write`/
/// `shutdown` advance the state machine, and bytes for the network come out of
/// `takeOutput`; the `TLSHandler` that owns it moves the bytes. It lives on one event loop
/// and is not `Sendable`.
final class TLSConnection {
    /// What a handshake step achieved.
    enum HandshakeResult {
        case complete
        /// OpenSSL needs more bytes from the peer; send whatever `takeOutput` has first.
        case wantRead
        case failed(TLSError)
    }

    /// What reading records achieved, after any plaintext was appended to the buffer.
    enum ReadResult {
        /// Everything fed so far has been consumed; more bytes are needed.
        case wantRead
        /// The peer sent close_notify: it will send nothing more.
        case closed
        case failed(TLSError)
    }

    private let ssl: OpaquePointer
    /// Ciphertext from the network, read by OpenSSL. Owned by `ssl`.
    private let networkInput: OpaquePointer
    /// Ciphertext for the network, written by OpenSSL. Owned by `ssl`.
    private let networkOutput: OpaquePointer
    /// Keeps the `SSL_CTX` and the configuration alive for as long as the `SSL` uses them.
    let context: SSLContextHandle
    /// Why a callback refused the handshake, in words; OpenSSL only says "callback failed".
    private var refusal: String?

    init(context: SSLContextHandle, serverName: String?) throws {
        OpenSSLErrorQueue.clear()
        guard let ssl = SSL_new(context.pointer) else {
            throw TLSError.fromOpenSSL(.handshakeFailed, "SSL_new failed")
        }
        guard let input = BIO_new(BIO_s_mem()), let output = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            throw TLSError.fromOpenSSL(.handshakeFailed, "BIO_new failed")
        }
        // An empty memory BIO must mean "no data yet" (retry), not end of stream.
        _ = switchyard_BIO_set_mem_eof_return(input, -1)
        _ = switchyard_BIO_set_mem_eof_return(output, -1)
        SSL_set_bio(ssl, input, output)
        self.ssl = ssl
        self.networkInput = input
        self.networkOutput = output
        self.context = context

        // From here on, deinit frees `ssl` (and with it both BIOs) whatever happens.
        SSL_set_ex_data(ssl, connectionExDataIndex, Unmanaged.passUnretained(self).toOpaque())
        switch context.configuration.role {
        case .server:
            SSL_set_accept_state(ssl)
        case .client:
            SSL_set_connect_state(ssl)
            guard let name = serverName ?? context.configuration.serverName, !name.isEmpty else {
                throw TLSError(.invalidConfiguration, "a client connection needs a server name to verify")
            }
            try self.setServerName(name)
        }
    }

    deinit {
        SSL_free(self.ssl)
    }

    /// The connection that owns `ssl`, for OpenSSL's callbacks.
    static func owner(of ssl: OpaquePointer) -> TLSConnection {
        guard let pointer = SSL_get_ex_data(ssl, connectionExDataIndex) else {
            preconditionFailure("an SSL without its TLSConnection")
        }
        return Unmanaged<TLSConnection>.fromOpaque(pointer).takeUnretainedValue()
    }

    /// Sets SNI (for host names only: RFC 6066 forbids IP literals) and the name or address
    /// the server's certificate must carry.
    private func setServerName(_ name: String) throws {
        let bare = name.hasPrefix("[") && name.hasSuffix("]") ? String(name.dropFirst().dropLast()) : name
        if Self.isIPAddress(bare) {
            guard X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(self.ssl), bare) == 1 else {
                throw TLSError.fromOpenSSL(.invalidConfiguration, "invalid server address \(name)")
            }
            return
        }
        guard switchyard_SSL_set_tlsext_host_name(self.ssl, bare) == 1 else {
            throw TLSError.fromOpenSSL(.invalidConfiguration, "invalid server name \(name) for SNI")
        }
        SSL_set_hostflags(self.ssl, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
        guard SSL_set1_host(self.ssl, bare) == 1 else {
            throw TLSError.fromOpenSSL(.invalidConfiguration, "invalid server name \(name)")
        }
    }

    private static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }

    // MARK: Moving bytes

    /// Hands ciphertext from the network to OpenSSL. Memory BIOs accept everything.
    func feed(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { bytes in
            var remaining = UnsafeRawBufferPointer(bytes)
            while !remaining.isEmpty {
                let chunk = min(remaining.count, Int(CInt.max))
                let written = BIO_write(self.networkInput, remaining.baseAddress, CInt(chunk))
                guard written > 0 else { return }
                remaining = UnsafeRawBufferPointer(rebasing: remaining[Int(written)...])
            }
        }
    }

    /// Everything OpenSSL has written for the network since the last call, or nil.
    func takeOutput(allocator: ByteBufferAllocator) -> ByteBuffer? {
        let pending = switchyard_BIO_ctrl_pending(self.networkOutput)
        guard pending > 0 else { return nil }
        var buffer = allocator.buffer(capacity: pending)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: pending) { space in
            let read = BIO_read(self.networkOutput, space.baseAddress, CInt(min(space.count, Int(CInt.max))))
            return max(0, Int(read))
        }
        return buffer
    }

    // MARK: The TLS state machine

    /// Advances the handshake with the bytes fed so far.
    func handshake() -> HandshakeResult {
        OpenSSLErrorQueue.clear()
        let rc = SSL_do_handshake(self.ssl)
        if rc == 1 { return .complete }
        switch SSL_get_error(self.ssl, rc) {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .wantRead
        case let error:
            return .failed(self.failure(.handshakeFailed, sslError: error, during: "handshake"))
        }
    }

    /// Decrypts every complete record fed so far, appending the plaintext to `plaintext`.
    func read(into plaintext: inout ByteBuffer) -> ReadResult {
        while true {
            OpenSSLErrorQueue.clear()
            var count = 0
            var rc: CInt = 0
            plaintext.writeWithUnsafeMutableBytes(minimumWritableBytes: Self.maximumRecordSize) { space in
                rc = SSL_read_ex(self.ssl, space.baseAddress, space.count, &count)
                return rc == 1 ? count : 0
            }
            if rc == 1 { continue }
            switch SSL_get_error(self.ssl, rc) {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                return .wantRead
            case SSL_ERROR_ZERO_RETURN:
                return .closed
            case let error:
                return .failed(self.failure(.recordFailed, sslError: error, during: "read"))
            }
        }
    }

    /// Encrypts `plaintext` into records; the ciphertext is then in `takeOutput`.
    func write(_ plaintext: ByteBuffer) -> TLSError? {
        guard plaintext.readableBytes > 0 else { return nil }
        OpenSSLErrorQueue.clear()
        var written = 0
        let rc = plaintext.withUnsafeReadableBytes { bytes in
            SSL_write_ex(self.ssl, bytes.baseAddress, bytes.count, &written)
        }
        if rc == 1 { return nil }
        return self.failure(.recordFailed, sslError: SSL_get_error(self.ssl, rc), during: "write")
    }

    /// Queues close_notify for the peer (see `takeOutput`). Does not wait for the peer's.
    func shutdown() {
        OpenSSLErrorQueue.clear()
        _ = SSL_shutdown(self.ssl)
        OpenSSLErrorQueue.clear()
    }

    /// The largest plaintext one record carries; `read` keeps this much room free.
    static let maximumRecordSize = 16 * 1024

    // MARK: What was negotiated

    /// The ALPN protocol both sides agreed on, if any.
    var negotiatedProtocol: String? {
        var data: UnsafePointer<UInt8>? = nil
        var length: UInt32 = 0
        SSL_get0_alpn_selected(self.ssl, &data, &length)
        guard let data, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self)
    }

    /// "TLSv1.2" or "TLSv1.3".
    /// Whether the handshake resumed an earlier session (ticket or cache).
    var sessionReused: Bool {
        SSL_session_reused(self.ssl) == 1
    }

    var protocolVersion: String {
        String(cString: SSL_get_version(self.ssl))
    }

    /// OpenSSL's name of the cipher suite in use, e.g. "TLS_AES_256_GCM_SHA384".
    var cipherName: String {
        guard let cipher = SSL_get_current_cipher(self.ssl), let name = SSL_CIPHER_get_name(cipher) else {
            return "none"
        }
        return String(cString: name)
    }

    /// The SNI host name sent by the client, if any.
    var serverNameIndication: String? {
        guard let name = SSL_get_servername(self.ssl, TLSEXT_NAMETYPE_host_name) else { return nil }
        return String(cString: name)
    }

    /// The peer's leaf certificate, as verified during the handshake; nil if it sent none.
    func peerIdentity() -> PeerIdentity? {
        guard let certificate = SSL_get1_peer_certificate(self.ssl) else { return nil }
        return X509Certificate(taking: certificate).identity
    }

    // MARK: Callbacks (server)

    /// ClientHello callback: a client that offers no ALPN at all is refused with
    /// no_application_protocol (the ALPN select callback never runs for it).
    func checkClientHello(alert: UnsafeMutablePointer<CInt>?) -> CInt {
        // A pre-TLS 1.2 hello is refused by version negotiation, which says so more precisely.
        if SSL_client_hello_get0_legacy_version(self.ssl) < UInt32(TLS1_2_VERSION) {
            return SSL_CLIENT_HELLO_SUCCESS
        }
        var data: UnsafePointer<UInt8>? = nil
        var length = 0
        let type = UInt32(TLSEXT_TYPE_application_layer_protocol_negotiation)
        if SSL_client_hello_get0_ext(self.ssl, type, &data, &length) == 1 {
            return SSL_CLIENT_HELLO_SUCCESS
        }
        self.refusal = "client offered no ALPN (expected \(self.context.configuration.applicationProtocols))"
        alert?.pointee = SSL_AD_NO_APPLICATION_PROTOCOL
        return SSL_CLIENT_HELLO_ERROR
    }

    /// ALPN select callback: the server's most preferred protocol that the client offers, or
    /// a fatal no_application_protocol alert.
    func selectApplicationProtocol(
        offered: UnsafeBufferPointer<UInt8>,
        selected: UnsafeMutablePointer<UnsafePointer<UInt8>?>,
        selectedLength: UnsafeMutablePointer<UInt8>
    ) -> CInt {
        for wanted in self.context.applicationProtocols {
            var index = 0
            while index < offered.count {
                let length = Int(offered[index])
                let start = index + 1
                guard length > 0, start + length <= offered.count else { break }
                if length == wanted.count, wanted.elementsEqual(offered[start..<(start + length)]) {
                    // Points into OpenSSL's copy of the ClientHello, which outlives the callback.
                    selected.pointee = offered.baseAddress! + start
                    selectedLength.pointee = UInt8(length)
                    return SSL_TLSEXT_ERR_OK
                }
                index = start + length
            }
        }
        let names = Self.alpnNames(offered)
        self.refusal =
            "client offered ALPN \(names), none of \(self.context.configuration.applicationProtocols)"
        return SSL_TLSEXT_ERR_ALERT_FATAL
    }

    private static func alpnNames(_ wire: UnsafeBufferPointer<UInt8>) -> [String] {
        var names: [String] = []
        var index = 0
        while index < wire.count {
            let length = Int(wire[index])
            let start = index + 1
            guard start + length <= wire.count else { break }
            names.append(String(decoding: wire[start..<(start + length)], as: UTF8.self))
            index = start + length
        }
        return names
    }

    // MARK: Errors

    /// A `TLSError` for a failed `SSL_*` call: the callback's refusal if there was one, then
    /// OpenSSL's queued reasons, then the certificate verification result if it failed.
    private func failure(_ code: TLSError.Code, sslError: CInt, during operation: String) -> TLSError {
        var parts: [String] = []
        if let refusal = self.refusal { parts.append(refusal) }
        let reasons = OpenSSLErrorQueue.drain()
        parts.append(contentsOf: reasons)
        let verification = SSL_get_verify_result(self.ssl)
        if verification != X509_V_OK, let text = X509_verify_cert_error_string(verification) {
            parts.append("certificate verification: \(String(cString: text))")
        }
        if parts.isEmpty {
            switch sslError {
            case SSL_ERROR_SYSCALL, SSL_ERROR_ZERO_RETURN:
                parts.append("unexpected end of stream")
            default:
                parts.append("SSL error \(sslError)")
            }
        }
        return TLSError(code, "\(operation): \(parts.joined(separator: "; "))")
    }
}
