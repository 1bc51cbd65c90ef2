import CZlib
import NIOCore

/// Message compression for gRPC (doc/compression.md): the algorithms Switchyard knows and the
/// zlib engines that run them.
///
/// Each message is compressed on its own ("Compression contexts are NOT maintained over
/// message boundaries"): the engines reset their `z_stream` before every message, so one
/// engine serves a whole stream (or connection) without allocating per message.
public enum GRPCCompression {
    /// A `grpc-encoding` content-coding. Switchyard implements `identity`, `deflate` (the zlib
    /// format, RFC 1950, as grpc-core sends it) and `gzip` (RFC 1952).
    public struct Algorithm: Sendable, Hashable, CustomStringConvertible {
        /// The name in `grpc-encoding` and `grpc-accept-encoding`.
        public let name: String

        private init(_ name: String) { self.name = name }

        /// No compression.
        public static let identity = Algorithm("identity")
        /// zlib-wrapped deflate (zlib windowBits 15).
        public static let deflate = Algorithm("deflate")
        /// gzip-wrapped deflate (zlib windowBits 16 + 15).
        public static let gzip = Algorithm("gzip")

        /// Every algorithm this build implements, in the order advertised.
        public static let all: [Algorithm] = [.identity, .deflate, .gzip]

        /// The algorithm named `name` (content-codings are case-insensitive, RFC 9110 §8.4.1),
        /// or nil when Switchyard does not implement it.
        public init?(name: some StringProtocol) {
            guard let algorithm = ASCIIBytes.withUTF8(name, { Algorithm(nameBytes: $0) }) else { return nil }
            self = algorithm
        }

        /// `init(name:)` on the name's bytes (request headers are matched in place, without a
        /// lower-cased copy).
        init?(nameBytes bytes: UnsafeBufferPointer<UInt8>) {
            switch bytes.count {
            case 4 where ASCIIBytes.equalsCaseInsensitive(bytes, "gzip"): self = .gzip
            case 7 where ASCIIBytes.equalsCaseInsensitive(bytes, "deflate"): self = .deflate
            case 8 where ASCIIBytes.equalsCaseInsensitive(bytes, "identity"): self = .identity
            default: return nil
            }
        }

        public var description: String { name }

        /// zlib's windowBits for this format; nil for identity.
        var windowBits: Int32? {
            switch name {
            case "deflate": return 15
            case "gzip": return 16 + 15
            default: return nil
            }
        }
    }

    /// A compression or decompression failure, with zlib's own message when zlib reported it.
    public struct ZlibError: Error, Sendable, Hashable, CustomStringConvertible {
        /// What went wrong.
        public enum Kind: Sendable, Hashable {
            /// zlib returned this error code (Z_DATA_ERROR for corrupt input, Z_MEM_ERROR, …).
            case zlib(code: Int32)
            /// Decompressed output would exceed the caller's limit (a zip bomb, or just large).
            case outputLimitExceeded(limit: Int)
            /// The compressed input ended before the compressed stream did.
            case truncatedInput
            /// Bytes follow the end of the compressed stream.
            case trailingInput
            /// The algorithm has no zlib engine (identity).
            case unsupportedAlgorithm
        }

        /// What went wrong.
        public let kind: Kind
        /// A sentence for logs and `grpc-message`, with zlib's message when it gave one.
        public let message: String

        public var description: String { message }
    }

    /// Compresses messages with one `z_stream` in deflate mode, owned by this object and freed
    /// in `deinit`. Not thread-safe: it belongs to one stream on one event loop.
    public final class Compressor {
        /// The algorithm this compressor writes.
        public let algorithm: Algorithm
        private let stream: UnsafeMutablePointer<z_stream>

        /// A compressor for `algorithm` (deflate or gzip) at zlib `level` (0–9, or -1 for
        /// zlib's default, 6).
        /// - Throws: `.unsupportedAlgorithm` for identity; `.zlib` when zlib cannot initialise.
        public init(algorithm: Algorithm, level: Int32 = Z_DEFAULT_COMPRESSION) throws(ZlibError) {
            guard let windowBits = algorithm.windowBits else {
                throw ZlibError(kind: .unsupportedAlgorithm, message: "'\(algorithm)' is not a zlib format")
            }
            let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
            stream.initialize(to: z_stream())
            let status = switchyard_deflateInit2(stream, level, Z_DEFLATED, windowBits, 8, Z_DEFAULT_STRATEGY)
            guard status == Z_OK else {
                let error = ZlibError(zlibStatus: status, stream: stream, operation: "deflateInit2")
                stream.deinitialize(count: 1)
                stream.deallocate()
                throw error
            }
            self.algorithm = algorithm
            self.stream = stream
        }

        deinit {
            deflateEnd(stream)
            stream.deinitialize(count: 1)
            stream.deallocate()
        }

