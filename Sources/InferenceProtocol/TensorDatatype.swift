/// A tensor datatype as the Open Inference Protocol spells it in `datatype` fields:
/// "BOOL", "UINT8" … "FP64", "BYTES", "BF16", "FP16".
public enum TensorDatatype: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case bool = "BOOL"
    case uint8 = "UINT8"
    case uint16 = "UINT16"
    case uint32 = "UINT32"
    case uint64 = "UINT64"
    case int8 = "INT8"
    case int16 = "INT16"
    case int32 = "INT32"
    case int64 = "INT64"
    case fp16 = "FP16"
    case fp32 = "FP32"
    case fp64 = "FP64"
    case bf16 = "BF16"
    /// Variable-length elements; in raw contents each is a 4-byte little-endian length and bytes.
    case bytes = "BYTES"

    /// Bytes per element in raw contents; nil for BYTES, whose elements vary in size.
    public var elementSize: Int? {
        switch self {
        case .bool, .uint8, .int8: return 1
        case .uint16, .int16, .fp16, .bf16: return 2
        case .uint32, .int32, .fp32: return 4
        case .uint64, .int64, .fp64: return 8
        case .bytes: return nil
        }
    }

    /// The `InferTensorContents` field that carries this datatype's typed elements, by its proto
    /// name; nil for FP16 and BF16, which travel only as raw contents.
    public var contentsField: String? {
        switch self {
        case .bool: return "bool_contents"
        case .int8, .int16, .int32: return "int_contents"
        case .int64: return "int64_contents"
        case .uint8, .uint16, .uint32: return "uint_contents"
        case .uint64: return "uint64_contents"
        case .fp32: return "fp32_contents"
        case .fp64: return "fp64_contents"
        case .bytes: return "bytes_contents"
        case .fp16, .bf16: return nil
        }
    }

    public var description: String { rawValue }

    /// The datatype for a protocol string, or nil when the string names none.
    public init?(protocolName: String) {
        self.init(rawValue: protocolName)
    }
}
