import NIOCore
import ProtoWire

/// `inference.ModelEnsembling`: an ensemble's pipeline, steps that run other models and pass
/// tensors between them.
public struct ModelEnsembling: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name.
    public static let protoMessageName = "inference.ModelEnsembling"

    /// `inference.ModelEnsembling.Step`: one model run of the pipeline and how its tensors map
    /// to the ensemble's.
    public struct Step: ProtoMessage, Hashable {
        /// The fully-qualified protobuf name.
        public static let protoMessageName = "inference.ModelEnsembling.Step"

        /// The model the step runs.
        public var modelName: String = ""  // = 1
        /// The version it runs; -1 means the latest.
        public var modelVersion: Int64 = 0  // = 2
        /// The step model's input name → the ensemble tensor that feeds it.
        public var inputMap: [String: String] = [:]  // = 3
        /// The step model's output name → the ensemble tensor it produces.
        public var outputMap: [String: String] = [:]  // = 4
        /// The namespace the model is looked up in.
        public var modelNamespace: String = ""  // = 5
        /// Fields this build does not know, kept so that re-encoding loses nothing.
        public var unknownFields = UnknownFields()

        /// A step with every field at its default.
        public init() {}

        /// Decodes one field whose tag has just been read.
        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: modelName = try reader.readString(tag)
            case 2: modelVersion = try reader.read(ProtoInt64.self, tag)
            case 3: try reader.readMapEntry(tag, into: &inputMap)
            case 4: try reader.readMapEntry(tag, into: &outputMap)
            case 5: modelNamespace = try reader.readString(tag)
            default: try reader.preserveUnknownField(tag, in: &unknownFields)
            }
        }

        /// Appends the fields that differ from their defaults, in field-number order.
        public func encode(to writer: inout ProtoWriter) {
            if !modelName.isEmpty { writer.writeString(field: 1, modelName) }
            if modelVersion != 0 { writer.write(ProtoInt64.self, field: 2, modelVersion) }
            writer.writeMap(field: 3, inputMap)
            writer.writeMap(field: 4, outputMap)
            if !modelNamespace.isEmpty { writer.writeString(field: 5, modelNamespace) }
            unknownFields.encode(to: &writer)
        }
    }

    /// The steps.
    public var step: [Step] = []  // = 1
    /// The most requests in flight inside the ensemble at once; 0 means unlimited.
    public var maxInflightRequests: UInt32 = 0  // = 2
    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// An ensemble with every field at its default.
    public init() {}

    /// Decodes one field whose tag has just been read.
    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: step.append(try reader.readMessage(tag))
        case 2: maxInflightRequests = try reader.read(ProtoUInt32.self, tag)
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    /// Appends the fields that differ from their defaults, in field-number order.
    public func encode(to writer: inout ProtoWriter) {
        for value in step { writer.writeMessage(field: 1, value) }
        if maxInflightRequests != 0 { writer.write(ProtoUInt32.self, field: 2, maxInflightRequests) }
        unknownFields.encode(to: &writer)
    }
}
