import NIOCore

/// The messages and enums of a set of .proto files, read from their serialized
/// `FileDescriptorProto`s: enough to translate protobuf text format (Triton's `config.pbtxt`)
/// into the wire format, which the hand-written decoders then read.
public struct ProtoSchema: Sendable {
    public struct Field: Sendable {
        public enum Kind: Int, Sendable {
            case double = 1, float = 2, int64 = 3, uint64 = 4, int32 = 5, fixed64 = 6, fixed32 = 7, bool = 8, string = 9
            case group = 10, message = 11, bytes = 12, uint32 = 13, enumeration = 14, sfixed32 = 15, sfixed64 = 16, sint32 = 17, sint64 = 18
        }

        public var name: String
        public var number: Int
        public var kind: Kind
        public var isRepeated: Bool
        /// The full name of a message or enum field's type, without the leading dot.
        public var typeName: String
    }

    public struct Message: Sendable {
        public var name: String
        public var fields: [String: Field]
    }

    public private(set) var messages: [String: Message] = [:]
    /// Enum values by enum full name, then value name.
    public private(set) var enums: [String: [String: Int32]] = [:]

    public init() {}

    /// Adds the messages and enums of one serialized `FileDescriptorProto`.
    public mutating func add(fileDescriptor bytes: [UInt8]) throws {
        var reader = try ProtoReader(buffer: ByteBuffer(bytes: bytes))
        var package = ""
        var messageBodies: [ByteBuffer] = []
        var enumBodies: [ByteBuffer] = []
        while let tag = try reader.nextTag() {
            switch tag.fieldNumber {
            case 2: package = try reader.readString(tag)
            case 4: messageBodies.append(try reader.readBytes(tag))
            case 5: enumBodies.append(try reader.readBytes(tag))
            default: try reader.skipField(tag)
            }
        }
        let prefix = package.isEmpty ? "" : package + "."
        for body in enumBodies { try addEnum(body, prefix: prefix) }
        for body in messageBodies { try addMessage(body, prefix: prefix) }
    }

    private mutating func addEnum(_ body: ByteBuffer, prefix: String) throws {
        var reader = try ProtoReader(buffer: body)
        var name = ""
        var values: [String: Int32] = [:]
        while let tag = try reader.nextTag() {
            switch tag.fieldNumber {
            case 1: name = try reader.readString(tag)
            case 2:
                var value = try ProtoReader(buffer: try reader.readBytes(tag))
                var valueName = ""
                var number: Int32 = 0
                while let valueTag = try value.nextTag() {
                    switch valueTag.fieldNumber {
                    case 1: valueName = try value.readString(valueTag)
                    case 2: number = try value.read(ProtoInt32.self, valueTag)
                    default: try value.skipField(valueTag)
                    }
                }
                values[valueName] = number
            default: try reader.skipField(tag)
            }
        }
        enums[prefix + name] = values
    }

    private mutating func addMessage(_ body: ByteBuffer, prefix: String) throws {
        var reader = try ProtoReader(buffer: body)
        var name = ""
        var fieldBodies: [ByteBuffer] = []
        var nested: [ByteBuffer] = []
        var nestedEnums: [ByteBuffer] = []
        while let tag = try reader.nextTag() {
            switch tag.fieldNumber {
            case 1: name = try reader.readString(tag)
            case 2: fieldBodies.append(try reader.readBytes(tag))
            case 3: nested.append(try reader.readBytes(tag))
            case 4: nestedEnums.append(try reader.readBytes(tag))
            default: try reader.skipField(tag)
            }
        }
        let fullName = prefix + name
        var fields: [String: Field] = [:]
        for body in fieldBodies {
            var field = try ProtoReader(buffer: body)
            var entry = Field(name: "", number: 0, kind: .int32, isRepeated: false, typeName: "")
            while let tag = try field.nextTag() {
                switch tag.fieldNumber {
                case 1: entry.name = try field.readString(tag)
                case 3: entry.number = Int(try field.read(ProtoInt32.self, tag))
                case 4: entry.isRepeated = try field.read(ProtoInt32.self, tag) == 3
                case 5: entry.kind = Field.Kind(rawValue: Int(try field.read(ProtoInt32.self, tag))) ?? .int32
                case 6: entry.typeName = String(try field.readString(tag).drop { $0 == "." })
                default: try field.skipField(tag)
                }
            }
            fields[entry.name] = entry
        }
        messages[fullName] = Message(name: fullName, fields: fields)
        for body in nestedEnums { try addEnum(body, prefix: fullName + ".") }
        for body in nested { try addMessage(body, prefix: fullName + ".") }
    }
}
