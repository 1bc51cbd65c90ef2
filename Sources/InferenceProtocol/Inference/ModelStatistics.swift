import NIOCore
import ProtoWire

/// `inference.ModelStatisticsRequest`: asks for the statistics of one model, one version, or all.
public struct ModelStatisticsRequest: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.ModelStatisticsRequest"

    /// Model name; empty means all models.
    public var name: String = ""  // = 1
    /// Model version; empty means all versions.
    public var version: String = ""  // = 2

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: name = try reader.readString(tag)
        case 2: version = try reader.readString(tag)
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        if !name.isEmpty { writer.writeString(field: 1, name) }
        if !version.isEmpty { writer.writeString(field: 2, version) }
    }
}

/// `inference.ModelStatisticsResponse`: the statistics of each requested model/version.
public struct ModelStatisticsResponse: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.ModelStatisticsResponse"

    /// Statistics of each requested model/version.
    public var modelStats: [ModelStatistics] = []  // = 1

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: modelStats.append(try reader.readMessage(tag))
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        for value in modelStats { writer.writeMessage(field: 1, value) }
    }
}

/// `inference.MemoryUsage`: memory used by a loaded model on one device.
public struct MemoryUsage: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.MemoryUsage"

    /// "CPU", "CPU_PINNED" or "GPU".
    public var type: String = ""  // = 1
    /// Device id, used with `type`.
    public var id: Int64 = 0  // = 2
    /// Size in bytes.
    public var byteSize: UInt64 = 0  // = 3

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: type = try reader.readString(tag)
        case 2: id = try reader.read(ProtoInt64.self, tag)
        case 3: byteSize = try reader.read(ProtoUInt64.self, tag)
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        if !type.isEmpty { writer.writeString(field: 1, type) }
        if id != 0 { writer.write(ProtoInt64.self, field: 2, id) }
        if byteSize != 0 { writer.write(ProtoUInt64.self, field: 3, byteSize) }
    }
}

/// `inference.ModelStatistics`: cumulative statistics of one model/version.
public struct ModelStatistics: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.ModelStatistics"

    /// Model name.
    public var name: String = ""  // = 1
    /// Model version.
    public var version: String = ""  // = 2
    /// Time of the last inference, milliseconds since the epoch.
    public var lastInference: UInt64 = 0  // = 3
    /// Successful inferences (each batch element counts; cache hits excluded).
    public var inferenceCount: UInt64 = 0  // = 4
    /// Successful model executions (a dynamic batch counts once).
    public var executionCount: UInt64 = 0  // = 5
    /// Aggregate statistics; nil when absent.
    public var inferenceStats: InferStatistics?  // = 6
    /// Statistics per executed batch size.
    public var batchStats: [InferBatchStatistics] = []  // = 7
    /// Memory usage measured at load time.
    public var memoryUsage: [MemoryUsage] = []  // = 8
    /// Response statistics keyed by response index.
    public var responseStats: [String: InferResponseStatistics] = [:]  // = 9

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: name = try reader.readString(tag)
        case 2: version = try reader.readString(tag)
        case 3: lastInference = try reader.read(ProtoUInt64.self, tag)
        case 4: inferenceCount = try reader.read(ProtoUInt64.self, tag)
        case 5: executionCount = try reader.read(ProtoUInt64.self, tag)
        case 6:
            try reader.merge(tag, into: &inferenceStats)
        case 7: batchStats.append(try reader.readMessage(tag))
        case 8: memoryUsage.append(try reader.readMessage(tag))
        case 9: try reader.readMapEntry(tag, into: &responseStats)
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        if !name.isEmpty { writer.writeString(field: 1, name) }
        if !version.isEmpty { writer.writeString(field: 2, version) }
        if lastInference != 0 { writer.write(ProtoUInt64.self, field: 3, lastInference) }
        if inferenceCount != 0 { writer.write(ProtoUInt64.self, field: 4, inferenceCount) }
        if executionCount != 0 { writer.write(ProtoUInt64.self, field: 5, executionCount) }
        if let inferenceStats { writer.writeMessage(field: 6, inferenceStats) }
        for value in batchStats { writer.writeMessage(field: 7, value) }
        for value in memoryUsage { writer.writeMessage(field: 8, value) }
        writer.writeMap(field: 9, responseStats)
    }
}
