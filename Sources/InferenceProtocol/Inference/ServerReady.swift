import NIOCore
import ProtoWire

/// `inference.ServerReadyRequest`: asks whether the server is ready. It has no fields.
public struct ServerReadyRequest: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.ServerReadyRequest"

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        try reader.skipField(tag)
    }

    public func encode(to writer: inout ProtoWriter) {}
}

/// `inference.ServerReadyResponse`: whether the server is ready.
public struct ServerReadyResponse: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.ServerReadyResponse"

    /// True if the server is ready.
    public var ready: Bool = false  // = 1

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: ready = try reader.read(ProtoBool.self, tag)
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        if ready { writer.write(ProtoBool.self, field: 1, ready) }
    }
}
