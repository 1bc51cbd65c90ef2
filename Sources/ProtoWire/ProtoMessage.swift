import NIOCore

/// A protobuf message with a hand-written codec.
///
/// A conforming type decodes one field at a time in `decodeField` (unknown fields go to
/// `reader.skipField` or `reader.preserveUnknownField`) and writes itself in `encode`.
/// Decoding merges into the current value, which gives protobuf's rules for free: the last
/// occurrence of a scalar wins, repeated fields append, a repeated message field merges.
public protocol ProtoMessage: Sendable, Equatable {
    /// The fully-qualified protobuf name, e.g. `inference.ModelInferRequest`.
    static var protoMessageName: String { get }
    /// The message with every field at its default.
    init()
    /// Decodes one field whose tag has just been read.
    mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws
    /// Appends the message's fields (not a length prefix).
    func encode(to writer: inout ProtoWriter)
}

extension ProtoMessage {
    /// Decodes a whole message from `buffer`; the returned value may hold slices of it.
    ///
    /// - Throws: `ProtoDecodingError` naming the field path and the fault.
    @inlinable
    public init(decoding buffer: ByteBuffer, limits: ProtoLimits = .default) throws {
        self.init()
        var reader = try ProtoReader(buffer: buffer, limits: limits)
        try merge(from: &reader)
    }

    /// Decodes a whole message from bytes (copied once into a buffer).
    @inlinable
    public init<Bytes: Collection<UInt8>>(decodingBytes bytes: Bytes, limits: ProtoLimits = .default) throws {
        var buffer = ByteBufferAllocator().buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        try self.init(decoding: buffer, limits: limits)
    }

    /// Reads every remaining field of `reader` into this message.
    @inlinable
    public mutating func merge(from reader: inout ProtoReader) throws {
        while let tag = try reader.nextTag() {
            do {
                try decodeField(tag, from: &reader)
            } catch var error as ProtoDecodingError {
                error.path.insert(.init(message: Self.protoMessageName, fieldNumber: tag.fieldNumber), at: 0)
                throw error
            }
        }
    }

    /// The encoded message in a new buffer.
    @inlinable
    public func encoded(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var writer = ProtoWriter(buffer: allocator.buffer(capacity: 128))
        encode(to: &writer)
        return writer.buffer
    }

    /// The encoded message as an array of bytes.
    public func encodedBytes() -> [UInt8] {
        let buffer = encoded()
        return Array(buffer.readableBytesView)
    }
}
