import NIOCore
import ProtoWire

// The parts of onnx.proto (Protos/onnx.proto holds the contract) that a model for inference
// needs, decoded by hand on the wire format. Fields an inference runtime does not read (doc
// strings, metadata props, training info, functions) are skipped.

/// `onnx.ModelProto`.
public struct ONNXModelProto: ProtoMessage {
    public static let protoMessageName = "onnx.ModelProto"
    public var irVersion: Int64 = 0
    public var opsetImports: [ONNXOperatorSetID] = []
    public var producerName = ""
    public var graph = ONNXGraphProto()

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: irVersion = try reader.read(ProtoInt64.self, tag)
        case 2: producerName = try reader.readString(tag)
        case 7: try reader.merge(tag, into: &graph)
        case 8: try reader.appendMessage(tag, to: &opsetImports)
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        if irVersion != 0 { writer.write(ProtoInt64.self, field: 1, irVersion) }
        if !producerName.isEmpty { writer.writeString(field: 2, producerName) }
        writer.writeMessage(field: 7, graph)
        for opset in opsetImports { writer.writeMessage(field: 8, opset) }
    }
}

/// `onnx.OperatorSetIdProto`: a domain ("" or "ai.onnx" for the standard operators,
/// "ai.onnx.ml" for the classic-ML ones) and its version.
public struct ONNXOperatorSetID: ProtoMessage {
    public static let protoMessageName = "onnx.OperatorSetIdProto"
    public var domain = ""
    public var version: Int64 = 0

    public init() {}
    public init(domain: String, version: Int64) {
        self.domain = domain
        self.version = version
    }

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: domain = try reader.readString(tag)
        case 2: version = try reader.read(ProtoInt64.self, tag)
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        if !domain.isEmpty { writer.writeString(field: 1, domain) }
        writer.write(ProtoInt64.self, field: 2, version)
    }
}

/// `onnx.GraphProto`.
public struct ONNXGraphProto: ProtoMessage {
    public static let protoMessageName = "onnx.GraphProto"
    public var nodes: [ONNXNodeProto] = []
    public var name = ""
    public var initializers: [ONNXTensorProto] = []
    public var inputs: [ONNXValueInfo] = []
    public var outputs: [ONNXValueInfo] = []

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: try reader.appendMessage(tag, to: &nodes)
        case 2: name = try reader.readString(tag)
        case 5: try reader.appendMessage(tag, to: &initializers)
        case 11: try reader.appendMessage(tag, to: &inputs)
        case 12: try reader.appendMessage(tag, to: &outputs)
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        for node in nodes { writer.writeMessage(field: 1, node) }
        if !name.isEmpty { writer.writeString(field: 2, name) }
        for tensor in initializers { writer.writeMessage(field: 5, tensor) }
        for input in inputs { writer.writeMessage(field: 11, input) }
        for output in outputs { writer.writeMessage(field: 12, output) }
    }
}

/// `onnx.NodeProto`: one operator application.
public struct ONNXNodeProto: ProtoMessage {
    public static let protoMessageName = "onnx.NodeProto"
    public var inputs: [String] = []
    public var outputs: [String] = []
    public var name = ""
    public var opType = ""
    public var domain = ""
    public var attributes: [ONNXAttribute] = []

    public init() {}
    public init(_ opType: String, inputs: [String], outputs: [String], name: String = "", domain: String = "", attributes: [ONNXAttribute] = []) {
        self.opType = opType
        self.inputs = inputs
        self.outputs = outputs
        self.name = name
        self.domain = domain
        self.attributes = attributes
    }

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: inputs.append(try reader.readString(tag))
        case 2: outputs.append(try reader.readString(tag))
        case 3: name = try reader.readString(tag)
        case 4: opType = try reader.readString(tag)
        case 5: try reader.appendMessage(tag, to: &attributes)
        case 7: domain = try reader.readString(tag)
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        for input in inputs { writer.writeString(field: 1, input) }
        for output in outputs { writer.writeString(field: 2, output) }
        if !name.isEmpty { writer.writeString(field: 3, name) }
        writer.writeString(field: 4, opType)
        for attribute in attributes { writer.writeMessage(field: 5, attribute) }
        if !domain.isEmpty { writer.writeString(field: 7, domain) }
    }

    /// The attribute called `name`.
    public func attribute(_ name: String) -> ONNXAttribute? { attributes.first { $0.name == name } }
}

