import NIOCore
import ProtoWire

/// `grpc.reflection.v1.ServerReflectionResponse`: the answer to one `ServerReflectionRequest`.
/// Also serves `grpc.reflection.v1alpha` (see `ServerReflectionRequest`).
public struct ServerReflectionResponse: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name (v1; also used for v1alpha).
    public static let protoMessageName = "grpc.reflection.v1.ServerReflectionResponse"

    /// `oneof message_response`: the answer.
    public enum MessageResponse: Sendable, Hashable {
        /// File descriptors, for `fileByFilename`, `fileContainingSymbol` and
        /// `fileContainingExtension`.
        case fileDescriptorResponse(FileDescriptorResponse)  // = 4
        /// Extension numbers, for `allExtensionNumbersOfType`.
        case allExtensionNumbersResponse(ExtensionNumberResponse)  // = 5
        /// The services, for `listServices`.
        case listServicesResponse(ListServiceResponse)  // = 6
        /// The request failed.
        case errorResponse(ErrorResponse)  // = 7
    }

    /// The host the answer is valid for.
    public var validHost: String = ""  // = 1
    /// The request this answers; nil when not set.
    public var originalRequest: ServerReflectionRequest?  // = 2
    /// The answer; nil when none of the oneof's fields was set.
    public var messageResponse: MessageResponse?
    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// A response with every field at its default.
    public init() {}

    /// A response answering `originalRequest` with `messageResponse`.
    public init(
        validHost: String = "", originalRequest: ServerReflectionRequest?, _ messageResponse: MessageResponse
    ) {
        self.validHost = validHost
        self.originalRequest = originalRequest
        self.messageResponse = messageResponse
    }

    /// Decodes one field whose tag has just been read. A oneof message member that arrives
    /// again merges into the value it already holds, as protobuf specifies.
    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: validHost = try reader.readString(tag)
        case 2:
            try reader.merge(tag, into: &originalRequest)
        case 4:
            var value = FileDescriptorResponse()
            if case .fileDescriptorResponse(let current)? = messageResponse { value = current }
            messageResponse = nil  // `value` must hold the only reference, or merging copies it
            try reader.merge(tag, into: &value)
            messageResponse = .fileDescriptorResponse(value)
        case 5:
            var value = ExtensionNumberResponse()
            if case .allExtensionNumbersResponse(let current)? = messageResponse { value = current }
            messageResponse = nil  // `value` must hold the only reference, or merging copies it
            try reader.merge(tag, into: &value)
            messageResponse = .allExtensionNumbersResponse(value)
        case 6:
            var value = ListServiceResponse()
            if case .listServicesResponse(let current)? = messageResponse { value = current }
            messageResponse = nil  // `value` must hold the only reference, or merging copies it
            try reader.merge(tag, into: &value)
            messageResponse = .listServicesResponse(value)
        case 7:
            var value = ErrorResponse()
            if case .errorResponse(let current)? = messageResponse { value = current }
            messageResponse = nil  // `value` must hold the only reference, or merging copies it
            try reader.merge(tag, into: &value)
            messageResponse = .errorResponse(value)
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    /// Appends the fields that differ from their defaults (and the oneof member, always), in
    /// field-number order.
    public func encode(to writer: inout ProtoWriter) {
        if !validHost.isEmpty { writer.writeString(field: 1, validHost) }
        if let originalRequest { writer.writeMessage(field: 2, originalRequest) }
        switch messageResponse {
        case .fileDescriptorResponse(let value): writer.writeMessage(field: 4, value)
        case .allExtensionNumbersResponse(let value): writer.writeMessage(field: 5, value)
        case .listServicesResponse(let value): writer.writeMessage(field: 6, value)
        case .errorResponse(let value): writer.writeMessage(field: 7, value)
        case nil: break
        }
        unknownFields.encode(to: &writer)
    }
}

/// `grpc.reflection.v1.FileDescriptorResponse`: serialized `google.protobuf.FileDescriptorProto`s,
/// the requested file first and then the files it depends on that the client may lack.
/// Also serves v1alpha.
public struct FileDescriptorResponse: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name (v1; also used for v1alpha).
    public static let protoMessageName = "grpc.reflection.v1.FileDescriptorResponse"

    /// The encoded descriptors; decoded ones are slices of the incoming buffer.
    public var fileDescriptorProto: [ByteBuffer] = []  // = 1
    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// A response with no descriptors.
    public init() {}

    /// A response carrying `fileDescriptorProto`.
    public init(fileDescriptorProto: [ByteBuffer]) {
        self.fileDescriptorProto = fileDescriptorProto
    }

    /// Decodes one field whose tag has just been read.
    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: fileDescriptorProto.append(try reader.readBytes(tag))
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    /// Appends every descriptor (an empty one too: a repeated element is always written).
    public func encode(to writer: inout ProtoWriter) {
        for value in fileDescriptorProto { writer.writeBytes(field: 1, value) }
        unknownFields.encode(to: &writer)
    }
}

