/// Why a buffer could not be decoded as a protobuf message.
///
/// The description names the field path (message and field numbers, outermost first) and the byte
/// offset where decoding stopped, so a person can find the fault in a capture.
public struct ProtoDecodingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The kind of fault.
    public enum Code: String, Sendable, Hashable {
        /// The buffer ended inside a tag, varint or fixed-width value.
        case truncated
        /// A varint ran past 10 bytes.
        case varintTooLong
        /// A varint's value does not fit in 64 bits, or a tag does not fit in 32.
        case varintOverflow
        /// A length prefix claims more bytes than remain.
        case lengthPastEnd
        /// Wire type 6 or 7.
        case invalidWireType
        /// A known field arrived with a wire type its declared type cannot have.
        case wrongWireType
        /// Field number 0 or above 2^29 - 1.
        case invalidFieldNumber
        /// Embedded messages or groups nested deeper than the limit.
        case nestingTooDeep
        /// The message is larger than the configured limit.
        case messageTooLarge
        /// A string field holds bytes that are not valid UTF-8.
        case invalidUTF8
        /// An end-group tag with no matching start, or a group that never ends.
        case malformedGroup
        /// A value that decodes but is not allowed (for example a packed fixed32 run whose length
        /// is not a multiple of 4).
        case invalidValue
    }

    /// One step of the path to the failing field.
    public struct PathElement: Sendable, Hashable {
        public var message: String
        public var fieldNumber: Int
        public init(message: String, fieldNumber: Int) {
            self.message = message
            self.fieldNumber = fieldNumber
        }
    }

    public var code: Code
    /// What went wrong, in words.
    public var detail: String
    /// Outermost first.
    public var path: [PathElement]

    public init(_ code: Code, _ detail: String, path: [PathElement] = []) {
        self.code = code
        self.detail = detail
        self.path = path
    }

    public var description: String {
        if path.isEmpty { return "malformed protobuf: \(detail)" }
        let where_ = path.map { "\($0.message).\($0.fieldNumber)" }.joined(separator: " > ")
        return "malformed protobuf at \(where_): \(detail)"
    }
}
