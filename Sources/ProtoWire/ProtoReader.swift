import NIOCore

/// Reads the fields of one protobuf message from a `ByteBuffer`, without copying it.
///
/// A reader owns a slice of the incoming buffer. Length-delimited values (`bytes`, embedded
/// messages) come back as slices of the same storage, so tensor payloads are never copied.
/// Every read checks the wire type against the field's declared type, bounds every length by
/// the bytes that actually remain, and counts nesting depth, so hostile input ends in a
/// `ProtoDecodingError`, never a trap or an allocation sized by the input's claims.
public struct ProtoReader {
    /// The bytes not yet read.
    public var buffer: ByteBuffer
    /// The limits in force for this message and everything nested in it.
    public let limits: ProtoLimits
    /// How many embedded messages or groups enclose this one.
    public let depth: Int
    @usableFromInline
    var tagStart: Int

    /// A reader over a whole top-level message.
    ///
    /// - Throws: `messageTooLarge` if the buffer exceeds `limits.maxMessageSize`.
    public init(buffer: ByteBuffer, limits: ProtoLimits = .default) throws {
        guard buffer.readableBytes <= limits.maxMessageSize else {
            throw ProtoDecodingError(
                .messageTooLarge,
                "message of \(buffer.readableBytes) bytes exceeds the limit of \(limits.maxMessageSize) bytes")
        }
        self.init(buffer: buffer, limits: limits, depth: 0)
    }

    @usableFromInline
    init(buffer: ByteBuffer, limits: ProtoLimits, depth: Int) {
        self.buffer = buffer
        self.limits = limits
        self.depth = depth
        self.tagStart = buffer.readerIndex
    }

    /// True when every byte has been read.
    @inlinable
    public var isAtEnd: Bool { buffer.readableBytes == 0 }

    // MARK: Tags

    /// The next field's tag, or nil at the end of the message.
    @inlinable
    public mutating func nextTag() throws -> ProtoTag? {
        if buffer.readableBytes == 0 { return nil }
        tagStart = buffer.readerIndex
        let raw = try readVarint()
        guard raw <= UInt64(UInt32.max) else {
            throw ProtoDecodingError(.varintOverflow, "tag \(raw) does not fit in 32 bits")
        }
        guard let wireType = WireType(rawValue: UInt8(truncatingIfNeeded: raw & 7)) else {
            throw ProtoDecodingError(.invalidWireType, "invalid wire type \(raw & 7) in tag \(raw)")
        }
        let fieldNumber = Int(raw >> 3)
        guard fieldNumber > 0 else {
            throw ProtoDecodingError(.invalidFieldNumber, "field number 0 is not allowed")
        }
        return ProtoTag(fieldNumber: fieldNumber, wireType: wireType)
    }

    /// Checks that `tag` carries the wire type of a field declared as `typeName`.
    @inlinable
    public func expect(_ tag: ProtoTag, _ wireType: WireType, _ typeName: StaticString) throws {
        guard tag.wireType == wireType else {
            throw ProtoDecodingError(
                .wrongWireType,
                "field \(tag.fieldNumber) is declared \(typeName) (wire type \(wireType)) but arrived as \(tag.wireType)")
        }
    }

    // MARK: Primitive encodings

