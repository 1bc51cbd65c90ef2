import NIOCore
import ProtoWire

/// `inference.ModelRateLimiter`: the resources an instance must hold before it runs a request,
/// and its scheduling priority among instances.
public struct ModelRateLimiter: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name.
    public static let protoMessageName = "inference.ModelRateLimiter"

    /// `inference.ModelRateLimiter.Resource`: one named resource and how many units are needed.
    public struct Resource: ProtoMessage, Hashable {
        /// The fully-qualified protobuf name.
        public static let protoMessageName = "inference.ModelRateLimiter.Resource"

        /// The resource's name.
        public var name: String = ""  // = 1
        /// True when the resource is shared by all devices; otherwise the count is per device.
        public var global: Bool = false  // = 2
        /// Units the instance needs.
        public var count: UInt32 = 0  // = 3
        /// Fields this build does not know, kept so that re-encoding loses nothing.
        public var unknownFields = UnknownFields()

        /// A resource with every field at its default.
        public init() {}

        /// Decodes one field whose tag has just been read.
        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: name = try reader.readString(tag)
            case 2: global = try reader.read(ProtoBool.self, tag)
            case 3: count = try reader.read(ProtoUInt32.self, tag)
            default: try reader.preserveUnknownField(tag, in: &unknownFields)
            }
        }

        /// Appends the fields that differ from their defaults, in field-number order.
        public func encode(to writer: inout ProtoWriter) {
            if !name.isEmpty { writer.writeString(field: 1, name) }
            if global { writer.write(ProtoBool.self, field: 2, global) }
            if count != 0 { writer.write(ProtoUInt32.self, field: 3, count) }
            unknownFields.encode(to: &writer)
        }
    }

    /// The resources required to run a request on an instance.
    public var resources: [Resource] = []  // = 1
    /// Relative weight among instances: priority 2 gets half the chances of priority 1; 0 means 1.
    public var priority: UInt32 = 0  // = 2
    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// A rate limiter with every field at its default.
    public init() {}

    /// Decodes one field whose tag has just been read.
    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: resources.append(try reader.readMessage(tag))
        case 2: priority = try reader.read(ProtoUInt32.self, tag)
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    /// Appends the fields that differ from their defaults, in field-number order.
    public func encode(to writer: inout ProtoWriter) {
        for value in resources { writer.writeMessage(field: 1, value) }
        if priority != 0 { writer.write(ProtoUInt32.self, field: 2, priority) }
        unknownFields.encode(to: &writer)
    }
}

