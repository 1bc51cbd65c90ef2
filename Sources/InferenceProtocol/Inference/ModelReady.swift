import NIOCore
import ProtoWire

/// `inference.ModelReadyRequest`: asks whether one model (and optionally one version) is ready.
public struct ModelReadyRequest: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.ModelReadyRequest"

    /// Model name.
    public var name: String = ""  // = 1
    /// Model version; empty lets the server choose by its version policy.
    public var version: String = ""  // = 2

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: name = try reader.readString(tag)
        case 2: version = try reader.readString(tag)
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        if !name.isEmpty { writer.writeString(field: 1, name) }
        if !version.isEmpty { writer.writeString(field: 2, version) }
    }
}

/// `inference.ModelReadyResponse`: whether the model is ready.
public struct ModelReadyResponse: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.ModelReadyResponse"

    /// True if the model is ready.
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
