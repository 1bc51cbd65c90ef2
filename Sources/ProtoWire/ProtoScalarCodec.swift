import NIOCore

/// How one protobuf scalar type (int32, sint64, fixed32, float, …) is read and written.
///
/// Messages name the codec of each field's declared type: `reader.read(ProtoInt32.self, tag)`.
/// The codecs are caseless enums; all their work is static and inlinable.
public protocol ProtoScalarCodec {
    associatedtype Value: Sendable
    /// The wire type of an unpacked value.
    static var wireType: WireType { get }
    /// The `.proto` spelling of the type, for error messages.
    static var protoTypeName: StaticString { get }
    /// Bytes per value for fixed-width types; nil for varints.
    static var fixedSize: Int? { get }
    static func read(from reader: inout ProtoReader) throws -> Value
    static func write(_ value: Value, to writer: inout ProtoWriter)
    /// Appends a packed run of fixed-width values; the run's length is a multiple of `fixedSize`.
    static func readPackedFixed(from buffer: inout ByteBuffer, into values: inout [Value])
    /// Appends a packed run of fixed-width values from raw wire bytes (what `ProtoReader` calls);
    /// the run's length is a multiple of `fixedSize`.
    static func readPackedFixed(_ bytes: UnsafeRawBufferPointer, into values: inout [Value])
    /// Bytes `value` takes on the wire, without its tag.
    static func encodedSize(of value: Value) -> Int
}

extension ProtoScalarCodec {
    @inlinable public static var fixedSize: Int? { nil }
    @inlinable
    public static func readPackedFixed(from buffer: inout ByteBuffer, into values: inout [Value]) {
        preconditionFailure("\(protoTypeName) is not a fixed-width type")
    }
    @inlinable
    public static func readPackedFixed(_ bytes: UnsafeRawBufferPointer, into values: inout [Value]) {
        preconditionFailure("\(protoTypeName) is not a fixed-width type")
    }
}

/// Varint codecs share these.
public protocol ProtoVarintCodec: ProtoScalarCodec {}
extension ProtoVarintCodec {
    @inlinable public static var wireType: WireType { .varint }
}

/// `int32`: sign-extended to 64 bits on the wire, truncated to 32 when read (as protoc does).
public enum ProtoInt32: ProtoVarintCodec {
    @inlinable public static var protoTypeName: StaticString { "int32" }
    @inlinable public static func read(from reader: inout ProtoReader) throws -> Int32 {
        Int32(truncatingIfNeeded: try reader.readVarint())
    }
    @inlinable public static func write(_ value: Int32, to writer: inout ProtoWriter) {
        writer.writeVarint(UInt64(bitPattern: Int64(value)))
    }
    @inlinable public static func encodedSize(of value: Int32) -> Int { varintSize(UInt64(bitPattern: Int64(value))) }
}

/// `int64`.
public enum ProtoInt64: ProtoVarintCodec {
    @inlinable public static var protoTypeName: StaticString { "int64" }
    @inlinable public static func read(from reader: inout ProtoReader) throws -> Int64 {
        Int64(bitPattern: try reader.readVarint())
    }
    @inlinable public static func write(_ value: Int64, to writer: inout ProtoWriter) {
        writer.writeVarint(UInt64(bitPattern: value))
    }
    @inlinable public static func encodedSize(of value: Int64) -> Int { varintSize(UInt64(bitPattern: value)) }
}

/// `uint32`.
public enum ProtoUInt32: ProtoVarintCodec {
    @inlinable public static var protoTypeName: StaticString { "uint32" }
    @inlinable public static func read(from reader: inout ProtoReader) throws -> UInt32 {
        UInt32(truncatingIfNeeded: try reader.readVarint())
    }
    @inlinable public static func write(_ value: UInt32, to writer: inout ProtoWriter) {
        writer.writeVarint(UInt64(value))
    }
    @inlinable public static func encodedSize(of value: UInt32) -> Int { varintSize(UInt64(value)) }
}

/// `uint64`.
public enum ProtoUInt64: ProtoVarintCodec {
    @inlinable public static var protoTypeName: StaticString { "uint64" }
    @inlinable public static func read(from reader: inout ProtoReader) throws -> UInt64 {
        try reader.readVarint()
    }
    @inlinable public static func write(_ value: UInt64, to writer: inout ProtoWriter) {
        writer.writeVarint(value)
    }
    @inlinable public static func encodedSize(of value: UInt64) -> Int { varintSize(value) }
}

