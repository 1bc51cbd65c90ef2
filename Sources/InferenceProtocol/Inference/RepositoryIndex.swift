import NIOCore
import ProtoWire

/// `inference.RepositoryIndexRequest`: asks for the index of one or all model repositories.
public struct RepositoryIndexRequest: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.RepositoryIndexRequest"

    /// Repository name; empty means all repositories.
    public var repositoryName: String = ""  // = 1
    /// Only list models that are ready.
    public var ready: Bool = false  // = 2

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: repositoryName = try reader.readString(tag)
        case 2: ready = try reader.read(ProtoBool.self, tag)
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        if !repositoryName.isEmpty { writer.writeString(field: 1, repositoryName) }
        if ready { writer.write(ProtoBool.self, field: 2, ready) }
    }
}

/// `inference.RepositoryIndexResponse`: the models (versions) in the repository index.
public struct RepositoryIndexResponse: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.RepositoryIndexResponse"

    /// `inference.RepositoryIndexResponse.ModelIndex`: one model (version) and its state.
    public struct ModelIndex: ProtoMessage, Hashable {
        public static let protoMessageName = "inference.RepositoryIndexResponse.ModelIndex"

        /// Model name.
        public var name: String = ""  // = 1
        /// Model version.
        public var version: String = ""  // = 2
        /// Model state ("READY", "UNAVAILABLE", ...).
        public var state: String = ""  // = 3
        /// Reason for the state, if any.
        public var reason: String = ""  // = 4

        public init() {}

        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: name = try reader.readString(tag)
            case 2: version = try reader.readString(tag)
            case 3: state = try reader.readString(tag)
            case 4: reason = try reader.readString(tag)
            default: try reader.skipField(tag)
            }
        }

        public func encode(to writer: inout ProtoWriter) {
            if !name.isEmpty { writer.writeString(field: 1, name) }
            if !version.isEmpty { writer.writeString(field: 2, version) }
            if !state.isEmpty { writer.writeString(field: 3, state) }
            if !reason.isEmpty { writer.writeString(field: 4, reason) }
        }
    }

    /// The models.
    public var models: [ModelIndex] = []  // = 1

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: models.append(try reader.readMessage(tag))
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        for value in models { writer.writeMessage(field: 1, value) }
    }
}
