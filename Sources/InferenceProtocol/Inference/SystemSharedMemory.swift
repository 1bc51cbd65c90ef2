import NIOCore
import ProtoWire

/// `inference.SystemSharedMemoryStatusRequest`: asks for the status of one or all registered system shared-memory regions.
public struct SystemSharedMemoryStatusRequest: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.SystemSharedMemoryStatusRequest"

    /// Region name; empty means all regions.
    public var name: String = ""  // = 1

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: name = try reader.readString(tag)
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        if !name.isEmpty { writer.writeString(field: 1, name) }
    }
}

/// `inference.SystemSharedMemoryStatusResponse`: the registered system shared-memory regions.
public struct SystemSharedMemoryStatusResponse: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.SystemSharedMemoryStatusResponse"

    /// `inference.SystemSharedMemoryStatusResponse.RegionStatus`: one registered region.
    public struct RegionStatus: ProtoMessage, Hashable {
        public static let protoMessageName = "inference.SystemSharedMemoryStatusResponse.RegionStatus"

        /// Region name.
        public var name: String = ""  // = 1
        /// Shared-memory key.
        public var key: String = ""  // = 2
        /// Offset into the shared-memory object, bytes.
        public var offset: UInt64 = 0  // = 3
        /// Size, bytes.
        public var byteSize: UInt64 = 0  // = 4

        public init() {}

        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: name = try reader.readString(tag)
            case 2: key = try reader.readString(tag)
            case 3: offset = try reader.read(ProtoUInt64.self, tag)
            case 4: byteSize = try reader.read(ProtoUInt64.self, tag)
            default: try reader.skipField(tag)
            }
        }

        public func encode(to writer: inout ProtoWriter) {
            if !name.isEmpty { writer.writeString(field: 1, name) }
            if !key.isEmpty { writer.writeString(field: 2, key) }
            if offset != 0 { writer.write(ProtoUInt64.self, field: 3, offset) }
            if byteSize != 0 { writer.write(ProtoUInt64.self, field: 4, byteSize) }
        }
    }

    /// Regions by name.
    public var regions: [String: RegionStatus] = [:]  // = 1

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: try reader.readMapEntry(tag, into: &regions)
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        writer.writeMap(field: 1, regions)
    }
}

/// `inference.SystemSharedMemoryRegisterRequest`: asks to register a system shared-memory region.
public struct SystemSharedMemoryRegisterRequest: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.SystemSharedMemoryRegisterRequest"

    /// Region name.
    public var name: String = ""  // = 1
    /// Shared-memory key.
    public var key: String = ""  // = 2
    /// Offset into the shared-memory object, bytes.
    public var offset: UInt64 = 0  // = 3
    /// Size, bytes.
    public var byteSize: UInt64 = 0  // = 4

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: name = try reader.readString(tag)
        case 2: key = try reader.readString(tag)
        case 3: offset = try reader.read(ProtoUInt64.self, tag)
        case 4: byteSize = try reader.read(ProtoUInt64.self, tag)
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        if !name.isEmpty { writer.writeString(field: 1, name) }
        if !key.isEmpty { writer.writeString(field: 2, key) }
        if offset != 0 { writer.write(ProtoUInt64.self, field: 3, offset) }
        if byteSize != 0 { writer.write(ProtoUInt64.self, field: 4, byteSize) }
    }
}

/// `inference.SystemSharedMemoryRegisterResponse`: the region was registered. It has no fields.
public struct SystemSharedMemoryRegisterResponse: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.SystemSharedMemoryRegisterResponse"

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        try reader.skipField(tag)
    }

    public func encode(to writer: inout ProtoWriter) {}
}

/// `inference.SystemSharedMemoryUnregisterRequest`: asks to unregister one or all system shared-memory regions.
public struct SystemSharedMemoryUnregisterRequest: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.SystemSharedMemoryUnregisterRequest"

    /// Region name; empty means all regions.
    public var name: String = ""  // = 1

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: name = try reader.readString(tag)
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        if !name.isEmpty { writer.writeString(field: 1, name) }
    }
}

/// `inference.SystemSharedMemoryUnregisterResponse`: the region was unregistered. It has no fields.
public struct SystemSharedMemoryUnregisterResponse: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.SystemSharedMemoryUnregisterResponse"

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        try reader.skipField(tag)
    }

    public func encode(to writer: inout ProtoWriter) {}
}
