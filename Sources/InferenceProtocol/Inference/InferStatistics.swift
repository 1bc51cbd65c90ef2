import NIOCore
import ProtoWire

/// `inference.StatisticDuration`: a count and a cumulative duration.
public struct StatisticDuration: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.StatisticDuration"

    /// Number of times.
    public var count: UInt64 = 0  // = 1
    /// Total duration, nanoseconds.
    public var ns: UInt64 = 0  // = 2

    public init() {}

    /// A duration statistic with the given count and total nanoseconds.
    public init(count: UInt64, ns: UInt64) {
        self.count = count
        self.ns = ns
    }

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: count = try reader.read(ProtoUInt64.self, tag)
        case 2: ns = try reader.read(ProtoUInt64.self, tag)
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        if count != 0 { writer.write(ProtoUInt64.self, field: 1, count) }
        if ns != 0 { writer.write(ProtoUInt64.self, field: 2, ns) }
    }
}

/// `inference.InferStatistics`: aggregate inference statistics of one model/version.
/// Each field is nil when absent.
public struct InferStatistics: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.InferStatistics"

    /// Successful requests (end to end).
    public var success: StatisticDuration?  // = 1
    /// Failed requests.
    public var fail: StatisticDuration?  // = 2
    /// Time spent queued.
    public var queue: StatisticDuration?  // = 3
    /// Time preparing input tensors.
    public var computeInput: StatisticDuration?  // = 4
    /// Time executing the model.
    public var computeInfer: StatisticDuration?  // = 5
    /// Time extracting output tensors.
    public var computeOutput: StatisticDuration?  // = 6
    /// Response cache hits (lookup time).
    public var cacheHit: StatisticDuration?  // = 7
    /// Response cache misses (lookup and insertion time).
    public var cacheMiss: StatisticDuration?  // = 8

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: try reader.merge(tag, into: &success)
        case 2: try reader.merge(tag, into: &fail)
        case 3: try reader.merge(tag, into: &queue)
        case 4: try reader.merge(tag, into: &computeInput)
        case 5: try reader.merge(tag, into: &computeInfer)
        case 6: try reader.merge(tag, into: &computeOutput)
        case 7: try reader.merge(tag, into: &cacheHit)
        case 8: try reader.merge(tag, into: &cacheMiss)
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        if let success { writer.writeMessage(field: 1, success) }
        if let fail { writer.writeMessage(field: 2, fail) }
        if let queue { writer.writeMessage(field: 3, queue) }
        if let computeInput { writer.writeMessage(field: 4, computeInput) }
        if let computeInfer { writer.writeMessage(field: 5, computeInfer) }
        if let computeOutput { writer.writeMessage(field: 6, computeOutput) }
        if let cacheHit { writer.writeMessage(field: 7, cacheHit) }
        if let cacheMiss { writer.writeMessage(field: 8, cacheMiss) }
    }
}

/// `inference.InferResponseStatistics`: statistics of responses, keyed by response index in
/// `ModelStatistics.responseStats`. Each field is nil when absent.
public struct InferResponseStatistics: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.InferResponseStatistics"

    /// Computing a response.
    public var computeInfer: StatisticDuration?  // = 1
    /// Extracting a response's output tensors.
    public var computeOutput: StatisticDuration?  // = 2
    /// Successful responses.
    public var success: StatisticDuration?  // = 3
    /// Failed responses.
    public var fail: StatisticDuration?  // = 4
    /// Empty responses.
    public var emptyResponse: StatisticDuration?  // = 5
    /// Cleaning up after cancelled requests.
    public var cancel: StatisticDuration?  // = 6

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: try reader.merge(tag, into: &computeInfer)
        case 2: try reader.merge(tag, into: &computeOutput)
        case 3: try reader.merge(tag, into: &success)
        case 4: try reader.merge(tag, into: &fail)
        case 5: try reader.merge(tag, into: &emptyResponse)
        case 6: try reader.merge(tag, into: &cancel)
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        if let computeInfer { writer.writeMessage(field: 1, computeInfer) }
        if let computeOutput { writer.writeMessage(field: 2, computeOutput) }
        if let success { writer.writeMessage(field: 3, success) }
        if let fail { writer.writeMessage(field: 4, fail) }
        if let emptyResponse { writer.writeMessage(field: 5, emptyResponse) }
        if let cancel { writer.writeMessage(field: 6, cancel) }
    }
}

/// `inference.InferBatchStatistics`: execution statistics for one batch size. The durations
/// are nil when absent.
public struct InferBatchStatistics: ProtoMessage, Hashable {
    public static let protoMessageName = "inference.InferBatchStatistics"

    /// The batch size.
    public var batchSize: UInt64 = 0  // = 1
    /// Time preparing inputs for batches of this size.
    public var computeInput: StatisticDuration?  // = 2
    /// Time executing batches of this size.
    public var computeInfer: StatisticDuration?  // = 3
    /// Time extracting outputs of batches of this size.
    public var computeOutput: StatisticDuration?  // = 4

    public init() {}

    public mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
        switch tag.fieldNumber {
        case 1: batchSize = try reader.read(ProtoUInt64.self, tag)
        case 2: try reader.merge(tag, into: &computeInput)
        case 3: try reader.merge(tag, into: &computeInfer)
        case 4: try reader.merge(tag, into: &computeOutput)
        default: try reader.skipField(tag)
        }
    }

    public func encode(to writer: inout ProtoWriter) {
        if batchSize != 0 { writer.write(ProtoUInt64.self, field: 1, batchSize) }
        if let computeInput { writer.writeMessage(field: 2, computeInput) }
        if let computeInfer { writer.writeMessage(field: 3, computeInfer) }
        if let computeOutput { writer.writeMessage(field: 4, computeOutput) }
    }
}
