import NIOCore
import ProtoWire

/// `inference.ModelWarmup`: a request the server sends to a model while loading it, so that
/// the first real request does not pay for lazy initialization.
public struct ModelWarmup: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name.
    public static let protoMessageName = "inference.ModelWarmup"

    /// `inference.ModelWarmup.Input`: one input of the warmup request and where its data
    /// comes from.
    public struct Input: ProtoMessage, Hashable {
        /// The fully-qualified protobuf name.
        public static let protoMessageName = "inference.ModelWarmup.Input"

        /// `oneof input_data_type`.
        public enum InputDataType: Sendable, Hashable {
            /// All zeros.
            case zeroData(Bool)  // = 3
            /// Random values.
            case randomData(Bool)  // = 4
            /// The contents of a file in the model directory's `warmup` folder.
            case inputDataFile(String)  // = 5
        }

        /// The element type.
        public var dataType: DataType = .invalid  // = 1
        /// The shape, without the batch dimension.
        public var dims: [Int64] = []  // = 2
        /// Where the data comes from; nil when none of the oneof's fields was set.
        public var inputDataType: InputDataType?
        /// Fields this build does not know, kept so that re-encoding loses nothing.
        public var unknownFields = UnknownFields()

        /// A warmup input with every field at its default.
        public init() {}

        /// Decodes one field whose tag has just been read.
        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: dataType = DataType(rawValue: try reader.read(ProtoEnum.self, tag))
            case 2: try reader.readRepeated(ProtoInt64.self, tag, into: &dims)
            case 3: inputDataType = .zeroData(try reader.read(ProtoBool.self, tag))
            case 4: inputDataType = .randomData(try reader.read(ProtoBool.self, tag))
            case 5: inputDataType = .inputDataFile(try reader.readString(tag))
            default: try reader.preserveUnknownField(tag, in: &unknownFields)
            }
        }

        /// Appends the fields that differ from their defaults (and the oneof member, always),
        /// in field-number order.
        public func encode(to writer: inout ProtoWriter) {
            if dataType.rawValue != 0 { writer.write(ProtoEnum.self, field: 1, dataType.rawValue) }
            writer.writePacked(ProtoInt64.self, field: 2, dims)
            switch inputDataType {
            case .zeroData(let value): writer.write(ProtoBool.self, field: 3, value)
            case .randomData(let value): writer.write(ProtoBool.self, field: 4, value)
            case .inputDataFile(let value): writer.writeString(field: 5, value)
            case nil: break
            }
            unknownFields.encode(to: &writer)
        }
    }

    /// The warmup's name, shown in the server's log.
    public var name: String = ""  // = 1
    /// The batch size of the warmup request.
    public var batchSize: UInt32 = 0  // = 2
    /// The request's inputs, by input name.
    public var inputs: [String: Input] = [:]  // = 3
    /// How many times the request is sent; 0 means once.
    public var count: UInt32 = 0  // = 4
    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// A warmup with every field at its default.
    public init() {}

    /// Decodes one field whose tag has just been read.
    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: name = try reader.readString(tag)
        case 2: batchSize = try reader.read(ProtoUInt32.self, tag)
        case 3: try reader.readMapEntry(tag, into: &inputs)
        case 4: count = try reader.read(ProtoUInt32.self, tag)
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    /// Appends the fields that differ from their defaults, in field-number order.
    public func encode(to writer: inout ProtoWriter) {
        if !name.isEmpty { writer.writeString(field: 1, name) }
        if batchSize != 0 { writer.write(ProtoUInt32.self, field: 2, batchSize) }
        writer.writeMap(field: 3, inputs)
        if count != 0 { writer.write(ProtoUInt32.self, field: 4, count) }
        unknownFields.encode(to: &writer)
    }
}
