/// The outcome of one gRPC call: a status code and a message a person can act on.
///
/// It travels as the `grpc-status` and `grpc-message` trailers; `message` here is the decoded
/// text (percent-encoding is applied only on the wire, by `GRPCStatusMessage`). A status is
/// also an `Error`, so the gRPC layer's own checks (deframing, header validation) throw the
/// status they want the call to end with.
public struct GRPCStatus: Sendable, Hashable, Error {
    /// Which of gRPC's seventeen outcomes this is.
    public var code: Code
    /// What went wrong, for a person; empty for most successful calls.
    public var message: String

    /// A status with `code` and `message`.
    public init(code: Code, message: String = "") {
        self.code = code
        self.message = message
    }

    /// Success with no message.
    public static let ok = GRPCStatus(code: .ok)
}

extension GRPCStatus: CustomStringConvertible {
    /// `CODE_NAME: message`, e.g. `RESOURCE_EXHAUSTED: queue full`.
    public var description: String {
        message.isEmpty ? code.description : "\(code): \(message)"
    }
}

extension GRPCStatus {
    /// A gRPC status code (doc/statuscodes.md). Only the seventeen defined codes can be
    /// represented; a peer's unknown number is mapped to `.unknown` by `init(wireValue:)`.
    public struct Code: Sendable, Hashable, Comparable, CustomStringConvertible {
        /// The code's number as carried in `grpc-status`.
        public let rawValue: Int

        /// The code numbered `rawValue`, or nil outside 0...16.
        public init?(rawValue: Int) {
            guard (0...16).contains(rawValue) else { return nil }
            self.rawValue = rawValue
        }

        private init(_ rawValue: Int) {
            self.rawValue = rawValue
        }

        /// Parses a `grpc-status` value: decimal ASCII digits without sign or leading zeros,
        /// as PROTOCOL-HTTP2.md specifies. Returns nil for anything else; a well-formed number
        /// outside the known codes becomes `.unknown` (what grpc-core does with it).
        public init?(wireValue: some StringProtocol) {
            let utf8 = wireValue.utf8
            guard !utf8.isEmpty, utf8.count <= 9, utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
                return nil
            }
            if utf8.count > 1 && utf8.first == UInt8(ascii: "0") { return nil }
            let number = utf8.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
            self = Code(rawValue: number) ?? .unknown
        }

        /// The value for the `grpc-status` trailer.
        public var wireValue: String { String(rawValue) }

        /// The canonical upper-case name, e.g. `RESOURCE_EXHAUSTED`.
        public var description: String { Self.names[rawValue] }

        public static func < (lhs: Code, rhs: Code) -> Bool { lhs.rawValue < rhs.rawValue }

        /// Not an error; returned on success.
        public static let ok = Code(0)
        /// The operation was cancelled, typically by the caller.
        public static let cancelled = Code(1)
        /// Unknown error, e.g. a status from another error space, or an error without a status.
        public static let unknown = Code(2)
        /// The client specified an invalid argument.
        public static let invalidArgument = Code(3)
        /// The deadline expired before the operation could complete.
        public static let deadlineExceeded = Code(4)
        /// Some requested entity was not found.
        public static let notFound = Code(5)
        /// The entity that a client attempted to create already exists.
        public static let alreadyExists = Code(6)
        /// The caller does not have permission to execute the operation.
        public static let permissionDenied = Code(7)
        /// Some resource has been exhausted: a quota, a queue, a size limit.
        public static let resourceExhausted = Code(8)
        /// The system is not in a state required for the operation.
        public static let failedPrecondition = Code(9)
        /// The operation was aborted, typically by a concurrency conflict.
        public static let aborted = Code(10)
        /// The operation was attempted past the valid range.
        public static let outOfRange = Code(11)
        /// The operation is not implemented or not supported.
        public static let unimplemented = Code(12)
        /// Internal error: an invariant the system relies on was broken.
        public static let internalError = Code(13)
        /// The service is currently unavailable; retrying may help.
        public static let unavailable = Code(14)
        /// Unrecoverable data loss or corruption.
        public static let dataLoss = Code(15)
        /// The request does not have valid authentication credentials.
        public static let unauthenticated = Code(16)

        /// All seventeen codes in numeric order.
        public static let allCases: [Code] = (0...16).map(Code.init)

        private static let names = [
            "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
            "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
            "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
            "UNAUTHENTICATED",
        ]
    }
}

extension GRPCStatus {
    /// The status a client synthesizes for a response whose HTTP status is not 200, per
    /// grpc/grpc doc/http-grpc-status-mapping.md (400 and 431→INTERNAL, 401→UNAUTHENTICATED,
    /// 403→PERMISSION_DENIED, 404→UNIMPLEMENTED, 429/502/503/504→UNAVAILABLE, else UNKNOWN).
    public init(httpStatus: Int) {
        let code: Code
        switch httpStatus {
        case 400, 431: code = .internalError
        case 401: code = .unauthenticated
        case 403: code = .permissionDenied
        case 404: code = .unimplemented
        case 429, 502, 503, 504: code = .unavailable
        default: code = .unknown
        }
        self.init(code: code, message: "HTTP status \(httpStatus) instead of 200")
    }

    /// The status for a stream that the peer reset with HTTP/2 error code `code` (the table in
    /// PROTOCOL-HTTP2.md, "Errors"). On a server, CANCEL is the client cancelling the call.
    public init(http2ResetCode code: UInt32) {
        switch code {
        case 0x7: self.init(code: .unavailable, message: "stream refused (REFUSED_STREAM); no processing occurred")
        case 0x8: self.init(code: .cancelled, message: "the call was cancelled (RST_STREAM CANCEL)")
        case 0xB: self.init(code: .resourceExhausted, message: "peer asked to slow down (RST_STREAM ENHANCE_YOUR_CALM)")
        case 0xC: self.init(code: .permissionDenied, message: "transport not secure enough (RST_STREAM INADEQUATE_SECURITY)")
        default: self.init(code: .internalError, message: "stream reset with HTTP/2 error code \(code)")
        }
    }
}
