/// The wire type in the low three bits of every protobuf tag.
///
/// Types 3 and 4 are the deprecated group delimiters: a parser still has to skip them.
public enum WireType: UInt8, Sendable, CustomStringConvertible {
    case varint = 0
    case fixed64 = 1
    case lengthDelimited = 2
    case startGroup = 3
    case endGroup = 4
    case fixed32 = 5

    public var description: String {
        switch self {
        case .varint: return "varint"
        case .fixed64: return "fixed64"
        case .lengthDelimited: return "length-delimited"
        case .startGroup: return "start-group"
        case .endGroup: return "end-group"
        case .fixed32: return "fixed32"
        }
    }
}

/// A decoded field key: field number and wire type.
public struct ProtoTag: Sendable, Hashable, CustomStringConvertible {
    /// The largest field number protobuf allows (2^29 - 1).
    public static let maxFieldNumber = (1 << 29) - 1

    public var fieldNumber: Int
    public var wireType: WireType

    @inlinable
    public init(fieldNumber: Int, wireType: WireType) {
        self.fieldNumber = fieldNumber
        self.wireType = wireType
    }

    /// The key as it goes on the wire: `field_number << 3 | wire_type`.
    @inlinable
    public var rawValue: UInt64 { UInt64(fieldNumber) << 3 | UInt64(wireType.rawValue) }

    public var description: String { "field \(fieldNumber) (\(wireType))" }
}
