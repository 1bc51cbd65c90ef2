import NIOCore

/// Writes gRPC messages in their wire form (a 1-byte compressed flag, a 4-byte big-endian
/// length, the message), several into one buffer so they leave in as few DATA frames as
/// flow control allows.
///
/// Compression is per message and only when it pays: the framer must have a compressor (the
/// response's `grpc-encoding`), the caller must allow it for this message (doc/compression.md
/// lets an application turn it off per message, against CRIME/BEAST-style attacks), the
/// message must be at least `minimumCompressionSize` bytes, and the result must be smaller than
/// the message. Otherwise the message is sent as is with flag 0, which is always legal
/// ("A value of 0 indicates that no encoding of Message bytes has occurred").
///
/// Not `Sendable`: it may own a zlib stream and belongs to one HTTP/2 stream on one event loop.
public struct GRPCMessageFramer {
    /// Messages shorter than this are never compressed by default: deflate's framing (6 bytes
    /// for zlib, 18 for gzip) eats most of what it could save.
    public static let defaultMinimumCompressionSize = 64

    /// The largest message this framer sends (before compression).
    public let maxMessageSize: Int
    /// Messages shorter than this are sent uncompressed.
    public let minimumCompressionSize: Int
    /// The response's compression; nil sends everything uncompressed.
    public let encoding: GRPCCompression.Algorithm?

    private var compressor: GRPCCompression.Compressor?
    private var pending: ByteBuffer?
    private let allocator: ByteBufferAllocator

    /// A framer that compresses with `encoding` when that helps (nil or identity: never).
    /// `maxMessageSize` cannot exceed what the 4-byte length can say.
    public init(
        encoding: GRPCCompression.Algorithm? = nil,
        maxMessageSize: Int = Int(UInt32.max),
        minimumCompressionSize: Int = GRPCMessageFramer.defaultMinimumCompressionSize,
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) {
        self.encoding = encoding == .identity ? nil : encoding
        self.maxMessageSize = min(maxMessageSize, Int(UInt32.max))
        self.minimumCompressionSize = minimumCompressionSize
        self.allocator = allocator
    }

    /// Bytes framed and not yet taken by `flush()`.
    public var pendingByteCount: Int { pending?.readableBytes ?? 0 }

    /// Frames `message` after the messages already pending.
    /// - Parameter compress: whether this message may be compressed (it still is only when it
    ///   pays, see the type).
    /// - Throws: RESOURCE_EXHAUSTED "sent message larger than max (N vs. M)" when the message
    ///   exceeds `maxMessageSize`; nothing is framed then.
    public mutating func append(_ message: ByteBuffer, compress: Bool = true) throws(GRPCStatus) {
        // Taken out of `self` so that it stays uniquely referenced while written to.
        var buffer = pending ?? allocator.buffer(capacity: message.readableBytes + 5)
        pending = nil
        defer { pending = buffer.readableBytes > 0 ? buffer : nil }
        try frame(message, compress: compress, into: &buffer)
    }

    /// Frames a message that serializes itself (see `GRPCMessageEncodable`): written straight
    /// after its 5-byte prefix, with no intermediate buffer, when it is sent uncompressed.
    /// When it may be compressed it is serialized first, then framed like a `ByteBuffer`.
    public mutating func append(_ message: some GRPCMessageEncodable, compress: Bool = true) throws(GRPCStatus) {
        if let bytes = message.messageBytes {
            try append(bytes, compress: compress)
            return
        }
        if compress, compressorIfAny() != nil {
            var serialized = allocator.buffer(capacity: message.estimatedMessageSize)
            message.writeMessage(into: &serialized)
            try append(serialized, compress: true)
            return
        }
        var buffer = pending ?? allocator.buffer(capacity: message.estimatedMessageSize + 5)
        pending = nil
        defer { pending = buffer.readableBytes > 0 ? buffer : nil }
        let prefixIndex = buffer.writerIndex
        buffer.writeRepeatingByte(0, count: 5)  // flag 0 and the length, set below
        message.writeMessage(into: &buffer)
        let length = buffer.writerIndex - prefixIndex - 5
        guard length <= maxMessageSize else {
            buffer.moveWriterIndex(to: prefixIndex)
            throw GRPCStatus(code: .resourceExhausted, message: "sent message larger than max (\(length) vs. \(maxMessageSize))")
        }
        buffer.setInteger(UInt32(length), at: prefixIndex + 1)
    }

    /// Takes everything framed so far as one buffer; nil when nothing is pending.
    public mutating func flush() -> ByteBuffer? {
        defer { pending = nil }
        return pending
    }

    /// Appends the wire form of `message` to `buffer` (the work behind `append`, for callers
    /// that own the output buffer).
    public mutating func frame(_ message: ByteBuffer, compress: Bool, into buffer: inout ByteBuffer) throws(GRPCStatus) {
        let length = message.readableBytes
        guard length <= maxMessageSize else {
            throw GRPCStatus(code: .resourceExhausted, message: "sent message larger than max (\(length) vs. \(maxMessageSize))")
        }
        if compress, length >= minimumCompressionSize, let compressor = compressorIfAny() {
            let prefixIndex = buffer.writerIndex
            buffer.writeInteger(UInt8(1))
            buffer.writeInteger(UInt32(0))
            if let written = try? compressor.compress(message, into: &buffer), written < length {
                buffer.setInteger(UInt32(written), at: prefixIndex + 1)
                return
            }
            // Not smaller (or zlib failed): send the message as it is.
            buffer.moveWriterIndex(to: prefixIndex)
        }
        buffer.reserveCapacity(minimumWritableBytes: 5 + length)
        buffer.writeInteger(UInt8(0))
        buffer.writeInteger(UInt32(length))
        buffer.writeImmutableBuffer(message)
    }

    private mutating func compressorIfAny() -> GRPCCompression.Compressor? {
        guard let encoding else { return nil }
        if compressor == nil {
            compressor = try? GRPCCompression.Compressor(algorithm: encoding)
        }
        return compressor
    }
}

@available(*, unavailable, message: "a framer owns a zlib stream and stays on one event loop")
extension GRPCMessageFramer: Sendable {}
