import NIOCore
import ProtoWire

/// `inference.ModelQueuePolicy`: how the dynamic batcher's queue treats waiting requests.
public struct ModelQueuePolicy: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name.
    public static let protoMessageName = "inference.ModelQueuePolicy"

    /// `inference.ModelQueuePolicy.TimeoutAction`: what happens to a request whose queue
    /// timeout expires.
    public enum TimeoutAction: RawRepresentable, Sendable, Hashable, CaseIterable {
        /// `REJECT`: the request fails; the default.
        case reject  // = 0
        /// `DELAY`: the request waits until no request without a timeout is queued.
        case delay  // = 1
        /// A number this build does not know.
        case unrecognized(Int32)

        /// The known values, in number order.
        public static let allCases: [TimeoutAction] = [.reject, .delay]

        /// The value for a wire number; a number not listed becomes `.unrecognized`.
        public init(rawValue: Int32) {
            switch rawValue {
            case 0: self = .reject
            case 1: self = .delay
            default: self = .unrecognized(rawValue)
            }
        }

        /// The wire number.
        public var rawValue: Int32 {
            switch self {
            case .reject: 0
            case .delay: 1
            case .unrecognized(let value): value
            }
        }
    }

    /// What happens when a request's timeout expires.
    public var timeoutAction: TimeoutAction = .reject  // = 1
    /// The queue timeout of a request that names none; 0 means no timeout.
    public var defaultTimeoutMicroseconds: UInt64 = 0  // = 2
    /// True when a request may set its own timeout.
    public var allowTimeoutOverride: Bool = false  // = 3
    /// The most requests the queue holds; 0 means unbounded.
    public var maxQueueSize: UInt32 = 0  // = 4
    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// A queue policy with every field at its default.
    public init() {}

    /// Decodes one field whose tag has just been read.
    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: timeoutAction = TimeoutAction(rawValue: try reader.read(ProtoEnum.self, tag))
        case 2: defaultTimeoutMicroseconds = try reader.read(ProtoUInt64.self, tag)
        case 3: allowTimeoutOverride = try reader.read(ProtoBool.self, tag)
        case 4: maxQueueSize = try reader.read(ProtoUInt32.self, tag)
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    /// Appends the fields that differ from their defaults, in field-number order.
    public func encode(to writer: inout ProtoWriter) {
        if timeoutAction.rawValue != 0 { writer.write(ProtoEnum.self, field: 1, timeoutAction.rawValue) }
        if defaultTimeoutMicroseconds != 0 { writer.write(ProtoUInt64.self, field: 2, defaultTimeoutMicroseconds) }
        if allowTimeoutOverride { writer.write(ProtoBool.self, field: 3, allowTimeoutOverride) }
        if maxQueueSize != 0 { writer.write(ProtoUInt32.self, field: 4, maxQueueSize) }
        unknownFields.encode(to: &writer)
    }
}

