import NIOCore
import ProtoWire

/// `inference.ModelInferResponse`: the result of one inference request.
///
/// Decoding never copies tensor data: `rawOutputContents` and every `bytes` value are slices of
/// the incoming buffer. Fields this decoder does not know are kept in `unknownFields` and
/// written back, so a response relayed from a worker loses nothing.
public struct ModelInferResponse: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.ModelInferResponse"

    /// `inference.ModelInferResponse.InferOutputTensor`: one output tensor's description, and
    /// its data unless the data travels in `rawOutputContents` or shared memory.
    public struct InferOutputTensor: ProtoMessage, Hashable {
        public static let protoMessageName = "inference.ModelInferResponse.InferOutputTensor"

        /// Tensor name.
        public var name: String = ""  // = 1
        /// Tensor datatype ("INT32", "FP32", "BYTES", ...).
        public var datatype: String = ""  // = 2
        /// Tensor shape; up to `TensorShape.inlineCapacity` dimensions need no allocation.
        public var shape = TensorShape()  // = 3
        /// Optional per-output parameters.
        public var parameters: [String: InferParameter] = [:]  // = 4
        /// Tensor data as typed values; nil when absent (the data is in `rawOutputContents`
        /// or shared memory).
        public var contents: InferTensorContents?  // = 5
        /// Fields this decoder does not know, written back on encode.
        public var unknownFields = UnknownFields()

        public init() {}

        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: name = try reader.readString(tag)
            case 2: datatype = try reader.readString(tag)
            case 3: try reader.readRepeated(ProtoInt64.self, tag, into: &shape)
            case 4: try reader.readMapEntry(tag, into: &parameters)
            case 5:
                try reader.merge(tag, into: &contents)
            default: try reader.preserveUnknownField(tag, in: &unknownFields)
            }
        }

        public func encode(to writer: inout ProtoWriter) {
            if !name.isEmpty { writer.writeString(field: 1, name) }
            if !datatype.isEmpty { writer.writeString(field: 2, datatype) }
            shape.withUnsafeBufferPointer { writer.writePacked(ProtoInt64.self, field: 3, $0) }
            writer.writeMap(field: 4, parameters)
            if let contents { writer.writeMessage(field: 5, contents) }
            unknownFields.encode(to: &writer)
        }
    }

    /// Name of the model that produced the response.
    public var modelName: String = ""  // = 1
    /// Version of the model that produced the response.
    public var modelVersion: String = ""  // = 2
    /// The request id, if one was given.
    public var id: String = ""  // = 3
    /// Optional response parameters (e.g. `triton_final_response`).
    public var parameters: [String: InferParameter] = [:]  // = 4
    /// Output tensors.
    public var outputs: [InferOutputTensor] = []  // = 5
    /// Raw little-endian output data, one entry per output in the order of `outputs`. Slices of
    /// the decoded buffer.
    public var rawOutputContents: [ByteBuffer] = []  // = 6
    /// Fields this decoder does not know, written back on encode.
    public var unknownFields = UnknownFields()

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: modelName = try reader.readString(tag)
        case 2: modelVersion = try reader.readString(tag)
        case 3: id = try reader.readString(tag)
        case 4: try reader.readMapEntry(tag, into: &parameters)
        case 5: outputs.append(try reader.readMessage(tag))
        case 6: rawOutputContents.append(try reader.readBytes(tag))
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        if !modelName.isEmpty { writer.writeString(field: 1, modelName) }
        if !modelVersion.isEmpty { writer.writeString(field: 2, modelVersion) }
        if !id.isEmpty { writer.writeString(field: 3, id) }
        writer.writeMap(field: 4, parameters)
        for value in outputs { writer.writeMessage(field: 5, value) }
        for value in rawOutputContents { writer.writeBytes(field: 6, value) }
        unknownFields.encode(to: &writer)
    }
}
