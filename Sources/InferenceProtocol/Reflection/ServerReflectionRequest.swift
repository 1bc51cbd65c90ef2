import NIOCore
import ProtoWire

/// `grpc.reflection.v1.ServerReflectionRequest`: one question on a `ServerReflectionInfo`
/// stream (list the services, or send the file descriptor that defines a file or symbol).
///
/// The same type serves `grpc.reflection.v1alpha.ServerReflectionRequest`: the two packages
/// have identical messages, field numbers and wire format, and the package name appears only
/// in the gRPC method path and in file descriptors, never in the encoded message. Every type in
/// this folder is shared the same way; `protoMessageName` gives the v1 name.
public struct ServerReflectionRequest: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name (v1; also used for v1alpha).
    public static let protoMessageName = "grpc.reflection.v1.ServerReflectionRequest"

    /// `oneof message_request`: what is asked.
    public enum MessageRequest: Sendable, Hashable {
        /// The descriptor of the file with this name, e.g. "inference/grpc_service.proto".
        case fileByFilename(String)  // = 3
        /// The descriptor of the file that defines this fully-qualified symbol.
        case fileContainingSymbol(String)  // = 4
        /// The descriptor of the file that defines this extension.
        case fileContainingExtension(ExtensionRequest)  // = 5
        /// The extension numbers of this fully-qualified message type.
        case allExtensionNumbersOfType(String)  // = 6
        /// The services; the content is not checked (clients send "" or "*").
        case listServices(String)  // = 7
    }

    /// The host the request is meant for, for servers that serve several virtual hosts.
    public var host: String = ""  // = 1
    /// What is asked; nil when none of the oneof's fields was set.
    public var messageRequest: MessageRequest?
    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// A request with every field at its default.
    public init() {}

    /// A request asking `messageRequest`.
    public init(host: String = "", _ messageRequest: MessageRequest) {
        self.host = host
        self.messageRequest = messageRequest
    }

    /// Decodes one field whose tag has just been read. A oneof message member that arrives
    /// again merges into the value it already holds, as protobuf specifies.
    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: host = try reader.readString(tag)
        case 3: messageRequest = .fileByFilename(try reader.readString(tag))
        case 4: messageRequest = .fileContainingSymbol(try reader.readString(tag))
        case 5:
            var value = ExtensionRequest()
            if case .fileContainingExtension(let current)? = messageRequest { value = current }
            messageRequest = nil  // `value` must hold the only reference, or merging copies it
            try reader.merge(tag, into: &value)
            messageRequest = .fileContainingExtension(value)
        case 6: messageRequest = .allExtensionNumbersOfType(try reader.readString(tag))
        case 7: messageRequest = .listServices(try reader.readString(tag))
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    /// Appends the fields that differ from their defaults (and the oneof member, always), in
    /// field-number order.
    public func encode(to writer: inout ProtoWriter) {
        if !host.isEmpty { writer.writeString(field: 1, host) }
        switch messageRequest {
        case .fileByFilename(let value): writer.writeString(field: 3, value)
        case .fileContainingSymbol(let value): writer.writeString(field: 4, value)
        case .fileContainingExtension(let value): writer.writeMessage(field: 5, value)
        case .allExtensionNumbersOfType(let value): writer.writeString(field: 6, value)
        case .listServices(let value): writer.writeString(field: 7, value)
        case nil: break
        }
        unknownFields.encode(to: &writer)
    }
}

/// `grpc.reflection.v1.ExtensionRequest`: an extension, named by the message it extends and
/// its field number. Also serves v1alpha (see `ServerReflectionRequest`).
public struct ExtensionRequest: ProtoMessage, Hashable {
    /// The fully-qualified protobuf name (v1; also used for v1alpha).
    public static let protoMessageName = "grpc.reflection.v1.ExtensionRequest"

    /// The fully-qualified name of the extended message type.
    public var containingType: String = ""  // = 1
    /// The extension's field number.
    public var extensionNumber: Int32 = 0  // = 2
    /// Fields this build does not know, kept so that re-encoding loses nothing.
    public var unknownFields = UnknownFields()

    /// A request with every field at its default.
    public init() {}

    /// A request for the extension `extensionNumber` of `containingType`.
    public init(containingType: String, extensionNumber: Int32) {
        self.containingType = containingType
        self.extensionNumber = extensionNumber
    }

    /// Decodes one field whose tag has just been read.
    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: containingType = try reader.readString(tag)
        case 2: extensionNumber = try reader.read(ProtoInt32.self, tag)
        default: try reader.preserveUnknownField(tag, in: &unknownFields)
        }
    }

    /// Appends the fields that differ from their defaults, in field-number order.
    public func encode(to writer: inout ProtoWriter) {
        if !containingType.isEmpty { writer.writeString(field: 1, containingType) }
        if extensionNumber != 0 { writer.write(ProtoInt32.self, field: 2, extensionNumber) }
        unknownFields.encode(to: &writer)
    }
}
