import NIOCore
import ProtoWire

/// `inference.ModelTensorReshape`: the shape a backend sees for a tensor whose client-facing
/// shape is `dims`.
public struct ModelTensorReshape: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name.
    public static let protoMessageName = "inference.ModelTensorReshape"

    /// The shape to reshape to.
    public var shape: [Int64] = []  // = 1
    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// A reshape with every field at its default.
    public init() {}

    /// A reshape to `shape`.
    public init(shape: [Int64]) {
        self.shape = shape
    }

    /// Decodes one field whose tag has just been read.
    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: try reader.readRepeated(ProtoInt64.self, tag, into: &shape)
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    /// Appends the fields that differ from their defaults, in field-number order.
    public func encode(to writer: inout ProtoWriter) {
        writer.writePacked(ProtoInt64.self, field: 1, shape)
        unknownFields.encode(to: &writer)
    }
}

/// `inference.ModelInput`: an input the model requires, as `ModelConfig.input` lists it.
public struct ModelInput: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name.
    public static let protoMessageName = "inference.ModelInput"

    /// `inference.ModelInput.Format`: the image layout of an input.
    public enum Format: RawRepresentable, Sendable, Hashable, CaseIterable {
        /// `FORMAT_NONE`: no particular layout; the default.
        case none  // = 0
        /// `FORMAT_NHWC`: height, width, channels (dims name the 3 non-batch dimensions).
        case nhwc  // = 1
        /// `FORMAT_NCHW`: channels, height, width (dims name the 3 non-batch dimensions).
        case nchw  // = 2
        /// A number this build does not know.
        case unrecognized(Int32)

        /// The known values, in number order.
        public static let allCases: [Format] = [.none, .nhwc, .nchw]

        /// The value for a wire number; a number not listed becomes `.unrecognized`.
        public init(rawValue: Int32) {
            switch rawValue {
            case 0: self = .none
            case 1: self = .nhwc
            case 2: self = .nchw
            default: self = .unrecognized(rawValue)
            }
        }

        /// The wire number.
        public var rawValue: Int32 {
            switch self {
            case .none: 0
            case .nhwc: 1
            case .nchw: 2
            case .unrecognized(let value): value
            }
        }
    }

    /// The input's name.
    public var name: String = ""  // = 1
    /// The element type.
    public var dataType: DataType = .invalid  // = 2
    /// The image layout, if any.
    public var format: Format = .none  // = 3
    /// The shape without the batch dimension; -1 marks a variable dimension.
    public var dims: [Int64] = []  // = 4
    /// The shape the backend sees, when it differs from `dims`.
    public var reshape: ModelTensorReshape?  // = 5
    /// True when the input is a shape tensor (TensorRT).
    public var isShapeTensor: Bool = false  // = 6
    /// True when requests whose inputs differ in shape may still be batched together.
    public var allowRaggedBatch: Bool = false  // = 7
    /// True when a request may leave the input out.
    public var optional: Bool = false  // = 8
    /// True when the input uses a non-linear IO format (TensorRT).
    public var isNonLinearFormatIO: Bool = false  // = 9
    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// An input with every field at its default.
    public init() {}

    /// An input with a name, type and shape: what most configurations say.
    public init(name: String, dataType: DataType, dims: [Int64]) {
        self.name = name
        self.dataType = dataType
        self.dims = dims
    }

    /// Decodes one field whose tag has just been read.
    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: name = try reader.readString(tag)
        case 2: dataType = DataType(rawValue: try reader.read(ProtoEnum.self, tag))
        case 3: format = Format(rawValue: try reader.read(ProtoEnum.self, tag))
        case 4: try reader.readRepeated(ProtoInt64.self, tag, into: &dims)
        case 5:
            try reader.merge(tag, into: &reshape)
        case 6: isShapeTensor = try reader.read(ProtoBool.self, tag)
        case 7: allowRaggedBatch = try reader.read(ProtoBool.self, tag)
        case 8: optional = try reader.read(ProtoBool.self, tag)
        case 9: isNonLinearFormatIO = try reader.read(ProtoBool.self, tag)
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    /// Appends the fields that differ from their defaults, in field-number order.
    public func encode(to writer: inout ProtoWriter) {
        if !name.isEmpty { writer.writeString(field: 1, name) }
        if dataType.rawValue != 0 { writer.write(ProtoEnum.self, field: 2, dataType.rawValue) }
        if format.rawValue != 0 { writer.write(ProtoEnum.self, field: 3, format.rawValue) }
        writer.writePacked(ProtoInt64.self, field: 4, dims)
        if let reshape { writer.writeMessage(field: 5, reshape) }
        if isShapeTensor { writer.write(ProtoBool.self, field: 6, isShapeTensor) }
        if allowRaggedBatch { writer.write(ProtoBool.self, field: 7, allowRaggedBatch) }
        if optional { writer.write(ProtoBool.self, field: 8, optional) }
        if isNonLinearFormatIO { writer.write(ProtoBool.self, field: 9, isNonLinearFormatIO) }
        unknownFields.encode(to: &writer)
    }
}

