import InferenceProtocol

/// Why a worker could not answer one inference request: a gRPC status code and a message a person
/// can act on. The gateway passes both to the client unchanged, so messages name the model, the
/// tensor and the element at fault.
public struct InferenceError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A gRPC status code, as `switchyard.worker.Status.code` carries it.
    public struct Code: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public var rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }

        /// 1: the request was cancelled.
        public static let cancelled = Code(rawValue: 1)
        /// 3: the request is malformed (bytes, names, datatypes, shapes, values).
        public static let invalidArgument = Code(rawValue: 3)
        /// 4: the request's deadline passed before it could run.
        public static let deadlineExceeded = Code(rawValue: 4)
        /// 5: the model or version is not served here.
        public static let notFound = Code(rawValue: 5)
        /// 13: a bug in the worker.
        public static let `internal` = Code(rawValue: 13)
        /// 14: the worker is shutting down; another worker can take the request.
        public static let unavailable = Code(rawValue: 14)

        public var description: String {
            switch self {
            case .cancelled: return "CANCELLED"
            case .invalidArgument: return "INVALID_ARGUMENT"
            case .deadlineExceeded: return "DEADLINE_EXCEEDED"
            case .notFound: return "NOT_FOUND"
            case .internal: return "INTERNAL"
            case .unavailable: return "UNAVAILABLE"
            default: return "CODE(\(rawValue))"
            }
        }
    }

    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `INVALID_ARGUMENT` with `message`.
    public static func invalidArgument(_ message: String) -> InferenceError {
        InferenceError(.invalidArgument, message)
    }

    /// The status that carries this error in an `INFER_RESPONSE` or `ERROR` frame.
    public var status: WorkerProtocol.Status {
        WorkerProtocol.Status(code: code.rawValue, message: message)
    }

    public var description: String { "\(code): \(message)" }
}