/// `onnx.AttributeProto` (the value kinds operators of inference graphs use).
public struct ONNXAttribute: ProtoMessage {
    public static let protoMessageName = "onnx.AttributeProto"
    public var name = ""
    public var float: Float = 0
    public var int: Int64 = 0
    public var string: [UInt8] = []
    public var tensor: ONNXTensorProto?
    public var floats: [Float] = []
    public var ints: [Int64] = []
    public var strings: [[UInt8]] = []

    public init() {}

    public static func float(_ name: String, _ value: Float) -> Self { with(name) { $0.float = value } }
    public static func int(_ name: String, _ value: Int64) -> Self { with(name) { $0.int = value } }
    public static func string(_ name: String, _ value: String) -> Self { with(name) { $0.string = Array(value.utf8) } }
    public static func floats(_ name: String, _ values: [Float]) -> Self { with(name) { $0.floats = values } }
    public static func ints(_ name: String, _ values: [Int64]) -> Self { with(name) { $0.ints = values } }
    public static func strings(_ name: String, _ values: [String]) -> Self { with(name) { $0.strings = values.map { Array($0.utf8) } } }
    public static func tensor(_ name: String, _ value: ONNXTensorProto) -> Self { with(name) { $0.tensor = value } }

    private static func with(_ name: String, _ body: (inout Self) -> Void) -> Self {
        var attribute = Self()
        attribute.name = name
        body(&attribute)
        return attribute
    }

    public var text: String { String(decoding: string, as: UTF8.self) }

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: name = try reader.readString(tag)
        case 2: float = try reader.read(ProtoFloat.self, tag)
        case 3: int = try reader.read(ProtoInt64.self, tag)
        case 4: string = Array(buffer: try reader.readBytes(tag))
        case 5: try reader.merge(tag, into: &tensor)
        case 7: try reader.readRepeated(ProtoFloat.self, tag, into: &floats)
        case 8: try reader.readRepeated(ProtoInt64.self, tag, into: &ints)
        case 9: strings.append(Array(buffer: try reader.readBytes(tag)))
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeString(field: 1, name)
        if float != 0 { writer.write(ProtoFloat.self, field: 2, float) }
        if int != 0 { writer.write(ProtoInt64.self, field: 3, int) }
        if !string.isEmpty { writer.writeBytes(field: 4, string) }
        if let tensor { writer.writeMessage(field: 5, tensor) }
        if !floats.isEmpty { writer.writePacked(ProtoFloat.self, field: 7, floats) }
        if !ints.isEmpty { writer.writePacked(ProtoInt64.self, field: 8, ints) }
        for value in strings { writer.writeBytes(field: 9, value) }
    }
}

/// `onnx.TensorProto`: an initializer or a constant, typed data or `raw_data` (little-endian).
public struct ONNXTensorProto: ProtoMessage {
    public static let protoMessageName = "onnx.TensorProto"
    public var dims: [Int64] = []
    public var dataType: Int32 = 0
    public var floatData: [Float] = []
    public var int32Data: [Int32] = []
    public var int64Data: [Int64] = []
    public var doubleData: [Double] = []
    public var name = ""
    public var rawData: [UInt8] = []

    public init() {}

    public static func float(_ name: String, dims: [Int64], _ values: [Float]) -> Self {
        var tensor = Self()
        tensor.name = name
        tensor.dims = dims
        tensor.dataType = ONNXElementType.float.rawValue
        tensor.floatData = values
        return tensor
    }