/// `inference.ModelDynamicBatching`: settings of the dynamic batcher, which combines requests
/// of stateless models into batches.
public struct ModelDynamicBatching: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name.
    public static let protoMessageName = "inference.ModelDynamicBatching"

    /// Batch sizes the batcher prefers to form.
    public var preferredBatchSize: [Int32] = []  // = 1
    /// The longest a request waits in the queue for a batch to fill.
    public var maxQueueDelayMicroseconds: UInt64 = 0  // = 2
    /// True when responses must leave in the order the requests arrived.
    public var preserveOrdering: Bool = false  // = 3
    /// The number of priority levels; 0 disables priorities.
    public var priorityLevels: UInt64 = 0  // = 4
    /// The priority level of a request that names none.
    public var defaultPriorityLevel: UInt64 = 0  // = 5
    /// The queue policy of levels without their own; nil when not set.
    public var defaultQueuePolicy: ModelQueuePolicy?  // = 6
    /// The queue policy of each priority level that has its own.
    public var priorityQueuePolicy: [UInt64: ModelQueuePolicy] = [:]  // = 7
    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// Dynamic batching with every field at its default.
    public init() {}

    /// Decodes one field whose tag has just been read.
    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: try reader.readRepeated(ProtoInt32.self, tag, into: &preferredBatchSize)
        case 2: maxQueueDelayMicroseconds = try reader.read(ProtoUInt64.self, tag)
        case 3: preserveOrdering = try reader.read(ProtoBool.self, tag)
        case 4: priorityLevels = try reader.read(ProtoUInt64.self, tag)
        case 5: defaultPriorityLevel = try reader.read(ProtoUInt64.self, tag)
        case 6:
            try reader.merge(tag, into: &defaultQueuePolicy)
        case 7:
            // A repeated key wins last, as protobuf specifies for maps.
            let entry = try reader.readMessage(tag, as: PriorityQueuePolicyEntry.self)
            priorityQueuePolicy[entry.key] = entry.value
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    /// Appends the fields that differ from their defaults, in field-number order; map entries
    /// go in ascending key order so the encoding is deterministic.
    public func encode(to writer: inout ProtoWriter) {
        writer.writePacked(ProtoInt32.self, field: 1, preferredBatchSize)
        if maxQueueDelayMicroseconds != 0 { writer.write(ProtoUInt64.self, field: 2, maxQueueDelayMicroseconds) }
        if preserveOrdering { writer.write(ProtoBool.self, field: 3, preserveOrdering) }
        if priorityLevels != 0 { writer.write(ProtoUInt64.self, field: 4, priorityLevels) }
        if defaultPriorityLevel != 0 { writer.write(ProtoUInt64.self, field: 5, defaultPriorityLevel) }
        if let defaultQueuePolicy { writer.writeMessage(field: 6, defaultQueuePolicy) }
        for key in priorityQueuePolicy.keys.sorted() {
            writer.writeMessage(field: 7, PriorityQueuePolicyEntry(key: key, value: priorityQueuePolicy[key]!))
        }
        unknownFields.encode(to: &writer)
    }
}

/// One entry of `map<uint64, ModelQueuePolicy> priority_queue_policy`, as the message protobuf
/// synthesizes for it (`key = 1`, `value = 2`). ProtoWire's map helpers take string keys only;
/// going through `readMessage`/`writeMessage` keeps its depth and length checks.
private struct PriorityQueuePolicyEntry: ProtoMessage, Hashable {
    static let protoMessageName = "inference.ModelDynamicBatching.PriorityQueuePolicyEntry"

    var key: UInt64 = 0  // = 1
    /// A missing value is the default policy, as protobuf specifies for map entries.
    var value = ModelQueuePolicy()  // = 2

    init() {}

    init(key: UInt64, value: ModelQueuePolicy) {
        self.key = key
        self.value = value
    }

    mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: key = try reader.read(ProtoUInt64.self, tag)
        case 2: try reader.merge(tag, into: &value)
        default: try reader.skipField(tag)
        }
    }

    func encode(to writer: inout ProtoWriter) {
        if key != 0 { writer.write(ProtoUInt64.self, field: 1, key) }
        writer.writeMessage(field: 2, value)
    }
}

