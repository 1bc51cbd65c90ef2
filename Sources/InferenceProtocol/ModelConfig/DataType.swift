/// `inference.DataType`: the element type of a tensor as a model configuration declares it.
///
/// Like every enum of the model configuration, the cases are the proto value names in
/// lowerCamelCase without the prefix that repeats the enum's name (`TYPE_INT32` is `.int32`),
/// and `unrecognized` keeps a number this build does not know, as proto3 requires, so it survives
/// a round trip. Equality and hashing go by `rawValue`, so `.unrecognized(8) == .int32`.
public enum DataType: RawRepresentable, Sendable, Hashable, CaseIterable {
    /// `TYPE_INVALID`: no type; the proto3 default.
    case invalid  // = 0
    /// `TYPE_BOOL`.
    case bool  // = 1
    /// `TYPE_UINT8`.
    case uint8  // = 2
    /// `TYPE_UINT16`.
    case uint16  // = 3
    /// `TYPE_UINT32`.
    case uint32  // = 4
    /// `TYPE_UINT64`.
    case uint64  // = 5
    /// `TYPE_INT8`.
    case int8  // = 6
    /// `TYPE_INT16`.
    case int16  // = 7
    /// `TYPE_INT32`.
    case int32  // = 8
    /// `TYPE_INT64`.
    case int64  // = 9
    /// `TYPE_FP16`.
    case fp16  // = 10
    /// `TYPE_FP32`.
    case fp32  // = 11
    /// `TYPE_FP64`.
    case fp64  // = 12
    /// `TYPE_STRING`: variable-length bytes; the inference protocol calls it "BYTES".
    case string  // = 13
    /// `TYPE_BF16`.
    case bf16  // = 14
    /// A number this build does not know.
    case unrecognized(Int32)

    /// The known values, in number order.
    public static let allCases: [DataType] = [
        .invalid, .bool, .uint8, .uint16, .uint32, .uint64, .int8, .int16, .int32, .int64,
        .fp16, .fp32, .fp64, .string, .bf16,
    ]

    /// The value for a wire number; a number not listed becomes `.unrecognized`.
    public init(rawValue: Int32) {
        switch rawValue {
        case 0: self = .invalid
        case 1: self = .bool
        case 2: self = .uint8
        case 3: self = .uint16
        case 4: self = .uint32
        case 5: self = .uint64
        case 6: self = .int8
        case 7: self = .int16
        case 8: self = .int32
        case 9: self = .int64
        case 10: self = .fp16
        case 11: self = .fp32
        case 12: self = .fp64
        case 13: self = .string
        case 14: self = .bf16
        default: self = .unrecognized(rawValue)
        }
    }

    /// The wire number.
    public var rawValue: Int32 {
        switch self {
        case .invalid: 0
        case .bool: 1
        case .uint8: 2
        case .uint16: 3
        case .uint32: 4
        case .uint64: 5
        case .int8: 6
        case .int16: 7
        case .int32: 8
        case .int64: 9
        case .fp16: 10
        case .fp32: 11
        case .fp64: 12
        case .string: 13
        case .bf16: 14
        case .unrecognized(let value): value
        }
    }

    /// The inference protocol's spelling of this type in `datatype` fields ("INT32", "BYTES" for
    /// `.string`, …), as Triton reports it in model metadata; nil for `.invalid` and unknown numbers.
    public var protocolName: String? {
        switch self {
        case .invalid, .unrecognized: nil
        case .bool: "BOOL"
        case .uint8: "UINT8"
        case .uint16: "UINT16"
        case .uint32: "UINT32"
        case .uint64: "UINT64"
        case .int8: "INT8"
        case .int16: "INT16"
        case .int32: "INT32"
        case .int64: "INT64"
        case .fp16: "FP16"
        case .fp32: "FP32"
        case .fp64: "FP64"
        case .string: "BYTES"
        case .bf16: "BF16"
        }
    }

    /// The type an inference protocol `datatype` string names ("BYTES" is `.string`); nil when it
    /// names none.
    public init?(protocolName: String) {
        guard let match = Self.allCases.first(where: { $0.protocolName == protocolName }) else { return nil }
        self = match
    }
}