/// `inference.ModelInstanceGroup`: a group of instances of a model, where they run and how many.
public struct ModelInstanceGroup: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name.
    public static let protoMessageName = "inference.ModelInstanceGroup"

    /// `inference.ModelInstanceGroup.Kind`: where the group's instances run.
    public enum Kind: RawRepresentable, Sendable, Hashable, CaseIterable {
        /// `KIND_AUTO`: on the listed GPUs when all are available, otherwise on CPU; the default.
        case auto  // = 0
        /// `KIND_GPU`: on GPU.
        case gpu  // = 1
        /// `KIND_CPU`: on CPU.
        case cpu  // = 2
        /// `KIND_MODEL`: wherever the model or backend itself decides.
        case model  // = 3
        /// A number this build does not know.
        case unrecognized(Int32)

        /// The known values, in number order.
        public static let allCases: [Kind] = [.auto, .gpu, .cpu, .model]

        /// The value for a wire number; a number not listed becomes `.unrecognized`.
        public init(rawValue: Int32) {
            switch rawValue {
            case 0: self = .auto
            case 1: self = .gpu
            case 2: self = .cpu
            case 3: self = .model
            default: self = .unrecognized(rawValue)
            }
        }

        /// The wire number.
        public var rawValue: Int32 {
            switch self {
            case .auto: 0
            case .gpu: 1
            case .cpu: 2
            case .model: 3
            case .unrecognized(let value): value
            }
        }
    }

    /// `inference.ModelInstanceGroup.SecondaryDevice`: another device an instance needs.
    public struct SecondaryDevice: ProtoMessage, Hashable {
        /// The fully-qualified protobuf name.
        public static let protoMessageName = "inference.ModelInstanceGroup.SecondaryDevice"

        /// `inference.ModelInstanceGroup.SecondaryDevice.SecondaryDeviceKind`.
        public enum SecondaryDeviceKind: RawRepresentable, Sendable, Hashable, CaseIterable {
            /// `KIND_NVDLA`: an NVDLA core (TensorRT only); the default.
            case nvdla  // = 0
            /// A number this build does not know.
            case unrecognized(Int32)

            /// The known values, in number order.
            public static let allCases: [SecondaryDeviceKind] = [.nvdla]

            /// The value for a wire number; a number not listed becomes `.unrecognized`.
            public init(rawValue: Int32) {
                switch rawValue {
                case 0: self = .nvdla
                default: self = .unrecognized(rawValue)
                }
            }

            /// The wire number.
            public var rawValue: Int32 {
                switch self {
                case .nvdla: 0
                case .unrecognized(let value): value
                }
            }
        }

        /// The device kind.
        public var kind: SecondaryDeviceKind = .nvdla  // = 1
        /// The device's identifier.
        public var deviceID: Int64 = 0  // = 2
        /// Fields this build does not know, kept so that re-encoding loses nothing.
        public var unknownFields = UnknownFields()

        /// A secondary device with every field at its default.
        public init() {}

        /// Decodes one field whose tag has just been read.
        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: kind = SecondaryDeviceKind(rawValue: try reader.read(ProtoEnum.self, tag))
            case 2: deviceID = try reader.read(ProtoInt64.self, tag)
            default: try reader.preserveUnknownField(tag, in: &unknownFields)
            }
        }

        /// Appends the fields that differ from their defaults, in field-number order.
        public func encode(to writer: inout ProtoWriter) {
            if kind.rawValue != 0 { writer.write(ProtoEnum.self, field: 1, kind.rawValue) }
            if deviceID != 0 { writer.write(ProtoInt64.self, field: 2, deviceID) }
            unknownFields.encode(to: &writer)
        }
    }

    /// The group's name; Triton makes one from the model name and group index when it is empty.
    public var name: String = ""  // = 1
    /// Where the instances run.
    public var kind: Kind = .auto  // = 4
    /// Instances per listed GPU, or in all for CPU; Triton treats 0 as 1.
    public var count: Int32 = 0  // = 2
    /// Rate limiter settings of the instances; nil when they are not rate-limited.
    public var rateLimiter: ModelRateLimiter?  // = 6
    /// GPUs to place instances on; empty means all available GPUs.
    public var gpus: [Int32] = []  // = 3
    /// Secondary devices every instance needs.
    public var secondaryDevices: [SecondaryDevice] = []  // = 8
    /// TensorRT optimization profiles the instances may use.
    public var profile: [String] = []  // = 5
    /// True when the instances are loaded but not given requests by the scheduler.
    public var passive: Bool = false  // = 7
    /// The host policy the instances are associated with.
    public var hostPolicy: String = ""  // = 9
    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// An instance group with every field at its default.
    public init() {}

    /// Decodes one field whose tag has just been read.
    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: name = try reader.readString(tag)
        case 2: count = try reader.read(ProtoInt32.self, tag)
        case 3: try reader.readRepeated(ProtoInt32.self, tag, into: &gpus)
        case 4: kind = Kind(rawValue: try reader.read(ProtoEnum.self, tag))
        case 5: profile.append(try reader.readString(tag))
        case 6:
            try reader.merge(tag, into: &rateLimiter)
        case 7: passive = try reader.read(ProtoBool.self, tag)
        case 8: secondaryDevices.append(try reader.readMessage(tag))
        case 9: hostPolicy = try reader.readString(tag)
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    /// Appends the fields that differ from their defaults, in field-number order.
    public func encode(to writer: inout ProtoWriter) {
        if !name.isEmpty { writer.writeString(field: 1, name) }
        if count != 0 { writer.write(ProtoInt32.self, field: 2, count) }
        writer.writePacked(ProtoInt32.self, field: 3, gpus)
        if kind.rawValue != 0 { writer.write(ProtoEnum.self, field: 4, kind.rawValue) }
        for value in profile { writer.writeString(field: 5, value) }
        if let rateLimiter { writer.writeMessage(field: 6, rateLimiter) }
        if passive { writer.write(ProtoBool.self, field: 7, passive) }
        for value in secondaryDevices { writer.writeMessage(field: 8, value) }
        if !hostPolicy.isEmpty { writer.writeString(field: 9, hostPolicy) }
        unknownFields.encode(to: &writer)
    }
}
