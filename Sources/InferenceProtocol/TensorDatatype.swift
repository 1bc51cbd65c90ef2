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

extension TensorDatatype {
    /// The protocol name spelled by `bytes` when they spell one of the datatypes exactly, else
    /// nil. For `ProtoReader.readString(_:knownValue:)`: a known datatype becomes a String
    /// literal, with no UTF-8 validation and no String construction.
    static func protocolName(spelledBy bytes: UnsafeRawBufferPointer) -> String? {
        guard bytes.count >= 4 else { return nil }
        // The bytes, little-endian, with the length in the top byte: one integer per name.
        var key = UInt64(UInt32(littleEndian: bytes.loadUnaligned(as: UInt32.self)))
        switch bytes.count {
        case 4: key |= 4 << 56
        case 5: key |= 5 << 56 | UInt64(bytes[4]) << 32
        case 6: key |= 6 << 56 | UInt64(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 4, as: UInt16.self))) << 32
        default: return nil
        }
        switch key {
        case 0x040000004C4F4F42: return "BOOL"
        case 0x05000038544E4955: return "UINT8"
        case 0x06003631544E4955: return "UINT16"
        case 0x06003233544E4955: return "UINT32"
        case 0x06003436544E4955: return "UINT64"
        case 0x0400000038544E49: return "INT8"
        case 0x0500003631544E49: return "INT16"
        case 0x0500003233544E49: return "INT32"
        case 0x0500003436544E49: return "INT64"
        case 0x0400000036315046: return "FP16"
        case 0x0400000032335046: return "FP32"
        case 0x0400000034365046: return "FP64"
        case 0x0400000036314642: return "BF16"
        case 0x0500005345545942: return "BYTES"
        default: return nil
        }
    }
}
