import NIOCore

/// Cuts the bytes of a gRPC stream's DATA frames into messages (PROTOCOL-HTTP2.md,
/// Length-Prefixed-Message: a 1-byte compressed flag, a 4-byte big-endian length, the message).
///
/// Feed it with `append` as DATA frames arrive, split anywhere, and pull messages with
/// `nextMessage()` until it returns nil. What it promises:
/// - A message that lies within one appended buffer comes out as a slice of it, without a
///   copy; a message spread over several buffers is copied once, into a buffer of its size,
///   and only when all its bytes are there (memory held is what arrived, never what a length
///   prefix claims).
/// - A length above `maxMessageSize` fails with RESOURCE_EXHAUSTED as soon as the prefix is
///   read, before any of the body is kept.
/// - A compressed message (flag 1) is inflated with the stream's `grpc-encoding`, its output
///   bounded by the same maximum (a zip bomb fails with RESOURCE_EXHAUSTED, having used at
///   most `maxMessageSize + 1` bytes). Flag 1 without an encoding, or a flag other than 0 or
///   1, fails with INTERNAL.
/// - After a failure every call throws the same status; the stream cannot be resynchronised.
///
/// Not `Sendable`: it owns a zlib stream and belongs to one HTTP/2 stream on one event loop.
public struct GRPCMessageDeframer {
    /// grpc-core's default maximum receive message size: 4 MiB.
    public static let defaultMaxMessageSize = 4 * 1024 * 1024

    /// The largest message accepted, compressed on the wire or decompressed.
    public let maxMessageSize: Int
    /// The stream's `grpc-encoding`; nil when the peer sent none.
    public let encoding: GRPCCompression.Algorithm?

    private enum State {
        case prefix
        case body(compressed: Bool, length: Int)
        case failed(GRPCStatus)
    }

    private var state: State = .prefix
    private var chunks = ByteBufferQueue()
    private var bufferedBytes = 0
    private var decompressor: GRPCCompression.Decompressor?
    private let allocator: ByteBufferAllocator

    /// A deframer for a stream whose messages are compressed with `encoding` when flagged
    /// (nil: the stream declared no `grpc-encoding`).
    public init(
        maxMessageSize: Int = GRPCMessageDeframer.defaultMaxMessageSize,
        encoding: GRPCCompression.Algorithm? = nil,
        allocator: ByteBufferAllocator = ByteBufferAllocator()
    ) {
        precondition(maxMessageSize >= 0, "maxMessageSize must not be negative")
        self.maxMessageSize = maxMessageSize
        self.encoding = encoding
        self.allocator = allocator
    }

    /// Adds the bytes of one DATA frame (any part of any number of messages). After a failure
    /// the bytes are dropped.
    public mutating func append(_ bytes: ByteBuffer) {
        guard bytes.readableBytes > 0 else { return }
        if case .failed = state { return }
        chunks.append(bytes)
        bufferedBytes += bytes.readableBytes
    }

    /// The storage the buffered bytes keep alive (slices keep their whole buffer).
    var heldStorageBytes: Int {
        (0..<chunks.count).reduce(0) { $0 + chunks.storageCapacity(at: $1) }
    }

    /// The bytes received but not yet returned as messages.
    public var bufferedByteCount: Int { bufferedBytes }

    /// Whether part of a message has arrived and the rest has not. Meaningful once
    /// `nextMessage()` has returned nil: at end of stream that is a truncated message.
    public var hasPartialMessage: Bool {
        switch state {
        case .prefix: return bufferedBytes > 0
        case .body: return true
        case .failed: return false
        }
    }

    /// The next complete message, decompressed if it was compressed; nil when more bytes are
    /// needed.
    /// - Throws: RESOURCE_EXHAUSTED or INTERNAL as described on the type; again on every
    ///   later call.
    public mutating func nextMessage() throws(GRPCStatus) -> ByteBuffer? {
        while true {
            switch state {
            case .failed(let status):
                throw status
            case .prefix:
                guard bufferedBytes >= 5 else {
                    compactWaitingBytes()
                    return nil
                }
                let (flag, length) = readPrefix()
                do throws(GRPCStatus) {
                    state = .body(compressed: try checkFlag(flag), length: try checkLength(length))
                } catch {
                    fail(error)
                    throw error
                }
            case .body(let compressed, let length):
                guard bufferedBytes >= length else {
                    compactWaitingBytes()
                    return nil
                }
                let message = readBody(length: length)
                state = .prefix
                guard compressed else { return message }
                do throws(GRPCStatus) {
                    return try decompress(message)
                } catch {
                    fail(error)
                    throw error
                }
            }
        }
    }

