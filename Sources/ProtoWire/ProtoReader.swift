import NIOCore

/// Reads the fields of one protobuf message from a `ByteBuffer`, without copying it.
///
/// A reader owns a slice of the incoming buffer. Length-delimited values (`bytes`, embedded
/// messages) come back as slices of the same storage, so tensor payloads are never copied.
/// Every read checks the wire type against the field's declared type, bounds every length by
/// the bytes that actually remain, and counts nesting depth, so hostile input ends in a
/// `ProtoDecodingError`, never a trap or an allocation sized by the input's claims.
public struct ProtoReader {
    // The reader walks the input with a raw pointer (`base` + `position`, up to `end`) instead
    // of a ByteBuffer method per value: every ByteBuffer read is a dynamic exclusivity check on
    // its storage class, plus bounds and index bookkeeping, and on a small request those cost
    // more than the decoding itself. ByteBuffer slices are made only for values that leave the
    // reader as `ByteBuffer`s (`bytes` fields, unknown fields). Embedded messages are read by
    // narrowing `end` and raising `depth` on this same reader, not by a nested reader, so a
    // nested message costs no retain or release of the storage.

    /// The whole input. It owns the storage that `base` points into and is never mutated, so
    /// the memory stays where it is for the reader's whole life (ByteBuffer moves bytes only
    /// when a uniquely referenced buffer is written to, and this copy is a second reference).
    @usableFromInline
    let storage: ByteBuffer
    /// The first readable byte of `storage`; every offset below is relative to it.
    @usableFromInline
    let base: UnsafeRawPointer
    /// The offset of the next byte to read.
    @usableFromInline
    var position: Int
    /// The offset just past the message being read (the innermost one, inside an embedded
    /// message or a packed run).
    @usableFromInline
    var end: Int
    /// The offset of the tag most recently read.
    @usableFromInline
    var tagStart: Int
    /// The limits in force for this message and everything nested in it.
    public let limits: ProtoLimits
    /// How many embedded messages or groups enclose the message being read.
    @inlinable
    public var depth: Int { nestingDepth }
    @usableFromInline
    var nestingDepth: Int

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
        self.storage = buffer
        // The pointer outlives the closure: `storage` holds a strong reference to the memory
        // (what NIO asks of a caller that keeps the pointer; see
        // `withUnsafeReadableBytesWithStorageManagement`) and nothing writes through it.
        self.base = buffer.withUnsafeReadableBytesWithStorageManagement { bytes, _ in
            // An empty buffer may have no address; nothing is ever loaded from it then.
            UnsafeRawPointer(bytes.baseAddress) ?? UnsafeRawPointer(bitPattern: 0x10)!
        }
        self.position = 0
        self.end = buffer.readableBytes
        self.tagStart = 0
        self.limits = limits
        self.nestingDepth = depth
    }

    /// The bytes not yet read in the message being read, as a slice of the input (no copy).
    public var buffer: ByteBuffer {
        slice(from: position, length: end - position)
    }

    /// True when every byte of the message being read has been read.
    @inlinable
    public var isAtEnd: Bool { position >= end }

    /// The bytes at `offset..<offset + length` as a slice of the input's storage.
    @inlinable
    func slice(from offset: Int, length: Int) -> ByteBuffer {
        // In bounds by construction: 0 <= offset <= offset + length <= end <= readable bytes.
        storage.getSlice(at: storage.readerIndex &+ offset, length: length)!
    }

    // MARK: Tags

    /// The next field's tag, or nil at the end of the message.
    @inlinable
    public mutating func nextTag() throws -> ProtoTag? {
        if position >= end { return nil }
        tagStart = position
        let raw = try readVarint()
        guard raw <= UInt64(UInt32.max) else { throw Self.tagOverflow(raw) }
        guard let wireType = WireType(rawValue: UInt8(truncatingIfNeeded: raw & 7)) else {
            throw Self.invalidWireType(raw)
        }
        let fieldNumber = Int(truncatingIfNeeded: raw >> 3)
        guard fieldNumber > 0 else { throw Self.fieldNumberZero() }
        return ProtoTag(fieldNumber: fieldNumber, wireType: wireType)
    }

    /// Checks that `tag` carries the wire type of a field declared as `typeName`.
    @inlinable
    public func expect(_ tag: ProtoTag, _ wireType: WireType, _ typeName: StaticString) throws {
        guard tag.wireType == wireType else { throw Self.wrongWireType(tag, wireType, typeName) }
    }

    // MARK: Primitive encodings

    /// A base-128 varint of at most 10 bytes whose value fits in 64 bits.
    @inlinable
    public mutating func readVarint() throws -> UInt64 {
        // Tags, lengths of small fields and small numbers take one byte: that case stays inline.
        if position < end {
            let byte = base.load(fromByteOffset: position, as: UInt8.self)
            if byte < 0x80 {
                position &+= 1
                return UInt64(byte)
            }
        }
        return try readLongVarint()
    }

    /// `readVarint` for values of two bytes or more, and for the errors.
    @usableFromInline
    mutating func readLongVarint() throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        var index = position
        while index < end {
            let byte = base.load(fromByteOffset: index, as: UInt8.self)
            index += 1
            if index - position == 10 {
                // The tenth byte carries bit 63 only.
                guard byte & 0x80 == 0 else {
                    throw ProtoDecodingError(.varintTooLong, "varint longer than 10 bytes")
                }
                guard byte <= 1 else {
                    throw ProtoDecodingError(.varintOverflow, "varint value does not fit in 64 bits")
                }
            }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 {
                position = index
                return result
            }
            shift += 7
        }
        throw ProtoDecodingError(.truncated, "buffer ends inside a varint")
    }

    /// A fixed-width little-endian integer; `typeName` names it in the truncation error.
    @inlinable
    mutating func readLittleEndian<T: FixedWidthInteger>(_ type: T.Type, _ typeName: StaticString) throws -> T {
        let size = MemoryLayout<T>.size
        guard end &- position >= size else { throw Self.truncatedFixed(typeName) }
        let value = base.loadUnaligned(fromByteOffset: position, as: T.self)
        position &+= size
        return T(littleEndian: value)
    }

    /// Four little-endian bytes.
    @inlinable
    public mutating func readRawFixed32() throws -> UInt32 {
        try readLittleEndian(UInt32.self, "fixed32")
    }

    /// Eight little-endian bytes.
    @inlinable
    public mutating func readRawFixed64() throws -> UInt64 {
        try readLittleEndian(UInt64.self, "fixed64")
    }

    /// A length prefix, checked against the bytes that remain in the message being read.
    @inlinable @inline(__always)
    mutating func readLength() throws -> Int {
        let length = try readVarint()
        guard length <= UInt64(end &- position) else { throw Self.lengthPastEnd(length, end &- position) }
        return Int(truncatingIfNeeded: length)
    }

    /// A length prefix and that many bytes, as a slice of the same storage (no copy).
    @inlinable
    public mutating func readLengthDelimitedSlice() throws -> ByteBuffer {
        let length = try readLength()
        let value = slice(from: position, length: length)
        position &+= length
        return value
    }

    /// Reads an embedded message or packed run of `length` bytes at the current position with
    /// `body`, as if those bytes were the whole input; afterwards the reader stands after them.
    @inlinable
    mutating func withNarrowedEnd<T>(length: Int, depth extraDepth: Int, _ body: (inout ProtoReader) throws -> T) rethrows -> T {
        let outerEnd = end
        end = position &+ length
        nestingDepth &+= extraDepth
        defer {
            position = end
            end = outerEnd
            nestingDepth &-= extraDepth
        }
        return try body(&self)
    }

    // MARK: Errors (out of line: the hot paths only branch to them)

    @usableFromInline @inline(never)
    static func tagOverflow(_ raw: UInt64) -> ProtoDecodingError {
        ProtoDecodingError(.varintOverflow, "tag \(raw) does not fit in 32 bits")
    }

    @usableFromInline @inline(never)
    static func invalidWireType(_ raw: UInt64) -> ProtoDecodingError {
        ProtoDecodingError(.invalidWireType, "invalid wire type \(raw & 7) in tag \(raw)")
    }

    @usableFromInline @inline(never)
    static func fieldNumberZero() -> ProtoDecodingError {
        ProtoDecodingError(.invalidFieldNumber, "field number 0 is not allowed")
    }

    @usableFromInline @inline(never)
    static func wrongWireType(_ tag: ProtoTag, _ wireType: WireType, _ typeName: StaticString) -> ProtoDecodingError {
        ProtoDecodingError(
            .wrongWireType,
            "field \(tag.fieldNumber) is declared \(typeName) (wire type \(wireType)) but arrived as \(tag.wireType)")
    }

    @usableFromInline @inline(never)
    static func truncatedFixed(_ typeName: StaticString) -> ProtoDecodingError {
        ProtoDecodingError(.truncated, "buffer ends inside a \(typeName) value")
    }

    @usableFromInline @inline(never)
    static func lengthPastEnd(_ length: UInt64, _ remaining: Int) -> ProtoDecodingError {
        ProtoDecodingError(
            .lengthPastEnd, "length \(length) runs past the end of the message (\(remaining) bytes left)")
    }

    @usableFromInline @inline(never)
    static func nestingTooDeep(_ limits: ProtoLimits) -> ProtoDecodingError {
        ProtoDecodingError(.nestingTooDeep, "messages nested deeper than \(limits.maxDepth) levels")
    }

    @usableFromInline @inline(never)
    static func packedLengthNotMultiple(_ typeName: StaticString, _ tag: ProtoTag, _ length: Int, _ size: Int) -> ProtoDecodingError {
        ProtoDecodingError(
            .invalidValue, "packed \(typeName) field \(tag.fieldNumber) has \(length) bytes, not a multiple of \(size)")
    }

    @usableFromInline @inline(never)
    static func invalidUTF8(_ tag: ProtoTag) -> ProtoDecodingError {
        ProtoDecodingError(.invalidUTF8, "string field \(tag.fieldNumber) is not valid UTF-8")
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
        let length = try readLength()
        // Read the characters in place: a slice would cost a retain and a release of the storage.
        let bytes = UnsafeRawBufferPointer(start: base + position, count: length)
        let string = isShortASCII(at: position, length: length)
            ? Self.asciiString(bytes) : Self.validatedUTF8String(bytes)
        guard let string else { throw Self.invalidUTF8(tag) }
        position &+= length
        return string
    }

    /// True when the `length` bytes at `offset` are at most eight and all ASCII: one load
    /// when eight bytes can be read there without leaving the input, else false (the caller
    /// then takes the general path, which checks again).
    @inlinable @inline(__always)
    func isShortASCII(at offset: Int, length: Int) -> Bool {
        guard length <= 8, storage.readableBytes &- offset >= 8 else { return false }
        let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        // The high bit of each of the first `length` bytes; the bytes after them are not ours.
        let highBits: UInt64 = 0x8080_8080_8080_8080 & (length == 8 ? ~0 : (1 &<< (UInt64(length) &* 8)) &- 1)
        return word & highBits == 0
    }

    /// The String of bytes already known to be ASCII (so valid UTF-8).
    @usableFromInline
    static func asciiString(_ raw: UnsafeRawBufferPointer) -> String {
        // Of the initializers that take bytes as they are, this one costs the least; it checks
        // them too, so a wrong ASCII test could not make an invalid String.
        String(unsafeUninitializedCapacity: raw.count) { destination in
            if let source = raw.baseAddress, let target = destination.baseAddress {
                target.initialize(from: source.assumingMemoryBound(to: UInt8.self), count: raw.count)
            }
            return raw.count
        }
    }

    /// A `string` field whose value is usually one of a few known spellings (a tensor datatype,
    /// say). `knownValue` sees the field's bytes and returns the String they spell when it
    /// knows it (it must spell exactly those bytes), or nil; unknown values are read and
    /// validated as `readString` reads them. A known value costs no UTF-8 validation and no
    /// String construction.
    @inlinable
    public mutating func readString(
        _ tag: ProtoTag, knownValue: (UnsafeRawBufferPointer) -> String?
    ) throws -> String {
        try expect(tag, .lengthDelimited, "string")
        let length = try readLength()
        let bytes = UnsafeRawBufferPointer(start: base + position, count: length)
        guard let string = knownValue(bytes) ?? Self.validatedUTF8String(bytes) else { throw Self.invalidUTF8(tag) }
        position &+= length
        return string
    }

    /// The bytes as a String, or nil when they are not valid UTF-8.
    @usableFromInline
    static func validatedUTF8String(_ raw: UnsafeRawBufferPointer) -> String? {
        // Names, versions, ids and datatypes are ASCII in practice, and ASCII is valid UTF-8 as
        // it stands. String(validating:as:) goes through an unspecialised generic in the standard
        // library (a generic-metadata lookup per call) that costs more than the whole field.
        if isASCII(raw) { return asciiString(raw) }
        return String(validating: raw.assumingMemoryBound(to: UInt8.self), as: UTF8.self)
    }

    /// True when no byte has its high bit set; eight bytes at a time.
    @usableFromInline
    static func isASCII(_ raw: UnsafeRawBufferPointer) -> Bool {
        guard let start = raw.baseAddress else { return true }
        let count = raw.count
        var index = 0
        var bits: UInt64 = 0
        while index &+ 8 <= count {
            bits |= start.loadUnaligned(fromByteOffset: index, as: UInt64.self)
            index &+= 8
        }
        while index < count {
            bits |= UInt64(start.load(fromByteOffset: index, as: UInt8.self))
            index &+= 1
        }
        return bits & 0x8080_8080_8080_8080 == 0
    }

    /// Decodes an embedded message field into `message`, merging with what it already holds
    /// (protobuf's rule for a singular message field that occurs more than once).
    @inlinable
    public mutating func merge<M: ProtoMessage>(_ tag: ProtoTag, into message: inout M) throws {
        try expect(tag, .lengthDelimited, "message")
        let length = try readLength()
        guard depth &+ 1 <= limits.maxDepth else { throw Self.nestingTooDeep(limits) }
        try withNarrowedEnd(length: length, depth: 1) { nested in
            try message.merge(from: &nested)
        }
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

    /// Decodes an embedded message field as a new element at the end of `messages` (a repeated
    /// message field), decoding it in place rather than moving a finished value into the array.
    /// The first element reserves room for a few, so that a message with two or three
    /// occurrences grows its array once, not at every append.
    @inlinable
    public mutating func appendMessage<M: ProtoMessage>(_ tag: ProtoTag, to messages: inout [M]) throws {
        try expect(tag, .lengthDelimited, "message")
        let length = try readLength()
        guard depth &+ 1 <= limits.maxDepth else { throw Self.nestingTooDeep(limits) }
        if messages.capacity == 0 { messages.reserveCapacity(4) }
        messages.append(M())
        let last = messages.count &- 1
        do {
            try withNarrowedEnd(length: length, depth: 1) { nested in
                try messages[last].merge(from: &nested)
            }
        } catch {
            // A field that fails to decode adds nothing, as `append(try readMessage(tag))` would.
            messages.removeLast()
            throw error
        }
    }

    /// A `bytes` field appended to a repeated `bytes` field, as a slice of the incoming buffer;
    /// the first element reserves room for a few, as `appendMessage` does.
    @inlinable
    public mutating func appendBytes(_ tag: ProtoTag, to values: inout [ByteBuffer]) throws {
        let value = try readBytes(tag)
        if values.capacity == 0 { values.reserveCapacity(4) }
        values.append(value)
    }

    // MARK: Repeated scalars

    /// Appends a repeated scalar field's values, accepting both packed and unpacked encodings
    /// (a proto3 parser must accept both).
    @inlinable
    public mutating func readRepeated<Codec: ProtoScalarCodec>(
        _ codec: Codec.Type, _ tag: ProtoTag, into values: inout [Codec.Value]
    ) throws {
        if tag.wireType == .lengthDelimited {
            let length = try readLength()
            if let size = Codec.fixedSize {
                guard length % size == 0 else { throw Self.packedLengthNotMultiple(Codec.protoTypeName, tag, length, size) }
                Codec.readPackedFixed(UnsafeRawBufferPointer(start: base + position, count: length), into: &values)
                position &+= length
            } else {
                // The run is read as if it were the whole message.
                let outerEnd = end
                end = position &+ length
                defer { end = outerEnd }
                // A varint takes at least one byte: this bounds the reservation by real input.
                values.reserveAdditionalCapacity(min(length, 1 << 16))
                while position < end {
                    values.append(try Codec.read(from: &self))
                }
            }
        } else {
            try expect(tag, Codec.wireType, Codec.protoTypeName)
            values.append(try Codec.read(from: &self))
        }
    }

    /// `readRepeated` into any range-replaceable collection of the codec's values (a shape
    /// stored inline, say), packed or unpacked; values are appended one at a time.
    @inlinable
    public mutating func readRepeated<Codec: ProtoScalarCodec, Values: RangeReplaceableCollection>(
        _ codec: Codec.Type, _ tag: ProtoTag, into values: inout Values
    ) throws where Values.Element == Codec.Value {
        if tag.wireType == .lengthDelimited {
            let length = try readLength()
            if let size = Codec.fixedSize, length % size != 0 {
                throw Self.packedLengthNotMultiple(Codec.protoTypeName, tag, length, size)
            }
            // The run is read as if it were the whole message.
            let outerEnd = end
            end = position &+ length
            defer { end = outerEnd }
            while position < end {
                values.append(try Codec.read(from: &self))
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
        let length = try readLength()
        guard depth &+ 1 <= limits.maxDepth else { throw Self.nestingTooDeep(limits) }
        var key = ""
        var value = defaultValue
        try withNarrowedEnd(length: length, depth: 1) { entry in
            while let entryTag = try entry.nextTag() {
                switch entryTag.fieldNumber {
                case 1: key = try entry.readString(entryTag)
                case 2: try readValue(&entry, entryTag, &value)
                default: try entry.skipField(entryTag)
                }
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
        case .lengthDelimited: position &+= try readLength()
        case .startGroup: try skipGroup(fieldNumber: tag.fieldNumber, depth: depth &+ 1)
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
        unknownFields.append(slice(from: start, length: position &- start))
    }
}
