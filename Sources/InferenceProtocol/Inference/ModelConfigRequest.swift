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

    /// `config` (`inference.ModelConfig config = 1`), held for now as the raw encoded
    /// `inference.ModelConfig` message (without tag or length prefix); nil when absent.
    ///
    /// Stand-in until the `ModelConfig` type exists, when this becomes `config: ModelConfig?`.
    /// Decoding does not look inside these bytes, so it does not validate them. A second
    /// occurrence of the field is appended, which is how protobuf merges two encodings of a
    /// message.
    public var configBytes: ByteBuffer?  // = 1

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1:
            var slice = try reader.readBytes(tag)
            if configBytes == nil {
                configBytes = slice
            } else {
                configBytes!.writeBuffer(&slice)
            }
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        if let configBytes { writer.writeBytes(field: 1, configBytes) }
    }
}