    /// Checks that the stream did not end inside a message. Call at END_STREAM, once
    /// `nextMessage()` has returned nil.
    /// - Throws: INTERNAL "stream ended inside a message", or an earlier failure.
    public mutating func finish() throws(GRPCStatus) {
        if case .failed(let status) = state { throw status }
        guard hasPartialMessage else { return }
        let status = GRPCStatus(
            code: .internalError,
            message: "stream ended inside a message (\(describePartial()))"
        )
        fail(status)
        throw status
    }

    // MARK: - Private

    /// Copies the bytes that wait for the rest of their message out of the buffers they
    /// arrived in, when those buffers are mostly other data. DATA chunks are slices of the
    /// connection's read buffers (no copy on the way in); a few bytes of a message that
    /// arrives slowly must not pin a whole read buffer each, or a peer could hold far more
    /// memory than it sent (flow control counts only the bytes).
    private mutating func compactWaitingBytes() {
        guard bufferedBytes > 0, bufferedBytes < 64 * 1024 else { return }
        guard heldStorageBytes > 2 * bufferedBytes else { return }
        var compacted = allocator.buffer(capacity: bufferedBytes)
        while var chunk = chunks.removeFirst() {
            compacted.writeBuffer(&chunk)
        }
        chunks.append(compacted)
    }

    private mutating func fail(_ status: GRPCStatus) {
        state = .failed(status)
        chunks.removeAll()
        bufferedBytes = 0
    }

    private func describePartial() -> String {
        if case .body(_, let length) = state {
            return "\(bufferedBytes) of \(length) bytes received"
        }
        return "\(bufferedBytes) of 5 prefix bytes received"
    }

    private mutating func readPrefix() -> (UInt8, UInt32) {
        if chunks.firstReadableBytes >= 5 {
            let flag = chunks.withFirst { $0.readInteger(as: UInt8.self) }!
            let length = chunks.withFirst { $0.readInteger(as: UInt32.self) }!
            consumed(5)
            return (flag, length)
        }
        var bytes = (UInt8(0), UInt32(0))
        for index in 0..<5 {
            let byte = chunks.withFirst { $0.readInteger(as: UInt8.self) }!
            consumed(1)
            if index == 0 {
                bytes.0 = byte
            } else {
                bytes.1 = bytes.1 << 8 | UInt32(byte)
            }
        }
        return bytes
    }

    private mutating func readBody(length: Int) -> ByteBuffer {
        if length == 0 {
            return ByteBuffer()
        }
        if chunks.firstReadableBytes >= length {
            let slice = chunks.withFirst { $0.readSlice(length: length) }!
            consumed(length)
            return slice
        }
        var message = allocator.buffer(capacity: length)
        while message.readableBytes < length {
            let take = min(length - message.readableBytes, chunks.firstReadableBytes)
            var piece = chunks.withFirst { $0.readSlice(length: take) }!
            message.writeBuffer(&piece)
            consumed(take)
        }
        return message
    }

    /// Accounts for `count` bytes read from the first chunk, dropping it once empty.
    private mutating func consumed(_ count: Int) {
        bufferedBytes -= count
        if chunks.firstReadableBytes == 0 {
            chunks.removeFirst()
        }
    }

    private func checkFlag(_ flag: UInt8) throws(GRPCStatus) -> Bool {
        switch flag {
        case 0:
            return false
        case 1:
            guard let encoding else {
                throw GRPCStatus(code: .internalError, message: "compressed flag set by client but no grpc-encoding")
            }
            guard encoding != .identity else {
                throw GRPCStatus(code: .internalError, message: "compressed flag set by client but grpc-encoding is identity")
            }
            return true
        default:
            throw GRPCStatus(code: .internalError, message: "invalid compressed flag \(flag) in message prefix (must be 0 or 1)")
        }
    }

    private func checkLength(_ length: UInt32) throws(GRPCStatus) -> Int {
        guard UInt64(length) <= UInt64(maxMessageSize) else {
            throw GRPCStatus(
                code: .resourceExhausted,
                message: "received message larger than max (\(length) vs. \(maxMessageSize))"
            )
        }
        return Int(length)
    }

    private mutating func decompress(_ message: ByteBuffer) throws(GRPCStatus) -> ByteBuffer {
        guard let encoding else { preconditionFailure("checkFlag lets compressed messages through only with an encoding") }
        do throws(GRPCCompression.ZlibError) {
            if decompressor == nil {
                decompressor = try GRPCCompression.Decompressor(algorithm: encoding)
            }
            return try decompressor!.decompress(message, limit: maxMessageSize, allocator: allocator)
        } catch {
            if case .outputLimitExceeded = error.kind {
                throw GRPCStatus(
                    code: .resourceExhausted,
                    message: "received message larger than max after decompression (more than \(maxMessageSize) bytes)"
                )
            }
            throw GRPCStatus(code: .internalError, message: "could not decompress \(encoding) message: \(error.message)")
        }
    }
}

@available(*, unavailable, message: "a deframer owns a zlib stream and stays on one event loop")
extension GRPCMessageDeframer: Sendable {}
