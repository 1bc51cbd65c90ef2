import NIOCore

/// Splits the bytes of a worker socket into `WorkerFrame`s: the one decoder of the worker
/// protocol, for the gateway and the worker alike.
///
/// A length below 9 or above `maxFrameSize` throws `WorkerFrame.FramingError` as soon as the
/// 4-byte length has arrived, before the body is buffered, so a bad peer cannot make the
/// receiver hold more than one frame's limit. The connection must be closed after that error:
/// there is no way to find the next frame.
public struct WorkerFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = WorkerFrame

    /// The largest frame (kind + request id + payload) accepted.
    public let maxFrameSize: Int

    public init(maxFrameSize: Int = WorkerFrame.defaultMaxFrameSize) {
        self.maxFrameSize = maxFrameSize
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try WorkerFrame.read(from: &buffer, maxFrameSize: maxFrameSize) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // Whole frames still buffered are delivered; a partial one at EOF is dropped with the connection.
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}

/// Writes `WorkerFrame`s onto a worker socket, header and payload in one buffer.
///
/// A sender that must not copy a large payload writes a frame head and the payload as two
/// buffers instead (see `WorkerProtocol.InferRequest.frameHead`).
public struct WorkerFrameEncoder: MessageToByteEncoder {
    public typealias OutboundIn = WorkerFrame

    public init() {}

    public func encode(data: WorkerFrame, out: inout ByteBuffer) throws {
        data.write(to: &out)
    }
}

/// Takes each frame a `WorkerFrameReader` splits off, by a direct call.
public protocol WorkerFrameHandling: AnyObject {
    /// One whole frame, its payload a slice of the bytes read; called on the channel's loop.
    func handle(_ frame: WorkerFrame)
}

/// Splits a worker socket's bytes into frames as `WorkerFrameDecoder` does (same limits, same
/// `FramingError`s), and hands each to `handler` by a direct call instead of firing it down the
/// pipeline: no boxing per frame. Put `handler` after it in the pipeline too, so that it sees
/// `channelReadComplete`, errors and the connection's end.
public struct WorkerFrameReader<Handler: WorkerFrameHandling>: ByteToMessageDecoder {
    public typealias InboundOut = WorkerFrame

    /// The largest frame (kind + request id + payload) accepted.
    public let maxFrameSize: Int
    public let handler: Handler

    public init(handler: Handler, maxFrameSize: Int = WorkerFrame.defaultMaxFrameSize) {
        self.handler = handler
        self.maxFrameSize = maxFrameSize
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try WorkerFrame.read(from: &buffer, maxFrameSize: maxFrameSize) else { return .needMoreData }
        handler.handle(frame)
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // Whole frames still buffered are handled; a partial one at EOF goes with the connection.
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}