/// `inference.ModelSequenceBatching`: settings of the sequence batcher, which routes every
/// request of a sequence (a stateful conversation) to the same model instance.
public struct ModelSequenceBatching: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name.
    public static let protoMessageName = "inference.ModelSequenceBatching"

    /// `inference.ModelSequenceBatching.Control`: one control signal and the values that carry
    /// false and true for it.
    public struct Control: ProtoMessage, Hashable {
        /// The fully-qualified protobuf name.
        public static let protoMessageName = "inference.ModelSequenceBatching.Control"

        /// `inference.ModelSequenceBatching.Control.Kind`: the signal.
        public enum Kind: RawRepresentable, Sendable, Hashable, CaseIterable {
            /// `CONTROL_SEQUENCE_START`: the request starts a sequence; the default.
            case controlSequenceStart  // = 0
            /// `CONTROL_SEQUENCE_READY`: the request carries input for its sequence.
            case controlSequenceReady  // = 1
            /// `CONTROL_SEQUENCE_END`: the request ends its sequence.
            case controlSequenceEnd  // = 2
            /// `CONTROL_SEQUENCE_CORRID`: the input carries the sequence's correlation id.
            case controlSequenceCorrid  // = 3
            /// A number this build does not know.
            case unrecognized(Int32)

            /// The known values, in number order.
            public static let allCases: [Kind] = [
                .controlSequenceStart, .controlSequenceReady, .controlSequenceEnd, .controlSequenceCorrid,
            ]

            /// The value for a wire number; a number not listed becomes `.unrecognized`.
            public init(rawValue: Int32) {
                switch rawValue {
                case 0: self = .controlSequenceStart
                case 1: self = .controlSequenceReady
                case 2: self = .controlSequenceEnd
                case 3: self = .controlSequenceCorrid
                default: self = .unrecognized(rawValue)
                }
            }

            /// The wire number.
            public var rawValue: Int32 {
                switch self {
                case .controlSequenceStart: 0
                case .controlSequenceReady: 1
                case .controlSequenceEnd: 2
                case .controlSequenceCorrid: 3
                case .unrecognized(let value): value
                }
            }
        }

        /// The signal.
        public var kind: Kind = .controlSequenceStart  // = 1
        /// The int32 values for false and true, in that order.
        public var int32FalseTrue: [Int32] = []  // = 2
        /// The fp32 values for false and true, in that order.
        public var fp32FalseTrue: [Float] = []  // = 3
        /// The bool values for false and true, in that order.
        public var boolFalseTrue: [Bool] = []  // = 5
        /// The element type of the CONTROL_SEQUENCE_CORRID input.
        public var dataType: DataType = .invalid  // = 4
        /// Fields this build does not know, kept so that re-encoding loses nothing.
        public var unknownFields = UnknownFields()

        /// A control with every field at its default.
        public init() {}

        /// Decodes one field whose tag has just been read.
        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: kind = Kind(rawValue: try reader.read(ProtoEnum.self, tag))
            case 2: try reader.readRepeated(ProtoInt32.self, tag, into: &int32FalseTrue)
            case 3: try reader.readRepeated(ProtoFloat.self, tag, into: &fp32FalseTrue)
            case 4: dataType = DataType(rawValue: try reader.read(ProtoEnum.self, tag))
            case 5: try reader.readRepeated(ProtoBool.self, tag, into: &boolFalseTrue)
            default: try reader.preserveUnknownField(tag, in: &unknownFields)
            }
        }

        /// Appends the fields that differ from their defaults, in field-number order.
        public func encode(to writer: inout ProtoWriter) {
            if kind.rawValue != 0 { writer.write(ProtoEnum.self, field: 1, kind.rawValue) }
            writer.writePacked(ProtoInt32.self, field: 2, int32FalseTrue)
            writer.writePacked(ProtoFloat.self, field: 3, fp32FalseTrue)
            if dataType.rawValue != 0 { writer.write(ProtoEnum.self, field: 4, dataType.rawValue) }
            writer.writePacked(ProtoBool.self, field: 5, boolFalseTrue)
            unknownFields.encode(to: &writer)
        }
    }

    /// `inference.ModelSequenceBatching.ControlInput`: a model input that carries control signals.
    public struct ControlInput: ProtoMessage, Hashable {
        /// The fully-qualified protobuf name.
        public static let protoMessageName = "inference.ModelSequenceBatching.ControlInput"

        /// The input's name.
        public var name: String = ""  // = 1
        /// The signals it carries.
        public var control: [Control] = []  // = 2
        /// Fields this build does not know, kept so that re-encoding loses nothing.
        public var unknownFields = UnknownFields()

        /// A control input with every field at its default.
        public init() {}

        /// Decodes one field whose tag has just been read.
        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: name = try reader.readString(tag)
            case 2: control.append(try reader.readMessage(tag))
            default: try reader.preserveUnknownField(tag, in: &unknownFields)
            }
        }

        /// Appends the fields that differ from their defaults, in field-number order.
        public func encode(to writer: inout ProtoWriter) {
            if !name.isEmpty { writer.writeString(field: 1, name) }
            for value in control { writer.writeMessage(field: 2, value) }
            unknownFields.encode(to: &writer)
        }
    }

    /// `inference.ModelSequenceBatching.InitialState`: the value an implicit state starts with.
    public struct InitialState: ProtoMessage, Hashable {
        /// The fully-qualified protobuf name.
        public static let protoMessageName = "inference.ModelSequenceBatching.InitialState"

        /// `oneof state_data`.
        public enum StateData: Sendable, Hashable {
            /// All zeros.
            case zeroData(Bool)  // = 3
            /// The contents of a file in the model directory's `initial_state` folder.
            case dataFile(String)  // = 4
        }

        /// The element type.
        public var dataType: DataType = .invalid  // = 1
        /// The shape.
        public var dims: [Int64] = []  // = 2
        /// Where the data comes from; nil when none of the oneof's fields was set.
        public var stateData: StateData?
        /// The initial state's name.
        public var name: String = ""  // = 5
        /// Fields this build does not know, kept so that re-encoding loses nothing.
        public var unknownFields = UnknownFields()

        /// An initial state with every field at its default.
        public init() {}

        /// Decodes one field whose tag has just been read.
        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: dataType = DataType(rawValue: try reader.read(ProtoEnum.self, tag))
            case 2: try reader.readRepeated(ProtoInt64.self, tag, into: &dims)
            case 3: stateData = .zeroData(try reader.read(ProtoBool.self, tag))
            case 4: stateData = .dataFile(try reader.readString(tag))
            case 5: name = try reader.readString(tag)
            default: try reader.preserveUnknownField(tag, in: &unknownFields)
            }
        }

        /// Appends the fields that differ from their defaults (and the oneof member, always),
        /// in field-number order.
        public func encode(to writer: inout ProtoWriter) {
            if dataType.rawValue != 0 { writer.write(ProtoEnum.self, field: 1, dataType.rawValue) }
            writer.writePacked(ProtoInt64.self, field: 2, dims)
            switch stateData {
            case .zeroData(let value): writer.write(ProtoBool.self, field: 3, value)
            case .dataFile(let value): writer.writeString(field: 4, value)
            case nil: break
            }
            if !name.isEmpty { writer.writeString(field: 5, name) }
            unknownFields.encode(to: &writer)
        }
    }

    /// `inference.ModelSequenceBatching.State`: an implicit state, an output the batcher feeds
    /// back as an input on the sequence's next request.
    public struct State: ProtoMessage, Hashable {
        /// The fully-qualified protobuf name.
        public static let protoMessageName = "inference.ModelSequenceBatching.State"

        /// The model input that receives the state.
        public var inputName: String = ""  // = 1
        /// The model output that produces it.
        public var outputName: String = ""  // = 2
        /// The element type.
        public var dataType: DataType = .invalid  // = 3
        /// The shape.
        public var dims: [Int64] = []  // = 4
        /// The values the state starts with.
        public var initialState: [InitialState] = []  // = 5
        /// True to use one buffer for the state's input and output.
        public var useSameBufferForInputOutput: Bool = false  // = 6
        /// True to let the state's buffer grow as the sequence goes on.
        public var useGrowableMemory: Bool = false  // = 7
        /// Fields this build does not know, kept so that re-encoding loses nothing.
        public var unknownFields = UnknownFields()

        /// A state with every field at its default.
        public init() {}

        /// Decodes one field whose tag has just been read.
        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: inputName = try reader.readString(tag)
            case 2: outputName = try reader.readString(tag)
            case 3: dataType = DataType(rawValue: try reader.read(ProtoEnum.self, tag))
            case 4: try reader.readRepeated(ProtoInt64.self, tag, into: &dims)
            case 5: initialState.append(try reader.readMessage(tag))
            case 6: useSameBufferForInputOutput = try reader.read(ProtoBool.self, tag)
            case 7: useGrowableMemory = try reader.read(ProtoBool.self, tag)
            default: try reader.preserveUnknownField(tag, in: &unknownFields)
            }
        }

        /// Appends the fields that differ from their defaults, in field-number order.
        public func encode(to writer: inout ProtoWriter) {
            if !inputName.isEmpty { writer.writeString(field: 1, inputName) }
            if !outputName.isEmpty { writer.writeString(field: 2, outputName) }
            if dataType.rawValue != 0 { writer.write(ProtoEnum.self, field: 3, dataType.rawValue) }
            writer.writePacked(ProtoInt64.self, field: 4, dims)
            for value in initialState { writer.writeMessage(field: 5, value) }
            if useSameBufferForInputOutput { writer.write(ProtoBool.self, field: 6, useSameBufferForInputOutput) }
            if useGrowableMemory { writer.write(ProtoBool.self, field: 7, useGrowableMemory) }
            unknownFields.encode(to: &writer)
        }
    }

    /// `inference.ModelSequenceBatching.StrategyDirect`: each sequence owns a batch slot until
    /// it ends.
    public struct StrategyDirect: ProtoMessage, Hashable {
        /// The fully-qualified protobuf name.
        public static let protoMessageName = "inference.ModelSequenceBatching.StrategyDirect"

        /// The longest the batcher waits for more slots to be filled.
        public var maxQueueDelayMicroseconds: UInt64 = 0  // = 1
        /// The fraction of slots that must be ready before a batch runs early (0 to 1).
        public var minimumSlotUtilization: Float = 0  // = 2
        /// Fields this build does not know, kept so that re-encoding loses nothing.
        public var unknownFields = UnknownFields()

        /// A direct strategy with every field at its default.
        public init() {}

        /// Decodes one field whose tag has just been read.
        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: maxQueueDelayMicroseconds = try reader.read(ProtoUInt64.self, tag)
            case 2: minimumSlotUtilization = try reader.read(ProtoFloat.self, tag)
            default: try reader.preserveUnknownField(tag, in: &unknownFields)
            }
        }

        /// Appends the fields that differ from their defaults, in field-number order.
        public func encode(to writer: inout ProtoWriter) {
            if maxQueueDelayMicroseconds != 0 { writer.write(ProtoUInt64.self, field: 1, maxQueueDelayMicroseconds) }
            // By bit pattern, as protoc does: -0.0 is not the default and is written.
            if minimumSlotUtilization.bitPattern != 0 {
                writer.write(ProtoFloat.self, field: 2, minimumSlotUtilization)
            }
            unknownFields.encode(to: &writer)
        }
    }

    /// `inference.ModelSequenceBatching.StrategyOldest`: the oldest sequences' requests are
    /// batched dynamically.
    public struct StrategyOldest: ProtoMessage, Hashable {
        /// The fully-qualified protobuf name.
        public static let protoMessageName = "inference.ModelSequenceBatching.StrategyOldest"

        /// How many sequences may be candidates for a batch at once.
        public var maxCandidateSequences: Int32 = 0  // = 1
        /// Batch sizes the batcher prefers to form.
        public var preferredBatchSize: [Int32] = []  // = 2
        /// The longest a request waits for a batch to fill.
        public var maxQueueDelayMicroseconds: UInt64 = 0  // = 3
        /// True when responses must leave in the order the requests arrived.
        public var preserveOrdering: Bool = false  // = 4
        /// Fields this build does not know, kept so that re-encoding loses nothing.
        public var unknownFields = UnknownFields()

        /// An oldest strategy with every field at its default.
        public init() {}

        /// Decodes one field whose tag has just been read.
        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: maxCandidateSequences = try reader.read(ProtoInt32.self, tag)
            case 2: try reader.readRepeated(ProtoInt32.self, tag, into: &preferredBatchSize)
            case 3: maxQueueDelayMicroseconds = try reader.read(ProtoUInt64.self, tag)
            case 4: preserveOrdering = try reader.read(ProtoBool.self, tag)
            default: try reader.preserveUnknownField(tag, in: &unknownFields)
            }
        }

        /// Appends the fields that differ from their defaults, in field-number order.
        public func encode(to writer: inout ProtoWriter) {
            if maxCandidateSequences != 0 { writer.write(ProtoInt32.self, field: 1, maxCandidateSequences) }
            writer.writePacked(ProtoInt32.self, field: 2, preferredBatchSize)
            if maxQueueDelayMicroseconds != 0 { writer.write(ProtoUInt64.self, field: 3, maxQueueDelayMicroseconds) }
            if preserveOrdering { writer.write(ProtoBool.self, field: 4, preserveOrdering) }
            unknownFields.encode(to: &writer)
        }
    }

    /// `oneof strategy_choice`.
    public enum StrategyChoice: Sendable, Hashable {
        /// One slot per sequence.
        case direct(StrategyDirect)  // = 3
        /// Dynamic batching across the oldest sequences.
        case oldest(StrategyOldest)  // = 4
    }

    /// The scheduling strategy; nil when none of the oneof's fields was set (Triton then uses
    /// the direct strategy).
    public var strategyChoice: StrategyChoice?
    /// How long a sequence may go without a request before it is ended.
    public var maxSequenceIdleMicroseconds: UInt64 = 0  // = 1
    /// The inputs that carry control signals.
    public var controlInput: [ControlInput] = []  // = 2
    /// The implicit states.
    public var state: [State] = []  // = 5
    /// True when the model is iterated on the same sequence until it ends (e.g. generation).
    public var iterativeSequence: Bool = false  // = 6
    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// Sequence batching with every field at its default.
    public init() {}

    /// Decodes one field whose tag has just been read. A oneof message member that arrives
    /// again merges into the value it already holds, as protobuf specifies.
    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: maxSequenceIdleMicroseconds = try reader.read(ProtoUInt64.self, tag)
        case 2: controlInput.append(try reader.readMessage(tag))
        case 3:
            var value = StrategyDirect()
            if case .direct(let current)? = strategyChoice { value = current }
            strategyChoice = nil  // `value` must hold the only reference, or merging copies it
            try reader.merge(tag, into: &value)
            strategyChoice = .direct(value)
        case 4:
            var value = StrategyOldest()
            if case .oldest(let current)? = strategyChoice { value = current }
            strategyChoice = nil  // `value` must hold the only reference, or merging copies it
            try reader.merge(tag, into: &value)
            strategyChoice = .oldest(value)
        case 5: state.append(try reader.readMessage(tag))
        case 6: iterativeSequence = try reader.read(ProtoBool.self, tag)
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    /// Appends the fields that differ from their defaults (and the oneof member, always), in
    /// field-number order.
    public func encode(to writer: inout ProtoWriter) {
        if maxSequenceIdleMicroseconds != 0 { writer.write(ProtoUInt64.self, field: 1, maxSequenceIdleMicroseconds) }
        for value in controlInput { writer.writeMessage(field: 2, value) }
        switch strategyChoice {
        case .direct(let value): writer.writeMessage(field: 3, value)
        case .oldest(let value): writer.writeMessage(field: 4, value)
        case nil: break
        }
        for value in state { writer.writeMessage(field: 5, value) }
        if iterativeSequence { writer.write(ProtoBool.self, field: 6, iterativeSequence) }
        unknownFields.encode(to: &writer)
    }
}