/// `sint32`: zigzag.
public enum ProtoSInt32: ProtoVarintCodec {
    @inlinable public static var protoTypeName: StaticString { "sint32" }
    @inlinable public static func read(from reader: inout ProtoReader) throws -> Int32 {
        let raw = UInt32(truncatingIfNeeded: try reader.readVarint())
        return Int32(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }
    @inlinable public static func write(_ value: Int32, to writer: inout ProtoWriter) {
        writer.writeVarint(UInt64(UInt32(bitPattern: (value << 1) ^ (value >> 31))))
    }
    @inlinable public static func encodedSize(of value: Int32) -> Int {
        varintSize(UInt64(UInt32(bitPattern: (value << 1) ^ (value >> 31))))
    }
}

/// `sint64`: zigzag.
public enum ProtoSInt64: ProtoVarintCodec {
    @inlinable public static var protoTypeName: StaticString { "sint64" }
    @inlinable public static func read(from reader: inout ProtoReader) throws -> Int64 {
        let raw = try reader.readVarint()
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }
    @inlinable public static func write(_ value: Int64, to writer: inout ProtoWriter) {
        writer.writeVarint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }
    @inlinable public static func encodedSize(of value: Int64) -> Int {
        varintSize(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }
}

/// `bool`: any non-zero varint is true.
public enum ProtoBool: ProtoVarintCodec {
    @inlinable public static var protoTypeName: StaticString { "bool" }
    @inlinable public static func read(from reader: inout ProtoReader) throws -> Bool {
        try reader.readVarint() != 0
    }
    @inlinable public static func write(_ value: Bool, to writer: inout ProtoWriter) {
        writer.writeVarint(value ? 1 : 0)
    }
    @inlinable public static func encodedSize(of value: Bool) -> Int { 1 }
}

/// An enum field, as its raw `int32` (unknown values are kept, as proto3 requires).
public enum ProtoEnum: ProtoVarintCodec {
    @inlinable public static var protoTypeName: StaticString { "enum" }
    @inlinable public static func read(from reader: inout ProtoReader) throws -> Int32 {
        Int32(truncatingIfNeeded: try reader.readVarint())
    }
    @inlinable public static func write(_ value: Int32, to writer: inout ProtoWriter) {
        writer.writeVarint(UInt64(bitPattern: Int64(value)))
    }
    @inlinable public static func encodedSize(of value: Int32) -> Int { varintSize(UInt64(bitPattern: Int64(value))) }
}

/// Fixed-width codecs: 4 or 8 little-endian bytes; packed runs are read in bulk.
public protocol ProtoFixedCodec: ProtoScalarCodec where Value: FixedWidthLittleEndianConvertible {}

/// A value that is stored as its little-endian bit pattern on the wire.
public protocol FixedWidthLittleEndianConvertible: Sendable {
    associatedtype Bits: FixedWidthInteger & UnsignedInteger
    init(wireBits: Bits)
    var wireBits: Bits { get }
}
extension UInt32: FixedWidthLittleEndianConvertible {
    @inlinable public init(wireBits: UInt32) { self = wireBits }
    @inlinable public var wireBits: UInt32 { self }
}
extension UInt64: FixedWidthLittleEndianConvertible {
    @inlinable public init(wireBits: UInt64) { self = wireBits }
    @inlinable public var wireBits: UInt64 { self }
}
extension Int32: FixedWidthLittleEndianConvertible {
    @inlinable public init(wireBits: UInt32) { self.init(bitPattern: wireBits) }
    @inlinable public var wireBits: UInt32 { UInt32(bitPattern: self) }
}
extension Int64: FixedWidthLittleEndianConvertible {
    @inlinable public init(wireBits: UInt64) { self.init(bitPattern: wireBits) }
    @inlinable public var wireBits: UInt64 { UInt64(bitPattern: self) }
}
extension Float: FixedWidthLittleEndianConvertible {
    @inlinable public init(wireBits: UInt32) { self.init(bitPattern: wireBits) }
    @inlinable public var wireBits: UInt32 { bitPattern }
}
extension Double: FixedWidthLittleEndianConvertible {
    @inlinable public init(wireBits: UInt64) { self.init(bitPattern: wireBits) }
    @inlinable public var wireBits: UInt64 { bitPattern }
}

extension ProtoFixedCodec {
    @inlinable public static var wireType: WireType {
        MemoryLayout<Value.Bits>.size == 4 ? .fixed32 : .fixed64
    }
    @inlinable public static var fixedSize: Int? { MemoryLayout<Value.Bits>.size }
    @inlinable public static func read(from reader: inout ProtoReader) throws -> Value {
        Value(wireBits: try reader.readLittleEndian(Value.Bits.self, protoTypeName))
    }
    @inlinable public static func write(_ value: Value, to writer: inout ProtoWriter) {
        writer.buffer.writeInteger(value.wireBits, endianness: .little)
    }
    @inlinable public static func encodedSize(of value: Value) -> Int { MemoryLayout<Value.Bits>.size }

