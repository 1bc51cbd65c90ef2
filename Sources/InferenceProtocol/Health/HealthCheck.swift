import NIOCore
import ProtoWire

/// `grpc.health.v1.HealthCheckRequest`: the argument of `Health/Check` and `Health/Watch`.
public struct HealthCheckRequest: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name.
    public static let protoMessageName = "grpc.health.v1.HealthCheckRequest"

    /// The service asked about, e.g. "inference.GRPCInferenceService"; empty asks about the
    /// server as a whole.
    public var service: String = ""  // = 1
    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// A request about the whole server.
    public init() {}

    /// A request about `service`.
    public init(service: String) {
        self.service = service
    }

    /// Decodes one field whose tag has just been read.
    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: service = try reader.readString(tag)
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    /// Appends the fields that differ from their defaults, in field-number order.
    public func encode(to writer: inout ProtoWriter) {
        if !service.isEmpty { writer.writeString(field: 1, service) }
        unknownFields.encode(to: &writer)
    }
}

/// `grpc.health.v1.HealthCheckResponse`: a service's serving status, the answer of
/// `Health/Check` and each message of `Health/Watch`.
public struct HealthCheckResponse: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name.
    public static let protoMessageName = "grpc.health.v1.HealthCheckResponse"

    /// `grpc.health.v1.HealthCheckResponse.ServingStatus`. Cases are the proto value names in
    /// lowerCamelCase; `unrecognized` keeps a number this build does not know, and equality goes
    /// by `rawValue`.
    public enum ServingStatus: RawRepresentable, Sendable, Hashable, CaseIterable {
        /// `UNKNOWN`: the default.
        case unknown  // = 0
        /// `SERVING`.
        case serving  // = 1
        /// `NOT_SERVING`.
        case notServing  // = 2
        /// `SERVICE_UNKNOWN`: sent only by Watch, for a service the server does not know.
        case serviceUnknown  // = 3
        /// A number this build does not know.
        case unrecognized(Int32)

        /// The known values, in number order.
        public static let allCases: [ServingStatus] = [.unknown, .serving, .notServing, .serviceUnknown]

        /// The value for a wire number; a number not listed becomes `.unrecognized`.
        public init(rawValue: Int32) {
            switch rawValue {
            case 0: self = .unknown
            case 1: self = .serving
            case 2: self = .notServing
            case 3: self = .serviceUnknown
            default: self = .unrecognized(rawValue)
            }
        }

        /// The wire number.
        public var rawValue: Int32 {
            switch self {
            case .unknown: 0
            case .serving: 1
            case .notServing: 2
            case .serviceUnknown: 3
            case .unrecognized(let value): value
            }
        }
    }

    /// The status.
    public var status: ServingStatus = .unknown  // = 1
    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// A response with status `.unknown`.
    public init() {}

    /// A response with `status`.
    public init(status: ServingStatus) {
        self.status = status
    }

    /// Decodes one field whose tag has just been read.
    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: status = ServingStatus(rawValue: try reader.read(ProtoEnum.self, tag))
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    /// Appends the fields that differ from their defaults, in field-number order.
    public func encode(to writer: inout ProtoWriter) {
        if status.rawValue != 0 { writer.write(ProtoEnum.self, field: 1, status.rawValue) }
        unknownFields.encode(to: &writer)
    }
}

/// `grpc.health.v1.HealthListRequest`: the (empty) argument of `Health/List`.
public struct HealthListRequest: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name.
    public static let protoMessageName = "grpc.health.v1.HealthListRequest"

    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// The request (it has no fields).
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

/// `grpc.health.v1.HealthListResponse`: the answer of `Health/List`, every known service with
/// its status.
public struct HealthListResponse: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name.
    public static let protoMessageName = "grpc.health.v1.HealthListResponse"

    /// The status of each service, by service name ("" is the server as a whole).
    public var statuses: [String: HealthCheckResponse] = [:]  // = 1
    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// A response with no services.
    public init() {}

    /// Decodes one field whose tag has just been read.
    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: try reader.readMapEntry(tag, into: &statuses)
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    /// Appends the map entries in sorted key order, so the encoding is deterministic.
    public func encode(to writer: inout ProtoWriter) {
        writer.writeMap(field: 1, statuses)
        unknownFields.encode(to: &writer)
    }
}
