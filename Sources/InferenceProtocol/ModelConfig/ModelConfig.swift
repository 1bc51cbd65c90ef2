import NIOCore
import ProtoWire

/// `inference.ModelConfig`: the configuration of one model, as `ModelConfigResponse.config`
/// carries it to tritonclient, perf_analyzer and model analyzer.
///
/// Every field of the published Triton schema is here, so a configuration round-trips
/// unchanged even where Switchyard does not act on a field. Fields are encoded in field-number
/// order, as protoc-generated code does.
public struct ModelConfig: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name.
    public static let protoMessageName = "inference.ModelConfig"

    /// `oneof scheduling_choice`: the scheduler; with none set the model runs each request as
    /// it comes.
    public enum SchedulingChoice: Sendable, Hashable {
        /// The dynamic batcher (stateless models).
        case dynamicBatching(ModelDynamicBatching)  // = 11
        /// The sequence batcher (stateful models).
        case sequenceBatching(ModelSequenceBatching)  // = 13
        /// An ensemble pipeline.
        case ensembleScheduling(ModelEnsembling)  // = 15
    }

    /// The model's name.
    public var name: String = ""  // = 1
    /// The platform, for models not served by a named backend (e.g. "tensorrt_plan", "ensemble").
    public var platform: String = ""  // = 2
    /// The backend that runs the model (e.g. "python", "onnxruntime").
    public var backend: String = ""  // = 17
    /// The backend's runtime library or script, when it is not the default.
    public var runtime: String = ""  // = 25
    /// Which versions are served; nil when not set (Triton then serves the latest one).
    public var versionPolicy: ModelVersionPolicy?  // = 3
    /// The largest batch the model accepts; 0 means the model does not batch, and then `dims`
    /// of inputs and outputs are the full shapes.
    public var maxBatchSize: Int32 = 0  // = 4
    /// The inputs.
    public var input: [ModelInput] = []  // = 5
    /// The outputs.
    public var output: [ModelOutput] = []  // = 6
    /// Inputs the batcher computes for each batch.
    public var batchInput: [BatchInput] = []  // = 20
    /// How outputs computed for a batch are split.
    public var batchOutput: [BatchOutput] = []  // = 21
    /// Optimization settings; nil when not set.
    public var optimization: ModelOptimizationPolicy?  // = 12
    /// The scheduler; nil when none of the oneof's fields was set.
    public var schedulingChoice: SchedulingChoice?
    /// The instance groups.
    public var instanceGroup: [ModelInstanceGroup] = []  // = 7
    /// The model file's name in each version directory, when not the backend's default.
    public var defaultModelFilename: String = ""  // = 8
    /// The model file for each CUDA compute capability (e.g. "7.5"), overriding the default.
    public var ccModelFilenames: [String: String] = [:]  // = 9
    /// Extra labels on the model's metrics.
    public var metricTags: [String: String] = [:]  // = 10
    /// Free-form parameters for the backend, by name.
    public var parameters: [String: ModelParameter] = [:]  // = 14
    /// Requests sent to the model while it loads.
    public var modelWarmup: [ModelWarmup] = []  // = 16
    /// Custom operation libraries to load; nil when not set.
    public var modelOperations: ModelOperations?  // = 18
    /// The transaction policy (whether the model is decoupled); nil when not set.
    public var modelTransactionPolicy: ModelTransactionPolicy?  // = 19
    /// Repository agents that run on the model; nil when not set.
    public var modelRepositoryAgents: ModelRepositoryAgents?  // = 23
    /// Response cache settings; nil when not set.
    public var responseCache: ModelResponseCache?  // = 24
    /// Metric customization; nil when not set.
    public var modelMetrics: ModelMetrics?  // = 26
    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// A configuration with every field at its default.
    public init() {}

    /// Decodes one field whose tag has just been read. A oneof message member that arrives
    /// again merges into the value it already holds, as protobuf specifies.
    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: name = try reader.readString(tag)
        case 2: platform = try reader.readString(tag)
        case 3:
            try reader.merge(tag, into: &versionPolicy)
        case 4: maxBatchSize = try reader.read(ProtoInt32.self, tag)
        case 5: input.append(try reader.readMessage(tag))
        case 6: output.append(try reader.readMessage(tag))
        case 7: instanceGroup.append(try reader.readMessage(tag))
        case 8: defaultModelFilename = try reader.readString(tag)
        case 9: try reader.readMapEntry(tag, into: &ccModelFilenames)
        case 10: try reader.readMapEntry(tag, into: &metricTags)
        case 11:
            var value = ModelDynamicBatching()
            if case .dynamicBatching(let current)? = schedulingChoice { value = current }
            schedulingChoice = nil  // `value` must hold the only reference, or merging copies it
            try reader.merge(tag, into: &value)
            schedulingChoice = .dynamicBatching(value)
        case 12:
            try reader.merge(tag, into: &optimization)
        case 13:
            var value = ModelSequenceBatching()
            if case .sequenceBatching(let current)? = schedulingChoice { value = current }
            schedulingChoice = nil  // `value` must hold the only reference, or merging copies it
            try reader.merge(tag, into: &value)
            schedulingChoice = .sequenceBatching(value)
        case 14: try reader.readMapEntry(tag, into: &parameters)
        case 15:
            var value = ModelEnsembling()
            if case .ensembleScheduling(let current)? = schedulingChoice { value = current }
            schedulingChoice = nil  // `value` must hold the only reference, or merging copies it
            try reader.merge(tag, into: &value)
            schedulingChoice = .ensembleScheduling(value)
        case 16: modelWarmup.append(try reader.readMessage(tag))
        case 17: backend = try reader.readString(tag)
        case 18:
            try reader.merge(tag, into: &modelOperations)
        case 19:
            try reader.merge(tag, into: &modelTransactionPolicy)
        case 20: batchInput.append(try reader.readMessage(tag))
        case 21: batchOutput.append(try reader.readMessage(tag))
        case 23:
            try reader.merge(tag, into: &modelRepositoryAgents)
        case 24:
            try reader.merge(tag, into: &responseCache)
        case 25: runtime = try reader.readString(tag)
        case 26:
            try reader.merge(tag, into: &modelMetrics)
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    /// Appends the fields that differ from their defaults (and the oneof member, always), in
    /// field-number order; map entries go in sorted key order.
    public func encode(to writer: inout ProtoWriter) {
        if !name.isEmpty { writer.writeString(field: 1, name) }
        if !platform.isEmpty { writer.writeString(field: 2, platform) }
        if let versionPolicy { writer.writeMessage(field: 3, versionPolicy) }
        if maxBatchSize != 0 { writer.write(ProtoInt32.self, field: 4, maxBatchSize) }
        for value in input { writer.writeMessage(field: 5, value) }
        for value in output { writer.writeMessage(field: 6, value) }
        for value in instanceGroup { writer.writeMessage(field: 7, value) }
        if !defaultModelFilename.isEmpty { writer.writeString(field: 8, defaultModelFilename) }
        writer.writeMap(field: 9, ccModelFilenames)
        writer.writeMap(field: 10, metricTags)
        if case .dynamicBatching(let value)? = schedulingChoice { writer.writeMessage(field: 11, value) }
        if let optimization { writer.writeMessage(field: 12, optimization) }
        if case .sequenceBatching(let value)? = schedulingChoice { writer.writeMessage(field: 13, value) }
        writer.writeMap(field: 14, parameters)
        if case .ensembleScheduling(let value)? = schedulingChoice { writer.writeMessage(field: 15, value) }
        for value in modelWarmup { writer.writeMessage(field: 16, value) }
        if !backend.isEmpty { writer.writeString(field: 17, backend) }
        if let modelOperations { writer.writeMessage(field: 18, modelOperations) }
        if let modelTransactionPolicy { writer.writeMessage(field: 19, modelTransactionPolicy) }
        for value in batchInput { writer.writeMessage(field: 20, value) }
        for value in batchOutput { writer.writeMessage(field: 21, value) }
        if let modelRepositoryAgents { writer.writeMessage(field: 23, modelRepositoryAgents) }
        if let responseCache { writer.writeMessage(field: 24, responseCache) }
        if !runtime.isEmpty { writer.writeString(field: 25, runtime) }
        if let modelMetrics { writer.writeMessage(field: 26, modelMetrics) }
        unknownFields.encode(to: &writer)
    }
}

