import NIOCore

/// Settings and protections of one HTTP/2 connection, with defaults safe for a server that
/// faces untrusted clients. Every limit that a peer can abuse is here, with what happens when
/// it does (GOAWAY ENHANCE_YOUR_CALM for the abusive connection; other connections go on).
public struct HTTP2Configuration: Sendable {
    /// SETTINGS_MAX_CONCURRENT_STREAMS we advertise. nghttp2's own default is unlimited. Default 100.
    public var maxConcurrentStreams: Int = 100
    /// SETTINGS_INITIAL_WINDOW_SIZE we advertise, per stream. Default 1 MiB.
    public var initialWindowSize: Int = 1 << 20
    /// The connection-level receive window we open at start. Default 4 MiB.
    public var connectionWindowSize: Int = 4 << 20
    /// SETTINGS_MAX_FRAME_SIZE we advertise. Default 16 KiB (the protocol's minimum).
    public var maxFrameSize: Int = 16_384
    /// SETTINGS_MAX_HEADER_LIST_SIZE we advertise and enforce while headers arrive (name + value
    /// + 32 per field, as RFC 9113 counts). Default 16 KiB.
    public var maxHeaderListSize: Int = 16_384
    /// CONTINUATION frames allowed after one HEADERS (CVE-2024-27316). Default 8.
    public var maxContinuations: Int = 8
    /// SETTINGS and PING acknowledgements nghttp2 may queue before it gives up on a peer that
    /// does not read (it then ends the connection). Default 1000.
    public var maxOutboundAcks: Int = 1000
    /// Stream resets (RST_STREAM from the peer) allowed in a burst, then `streamResetRate` per
    /// second (Rapid Reset, CVE-2023-44487). Defaults 200 and 50.
    public var streamResetBurst: Int = 200
    public var streamResetRate: Int = 50
    /// "Glitches" allowed in a burst, then `glitchRate` per second: frames that do nothing
    /// (empty DATA without END_STREAM, zero-increment WINDOW_UPDATE, PRIORITY, unknown frames,
    /// invalid frames) and resets that we send in answer to the peer's bad frames (MadeYouReset,
    /// CVE-2025-8671). Defaults 200 and 50.
    public var glitchBurst: Int = 200
    public var glitchRate: Int = 50

    /// A peer must complete the connection preface (its first SETTINGS) within this long after
    /// the connection opens — TLS handshake included — or the connection is closed, so that
    /// half-open connections cannot pile up. nil disables. Default 10 s.
    public var prefaceTimeout: TimeAmount? = .seconds(10)

    /// PINGs from the client are "too soon" when closer together than this while no response
    /// was sent in between (gRPC keepalive enforcement). Default 5 minutes, as grpc-core.
    public var minimumPingInterval: TimeAmount = .minutes(5)
    /// "Too soon" PINGs tolerated before GOAWAY ENHANCE_YOUR_CALM "too_many_pings". Default 2.
    public var maxPingStrikes: Int = 2
    /// We PING an idle-looking peer this often; nil disables. Default 2 hours, as grpc-core.
    public var keepaliveInterval: TimeAmount? = .hours(2)
    /// A PING that is not acknowledged within this closes the connection. Default 20 s.
    public var keepaliveTimeout: TimeAmount = .seconds(20)
    /// A connection with no open stream for this long is closed with GOAWAY. nil disables.
    /// Default 30 minutes.
    public var idleTimeout: TimeAmount? = .minutes(30)
    /// After this age a connection gets GOAWAY so clients spread over instances. nil disables.
    public var maxConnectionAge: TimeAmount? = nil
    /// How long in-flight streams may run after max-age or shutdown GOAWAY. Default 30 s.
    public var drainTimeout: TimeAmount = .seconds(30)

    /// Bytes queued on one stream for sending before the stream reports itself not writable.
    public var streamWriteHighWatermark: Int = 256 * 1024

    public init() {}
}