    @inlinable
    public static func readPackedFixed(from buffer: inout ByteBuffer, into values: inout [Value]) {
        let size = MemoryLayout<Value.Bits>.size
        let length = buffer.readableBytes / size * size
        buffer.withUnsafeReadableBytes { bytes in
            readPackedFixed(UnsafeRawBufferPointer(rebasing: bytes[0..<length]), into: &values)
        }
        buffer.moveReaderIndex(forwardBy: length)
    }

    @inlinable
    public static func readPackedFixed(_ bytes: UnsafeRawBufferPointer, into values: inout [Value]) {
        let size = MemoryLayout<Value.Bits>.size
        let count = bytes.count / size
        #if _endian(little)
        if _isPOD(Value.self), MemoryLayout<Value>.size == size, MemoryLayout<Value>.stride == size {
            // On a little-endian host the wire bytes are the values' memory: one bulk copy
            // (memcpy, any alignment) instead of a load and a checked append per element.
            let run = [Value](unsafeUninitializedCapacity: count) { destination, initialized in
                UnsafeMutableRawBufferPointer(destination).copyMemory(
                    from: UnsafeRawBufferPointer(rebasing: bytes[0..<(count * size)]))
                initialized = count
            }
            if values.isEmpty {
                values = run
            } else {
                values.reserveAdditionalCapacity(count)
                values.append(contentsOf: run)
            }
            return
        }
        #endif
        values.reserveAdditionalCapacity(count)
        for index in 0..<count {
            let bits = bytes.loadUnaligned(fromByteOffset: index * size, as: Value.Bits.self)
            values.append(Value(wireBits: Value.Bits(littleEndian: bits)))
        }
    }
}

/// `fixed32`.
public enum ProtoFixed32: ProtoFixedCodec {
    public typealias Value = UInt32
    @inlinable public static var protoTypeName: StaticString { "fixed32" }
}
/// `fixed64`.
public enum ProtoFixed64: ProtoFixedCodec {
    public typealias Value = UInt64
    @inlinable public static var protoTypeName: StaticString { "fixed64" }
}
/// `sfixed32`.
public enum ProtoSFixed32: ProtoFixedCodec {
    public typealias Value = Int32
    @inlinable public static var protoTypeName: StaticString { "sfixed32" }
}
/// `sfixed64`.
public enum ProtoSFixed64: ProtoFixedCodec {
    public typealias Value = Int64
    @inlinable public static var protoTypeName: StaticString { "sfixed64" }
}
/// `float`.
public enum ProtoFloat: ProtoFixedCodec {
    public typealias Value = Float
    @inlinable public static var protoTypeName: StaticString { "float" }
}
/// `double`.
public enum ProtoDouble: ProtoFixedCodec {
    public typealias Value = Double
    @inlinable public static var protoTypeName: StaticString { "double" }
}

/// Bytes a varint of `value` takes (1 to 10).
@inlinable
public func varintSize(_ value: UInt64) -> Int {
    // Each byte carries 7 bits; (bits + 6) / 7, with at least one byte for zero.
    let bits = 64 - (value | 1).leadingZeroBitCount
    return (bits + 6) / 7
}

extension Array {
    /// Makes room for `additional` more elements, growing geometrically as `append` does.
    ///
    /// `reserveCapacity(count + n)` allocates exactly what it is asked for, so calling it for
    /// each packed run of a field would reallocate and copy the whole array on every run when a
    /// message splits the field into many small runs: time quadratic in the message's size.
    @inlinable
    mutating func reserveAdditionalCapacity(_ additional: Int) {
        let needed = count + additional
        if needed > capacity {
            reserveCapacity(Swift.max(needed, 2 * capacity))
        }
    }
}
