import NIOCore
import ProtoWire

/// `inference.CudaSharedMemoryStatusRequest`: asks for the status of one or all registered CUDA shared-memory regions.
public struct CudaSharedMemoryStatusRequest: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.CudaSharedMemoryStatusRequest"

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

/// `inference.CudaSharedMemoryStatusResponse`: the registered CUDA shared-memory regions.
public struct CudaSharedMemoryStatusResponse: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.CudaSharedMemoryStatusResponse"

    /// `inference.CudaSharedMemoryStatusResponse.RegionStatus`: one registered region.
    public struct RegionStatus: ProtoMessage, Hashable {
        public static let protoMessageName = "inference.CudaSharedMemoryStatusResponse.RegionStatus"

        /// Region name.
        public var name: String = ""  // = 1
        /// GPU device id.
        public var deviceId: UInt64 = 0  // = 2
        /// Size, bytes.
        public var byteSize: UInt64 = 0  // = 3

        public init() {}

        public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: name = try reader.readString(tag)
            case 2: deviceId = try reader.read(ProtoUInt64.self, tag)
            case 3: byteSize = try reader.read(ProtoUInt64.self, tag)
            default: try reader.skipField(tag)
            }
        }

        public func encode(to writer: inout ProtoWriter) {
            if !name.isEmpty { writer.writeString(field: 1, name) }
            if deviceId != 0 { writer.write(ProtoUInt64.self, field: 2, deviceId) }
            if byteSize != 0 { writer.write(ProtoUInt64.self, field: 3, byteSize) }
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

/// `inference.CudaSharedMemoryRegisterRequest`: asks to register a CUDA shared-memory region.
public struct CudaSharedMemoryRegisterRequest: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.CudaSharedMemoryRegisterRequest"

    /// Region name.
    public var name: String = ""  // = 1
    /// Serialized cudaIPC handle, as a slice of the decoded buffer.
    public var rawHandle = ByteBuffer()  // = 2
    /// GPU device id.
    public var deviceId: Int64 = 0  // = 3
    /// Size, bytes.
    public var byteSize: UInt64 = 0  // = 4

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: name = try reader.readString(tag)
        case 2: rawHandle = try reader.readBytes(tag)
        case 3: deviceId = try reader.read(ProtoInt64.self, tag)
        case 4: byteSize = try reader.read(ProtoUInt64.self, tag)
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        if !name.isEmpty { writer.writeString(field: 1, name) }
        if rawHandle.readableBytes > 0 { writer.writeBytes(field: 2, rawHandle) }
        if deviceId != 0 { writer.write(ProtoInt64.self, field: 3, deviceId) }
        if byteSize != 0 { writer.write(ProtoUInt64.self, field: 4, byteSize) }
    }
}

/// `inference.CudaSharedMemoryRegisterResponse`: the region was registered. It has no fields.
public struct CudaSharedMemoryRegisterResponse: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.CudaSharedMemoryRegisterResponse"

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        try reader.skipField(tag)
    }

    public func encode(to writer: inout ProtoWriter) {}
}

/// `inference.CudaSharedMemoryUnregisterRequest`: asks to unregister one or all CUDA shared-memory regions.
public struct CudaSharedMemoryUnregisterRequest: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.CudaSharedMemoryUnregisterRequest"

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

/// `inference.CudaSharedMemoryUnregisterResponse`: the region was unregistered. It has no fields.
public struct CudaSharedMemoryUnregisterResponse: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.CudaSharedMemoryUnregisterResponse"

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        try reader.skipField(tag)
    }

    public func encode(to writer: inout ProtoWriter) {}
}
