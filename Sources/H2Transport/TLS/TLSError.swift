import COpenSSL

/// A TLS failure: what kind of failure it was, and a message a person can act on.
///
/// Failures that come from OpenSSL carry OpenSSL's own reason strings (for example
/// "certificate verify failed (certificate has expired)"), so an operator reading a log line
/// or a thrown error sees the library's diagnosis rather than a bare code.
public struct TLSError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of failure, as a struct with static members so that new kinds can be added
    /// without breaking exhaustive switches.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private let name: String

        private init(_ name: String) { self.name = name }

        /// The configuration is invalid or its files could not be loaded (certificate, key,
        /// CA bundle, cipher list).
        public static let invalidConfiguration = Code("invalid configuration")
        /// The TLS handshake failed: bad certificate, no shared protocol version or cipher, not TLS.
        public static let handshakeFailed = Code("handshake failed")
        /// The peer did not complete the handshake within `TLSConfiguration.handshakeTimeout`.
        public static let handshakeTimedOut = Code("handshake timed out")
        /// The handshake completed without agreeing on one of the configured ALPN protocols.
        public static let noApplicationProtocol = Code("no application protocol")
        /// The connection closed before the handshake completed.
        public static let closedDuringHandshake = Code("closed during handshake")
        /// A TLS record could not be decrypted or encrypted after the handshake.
        public static let recordFailed = Code("record failed")
        /// Generating or writing certificates and keys failed.
        public static let certificateGeneration = Code("certificate generation")

        public var description: String { self.name }
    }

    /// The kind of failure.
    public var code: Code
    /// What went wrong, with OpenSSL's reason where there is one.
    public var message: String

    /// Creates an error of the given kind.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "TLS \(self.code): \(self.message)" }
}

extension TLSError {
    /// Builds an error from OpenSSL's thread-local error queue, emptying it.
    ///
    /// `context` says what Switchyard was doing ("loading private key /etc/…"); the queue says
    /// why it failed. When the queue is empty (OpenSSL failed without saying why), the message is
    /// just the context.
    static func fromOpenSSL(_ code: Code, _ context: String) -> TLSError {
        let reasons = OpenSSLErrorQueue.drain()
        guard !reasons.isEmpty else { return TLSError(code, context) }
        return TLSError(code, "\(context): \(reasons.joined(separator: "; "))")
    }
}

/// OpenSSL's per-thread error queue, read as text.
enum OpenSSLErrorQueue {
    /// Removes every error from this thread's queue and returns their reasons, oldest first,
    /// with any extra data OpenSSL attached (e.g. "SSL alert number 42").
    static func drain() -> [String] {
        var reasons: [String] = []
        while true {
            var data: UnsafePointer<CChar>? = nil
            var flags: CInt = 0
            let packed = ERR_get_error_all(nil, nil, nil, &data, &flags)
            if packed == 0 { break }
            var reason: String
            if let text = ERR_reason_error_string(packed) {
                reason = String(cString: text)
            } else {
                var buffer = [CChar](repeating: 0, count: 256)
                ERR_error_string_n(packed, &buffer, buffer.count)
                reason = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
            if let data, flags & ERR_TXT_STRING != 0, data.pointee != 0 {
                reason += " (\(String(cString: data)))"
            }
            reasons.append(reason)
        }
        return reasons
    }

    /// Empties this thread's queue so that the next failure reports only its own reasons.
    static func clear() {
        ERR_clear_error()
    }
}
