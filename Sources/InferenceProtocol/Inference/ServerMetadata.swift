import NIOCore
import ProtoWire

/// `inference.ServerMetadataRequest`: asks for the server's name, version and extensions.
/// It has no fields.
public struct ServerMetadataRequest: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.ServerMetadataRequest"

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        try reader.skipField(tag)
    }

    public func encode(to writer: inout ProtoWriter) {}
}

/// `inference.ServerMetadataResponse`: the server's name, version and supported extensions.
public struct ServerMetadataResponse: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.ServerMetadataResponse"

    /// Server name.
    public var name: String = ""  // = 1
    /// Server version.
    public var version: String = ""  // = 2
    /// Supported protocol extensions.
    public var extensions: [String] = []  // = 3

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: name = try reader.readString(tag)
        case 2: version = try reader.readString(tag)
        case 3: extensions.append(try reader.readString(tag))
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        if !name.isEmpty { writer.writeString(field: 1, name) }
        if !version.isEmpty { writer.writeString(field: 2, version) }
        for value in extensions { writer.writeString(field: 3, value) }
    }
}
