import NIOCore
import ProtoWire

/// `inference.ModelInferRequest`: one inference request, for `ModelInfer` and each message of a
/// `ModelStreamInfer` stream.
///
/// Decoding never copies tensor data: `rawInputContents` and every `bytes` value are slices of
/// the incoming buffer, so the request keeps that buffer's storage alive. Fields this decoder
/// does not know are kept in `unknownFields` and written back, so a forwarded request loses
/// nothing a newer client put in it. The router decodes only the header with
/// `ModelInferRequestPeek`.
public struct ModelInferRequest: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.ModelInferRequest"

    /// `inference.ModelInferRequest.InferInputTensor`: one input tensor's description, and its
    /// data unless the data travels in `rawInputContents` or shared memory.
    public struct InferInputTensor: ProtoMessage, Hashable {
        public static let protoMessageName = "inference.ModelInferRequest.InferInputTensor"

        /// Tensor name.
        public var name: String = ""  // = 1
        /// Tensor datatype ("INT32", "FP32", "BYTES", ...).
        public var datatype: String = ""  // = 2
        /// Tensor shape; up to `TensorShape.inlineCapacity` dimensions need no allocation.
        public var shape = TensorShape()  // = 3
        /// Optional per-input parameters (e.g. a shared-memory region).
        public var parameters = [String: InferParameter]()  // = 4
        /// Tensor data as typed values; nil when absent (the data is in `rawInputContents`
        /// or shared memory).
        public var contents: InferTensorContents?  // = 5
        /// Fields this decoder does not know, written back on encode.
        public var unknownFields = UnknownFields()

        public init() {}

        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: name = try reader.readString(tag)
            case 2: datatype = try reader.readString(tag, knownValue: TensorDatatype.protocolName(spelledBy:))
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

    /// `inference.ModelInferRequest.InferRequestedOutputTensor`: one output the client asks for,
    /// with optional per-output settings.
    public struct InferRequestedOutputTensor: ProtoMessage, Hashable {
        public static let protoMessageName = "inference.ModelInferRequest.InferRequestedOutputTensor"

        /// Tensor name.
        public var name: String = ""  // = 1
        /// Optional per-output parameters (e.g. classification, shared memory).
        public var parameters = [String: InferParameter]()  // = 2
        /// Fields this decoder does not know, written back on encode.
        public var unknownFields = UnknownFields()

        public init() {}

        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: name = try reader.readString(tag)
            case 2: try reader.readMapEntry(tag, into: &parameters)
            default: try reader.preserveUnknownField(tag, in: &unknownFields)
            }
        }

        public func encode(to writer: inout ProtoWriter) {
            if !name.isEmpty { writer.writeString(field: 1, name) }
            writer.writeMap(field: 2, parameters)
            unknownFields.encode(to: &writer)
        }
    }

    /// Model name.
    public var modelName: String = ""  // = 1
    /// Model version; empty lets the server choose.
    public var modelVersion: String = ""  // = 2
    /// Optional request id, echoed in the response.
    public var id: String = ""  // = 3
    /// Optional request parameters (sequence_id, priority, timeout, ...).
    public var parameters = [String: InferParameter]()  // = 4
    /// Input tensors.
    public var inputs: [InferInputTensor] = []  // = 5
    /// Requested outputs; empty means all outputs with default settings.
    public var outputs: [InferRequestedOutputTensor] = []  // = 6
    /// Raw little-endian input data, one entry per input in the order of `inputs` (each BYTES
    /// element prefixed by its 4-byte little-endian length). Slices of the decoded buffer.
    public var rawInputContents: [ByteBuffer] = []  // = 7
    /// Fields this decoder does not know, written back on encode.
    public var unknownFields = UnknownFields()

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: modelName = try reader.readString(tag)
        case 2: modelVersion = try reader.readString(tag)
        case 3: id = try reader.readString(tag)
        case 4: try reader.readMapEntry(tag, into: &parameters)
        case 5: try reader.appendMessage(tag, to: &inputs)
        case 6: try reader.appendMessage(tag, to: &outputs)
        case 7: try reader.appendBytes(tag, to: &rawInputContents)
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        if !modelName.isEmpty { writer.writeString(field: 1, modelName) }
        if !modelVersion.isEmpty { writer.writeString(field: 2, modelVersion) }
        if !id.isEmpty { writer.writeString(field: 3, id) }
        writer.writeMap(field: 4, parameters)
        for value in inputs { writer.writeMessage(field: 5, value) }
        for value in outputs { writer.writeMessage(field: 6, value) }
        for value in rawInputContents { writer.writeBytes(field: 7, value) }
        unknownFields.encode(to: &writer)
    }
}
