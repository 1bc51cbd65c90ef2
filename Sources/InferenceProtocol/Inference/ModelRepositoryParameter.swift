import NIOCore
import ProtoWire

/// `inference.ModelRepositoryParameter`: a parameter of a repository load or unload request,
/// one of bool, int64, string or bytes.
public struct ModelRepositoryParameter: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.ModelRepositoryParameter"

    /// `oneof parameter_choice`.
    public enum Choice: Sendable, Hashable {
        case bool(Bool)  // = 1
        case int64(Int64)  // = 2
        case string(String)  // = 3
        /// A slice of the decoded buffer (e.g. a model file's contents for a `file:` override).
        case bytes(ByteBuffer)  // = 4
    }

    /// The value; nil when none of the oneof's fields was set.
    public var choice: Choice?

    public init() {}

    /// A parameter holding `choice`.
    public init(_ choice: Choice) {
        self.choice = choice
    }

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: choice = .bool(try reader.read(ProtoBool.self, tag))
        case 2: choice = .int64(try reader.read(ProtoInt64.self, tag))
        case 3: choice = .string(try reader.readString(tag))
        case 4: choice = .bytes(try reader.readBytes(tag))
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        // A oneof member is written even when it holds its type's default: that is its presence.
        switch choice {
        case .bool(let value): writer.write(ProtoBool.self, field: 1, value)
        case .int64(let value): writer.write(ProtoInt64.self, field: 2, value)
        case .string(let value): writer.writeString(field: 3, value)
        case .bytes(let value): writer.writeBytes(field: 4, value)
        case nil: break
        }
    }
}
