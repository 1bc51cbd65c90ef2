import NIOCore
import ProtoWire

/// `inference.RepositoryModelUnloadRequest`: asks to unload a model.
public struct RepositoryModelUnloadRequest: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.RepositoryModelUnloadRequest"

    /// Repository name; empty means all repositories.
    public var repositoryName: String = ""  // = 1
    /// Model to unload.
    public var modelName: String = ""  // = 2
    /// Optional parameters ("unload_dependents", ...).
    public var parameters: [String: ModelRepositoryParameter] = [:]  // = 3

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: repositoryName = try reader.readString(tag)
        case 2: modelName = try reader.readString(tag)
        case 3: try reader.readMapEntry(tag, into: &parameters)
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        if !repositoryName.isEmpty { writer.writeString(field: 1, repositoryName) }
        if !modelName.isEmpty { writer.writeString(field: 2, modelName) }
        writer.writeMap(field: 3, parameters)
    }
}

/// `inference.RepositoryModelUnloadResponse`: the unload succeeded. It has no fields.
public struct RepositoryModelUnloadResponse: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.RepositoryModelUnloadResponse"

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        try reader.skipField(tag)
    }

    public func encode(to writer: inout ProtoWriter) {}
}
