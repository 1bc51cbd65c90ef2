/// Reading a message without materialising it: step into an embedded message in place, count
/// the elements of a repeated scalar field, step over a `bytes` value. Each method makes exactly
/// the checks, in the same order and with the same errors, as the decoding method it stands for
/// (`merge`, `readRepeated`, `readBytes`), so a scan accepts and rejects what a decode does.
extension ProtoReader {
    /// Reads the embedded message of the field whose tag was just read with `body`, in place
    /// (no nested reader, no slice), after the checks that `merge(_:into:)` makes: the wire type
    /// must be length-delimited, the length must lie within the message, and one more level must
    /// fit the depth limit. `body` sees the message's bytes as the whole input, one level deeper;
    /// afterwards the reader stands after them.
    @inlinable
    public mutating func readEmbeddedMessage<T>(_ tag: ProtoTag, _ body: (inout ProtoReader) throws -> T) throws -> T {
        try expect(tag, .lengthDelimited, "message")
        let length = try readLength()
        guard depth &+ 1 <= limits.maxDepth else { throw Self.nestingTooDeep(limits) }
        return try withNarrowedEnd(length: length, depth: 1, body)
    }

    /// Steps over a `bytes` field after the checks `readBytes` makes, without making the slice.
    @inlinable
    public mutating func skipBytes(_ tag: ProtoTag) throws {
        try expect(tag, .lengthDelimited, "bytes")
        position &+= try readLength()
    }

    /// How many values one occurrence of a repeated scalar field holds, packed or unpacked,
    /// without storing them: a packed fixed-width run by its length, a packed varint run by its
    /// terminal bytes, an unpacked value by reading it. Throws exactly what
    /// `readRepeated(_:_:into:)` throws for the same bytes.
    @inlinable
    public mutating func countRepeated<Codec: ProtoScalarCodec>(_ codec: Codec.Type, _ tag: ProtoTag) throws -> Int {
        if tag.wireType == .lengthDelimited {
            let length = try readLength()
            if let size = Codec.fixedSize {
                guard length % size == 0 else { throw Self.packedLengthNotMultiple(Codec.protoTypeName, tag, length, size) }
                position &+= length
                return length / size
            }
            return try countPackedVarints(length: length)
        }
        try expect(tag, Codec.wireType, Codec.protoTypeName)
        _ = try Codec.read(from: &self)
        return 1
    }

    /// Counts the varints of a packed run of `length` bytes at the current position and steps
    /// over it; the errors are `readVarint`'s for the first bad varint, as if each were read.
    @usableFromInline
    mutating func countPackedVarints(length: Int) throws -> Int {
        let outerEnd = end
        end = position &+ length
        defer { end = outerEnd }
        var count = 0
        // Eight bytes at a time: every byte without its high bit ends one varint. A varint can
        // only be faulty (over 10 bytes, or a tenth byte above 1) or legitimately long (a
        // negative int32 takes 10 bytes) when 9 or more continuation bytes come in a row; such
        // a varint, and the tail of the run, are read one by one with `readVarint`, which
        // throws the exact error. Terminal bytes are summed per byte lane (a portable popcount
        // costs more than the rest of the loop) and the lanes added up every 255 words.
        var varintStart = position  // where the varint that the next byte belongs to began
        var lanes: UInt64 = 0
        var wordsInLanes = 0
        while end &- position >= 8 {
            let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: position, as: UInt64.self))
            let terminals = ~word & 0x8080_8080_8080_8080
            let pending = position &- varintStart  // continuation bytes already seen
            if terminals == 0 ? pending &+ 8 >= 9 : pending &+ terminals.trailingZeroBitCount / 8 >= 9 {
                position = varintStart
                _ = try readVarint()
                count &+= 1
                varintStart = position
                continue
            }
            position &+= 8
            if terminals != 0 {
                varintStart = position &- terminals.leadingZeroBitCount / 8
                lanes &+= terminals &>> 7
                wordsInLanes &+= 1
                if wordsInLanes == 255 {
                    count &+= Self.sumOfByteLanes(lanes)
                    lanes = 0
                    wordsInLanes = 0
                }
            }
        }
        count &+= Self.sumOfByteLanes(lanes)
        position = varintStart
        while position < end {
            _ = try readVarint()
            count &+= 1
        }
        return count
    }

    /// The sum of the eight bytes of `lanes`, each at most 255.
    @inline(__always)
    static func sumOfByteLanes(_ lanes: UInt64) -> Int {
        let pairs = (lanes & 0x00FF_00FF_00FF_00FF) &+ ((lanes &>> 8) & 0x00FF_00FF_00FF_00FF)
        return Int(truncatingIfNeeded: (pairs &* 0x0001_0001_0001_0001) &>> 48)
    }
}