/// `inference.ModelOutput`: an output the model produces, as `ModelConfig.output` lists it.
public struct ModelOutput: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name.
    public static let protoMessageName = "inference.ModelOutput"

    /// The output's name.
    public var name: String = ""  // = 1
    /// The element type.
    public var dataType: DataType = .invalid  // = 2
    /// The shape without the batch dimension; -1 marks a variable dimension.
    public var dims: [Int64] = []  // = 3
    /// The shape the backend produces, when it differs from `dims`.
    public var reshape: ModelTensorReshape?  // = 5
    /// The label file for a classification output.
    public var labelFilename: String = ""  // = 4
    /// True when the output is a shape tensor (TensorRT).
    public var isShapeTensor: Bool = false  // = 6
    /// True when the output uses a non-linear IO format (TensorRT).
    public var isNonLinearFormatIO: Bool = false  // = 7
    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// An output with every field at its default.
    public init() {}

    /// An output with a name, type and shape: what most configurations say.
    public init(name: String, dataType: DataType, dims: [Int64]) {
        self.name = name
        self.dataType = dataType
        self.dims = dims
    }

    /// Decodes one field whose tag has just been read.
    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: name = try reader.readString(tag)
        case 2: dataType = DataType(rawValue: try reader.read(ProtoEnum.self, tag))
        case 3: try reader.readRepeated(ProtoInt64.self, tag, into: &dims)
        case 4: labelFilename = try reader.readString(tag)
        case 5:
            try reader.merge(tag, into: &reshape)
        case 6: isShapeTensor = try reader.read(ProtoBool.self, tag)
        case 7: isNonLinearFormatIO = try reader.read(ProtoBool.self, tag)
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    /// Appends the fields that differ from their defaults, in field-number order.
    public func encode(to writer: inout ProtoWriter) {
        if !name.isEmpty { writer.writeString(field: 1, name) }
        if dataType.rawValue != 0 { writer.write(ProtoEnum.self, field: 2, dataType.rawValue) }
        writer.writePacked(ProtoInt64.self, field: 3, dims)
        if !labelFilename.isEmpty { writer.writeString(field: 4, labelFilename) }
        if let reshape { writer.writeMessage(field: 5, reshape) }
        if isShapeTensor { writer.write(ProtoBool.self, field: 6, isShapeTensor) }
        if isNonLinearFormatIO { writer.write(ProtoBool.self, field: 7, isNonLinearFormatIO) }
        unknownFields.encode(to: &writer)
    }
}

