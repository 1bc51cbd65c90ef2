import NIOCore
import ProtoWire

// The `ModelConfig` RPC's messages. This file is not called ModelConfig.swift because the
// `inference.ModelConfig` type has that file under ModelConfig/, and one module cannot hold two
// files of the same name.

/// `inference.ModelConfigRequest`: asks for one model's configuration.
public struct ModelConfigRequest: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.ModelConfigRequest"

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

/// `inference.ModelConfigResponse`: a model's configuration.
public struct ModelConfigResponse: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.ModelConfigResponse"

    /// The model's configuration (`inference.ModelConfig config = 1`); nil when absent.
    public var config: ModelConfig?  // = 1

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: try reader.merge(tag, into: &config)
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        if let config { writer.writeMessage(field: 1, config) }
    }
}
