import NIOCore
import ProtoWire

/// `inference.ModelVersionPolicy`: which versions of a model are served. With no choice set,
/// Triton serves the latest version only.
public struct ModelVersionPolicy: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name.
    public static let protoMessageName = "inference.ModelVersionPolicy"

    /// `inference.ModelVersionPolicy.Latest`: the newest `numVersions` versions.
    public struct Latest: ProtoMessage, Hashable {
        /// The fully-qualified protobuf name.
        public static let protoMessageName = "inference.ModelVersionPolicy.Latest"

        /// How many of the newest versions are served.
        public var numVersions: UInt32 = 0  // = 1
        /// Fields this build does not know, kept so that re-encoding loses nothing.
        public var unknownFields = UnknownFields()

        /// A policy with every field at its default.
        public init() {}

        /// The newest `numVersions` versions.
        public init(numVersions: UInt32) {
            self.numVersions = numVersions
        }

        /// Decodes one field whose tag has just been read.
        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: numVersions = try reader.read(ProtoUInt32.self, tag)
            default: try reader.preserveUnknownField(tag, in: &unknownFields)
            }
        }

        /// Appends the fields that differ from their defaults, in field-number order.
        public func encode(to writer: inout ProtoWriter) {
            if numVersions != 0 { writer.write(ProtoUInt32.self, field: 1, numVersions) }
            unknownFields.encode(to: &writer)
        }
    }

    /// `inference.ModelVersionPolicy.All`: every version found in the repository.
    public struct All: ProtoMessage, Hashable {
        /// The fully-qualified protobuf name.
        public static let protoMessageName = "inference.ModelVersionPolicy.All"

        /// Fields this build does not know, kept so that re-encoding loses nothing.
        public var unknownFields = UnknownFields()

        /// The policy (it has no fields).
        public init() {}

        /// Decodes one field whose tag has just been read (every field is unknown here).
        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            try reader.preserveUnknownField(tag, in: &unknownFields)
        }

        /// Appends the preserved unknown fields, if any.
        public func encode(to writer: inout ProtoWriter) {
            unknownFields.encode(to: &writer)
        }
    }

    /// `inference.ModelVersionPolicy.Specific`: exactly the listed versions.
    public struct Specific: ProtoMessage, Hashable {
        /// The fully-qualified protobuf name.
        public static let protoMessageName = "inference.ModelVersionPolicy.Specific"

        /// The versions served.
        public var versions: [Int64] = []  // = 1
        /// Fields this build does not know, kept so that re-encoding loses nothing.
        public var unknownFields = UnknownFields()

        /// A policy with every field at its default.
        public init() {}

        /// Exactly `versions`.
        public init(versions: [Int64]) {
            self.versions = versions
        }

        /// Decodes one field whose tag has just been read.
        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: try reader.readRepeated(ProtoInt64.self, tag, into: &versions)
            default: try reader.preserveUnknownField(tag, in: &unknownFields)
            }
        }

        /// Appends the fields that differ from their defaults, in field-number order.
        public func encode(to writer: inout ProtoWriter) {
            writer.writePacked(ProtoInt64.self, field: 1, versions)
            unknownFields.encode(to: &writer)
        }
    }

    /// `oneof policy_choice`.
    public enum PolicyChoice: Sendable, Hashable {
        /// The newest N versions.
        case latest(Latest)  // = 1
        /// Every version.
        case all(All)  // = 2
        /// The listed versions.
        case specific(Specific)  // = 3
    }

    /// The policy; nil when none of the oneof's fields was set.
    public var policyChoice: PolicyChoice?
    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// A version policy with no choice set.
    public init() {}

    /// A version policy with `policyChoice` set.
    public init(_ policyChoice: PolicyChoice) {
        self.policyChoice = policyChoice
    }

    /// Decodes one field whose tag has just been read. A oneof message member that arrives
    /// again merges into the value it already holds, as protobuf specifies.
    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1:
            var value = Latest()
            if case .latest(let current)? = policyChoice { value = current }
            policyChoice = nil  // `value` must hold the only reference, or merging copies it
            try reader.merge(tag, into: &value)
            policyChoice = .latest(value)
        case 2:
            var value = All()
            if case .all(let current)? = policyChoice { value = current }
            policyChoice = nil  // `value` must hold the only reference, or merging copies it
            try reader.merge(tag, into: &value)
            policyChoice = .all(value)
        case 3:
            var value = Specific()
            if case .specific(let current)? = policyChoice { value = current }
            policyChoice = nil  // `value` must hold the only reference, or merging copies it
            try reader.merge(tag, into: &value)
            policyChoice = .specific(value)
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    /// Appends the chosen member (written even when empty: that is its presence).
    public func encode(to writer: inout ProtoWriter) {
        switch policyChoice {
        case .latest(let value): writer.writeMessage(field: 1, value)
        case .all(let value): writer.writeMessage(field: 2, value)
        case .specific(let value): writer.writeMessage(field: 3, value)
        case nil: break
        }
        unknownFields.encode(to: &writer)
    }
}