/// `inference.BatchInput`: an extra input the batcher computes from all requests of a batch.
public struct BatchInput: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name.
    public static let protoMessageName = "inference.BatchInput"

    /// `inference.BatchInput.Kind`: what the computed input holds.
    public enum Kind: RawRepresentable, Sendable, Hashable, CaseIterable {
        /// `BATCH_ELEMENT_COUNT`: the element count of the source input, per request; the default.
        case batchElementCount  // = 0
        /// `BATCH_ACCUMULATED_ELEMENT_COUNT`: running totals of the element counts.
        case batchAccumulatedElementCount  // = 1
        /// `BATCH_ACCUMULATED_ELEMENT_COUNT_WITH_ZERO`: the running totals, starting with 0.
        case batchAccumulatedElementCountWithZero  // = 2
        /// `BATCH_MAX_ELEMENT_COUNT_AS_SHAPE`: a tensor shaped by the largest element count.
        case batchMaxElementCountAsShape  // = 3
        /// `BATCH_ITEM_SHAPE`: the shape of each request's source input.
        case batchItemShape  // = 4
        /// `BATCH_ITEM_SHAPE_FLATTEN`: those shapes, flattened.
        case batchItemShapeFlatten  // = 5
        /// A number this build does not know.
        case unrecognized(Int32)

        /// The known values, in number order.
        public static let allCases: [Kind] = [
            .batchElementCount, .batchAccumulatedElementCount, .batchAccumulatedElementCountWithZero,
            .batchMaxElementCountAsShape, .batchItemShape, .batchItemShapeFlatten,
        ]

        /// The value for a wire number; a number not listed becomes `.unrecognized`.
        public init(rawValue: Int32) {
            switch rawValue {
            case 0: self = .batchElementCount
            case 1: self = .batchAccumulatedElementCount
            case 2: self = .batchAccumulatedElementCountWithZero
            case 3: self = .batchMaxElementCountAsShape
            case 4: self = .batchItemShape
            case 5: self = .batchItemShapeFlatten
            default: self = .unrecognized(rawValue)
            }
        }

        /// The wire number.
        public var rawValue: Int32 {
            switch self {
            case .batchElementCount: 0
            case .batchAccumulatedElementCount: 1
            case .batchAccumulatedElementCountWithZero: 2
            case .batchMaxElementCountAsShape: 3
            case .batchItemShape: 4
            case .batchItemShapeFlatten: 5
            case .unrecognized(let value): value
            }
        }
    }

    /// What the computed input holds.
    public var kind: Kind = .batchElementCount  // = 1
    /// The model inputs it feeds.
    public var targetName: [String] = []  // = 2
    /// Its element type.
    public var dataType: DataType = .invalid  // = 3
    /// The inputs it is computed from.
    public var sourceInput: [String] = []  // = 4
    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// A batch input with every field at its default.
    public init() {}

    /// Decodes one field whose tag has just been read.
    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: kind = Kind(rawValue: try reader.read(ProtoEnum.self, tag))
        case 2: targetName.append(try reader.readString(tag))
        case 3: dataType = DataType(rawValue: try reader.read(ProtoEnum.self, tag))
        case 4: sourceInput.append(try reader.readString(tag))
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    /// Appends the fields that differ from their defaults, in field-number order.
    public func encode(to writer: inout ProtoWriter) {
        if kind.rawValue != 0 { writer.write(ProtoEnum.self, field: 1, kind.rawValue) }
        for value in targetName { writer.writeString(field: 2, value) }
        if dataType.rawValue != 0 { writer.write(ProtoEnum.self, field: 3, dataType.rawValue) }
        for value in sourceInput { writer.writeString(field: 4, value) }
        unknownFields.encode(to: &writer)
    }
}

/// `inference.BatchOutput`: how an output computed for a whole batch is split into responses.
public struct BatchOutput: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name.
    public static let protoMessageName = "inference.BatchOutput"

    /// `inference.BatchOutput.Kind`: the split rule.
    public enum Kind: RawRepresentable, Sendable, Hashable, CaseIterable {
        /// `BATCH_SCATTER_WITH_INPUT_SHAPE`: split by the shapes of a source input; the default.
        case batchScatterWithInputShape  // = 0
        /// A number this build does not know.
        case unrecognized(Int32)

        /// The known values, in number order.
        public static let allCases: [Kind] = [.batchScatterWithInputShape]

        /// The value for a wire number; a number not listed becomes `.unrecognized`.
        public init(rawValue: Int32) {
            switch rawValue {
            case 0: self = .batchScatterWithInputShape
            default: self = .unrecognized(rawValue)
            }
        }

        /// The wire number.
        public var rawValue: Int32 {
            switch self {
            case .batchScatterWithInputShape: 0
            case .unrecognized(let value): value
            }
        }
    }

    /// The outputs the rule applies to.
    public var targetName: [String] = []  // = 1
    /// The split rule.
    public var kind: Kind = .batchScatterWithInputShape  // = 2
    /// The input whose shapes drive the split.
    public var sourceInput: [String] = []  // = 3
    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// A batch output with every field at its default.
    public init() {}

    /// Decodes one field whose tag has just been read.
    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: targetName.append(try reader.readString(tag))
        case 2: kind = Kind(rawValue: try reader.read(ProtoEnum.self, tag))
        case 3: sourceInput.append(try reader.readString(tag))
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    /// Appends the fields that differ from their defaults, in field-number order.
    public func encode(to writer: inout ProtoWriter) {
        for value in targetName { writer.writeString(field: 1, value) }
        if kind.rawValue != 0 { writer.write(ProtoEnum.self, field: 2, kind.rawValue) }
        for value in sourceInput { writer.writeString(field: 3, value) }
        unknownFields.encode(to: &writer)
    }
}