/// `grpc.reflection.v1.ExtensionNumberResponse`: the extension numbers of a message type.
/// Also serves v1alpha.
public struct ExtensionNumberResponse: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name (v1; also used for v1alpha).
    public static let protoMessageName = "grpc.reflection.v1.ExtensionNumberResponse"

    /// The fully-qualified name of the message type, without a leading dot.
    public var baseTypeName: String = ""  // = 1
    /// Its extension numbers.
    public var extensionNumber: [Int32] = []  // = 2
    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// A response with every field at its default.
    public init() {}

    /// Decodes one field whose tag has just been read.
    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: baseTypeName = try reader.readString(tag)
        case 2: try reader.readRepeated(ProtoInt32.self, tag, into: &extensionNumber)
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    /// Appends the fields that differ from their defaults, in field-number order.
    public func encode(to writer: inout ProtoWriter) {
        if !baseTypeName.isEmpty { writer.writeString(field: 1, baseTypeName) }
        writer.writePacked(ProtoInt32.self, field: 2, extensionNumber)
        unknownFields.encode(to: &writer)
    }
}

/// `grpc.reflection.v1.ListServiceResponse`: the services the server exposes. Also serves
/// v1alpha.
public struct ListServiceResponse: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name (v1; also used for v1alpha).
    public static let protoMessageName = "grpc.reflection.v1.ListServiceResponse"

    /// The services.
    public var service: [ServiceResponse] = []  // = 1
    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// A response with no services.
    public init() {}

    /// A response listing `service`.
    public init(service: [ServiceResponse]) {
        self.service = service
    }

    /// Decodes one field whose tag has just been read.
    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: service.append(try reader.readMessage(tag))
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    /// Appends the fields that differ from their defaults, in field-number order.
    public func encode(to writer: inout ProtoWriter) {
        for value in service { writer.writeMessage(field: 1, value) }
        unknownFields.encode(to: &writer)
    }
}

/// `grpc.reflection.v1.ServiceResponse`: one service. Also serves v1alpha.
public struct ServiceResponse: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name (v1; also used for v1alpha).
    public static let protoMessageName = "grpc.reflection.v1.ServiceResponse"

    /// The service's fully-qualified name, e.g. "inference.GRPCInferenceService".
    public var name: String = ""  // = 1
    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// A service with every field at its default.
    public init() {}

    /// The service named `name`.
    public init(name: String) {
        self.name = name
    }

    /// Decodes one field whose tag has just been read.
    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: name = try reader.readString(tag)
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    /// Appends the fields that differ from their defaults, in field-number order.
    public func encode(to writer: inout ProtoWriter) {
        if !name.isEmpty { writer.writeString(field: 1, name) }
        unknownFields.encode(to: &writer)
    }
}

/// `grpc.reflection.v1.ErrorResponse`: why a reflection request failed, as a gRPC status code
/// and message. Also serves v1alpha.
public struct ErrorResponse: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name (v1; also used for v1alpha).
    public static let protoMessageName = "grpc.reflection.v1.ErrorResponse"

    /// The gRPC status code (e.g. 5 for NOT_FOUND).
    public var errorCode: Int32 = 0  // = 1
    /// The error message.
    public var errorMessage: String = ""  // = 2
    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// An error with every field at its default.
    public init() {}

    /// An error with a gRPC status code and message.
    public init(errorCode: Int32, errorMessage: String) {
        self.errorCode = errorCode
        self.errorMessage = errorMessage
    }

    /// Decodes one field whose tag has just been read.
    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: errorCode = try reader.read(ProtoInt32.self, tag)
        case 2: errorMessage = try reader.readString(tag)
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    /// Appends the fields that differ from their defaults, in field-number order.
    public func encode(to writer: inout ProtoWriter) {
        if errorCode != 0 { writer.write(ProtoInt32.self, field: 1, errorCode) }
        if !errorMessage.isEmpty { writer.writeString(field: 2, errorMessage) }
        unknownFields.encode(to: &writer)
    }
}
