import NIOCore
import ProtoWire

/// `inference.ModelMetadataRequest`: asks for one model's metadata.
public struct ModelMetadataRequest: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.ModelMetadataRequest"

    /// Model name.
    public var name: String = ""  // = 1
    /// Model version; empty lets the server choose.
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

/// `inference.ModelMetadataResponse`: a model's name, versions, platform and the metadata of
/// its input and output tensors.
public struct ModelMetadataResponse: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.ModelMetadataResponse"

    /// `inference.ModelMetadataResponse.TensorMetadata`: the name, datatype and shape of one tensor.
    public struct TensorMetadata: ProtoMessage, Hashable {
        public static let protoMessageName = "inference.ModelMetadataResponse.TensorMetadata"

        /// Tensor name.
        public var name: String = ""  // = 1
        /// Tensor datatype ("INT32", "FP32", "BYTES", ...).
        public var datatype: String = ""  // = 2
        /// Tensor shape; -1 marks a variable-size dimension.
        public var shape: [Int64] = []  // = 3

        public init() {}

        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: name = try reader.readString(tag)
            case 2: datatype = try reader.readString(tag)
            case 3: try reader.readRepeated(ProtoInt64.self, tag, into: &shape)
            default: try reader.skipField(tag)
            }
        }

        public func encode(to writer: inout ProtoWriter) {
            if !name.isEmpty { writer.writeString(field: 1, name) }
            if !datatype.isEmpty { writer.writeString(field: 2, datatype) }
            writer.writePacked(ProtoInt64.self, field: 3, shape)
        }
    }

    /// Model name.
    public var name: String = ""  // = 1
    /// Available versions.
    public var versions: [String] = []  // = 2
    /// Model platform / framework.
    public var platform: String = ""  // = 3
    /// Input tensors.
    public var inputs: [TensorMetadata] = []  // = 4
    /// Output tensors.
    public var outputs: [TensorMetadata] = []  // = 5

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: name = try reader.readString(tag)
        case 2: versions.append(try reader.readString(tag))
        case 3: platform = try reader.readString(tag)
        case 4: inputs.append(try reader.readMessage(tag))
        case 5: outputs.append(try reader.readMessage(tag))
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        if !name.isEmpty { writer.writeString(field: 1, name) }
        for value in versions { writer.writeString(field: 2, value) }
        if !platform.isEmpty { writer.writeString(field: 3, platform) }
        for value in inputs { writer.writeMessage(field: 4, value) }
        for value in outputs { writer.writeMessage(field: 5, value) }
    }
}
