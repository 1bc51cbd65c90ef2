import NIOCore
import ProtoWire

/// `inference.ModelOptimizationPolicy`: optimization settings of a model (graph level,
/// priority, CUDA graphs, execution accelerators, pinned memory).
public struct ModelOptimizationPolicy: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name.
    public static let protoMessageName = "inference.ModelOptimizationPolicy"

    /// `inference.ModelOptimizationPolicy.Graph`: the framework's graph optimization level.
    public struct Graph: ProtoMessage, Hashable {
        /// The fully-qualified protobuf name.
        public static let protoMessageName = "inference.ModelOptimizationPolicy.Graph"

        /// The level; its meaning is the framework's (TensorFlow: -1 off, 0 default, 1 more).
        public var level: Int32 = 0  // = 1
        /// Fields this build does not know, kept so that re-encoding loses nothing.
        public var unknownFields = UnknownFields()

        /// A graph setting with every field at its default.
        public init() {}

        /// Decodes one field whose tag has just been read.
        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: level = try reader.read(ProtoInt32.self, tag)
            default: try reader.preserveUnknownField(tag, in: &unknownFields)
            }
        }

        /// Appends the fields that differ from their defaults, in field-number order.
        public func encode(to writer: inout ProtoWriter) {
            if level != 0 { writer.write(ProtoInt32.self, field: 1, level) }
            unknownFields.encode(to: &writer)
        }
    }

    /// `inference.ModelOptimizationPolicy.ModelPriority`: the model's scheduling priority.
    public enum ModelPriority: RawRepresentable, Sendable, Hashable, CaseIterable {
        /// `PRIORITY_DEFAULT`: the default.
        case priorityDefault  // = 0
        /// `PRIORITY_MAX`: the highest priority.
        case priorityMax  // = 1
        /// `PRIORITY_MIN`: the lowest priority.
        case priorityMin  // = 2
        /// A number this build does not know.
        case unrecognized(Int32)

        /// The known values, in number order.
        public static let allCases: [ModelPriority] = [.priorityDefault, .priorityMax, .priorityMin]

        /// The value for a wire number; a number not listed becomes `.unrecognized`.
        public init(rawValue: Int32) {
            switch rawValue {
            case 0: self = .priorityDefault
            case 1: self = .priorityMax
            case 2: self = .priorityMin
            default: self = .unrecognized(rawValue)
            }
        }

        /// The wire number.
        public var rawValue: Int32 {
            switch self {
            case .priorityDefault: 0
            case .priorityMax: 1
            case .priorityMin: 2
            case .unrecognized(let value): value
            }
        }
    }

    /// `inference.ModelOptimizationPolicy.Cuda`: CUDA settings (graphs, event waits, copies).
    public struct Cuda: ProtoMessage, Hashable {
        /// The fully-qualified protobuf name.
        public static let protoMessageName = "inference.ModelOptimizationPolicy.Cuda"

        /// `inference.ModelOptimizationPolicy.Cuda.GraphSpec`: a CUDA graph to capture ahead of
        /// time, for a batch size and input shapes.
        public struct GraphSpec: ProtoMessage, Hashable {
            /// The fully-qualified protobuf name.
            public static let protoMessageName = "inference.ModelOptimizationPolicy.Cuda.GraphSpec"

            /// `inference.ModelOptimizationPolicy.Cuda.GraphSpec.Shape`: one input's shape.
            public struct Shape: ProtoMessage, Hashable {
                /// The fully-qualified protobuf name.
                public static let protoMessageName = "inference.ModelOptimizationPolicy.Cuda.GraphSpec.Shape"

                /// The dimensions.
                public var dim: [Int64] = []  // = 1
                /// Fields this build does not know, kept so that re-encoding loses nothing.
                public var unknownFields = UnknownFields()

                /// A shape with every field at its default.
                public init() {}

                /// A shape of `dim`.
                public init(dim: [Int64]) {
                    self.dim = dim
                }

                /// Decodes one field whose tag has just been read.
                public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
                    switch tag.fieldNumber {
                    case 1: try reader.readRepeated(ProtoInt64.self, tag, into: &dim)
                    default: try reader.preserveUnknownField(tag, in: &unknownFields)
                    }
                }

                /// Appends the fields that differ from their defaults, in field-number order.
                public func encode(to writer: inout ProtoWriter) {
                    writer.writePacked(ProtoInt64.self, field: 1, dim)
                    unknownFields.encode(to: &writer)
                }
            }

            /// `inference.ModelOptimizationPolicy.Cuda.GraphSpec.LowerBound`: the smallest batch
            /// size and shapes a captured graph also serves.
            public struct LowerBound: ProtoMessage, Hashable {
                /// The fully-qualified protobuf name.
                public static let protoMessageName = "inference.ModelOptimizationPolicy.Cuda.GraphSpec.LowerBound"

                /// The smallest batch size.
                public var batchSize: Int32 = 0  // = 1
                /// The smallest shape of each input, by input name.
                public var input: [String: Shape] = [:]  // = 2
                /// Fields this build does not know, kept so that re-encoding loses nothing.
                public var unknownFields = UnknownFields()

                /// A lower bound with every field at its default.
                public init() {}

                /// Decodes one field whose tag has just been read.
                public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
                    switch tag.fieldNumber {
                    case 1: batchSize = try reader.read(ProtoInt32.self, tag)
                    case 2: try reader.readMapEntry(tag, into: &input)
                    default: try reader.preserveUnknownField(tag, in: &unknownFields)
                    }
                }

                /// Appends the fields that differ from their defaults, in field-number order.
                public func encode(to writer: inout ProtoWriter) {
                    if batchSize != 0 { writer.write(ProtoInt32.self, field: 1, batchSize) }
                    writer.writeMap(field: 2, input)
                    unknownFields.encode(to: &writer)
                }
            }

            /// The batch size the graph is captured for.
            public var batchSize: Int32 = 0  // = 1
            /// The shape of each input, by input name.
            public var input: [String: Shape] = [:]  // = 2
            /// The smallest batch size and shapes the graph also serves; nil when only exact.
            public var graphLowerBound: LowerBound?  // = 3
            /// Fields this build does not know, kept so that re-encoding loses nothing.
            public var unknownFields = UnknownFields()

            /// A graph spec with every field at its default.
            public init() {}

            /// Decodes one field whose tag has just been read.
            public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
                switch tag.fieldNumber {
                case 1: batchSize = try reader.read(ProtoInt32.self, tag)
                case 2: try reader.readMapEntry(tag, into: &input)
                case 3:
                    try reader.merge(tag, into: &graphLowerBound)
                default: try reader.preserveUnknownField(tag, in: &unknownFields)
                }
            }

            /// Appends the fields that differ from their defaults, in field-number order.
            public func encode(to writer: inout ProtoWriter) {
                if batchSize != 0 { writer.write(ProtoInt32.self, field: 1, batchSize) }
                writer.writeMap(field: 2, input)
                if let graphLowerBound { writer.writeMessage(field: 3, graphLowerBound) }
                unknownFields.encode(to: &writer)
            }
        }

        /// True to use CUDA graphs (TensorRT).
        public var graphs: Bool = false  // = 1
        /// True to busy-wait on CUDA events instead of blocking.
        public var busyWaitEvents: Bool = false  // = 2
        /// The graphs to capture ahead of time.
        public var graphSpec: [GraphSpec] = []  // = 3
        /// True to copy outputs on a separate CUDA stream.
        public var outputCopyStream: Bool = false  // = 4
        /// Fields this build does not know, kept so that re-encoding loses nothing.
        public var unknownFields = UnknownFields()

        /// CUDA settings with every field at its default.
        public init() {}

        /// Decodes one field whose tag has just been read.
        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: graphs = try reader.read(ProtoBool.self, tag)
            case 2: busyWaitEvents = try reader.read(ProtoBool.self, tag)
            case 3: graphSpec.append(try reader.readMessage(tag))
            case 4: outputCopyStream = try reader.read(ProtoBool.self, tag)
            default: try reader.preserveUnknownField(tag, in: &unknownFields)
            }
        }

        /// Appends the fields that differ from their defaults, in field-number order.
        public func encode(to writer: inout ProtoWriter) {
            if graphs { writer.write(ProtoBool.self, field: 1, graphs) }
            if busyWaitEvents { writer.write(ProtoBool.self, field: 2, busyWaitEvents) }
            for value in graphSpec { writer.writeMessage(field: 3, value) }
            if outputCopyStream { writer.write(ProtoBool.self, field: 4, outputCopyStream) }
            unknownFields.encode(to: &writer)
        }
    }

    /// `inference.ModelOptimizationPolicy.ExecutionAccelerators`: accelerators (TensorRT,
    /// OpenVINO, …) to run the model with, on GPU and on CPU.
    public struct ExecutionAccelerators: ProtoMessage, Hashable {
        /// The fully-qualified protobuf name.
        public static let protoMessageName = "inference.ModelOptimizationPolicy.ExecutionAccelerators"

        /// `inference.ModelOptimizationPolicy.ExecutionAccelerators.Accelerator`: one accelerator
        /// and its settings.
        public struct Accelerator: ProtoMessage, Hashable {
            /// The fully-qualified protobuf name.
            public static let protoMessageName = "inference.ModelOptimizationPolicy.ExecutionAccelerators.Accelerator"

            /// The accelerator's name, e.g. "tensorrt".
            public var name: String = ""  // = 1
            /// Its settings, by name.
            public var parameters: [String: String] = [:]  // = 2
            /// Fields this build does not know, kept so that re-encoding loses nothing.
            public var unknownFields = UnknownFields()

            /// An accelerator with every field at its default.
            public init() {}

            /// Decodes one field whose tag has just been read.
            public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
                switch tag.fieldNumber {
                case 1: name = try reader.readString(tag)
                case 2: try reader.readMapEntry(tag, into: &parameters)
                default: try reader.preserveUnknownField(tag, in: &unknownFields)
                }
            }

            /// Appends the fields that differ from their defaults, in field-number order.
            public func encode(to writer: inout ProtoWriter) {
                if !name.isEmpty { writer.writeString(field: 1, name) }
                writer.writeMap(field: 2, parameters)
                unknownFields.encode(to: &writer)
            }
        }

        /// Accelerators for instances on GPU, in order of preference.
        public var gpuExecutionAccelerator: [Accelerator] = []  // = 1
        /// Accelerators for instances on CPU, in order of preference.
        public var cpuExecutionAccelerator: [Accelerator] = []  // = 2
        /// Fields this build does not know, kept so that re-encoding loses nothing.
        public var unknownFields = UnknownFields()

        /// Accelerator settings with every field at its default.
        public init() {}

        /// Decodes one field whose tag has just been read.
        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: gpuExecutionAccelerator.append(try reader.readMessage(tag))
            case 2: cpuExecutionAccelerator.append(try reader.readMessage(tag))
            default: try reader.preserveUnknownField(tag, in: &unknownFields)
            }
        }

        /// Appends the fields that differ from their defaults, in field-number order.
        public func encode(to writer: inout ProtoWriter) {
            for value in gpuExecutionAccelerator { writer.writeMessage(field: 1, value) }
            for value in cpuExecutionAccelerator { writer.writeMessage(field: 2, value) }
            unknownFields.encode(to: &writer)
        }
    }

    /// `inference.ModelOptimizationPolicy.PinnedMemoryBuffer`: whether to stage tensors in
    /// pinned host memory.
    public struct PinnedMemoryBuffer: ProtoMessage, Hashable {
        /// The fully-qualified protobuf name.
        public static let protoMessageName = "inference.ModelOptimizationPolicy.PinnedMemoryBuffer"

        /// True to use pinned memory.
        public var enable: Bool = false  // = 1
        /// Fields this build does not know, kept so that re-encoding loses nothing.
        public var unknownFields = UnknownFields()

        /// A setting with every field at its default.
        public init() {}

        /// A setting with `enable` given.
        public init(enable: Bool) {
            self.enable = enable
        }

        /// Decodes one field whose tag has just been read.
        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: enable = try reader.read(ProtoBool.self, tag)
            default: try reader.preserveUnknownField(tag, in: &unknownFields)
            }
        }

        /// Appends the fields that differ from their defaults, in field-number order.
        public func encode(to writer: inout ProtoWriter) {
            if enable { writer.write(ProtoBool.self, field: 1, enable) }
            unknownFields.encode(to: &writer)
        }
    }

    /// The graph optimization level; nil when not set.
    public var graph: Graph?  // = 1
    /// The model's priority.
    public var priority: ModelPriority = .priorityDefault  // = 2
    /// CUDA settings; nil when not set.
    public var cuda: Cuda?  // = 3
    /// Execution accelerators; nil when not set.
    public var executionAccelerators: ExecutionAccelerators?  // = 4
    /// Pinned memory for inputs; nil when not set (Triton then uses it).
    public var inputPinnedMemory: PinnedMemoryBuffer?  // = 5
    /// Pinned memory for outputs; nil when not set (Triton then uses it).
    public var outputPinnedMemory: PinnedMemoryBuffer?  // = 6
    /// Byte size under which inputs are gathered into one buffer by a kernel; 0 disables it.
    public var gatherKernelBufferThreshold: UInt32 = 0  // = 7
    /// True to start a batch as soon as a model instance is free, without waiting to fill it.
    public var eagerBatching: Bool = false  // = 8
    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// An optimization policy with every field at its default.
    public init() {}

    /// Decodes one field whose tag has just been read.
    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1:
            try reader.merge(tag, into: &graph)
        case 2: priority = ModelPriority(rawValue: try reader.read(ProtoEnum.self, tag))
        case 3:
            try reader.merge(tag, into: &cuda)
        case 4:
            try reader.merge(tag, into: &executionAccelerators)
        case 5:
            try reader.merge(tag, into: &inputPinnedMemory)
        case 6:
            try reader.merge(tag, into: &outputPinnedMemory)
        case 7: gatherKernelBufferThreshold = try reader.read(ProtoUInt32.self, tag)
        case 8: eagerBatching = try reader.read(ProtoBool.self, tag)
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    /// Appends the fields that differ from their defaults, in field-number order.
    public func encode(to writer: inout ProtoWriter) {
        if let graph { writer.writeMessage(field: 1, graph) }
        if priority.rawValue != 0 { writer.write(ProtoEnum.self, field: 2, priority.rawValue) }
        if let cuda { writer.writeMessage(field: 3, cuda) }
        if let executionAccelerators { writer.writeMessage(field: 4, executionAccelerators) }
        if let inputPinnedMemory { writer.writeMessage(field: 5, inputPinnedMemory) }
        if let outputPinnedMemory { writer.writeMessage(field: 6, outputPinnedMemory) }
        if gatherKernelBufferThreshold != 0 {
            writer.write(ProtoUInt32.self, field: 7, gatherKernelBufferThreshold)
        }
        if eagerBatching { writer.write(ProtoBool.self, field: 8, eagerBatching) }
        unknownFields.encode(to: &writer)
    }
}
