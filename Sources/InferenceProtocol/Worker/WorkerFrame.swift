import NIOCore
import ProtoWire

/// One frame of the worker protocol (Protos/switchyard/worker.proto, docs/worker-protocol.md):
/// `u32 length (big-endian, counts kind + id + payload) | u8 kind | u64 request id | payload`.
///
/// The payload stays a `ByteBuffer` slice: the gateway forwards request bytes without decoding
/// their tensors, and decodes a payload only when it needs to (`decodePayload(as:)`).
public struct WorkerFrame: Sendable, Hashable {
    /// The `u8 kind` byte.
    public struct Kind: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
        public var rawValue: UInt8
        public init(rawValue: UInt8) { self.rawValue = rawValue }

        /// worker → gateway, first frame: `WorkerProtocol.Hello`.
        public static let hello = Kind(rawValue: 1)
        /// gateway → worker: `WorkerProtocol.InferRequest`.
        public static let inferRequest = Kind(rawValue: 2)
        /// worker → gateway: `WorkerProtocol.InferResponse`.
        public static let inferResponse = Kind(rawValue: 3)
        /// worker → gateway: no more responses for this id (decoupled models).
        public static let streamEnd = Kind(rawValue: 4)
        /// gateway → worker: stop work on this id.
        public static let cancel = Kind(rawValue: 5)
        /// gateway → worker: health check.
        public static let ping = Kind(rawValue: 6)
        /// worker → gateway: answer to a ping.
        public static let pong = Kind(rawValue: 7)
        /// Either way: a status that ends the request (or, with id 0, the connection).
        public static let error = Kind(rawValue: 8)
        /// gateway → worker, empty payload: send no more INFER_RESPONSE for this id until
        /// RESUME (flow control of a decoupled model's stream). CANCEL, the deadline and a
        /// closed connection still end the request while it is paused.
        public static let pause = Kind(rawValue: 9)
        /// gateway → worker, empty payload: responses for this id may flow again after PAUSE.
        public static let resume = Kind(rawValue: 10)

        public var description: String {
            switch self {
            case .hello: return "HELLO"
            case .inferRequest: return "INFER_REQUEST"
            case .inferResponse: return "INFER_RESPONSE"
            case .streamEnd: return "STREAM_END"
            case .cancel: return "CANCEL"
            case .ping: return "PING"
            case .pong: return "PONG"
            case .error: return "ERROR"
            case .pause: return "PAUSE"
            case .resume: return "RESUME"
            default: return "UNKNOWN(\(rawValue))"
            }
        }
    }

    /// Bytes before the payload: length (4), kind (1), request id (8).
    public static let headerSize = 13
    /// The default bound on one frame (kind + id + payload): 64 MiB plus room for the envelope.
    public static let defaultMaxFrameSize = 64 * 1024 * 1024 + 4096

    public var kind: Kind
    /// The request this frame belongs to; 0 for connection-level frames.
    public var requestID: UInt64
    /// The protobuf payload (possibly empty).
    public var payload: ByteBuffer

    public init(kind: Kind, requestID: UInt64, payload: ByteBuffer) {
        self.kind = kind
        self.requestID = requestID
        self.payload = payload
    }

    /// A frame whose payload is `message`, encoded.
    public init<M: ProtoMessage>(kind: Kind, requestID: UInt64, message: M) {
        self.init(kind: kind, requestID: requestID, payload: message.encoded())
    }

    /// Decodes the payload as `type`.
    public func decodePayload<M: ProtoMessage>(as type: M.Type, limits: ProtoLimits = .default) throws -> M {
        try M(decoding: payload, limits: limits)
    }

    /// Appends the frame, header and payload, to `buffer`.
    public func write(to buffer: inout ByteBuffer) {
        Self.writeHeader(kind: kind, requestID: requestID, payloadLength: payload.readableBytes, to: &buffer)
        buffer.writeImmutableBuffer(payload)
    }

    /// The bytes of a frame whose payload `writePayload` writes in place, right after the
    /// header, in the one buffer that goes to the socket: no payload buffer is made and copied.
    ///
    /// - Parameter payloadCapacity: room to reserve for the payload (the buffer grows past it).
    public static func encoded(
        kind: Kind, requestID: UInt64, payloadCapacity: Int = 128, allocator: ByteBufferAllocator = ByteBufferAllocator(),
        _ writePayload: (inout ProtoWriter) -> Void
    ) -> ByteBuffer {
        var writer = ProtoWriter(buffer: allocator.buffer(capacity: headerSize + payloadCapacity))
        let start = writer.buffer.writerIndex
        // The length is known only once the payload is written: it is filled in after.
        writeHeader(kind: kind, requestID: requestID, payloadLength: 0, to: &writer.buffer)
        writePayload(&writer)
        let length = writer.buffer.writerIndex - start - 4
        precondition(length <= Int(UInt32.max), "a worker frame of \(length) bytes")
        writer.buffer.setInteger(UInt32(length), at: start, endianness: .big)
        return writer.buffer
    }

    /// Appends the `headerSize` bytes that come before a payload of `payloadLength` bytes:
    /// length, kind and request id. The caller writes the payload after it, in the same buffer
    /// or as the next write on the channel.
    ///
    /// - Precondition: `payloadLength` fits the frame's `u32` length (less the 9 bytes of kind
    ///   and id). A sender bounds its frames far below that (`defaultMaxFrameSize`).
    public static func writeHeader(kind: Kind, requestID: UInt64, payloadLength: Int, to buffer: inout ByteBuffer) {
        precondition(payloadLength >= 0 && payloadLength <= Int(UInt32.max) - 9, "worker frame payload of \(payloadLength) bytes")
        buffer.writeInteger(UInt32(1 + 8 + payloadLength), endianness: .big)
        buffer.writeInteger(kind.rawValue)
        buffer.writeInteger(requestID, endianness: .big)
    }

    /// Why bytes on a worker socket are not a valid frame stream. The connection cannot be
    /// resynchronised after one of these and must be closed.
    public struct FramingError: Error, Sendable, Hashable, CustomStringConvertible {
        public var description: String
    }

    /// Reads one whole frame from the front of `buffer`, or returns nil (consuming nothing)
    /// when more bytes are needed. The payload is a slice of `buffer`.
    ///
    /// - Throws: `FramingError` for a length below the 9-byte minimum or above `maxFrameSize`.
    public static func read(from buffer: inout ByteBuffer, maxFrameSize: Int = defaultMaxFrameSize) throws -> WorkerFrame? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, endianness: .big, as: UInt32.self) else {
            return nil
        }
        guard length >= 9 else {
            throw FramingError(description: "worker frame length \(length) is shorter than the 9-byte kind and request id")
        }
        guard length <= maxFrameSize else {
            throw FramingError(description: "worker frame of \(length) bytes exceeds the limit of \(maxFrameSize) bytes")
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: 4)
        let kind = Kind(rawValue: buffer.readInteger(as: UInt8.self)!)
        let requestID = buffer.readInteger(endianness: .big, as: UInt64.self)!
        let payload = buffer.readSlice(length: Int(length) - 9)!
        return WorkerFrame(kind: kind, requestID: requestID, payload: payload)
    }
}
