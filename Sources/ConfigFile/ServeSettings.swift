import Foundation
import Gateway
import H2Transport
import NIOCore

/// Everything `switchyard serve` can be told, by its configuration file or its flags, with
/// today's defaults: the embedded setup of DESIGN.md. A file overlays these defaults
/// (`ServeSettings.load`), and the flags given on the command line overlay the file.
/// docs/configuration.md documents each key that sets these.
public struct ServeSettings: Sendable {
    /// `listeners.plaintext.address`: h2c (prior knowledge); nil for none. Default 127.0.0.1:8001.
    public var plaintextListener: GatewayConfiguration.Address? = GatewayConfiguration().plaintextListener
    /// `listeners.tls.address`; nil for none. Default 0.0.0.0:8443.
    public var tlsListener: GatewayConfiguration.Address? = GatewayConfiguration().tlsListener
    /// `listeners.tls.certificate`, `private_key`, `client_ca`: PEM files; nil: the dev set.
    public var tlsCertificate: String?
    public var tlsPrivateKey: String?
    public var tlsClientCA: String?
    /// `listeners.tls.client_auth`: none, optional (verified when presented) or required.
    public var clientAuth: TLSConfiguration.ClientCertificateVerification = .optional
    /// `listeners.admin.address`; nil for none. Default 127.0.0.1:8002.
    public var adminListener: GatewayConfiguration.Address? = GatewayConfiguration().adminListener
    /// `listeners.admin.token_file`: the admin bearer token's file. Default none.
    public var adminTokenFile: String?
    /// `models`: the deployments; nil when the file has no `models` (the built-in models, or
    /// the `--model` flags).
    public var models: [ModelDeployment]?
    /// `models.NAME.route` and `routes`: one route per model that has one.
    public var routes: [ModelRoute] = []
    /// Not a file key: the models whose file route `--model` flags left out (the route named a
    /// version the flags do not serve), for a warning at the start.
    public var routesDroppedByFlags: [String] = []
    /// `auth` and `principals`: who may call what; nil (no such sections): everyone, anything.
    public var auth: AuthPolicy?
    /// `logging.level`, as `--log-level` takes it. Default "info".
    public var logLevel = "info"
    /// `logging.format`: text or json. Default "text".
    public var logFormat = "text"
    /// `logging.access_log`: stdout, stderr, a file path or off. Default "stdout".
    public var accessLog = "stdout"
    /// `logging.access_log_sample_rate`: 0 ... 1. Default 1.
    public var accessLogSampleRate = 1.0
    /// `metrics.latency_buckets`: upper bounds in seconds; nil: the built-in buckets.
    public var latencyBuckets: [Double]?
    /// `http2.*`: HTTP/2 settings and connection management.
    public var http2 = HTTP2Configuration()
    /// `limits.max_receive_message_size`. Default 64 MiB.
    public var maxReceiveMessageSize = GatewayConfiguration().maxReceiveMessageSize
    /// `limits.max_stream_requests_in_flight`. Default 32.
    public var maxStreamRequestsInFlight = GatewayConfiguration().maxStreamRequestsInFlight
    /// `limits.max_stream_buffered_bytes`. Default 8 MiB.
    public var maxStreamBufferedBytes = GatewayConfiguration().maxStreamBufferedBytes
    /// `limits.handshake_timeout`. Default 10s.
    public var handshakeTimeout: TimeAmount = .seconds(10)
    /// `limits.shutdown_delay`. Default 0s.
    public var shutdownDelay: TimeAmount = .zero

    public init() {}
}

/// A duration as the flags and the file spell it: a number and a unit, `ms`, `s`, `m` or `h`
/// (`250ms`, `20s`, `5m`, `2h`), or `off`.
public enum DurationText {
    /// `.some(nil)` for `off`, nil for text that is not a duration.
    public static func parse(_ text: String) -> TimeAmount?? {
        let text = text.trimmingCharacters(in: .whitespaces).lowercased()
        if text == "off" { return .some(nil) }
        let digits = text.prefix { $0.isNumber }
        let unit = text.dropFirst(digits.count)
        guard !digits.isEmpty, digits.count <= 12, let value = Int64(digits) else { return nil }
        switch unit {
        case "ms": return .milliseconds(value)
        case "s": return .seconds(value)
        case "m": return .minutes(value)
        case "h": return .hours(value)
        default: return nil
        }
    }
}

extension ServeSettings {
    /// The configuration keys whose values differ between `self` and `other` among those a
    /// reload cannot apply while serving (everything but `models` and routes), sorted. The
    /// admin API's reload answer and the log name them, so an operator knows a restart is due.
    public func keysNeedingRestart(comparedWith other: ServeSettings) -> [String] {
        func text(_ value: Any?) -> String { value.map { "\($0)" } ?? "nil" }
        let pairs: [(String, Any?, Any?)] = [
            ("listeners.plaintext.address", plaintextListener, other.plaintextListener),
            ("listeners.tls.address", tlsListener, other.tlsListener),
            ("listeners.tls.certificate", tlsCertificate, other.tlsCertificate),
            ("listeners.tls.private_key", tlsPrivateKey, other.tlsPrivateKey),
            ("listeners.tls.client_ca", tlsClientCA, other.tlsClientCA),
            ("listeners.tls.client_auth", clientAuth, other.clientAuth),
            ("listeners.admin.address", adminListener, other.adminListener),
            ("listeners.admin.token_file", adminTokenFile, other.adminTokenFile),
            ("logging.level", logLevel, other.logLevel),
            ("logging.format", logFormat, other.logFormat),
            ("logging.access_log", accessLog, other.accessLog),
            ("logging.access_log_sample_rate", accessLogSampleRate, other.accessLogSampleRate),
            ("metrics.latency_buckets", latencyBuckets, other.latencyBuckets),
            ("http2", http2, other.http2),
            ("limits.max_receive_message_size", maxReceiveMessageSize, other.maxReceiveMessageSize),
            ("limits.max_stream_requests_in_flight", maxStreamRequestsInFlight, other.maxStreamRequestsInFlight),
            ("limits.max_stream_buffered_bytes", maxStreamBufferedBytes, other.maxStreamBufferedBytes),
            ("limits.handshake_timeout", handshakeTimeout, other.handshakeTimeout),
            ("limits.shutdown_delay", shutdownDelay, other.shutdownDelay),
        ]
        return pairs.filter { text($0.1) != text($0.2) }.map(\.0).sorted()
    }
}
