import NIOCore

/// Appends protobuf fields to a `ByteBuffer`.
///
/// Every `write` emits the field unconditionally; proto3's "omit the default" rule is the
/// message's choice, since oneof members and map values must be written even when default.
/// Embedded messages are written in place: the body is written after a one-byte length slot,
/// and moved once only when its length needs a longer varint, so no temporary buffer is made.
public struct ProtoWriter {
    /// The bytes written so far (plus whatever the buffer held before).
    public var buffer: ByteBuffer

    @inlinable
    public init(buffer: ByteBuffer) {
        self.buffer = buffer
    }

    /// A writer with a fresh buffer of the given capacity.
    @inlinable
    public init(capacity: Int = 256) {
        self.buffer = ByteBufferAllocator().buffer(capacity: capacity)
    }

    // MARK: Primitive encodings

    @inlinable
    public mutating func writeVarint(_ value: UInt64) {
        if value < 0x80 {
            buffer.writeInteger(UInt8(truncatingIfNeeded: value))
            return
        }
        var value = value
        let size = varintSize(value)
        buffer.reserveCapacity(minimumWritableBytes: size)
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { out in
            var index = 0
            while value >= 0x80 {
                out[index] = UInt8(truncatingIfNeeded: value) | 0x80
                value >>= 7
                index += 1
            }
            out[index] = UInt8(truncatingIfNeeded: value)
            return index + 1
        }
    }

    @inlinable
    public mutating func writeTag(_ fieldNumber: Int, _ wireType: WireType) {
        writeVarint(ProtoTag(fieldNumber: fieldNumber, wireType: wireType).rawValue)
    }

    // MARK: Fields

    /// A scalar field of the codec's type.
    @inlinable
    public mutating func write<Codec: ProtoScalarCodec>(_ codec: Codec.Type, field: Int, _ value: Codec.Value) {
        writeTag(field, Codec.wireType)
        Codec.write(value, to: &self)
    }

    /// A packed repeated scalar field (proto3's default encoding); nothing for an empty array.
    @inlinable
    public mutating func writePacked<Codec: ProtoScalarCodec>(_ codec: Codec.Type, field: Int, _ values: [Codec.Value]) {
        guard !values.isEmpty else { return }
        writeTag(field, .lengthDelimited)
        if let size = Codec.fixedSize {
            writeVarint(UInt64(values.count * size))
            writePackedFixed(Codec.self, values)
        } else {
            var length = 0
            for value in values { length += Codec.encodedSize(of: value) }
            writeVarint(UInt64(length))
            for value in values { Codec.write(value, to: &self) }
        }
    }

    /// `writePacked` for any collection of the codec's values (a shape stored inline, say); the
    /// same bytes as for an array of them.
    @inlinable
    public mutating func writePacked<Codec: ProtoScalarCodec, Values: Collection<Codec.Value>>(
        _ codec: Codec.Type, field: Int, _ values: Values
    ) {
        guard !values.isEmpty else { return }
        writeTag(field, .lengthDelimited)
        var length = 0
        if let size = Codec.fixedSize {
            length = values.count * size
        } else {
            for value in values { length += Codec.encodedSize(of: value) }
        }
        writeVarint(UInt64(length))
        for value in values { Codec.write(value, to: &self) }
    }

    @inlinable
    mutating func writePackedFixed<Codec: ProtoScalarCodec>(_ codec: Codec.Type, _ values: [Codec.Value]) {
        #if _endian(little)
        if let size = Codec.fixedSize, size == MemoryLayout<Codec.Value>.stride {
            // Fixed-width values are stored little-endian: on this host that is their memory.
            _ = values.withUnsafeBytes { buffer.writeBytes($0) }
            return
        }
        #endif
        for value in values { Codec.write(value, to: &self) }
    }

    /// A repeated scalar field, one tag per value (how proto2 and some old encoders send it).
    @inlinable
    public mutating func writeUnpacked<Codec: ProtoScalarCodec>(_ codec: Codec.Type, field: Int, _ values: [Codec.Value]) {
        for value in values { write(Codec.self, field: field, value) }
    }

    /// A `bytes` field; the bytes are appended without an intermediate copy.
    @inlinable
    public mutating func writeBytes(field: Int, _ value: ByteBuffer) {
        writeTag(field, .lengthDelimited)
        writeVarint(UInt64(value.readableBytes))
        buffer.writeImmutableBuffer(value)
    }

    /// A `bytes` field from raw bytes.
    @inlinable
    public mutating func writeBytes<Bytes: Collection<UInt8>>(field: Int, _ value: Bytes) {
        writeTag(field, .lengthDelimited)
        writeVarint(UInt64(value.count))
        buffer.writeBytes(value)
    }

    /// A `string` field.
    @inlinable
    public mutating func writeString(field: Int, _ value: String) {
        writeTag(field, .lengthDelimited)
        writeVarint(UInt64(value.utf8.count))
        buffer.writeString(value)
    }

    /// An embedded message field, written in place.
    @inlinable
    public mutating func writeMessage<M: ProtoMessage>(field: Int, _ message: M) {
        writeLengthDelimited(field: field) { message.encode(to: &$0) }
    }

    /// A length-delimited field whose body `body` writes; the length is filled in afterwards.
    @inlinable
    public mutating func writeLengthDelimited(field: Int, _ body: (inout ProtoWriter) -> Void) {
        writeTag(field, .lengthDelimited)
        let lengthIndex = buffer.writerIndex
        buffer.writeInteger(UInt8(0))
        let bodyStart = buffer.writerIndex
        body(&self)
        let length = buffer.writerIndex - bodyStart
        if length < 0x80 {
            buffer.setInteger(UInt8(length), at: lengthIndex)
            return
        }
        // The length needs more than the one byte reserved: move the body up once.
        let extra = varintSize(UInt64(length)) - 1
        buffer.writeRepeatingByte(0, count: extra)
        _ = try! buffer.copyBytes(at: bodyStart, to: bodyStart + extra, length: length)
        var value = UInt64(length)
        var index = lengthIndex
        while value >= 0x80 {
            buffer.setInteger(UInt8(truncatingIfNeeded: value) | 0x80, at: index)
            value >>= 7
            index += 1
        }
        buffer.setInteger(UInt8(truncatingIfNeeded: value), at: index)
    }

    /// One `map<string, V>` entry per key, in sorted key order so encoding is deterministic.
    @inlinable
    public mutating func writeMap<V: ProtoMessage>(field: Int, _ map: [String: V]) {
        for key in map.keys.sorted() {
            let value = map[key]!
            writeLengthDelimited(field: field) { entry in
                if !key.isEmpty { entry.writeString(field: 1, key) }
                entry.writeMessage(field: 2, value)
            }
        }
    }

    /// One `map<string, string>` entry per key, in sorted key order.
    @inlinable
    public mutating func writeMap(field: Int, _ map: [String: String]) {
        for key in map.keys.sorted() {
            let value = map[key]!
            writeLengthDelimited(field: field) { entry in
                if !key.isEmpty { entry.writeString(field: 1, key) }
                if !value.isEmpty { entry.writeString(field: 2, value) }
            }
        }
    }
}