/// `inference.ModelParameter`: the value of one free-form backend parameter.
public struct ModelParameter: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name.
    public static let protoMessageName = "inference.ModelParameter"

    /// The value, as a string (backends parse it).
    public var stringValue: String = ""  // = 1
    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// A parameter with every field at its default.
    public init() {}

    /// A parameter holding `stringValue`.
    public init(stringValue: String) {
        self.stringValue = stringValue
    }

    /// Decodes one field whose tag has just been read.
    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: stringValue = try reader.readString(tag)
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    /// Appends the fields that differ from their defaults, in field-number order.
    public func encode(to writer: inout ProtoWriter) {
        if !stringValue.isEmpty { writer.writeString(field: 1, stringValue) }
        unknownFields.encode(to: &writer)
    }
}

/// `inference.ModelOperations`: custom operation libraries to load before the model.
public struct ModelOperations: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name.
    public static let protoMessageName = "inference.ModelOperations"

    /// The libraries' file names.
    public var opLibraryFilename: [String] = []  // = 1
    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// Operations with every field at its default.
    public init() {}

    /// Decodes one field whose tag has just been read.
    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: opLibraryFilename.append(try reader.readString(tag))
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    /// Appends the fields that differ from their defaults, in field-number order.
    public func encode(to writer: inout ProtoWriter) {
        for value in opLibraryFilename { writer.writeString(field: 1, value) }
        unknownFields.encode(to: &writer)
    }
}

