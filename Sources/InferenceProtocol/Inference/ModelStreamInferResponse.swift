import NIOCore
import ProtoWire

/// `inference.ModelStreamInferResponse`: one message on a `ModelStreamInfer` response stream:
/// either an inference result or an error that ended that request.
///
/// Fields this decoder does not know are kept in `unknownFields` and written back.
public struct ModelStreamInferResponse: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.ModelStreamInferResponse"

    /// Error description; empty means success.
    public var errorMessage: String = ""  // = 1
    /// The inference result; nil when absent.
    public var inferResponse: ModelInferResponse?  // = 2
    /// Fields this decoder does not know, written back on encode.
    public var unknownFields = UnknownFields()

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: errorMessage = try reader.readString(tag)
        case 2:
            try reader.merge(tag, into: &inferResponse)
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        if !errorMessage.isEmpty { writer.writeString(field: 1, errorMessage) }
        if let inferResponse { writer.writeMessage(field: 2, inferResponse) }
        unknownFields.encode(to: &writer)
    }
}
