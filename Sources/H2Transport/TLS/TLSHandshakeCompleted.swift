/// The user inbound event a `TLSHandler` fires once its handshake has succeeded, before any
/// plaintext is passed on.
///
/// The next handler (HTTP/2) can take the negotiated protocol from it; the gateway's
/// authentication can take the peer's identity from it.
public struct TLSHandshakeCompleted: Sendable, Hashable {
    /// The ALPN protocol both sides agreed on (always one of the configured ones, e.g. "h2").
    public var negotiatedProtocol: String
    /// The protocol version, as OpenSSL names it: "TLSv1.2" or "TLSv1.3".
    public var tlsVersion: String
    /// The cipher suite, as OpenSSL names it, e.g. "TLS_AES_256_GCM_SHA384".
    public var cipher: String
    /// The verified certificate of the peer; nil when the peer sent none (a client under
    /// `.none` or `.optional` verification).
    public var peer: PeerIdentity?
    /// The SNI host name: on a server, the one the client sent (nil if none); on a client, the
    /// one it sent (nil when it connected by IP address).
    public var serverName: String?

    /// Creates the event from its parts.
    public init(
        negotiatedProtocol: String,
        tlsVersion: String,
        cipher: String,
        peer: PeerIdentity?,
        serverName: String? = nil
    ) {
        self.negotiatedProtocol = negotiatedProtocol
        self.tlsVersion = tlsVersion
        self.cipher = cipher
        self.peer = peer
        self.serverName = serverName
    }
}