/// `inference.ModelTransactionPolicy`: how requests and responses correspond.
public struct ModelTransactionPolicy: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name.
    public static let protoMessageName = "inference.ModelTransactionPolicy"

    /// True when the model is decoupled: it may send zero, one or many responses per request,
    /// in any order, and is served on ModelStreamInfer only.
    public var decoupled: Bool = false  // = 1
    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// A policy with every field at its default.
    public init() {}

    /// A policy with `decoupled` given.
    public init(decoupled: Bool) {
        self.decoupled = decoupled
    }

    /// Decodes one field whose tag has just been read.
    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: decoupled = try reader.read(ProtoBool.self, tag)
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    /// Appends the fields that differ from their defaults, in field-number order.
    public func encode(to writer: inout ProtoWriter) {
        if decoupled { writer.write(ProtoBool.self, field: 1, decoupled) }
        unknownFields.encode(to: &writer)
    }
}

/// `inference.ModelRepositoryAgents`: agents that run on the model's files when it loads
/// (e.g. decryption, conversion).
public struct ModelRepositoryAgents: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name.
    public static let protoMessageName = "inference.ModelRepositoryAgents"

    /// `inference.ModelRepositoryAgents.Agent`: one agent and its settings.
    public struct Agent: ProtoMessage, Hashable {
        /// The fully-qualified protobuf name.
        public static let protoMessageName = "inference.ModelRepositoryAgents.Agent"

        /// The agent's name.
        public var name: String = ""  // = 1
        /// Its settings, by name.
        public var parameters: [String: String] = [:]  // = 2
        /// Fields this build does not know, kept so that re-encoding loses nothing.
        public var unknownFields = UnknownFields()

        /// An agent with every field at its default.
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

    /// The agents, in the order they run.
    public var agents: [Agent] = []  // = 1
    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// Repository agents with every field at their default.
    public init() {}

    /// Decodes one field whose tag has just been read.
    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: agents.append(try reader.readMessage(tag))
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    /// Appends the fields that differ from their defaults, in field-number order.
    public func encode(to writer: inout ProtoWriter) {
        for value in agents { writer.writeMessage(field: 1, value) }
        unknownFields.encode(to: &writer)
    }
}

/// `inference.ModelResponseCache`: whether the server caches the model's responses.
public struct ModelResponseCache: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name.
    public static let protoMessageName = "inference.ModelResponseCache"

    /// True to cache responses.
    public var enable: Bool = false  // = 1
    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// Cache settings with every field at its default.
    public init() {}

    /// Cache settings with `enable` given.
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
