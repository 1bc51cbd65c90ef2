import NIOCore
import ProtoWire

/// `inference.InferParameter`: a request or tensor parameter, one of bool, int64, string,
/// double or uint64 (Triton's extension adds uint64).
public struct InferParameter: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.InferParameter"

    /// `oneof parameter_choice`.
    public enum Choice: Sendable, Hashable {
        case bool(Bool)  // = 1
        case int64(Int64)  // = 2
        case string(String)  // = 3
        case double(Double)  // = 4
        case uint64(UInt64)  // = 5
    }

    /// The value; nil when none of the oneof's fields was set.
    public var choice: Choice?
    public var unknownFields = UnknownFields()

    public init() {}

    public init(_ choice: Choice) {
        self.choice = choice
    }

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: choice = .bool(try reader.read(ProtoBool.self, tag))
        case 2: choice = .int64(try reader.read(ProtoInt64.self, tag))
        case 3: choice = .string(try reader.readString(tag))
        case 4: choice = .double(try reader.read(ProtoDouble.self, tag))
        case 5: choice = .uint64(try reader.read(ProtoUInt64.self, tag))
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        // A oneof member is written even when it holds its type's default: that is its presence.
        switch choice {
        case .bool(let value): writer.write(ProtoBool.self, field: 1, value)
        case .int64(let value): writer.write(ProtoInt64.self, field: 2, value)
        case .string(let value): writer.writeString(field: 3, value)
        case .double(let value): writer.write(ProtoDouble.self, field: 4, value)
        case .uint64(let value): writer.write(ProtoUInt64.self, field: 5, value)
        case nil: break
        }
        unknownFields.encode(to: &writer)
    }
}