    public static func int64(_ name: String, dims: [Int64], _ values: [Int64]) -> Self {
        var tensor = Self()
        tensor.name = name
        tensor.dims = dims
        tensor.dataType = ONNXElementType.int64.rawValue
        tensor.int64Data = values
        return tensor
    }

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: try reader.readRepeated(ProtoInt64.self, tag, into: &dims)
        case 2: dataType = try reader.read(ProtoInt32.self, tag)
        case 4: try reader.readRepeated(ProtoFloat.self, tag, into: &floatData)
        case 5: try reader.readRepeated(ProtoInt32.self, tag, into: &int32Data)
        case 7: try reader.readRepeated(ProtoInt64.self, tag, into: &int64Data)
        case 8: name = try reader.readString(tag)
        case 9: rawData = Array(buffer: try reader.readBytes(tag))
        case 10: try reader.readRepeated(ProtoDouble.self, tag, into: &doubleData)
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        if !dims.isEmpty { writer.writePacked(ProtoInt64.self, field: 1, dims) }
        writer.write(ProtoInt32.self, field: 2, dataType)
        if !floatData.isEmpty { writer.writePacked(ProtoFloat.self, field: 4, floatData) }
        if !int32Data.isEmpty { writer.writePacked(ProtoInt32.self, field: 5, int32Data) }
        if !int64Data.isEmpty { writer.writePacked(ProtoInt64.self, field: 7, int64Data) }
        if !name.isEmpty { writer.writeString(field: 8, name) }
        if !rawData.isEmpty { writer.writeBytes(field: 9, rawData) }
        if !doubleData.isEmpty { writer.writePacked(ProtoDouble.self, field: 10, doubleData) }
    }
}

/// `onnx.TensorProto.DataType`, the element types this runtime computes with or converts.
public enum ONNXElementType: Int32, Sendable {
    case float = 1, uint8 = 2, int8 = 3, int32 = 6, int64 = 7, string = 8, bool = 9, double = 11

    public var name: String {
        switch self {
        case .float: return "FLOAT"
        case .uint8: return "UINT8"
        case .int8: return "INT8"
        case .int32: return "INT32"
        case .int64: return "INT64"
        case .string: return "STRING"
        case .bool: return "BOOL"
        case .double: return "DOUBLE"
        }
    }
}

/// `onnx.ValueInfoProto` with its tensor type flattened: a graph input's or output's name,
/// element type and shape (a dimension is a number, or nil for a named/unknown one).
public struct ONNXValueInfo: ProtoMessage {
    public static let protoMessageName = "onnx.ValueInfoProto"
    public var name = ""
    public var elementType: Int32 = 0
    public var shape: [Int64?] = []

    public init() {}
    public init(_ name: String, _ elementType: ONNXElementType, _ shape: [Int64?]) {
        self.name = name
        self.elementType = elementType.rawValue
        self.shape = shape
    }

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: name = try reader.readString(tag)
        case 2:
            // TypeProto { tensor_type = 1: Tensor { elem_type = 1, shape = 2: TensorShapeProto { dim = 1 } } }
            try reader.readEmbeddedMessage(tag) { type in
                while let typeTag = try type.nextTag() {
                    guard typeTag.fieldNumber == 1 else {
                        try type.skipField(typeTag)
                        continue
                    }
                    try type.readEmbeddedMessage(typeTag) { tensor in
                        while let tensorTag = try tensor.nextTag() {
                            switch tensorTag.fieldNumber {
                            case 1: elementType = try tensor.read(ProtoInt32.self, tensorTag)
                            case 2: shape = try Self.readShape(tensorTag, &tensor)
                            default: try tensor.skipField(tensorTag)
                            }
                        }
                    }
                }
            }
        default: try reader.skipField(tag)
        }
    }

    private static func readShape(_ tag: ProtoTag, _ reader: inout ProtoReader) throws -> [Int64?] {
        var shape: [Int64?] = []
        try reader.readEmbeddedMessage(tag) { dims in
            while let dimTag = try dims.nextTag() {
                guard dimTag.fieldNumber == 1 else {
                    try dims.skipField(dimTag)
                    continue
                }
                var value: Int64?
                try dims.readEmbeddedMessage(dimTag) { dim in
                    while let field = try dim.nextTag() {
                        if field.fieldNumber == 1 { value = try dim.read(ProtoInt64.self, field) } else { try dim.skipField(field) }
                    }
                }
                shape.append(value)
            }
        }
        return shape
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeString(field: 1, name)
        writer.writeLengthDelimited(field: 2) { type in
            type.writeLengthDelimited(field: 1) { tensor in
                tensor.write(ProtoInt32.self, field: 1, elementType)
                tensor.writeLengthDelimited(field: 2) { dims in
                    for dim in shape {
                        dims.writeLengthDelimited(field: 1) { entry in
                            if let dim { entry.write(ProtoInt64.self, field: 1, dim) } else { entry.writeString(field: 2, "N") }
                        }
                    }
                }
            }
        }
    }
}
