import NIOCore
import ProtoWire

/// `inference.ServerLiveRequest`: asks whether the server is live. It has no fields.
public struct ServerLiveRequest: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.ServerLiveRequest"

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        try reader.skipField(tag)
    }

    public func encode(to writer: inout ProtoWriter) {}
}

/// `inference.ServerLiveResponse`: whether the server is live.
public struct ServerLiveResponse: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.ServerLiveResponse"

    /// True if the server is live.
    public var live: Bool = false  // = 1

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: live = try reader.read(ProtoBool.self, tag)
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        if live { writer.write(ProtoBool.self, field: 1, live) }
    }
}