        /// Compresses all readable bytes of `input` as one complete stream and appends them to
        /// `output`. Returns the number of bytes appended.
        @discardableResult
        public func compress(_ input: ByteBuffer, into output: inout ByteBuffer) throws(ZlibError) -> Int {
            guard input.readableBytes <= Int(UInt32.max) else {
                throw ZlibError(kind: .zlib(code: Z_BUF_ERROR), message: "message too large to compress")
            }
            deflateReset(stream)
            let stream = self.stream
            var status = Z_OK
            var appended = 0
            input.withUnsafeReadableBytes { inputBytes in
                stream.pointee.next_in = inputBytes.baseAddress.map {
                    UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: Bytef.self))
                }
                stream.pointee.avail_in = uInt(inputBytes.count)
                var space = Int(deflateBound(stream, uLong(inputBytes.count)))
                repeat {
                    appended += output.writeWithUnsafeMutableBytes(minimumWritableBytes: space) { outputBytes in
                        let offered = min(outputBytes.count, Int(UInt32.max))
                        stream.pointee.next_out = outputBytes.baseAddress!.assumingMemoryBound(to: Bytef.self)
                        stream.pointee.avail_out = uInt(offered)
                        status = deflate(stream, Z_FINISH)
                        return offered - Int(stream.pointee.avail_out)
                    }
                    space = 4096
                } while status == Z_OK || status == Z_BUF_ERROR
                stream.pointee.next_in = nil
                stream.pointee.next_out = nil
            }
            guard status == Z_STREAM_END else {
                throw ZlibError(zlibStatus: status, stream: stream, operation: "deflate")
            }
            return appended
        }
    }

    /// Decompresses messages with one `z_stream` in inflate mode, owned by this object and
    /// freed in `deinit`. Not thread-safe: it belongs to one stream on one event loop.
    public final class Decompressor {
        /// The algorithm this decompressor reads.
        public let algorithm: Algorithm
        private let stream: UnsafeMutablePointer<z_stream>

        /// A decompressor for `algorithm` (deflate or gzip).
        /// - Throws: `.unsupportedAlgorithm` for identity; `.zlib` when zlib cannot initialise.
        public init(algorithm: Algorithm) throws(ZlibError) {
            guard let windowBits = algorithm.windowBits else {
                throw ZlibError(kind: .unsupportedAlgorithm, message: "'\(algorithm)' is not a zlib format")
            }
            let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
            stream.initialize(to: z_stream())
            let status = switchyard_inflateInit2(stream, windowBits)
            guard status == Z_OK else {
                let error = ZlibError(zlibStatus: status, stream: stream, operation: "inflateInit2")
                stream.deinitialize(count: 1)
                stream.deallocate()
                throw error
            }
            self.algorithm = algorithm
            self.stream = stream
        }

        deinit {
            inflateEnd(stream)
            stream.deinitialize(count: 1)
            stream.deallocate()
        }

        /// Decompresses all readable bytes of `input`, which must hold exactly one complete
        /// compressed stream, into a new buffer of at most `limit` bytes.
        ///
        /// The limit holds while inflating: output stops one byte past it, so a small input
        /// that expands without bound costs at most `limit + 1` bytes of memory.
        /// - Throws: `.outputLimitExceeded`, `.truncatedInput`, `.trailingInput`, or `.zlib`
        ///   with zlib's message for corrupt data.
        public func decompress(
            _ input: ByteBuffer,
            limit: Int,
            allocator: ByteBufferAllocator = ByteBufferAllocator()
        ) throws(ZlibError) -> ByteBuffer {
            precondition(limit >= 0, "limit must not be negative")
            guard input.readableBytes <= Int(UInt32.max) else {
                throw ZlibError(kind: .outputLimitExceeded(limit: limit), message: "compressed message too large")
            }
            inflateReset(stream)
            let stream = self.stream
            // Room for one byte past the limit, to tell "exactly at the limit" from "over it".
            let ceiling = limit == Int.max ? limit : limit + 1
            var output = allocator.buffer(capacity: min(ceiling, max(input.readableBytes * 4, 256)))
            var status = Z_OK
            var inputLeft = 0
            input.withUnsafeReadableBytes { inputBytes in
                stream.pointee.next_in = inputBytes.baseAddress.map {
                    UnsafeMutablePointer(mutating: $0.assumingMemoryBound(to: Bytef.self))
                }
                stream.pointee.avail_in = uInt(inputBytes.count)
                while output.readableBytes < ceiling {
                    let room = ceiling - output.readableBytes
                    let wanted = min(room, max(output.writableBytes, output.readableBytes, 4096))
                    output.writeWithUnsafeMutableBytes(minimumWritableBytes: wanted) { outputBytes in
                        let offered = min(outputBytes.count, room, Int(UInt32.max))
                        stream.pointee.next_out = outputBytes.baseAddress!.assumingMemoryBound(to: Bytef.self)
                        stream.pointee.avail_out = uInt(offered)
                        status = inflate(stream, Z_NO_FLUSH)
                        return offered - Int(stream.pointee.avail_out)
                    }
                    if status == Z_STREAM_END { break }
                    if status == Z_BUF_ERROR && stream.pointee.avail_in == 0 { break }
                    if status != Z_OK && status != Z_BUF_ERROR { break }
                }
                inputLeft = Int(stream.pointee.avail_in)
                stream.pointee.next_in = nil
                stream.pointee.next_out = nil
            }
            if output.readableBytes > limit {
                throw ZlibError(
                    kind: .outputLimitExceeded(limit: limit),
                    message: "decompressed message larger than max (more than \(limit) bytes)"
                )
            }
            switch status {
            case Z_STREAM_END:
                guard inputLeft == 0 else {
                    throw ZlibError(kind: .trailingInput, message: "\(inputLeft) bytes follow the end of the \(algorithm) data")
                }
                return output
            case Z_OK, Z_BUF_ERROR:
                throw ZlibError(kind: .truncatedInput, message: "\(algorithm) data ends before the compressed stream does")
            default:
                throw ZlibError(zlibStatus: status, stream: stream, operation: "inflate")
            }
        }
    }
}

extension GRPCCompression.ZlibError {
    /// An error for a zlib status code, with the message zlib left in the stream if any.
    init(zlibStatus: Int32, stream: UnsafeMutablePointer<z_stream>, operation: String) {
        let detail: String
        if let message = stream.pointee.msg {
            detail = String(cString: message)
        } else if let text = zError(zlibStatus) {
            detail = String(cString: text)
        } else {
            detail = "error \(zlibStatus)"
        }
        self.init(kind: .zlib(code: zlibStatus), message: "zlib \(operation) failed: \(detail)")
    }
}