    /// A base-128 varint of at most 10 bytes whose value fits in 64 bits.
    @inlinable
    public mutating func readVarint() throws -> UInt64 {
        let (value, length): (UInt64, Int) = try buffer.withUnsafeReadableBytes { bytes in
            var result: UInt64 = 0
            var shift: UInt64 = 0
            var index = 0
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                if index == 10 {
                    // The tenth byte carries bit 63 only.
                    guard byte & 0x80 == 0 else {
                        throw ProtoDecodingError(.varintTooLong, "varint longer than 10 bytes")
                    }
                    guard byte <= 1 else {
                        throw ProtoDecodingError(.varintOverflow, "varint value does not fit in 64 bits")
                    }
                }
                result |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return (result, index) }
                shift += 7
            }
            throw ProtoDecodingError(.truncated, "buffer ends inside a varint")
        }
        buffer.moveReaderIndex(forwardBy: length)
        return value
    }

    /// Four little-endian bytes.
    @inlinable
    public mutating func readRawFixed32() throws -> UInt32 {
        guard let value = buffer.readInteger(endianness: .little, as: UInt32.self) else {
            throw ProtoDecodingError(.truncated, "buffer ends inside a fixed32 value")
        }
        return value
    }

    /// Eight little-endian bytes.
    @inlinable
    public mutating func readRawFixed64() throws -> UInt64 {
        guard let value = buffer.readInteger(endianness: .little, as: UInt64.self) else {
            throw ProtoDecodingError(.truncated, "buffer ends inside a fixed64 value")
        }
        return value
    }

    /// A length prefix and that many bytes, as a slice of the same storage (no copy).
    @inlinable
    public mutating func readLengthDelimitedSlice() throws -> ByteBuffer {
        let length = try readVarint()
        guard length <= UInt64(buffer.readableBytes) else {
            throw ProtoDecodingError(
                .lengthPastEnd,
                "length \(length) runs past the end of the message (\(buffer.readableBytes) bytes left)")
        }
        return buffer.readSlice(length: Int(length))!
    }

    // MARK: Singular fields

    /// The value of a scalar field declared as `codec`; the tag's wire type must match.
    @inlinable
    public mutating func read<Codec: ProtoScalarCodec>(_ codec: Codec.Type, _ tag: ProtoTag) throws -> Codec.Value {
        try expect(tag, Codec.wireType, Codec.protoTypeName)
        return try Codec.read(from: &self)
    }

    /// A `bytes` field as a slice of the incoming buffer.
    @inlinable
    public mutating func readBytes(_ tag: ProtoTag) throws -> ByteBuffer {
        try expect(tag, .lengthDelimited, "bytes")
        return try readLengthDelimitedSlice()
    }

    /// A `string` field, validated as UTF-8.
    @inlinable
    public mutating func readString(_ tag: ProtoTag) throws -> String {
        try expect(tag, .lengthDelimited, "string")
        let length = try readVarint()
        guard length <= UInt64(buffer.readableBytes) else {
            throw ProtoDecodingError(
                .lengthPastEnd,
                "length \(length) runs past the end of the message (\(buffer.readableBytes) bytes left)")
        }
        // Read the characters in place: a slice would cost a retain and a release of the storage.
        let string = buffer.withUnsafeReadableBytes { raw in
            Self.validatedUTF8String(UnsafeRawBufferPointer(rebasing: raw.prefix(Int(length))))
        }
        guard let string else {
            throw ProtoDecodingError(.invalidUTF8, "string field \(tag.fieldNumber) is not valid UTF-8")
        }
        buffer.moveReaderIndex(forwardBy: Int(length))
        return string
    }

    /// The bytes as a String, or nil when they are not valid UTF-8.
    @usableFromInline
    static func validatedUTF8String(_ raw: UnsafeRawBufferPointer) -> String? {
        let bytes = raw.assumingMemoryBound(to: UInt8.self)
        // Names, versions, ids and datatypes are ASCII in practice, and ASCII is valid UTF-8 as
        // it stands. String(validating:as:) goes through an unspecialised generic in the standard
        // library (a generic-metadata lookup per call) that costs more than the whole field.
        if bytes.allSatisfy({ $0 < 0x80 }) { return String(decoding: bytes, as: UTF8.self) }
        return String(validating: bytes, as: UTF8.self)
    }

    /// Decodes an embedded message field into `message`, merging with what it already holds
    /// (protobuf's rule for a singular message field that occurs more than once).
    @inlinable
    public mutating func merge<M: ProtoMessage>(_ tag: ProtoTag, into message: inout M) throws {
        try expect(tag, .lengthDelimited, "message")
        let slice = try readLengthDelimitedSlice()
        guard depth + 1 <= limits.maxDepth else {
            throw ProtoDecodingError(.nestingTooDeep, "messages nested deeper than \(limits.maxDepth) levels")
        }
        var nested = ProtoReader(buffer: slice, limits: limits, depth: depth + 1)
        try message.merge(from: &nested)
    }

    /// Decodes a singular embedded message field held as an optional, merging with any earlier
    /// occurrence.
    ///
    /// The optional is emptied while the field merges, so the value being merged holds the only
    /// reference to its arrays and buffers and grows in place. With a second reference left in
    /// the optional, every occurrence of the field would copy all that earlier ones decoded, and
    /// a message that repeats the field in small pieces would cost time quadratic in its size.
    @inlinable
    public mutating func merge<M: ProtoMessage>(_ tag: ProtoTag, into message: inout M?) throws {
        var value = message.take() ?? M()
        defer { message = value }
        try merge(tag, into: &value)
    }

    /// Decodes an embedded message field as a new value (for repeated message fields).
    @inlinable
    public mutating func readMessage<M: ProtoMessage>(_ tag: ProtoTag, as type: M.Type = M.self) throws -> M {
        var message = M()
        try merge(tag, into: &message)
        return message
    }

    // MARK: Repeated scalars

    /// Appends a repeated scalar field's values, accepting both packed and unpacked encodings
    /// (a proto3 parser must accept both).
    @inlinable
    public mutating func readRepeated<Codec: ProtoScalarCodec>(
        _ codec: Codec.Type, _ tag: ProtoTag, into values: inout [Codec.Value]
    ) throws {
        if tag.wireType == .lengthDelimited {
            var packed = try readLengthDelimitedSlice()
            if let size = Codec.fixedSize {
                guard packed.readableBytes % size == 0 else {
                    throw ProtoDecodingError(
                        .invalidValue,
                        "packed \(Codec.protoTypeName) field \(tag.fieldNumber) has \(packed.readableBytes) bytes, not a multiple of \(size)")
                }
                Codec.readPackedFixed(from: &packed, into: &values)
            } else {
                var nested = ProtoReader(buffer: packed, limits: limits, depth: depth)
                // A varint takes at least one byte: this bounds the reservation by real input.
                values.reserveAdditionalCapacity(min(packed.readableBytes, 1 << 16))
                while !nested.isAtEnd {
                    values.append(try Codec.read(from: &nested))
                }
            }
        } else {
            try expect(tag, Codec.wireType, Codec.protoTypeName)
            values.append(try Codec.read(from: &self))
        }
    }

    // MARK: Maps

    /// Decodes one entry of a `map<string, V>` field where V is a message, and stores it.
    /// A missing key or value takes its default, as protobuf specifies; a repeated key wins last.
    @inlinable
    public mutating func readMapEntry<V: ProtoMessage>(_ tag: ProtoTag, into map: inout [String: V]) throws {
        try readMapEntry(tag, into: &map, defaultValue: V()) { reader, valueTag, value in
            try reader.merge(valueTag, into: &value)
        }
    }

    /// Decodes one entry of a `map<string, string>` field and stores it.
    @inlinable
    public mutating func readMapEntry(_ tag: ProtoTag, into map: inout [String: String]) throws {
        try readMapEntry(tag, into: &map, defaultValue: "") { reader, valueTag, value in
            value = try reader.readString(valueTag)
        }
    }

    @inlinable
    mutating func readMapEntry<V>(
        _ tag: ProtoTag, into map: inout [String: V], defaultValue: V,
        readValue: (inout ProtoReader, ProtoTag, inout V) throws -> Void
    ) throws {
        try expect(tag, .lengthDelimited, "map entry")
        let slice = try readLengthDelimitedSlice()
        guard depth + 1 <= limits.maxDepth else {
            throw ProtoDecodingError(.nestingTooDeep, "messages nested deeper than \(limits.maxDepth) levels")
        }
        var entry = ProtoReader(buffer: slice, limits: limits, depth: depth + 1)
        var key = ""
        var value = defaultValue
        while let entryTag = try entry.nextTag() {
            switch entryTag.fieldNumber {
            case 1: key = try entry.readString(entryTag)
            case 2: try readValue(&entry, entryTag, &value)
            default: try entry.skipField(entryTag)
            }
        }
        map[key] = value
    }

    // MARK: Unknown fields

    /// Skips the field whose tag was just read, groups included.
    @inlinable
    public mutating func skipField(_ tag: ProtoTag) throws {
        switch tag.wireType {
        case .varint: _ = try readVarint()
        case .fixed64: _ = try readRawFixed64()
        case .fixed32: _ = try readRawFixed32()
        case .lengthDelimited: _ = try readLengthDelimitedSlice()
        case .startGroup: try skipGroup(fieldNumber: tag.fieldNumber, depth: depth + 1)
        case .endGroup:
            throw ProtoDecodingError(.malformedGroup, "end-group tag for field \(tag.fieldNumber) without a start")
        }
    }

    @usableFromInline
    mutating func skipGroup(fieldNumber: Int, depth groupDepth: Int) throws {
        guard groupDepth <= limits.maxDepth else {
            throw ProtoDecodingError(.nestingTooDeep, "groups nested deeper than \(limits.maxDepth) levels")
        }
        while let tag = try nextTag() {
            switch tag.wireType {
            case .endGroup:
                guard tag.fieldNumber == fieldNumber else {
                    throw ProtoDecodingError(
                        .malformedGroup, "group \(fieldNumber) closed by an end-group tag for field \(tag.fieldNumber)")
                }
                return
            case .startGroup:
                try skipGroup(fieldNumber: tag.fieldNumber, depth: groupDepth + 1)
            default:
                try skipField(tag)
            }
        }
        throw ProtoDecodingError(.malformedGroup, "group \(fieldNumber) has no end-group tag")
    }

    /// Skips the field whose tag was just read and appends its bytes, tag included, to
    /// `unknownFields`, so that a message can be re-encoded without losing them.
    @inlinable
    public mutating func preserveUnknownField(_ tag: ProtoTag, in unknownFields: inout UnknownFields) throws {
        let start = tagStart
        try skipField(tag)
        // ByteBuffer's get methods only reach readable bytes; step back over the tag in a copy.
        var field = buffer
        field.moveReaderIndex(to: start)
        unknownFields.append(field.readSlice(length: buffer.readerIndex - start)!)
    }
}
