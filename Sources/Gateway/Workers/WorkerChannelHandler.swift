import InferenceProtocol
import Logging
import NIOCore

/// A pool shard's connection to one worker process, on the shard's event loop: checks the
/// worker's HELLO, hands every later frame to the shard, and writes requests without flushing
/// (the shard flushes once per tick).
///
/// Request bytes are not copied: a request goes out as a small head (frame header and the
/// `InferRequest` envelope up to the `request` field's length) followed by the client's bytes,
/// two buffers in one `writev`.
final class WorkerChannelHandler: ChannelInboundHandler {
    typealias InboundIn = WorkerFrame
    typealias OutboundOut = ByteBuffer

    /// The worker process this connection reaches.
    let worker: WorkerPoolStateMachine<PoolRequest>.WorkerID
    /// For logs and messages: "simple-0 (pid 123)".
    let name: String
    private let expectedPID: Int32
    private let shard: WorkerPoolShard
    private let logger: Logger
    private var context: ChannelHandlerContext?
    private var ready = false
    private var flushPending = false

    init(worker: WorkerPoolStateMachine<PoolRequest>.WorkerID, name: String, expectedPID: Int32, shard: WorkerPoolShard, logger: Logger) {
        self.worker = worker
        self.name = name
        self.expectedPID = expectedPID
        self.shard = shard
        self.logger = logger
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard ready else {
            guard frame.kind == .hello, let hello = try? frame.decodePayload(as: WorkerProtocol.Hello.self) else {
                logger.warning("worker's first frame is not a valid HELLO; closing", metadata: ["worker": "\(name)", "kind": "\(frame.kind)"])
                context.close(promise: nil)
                return
            }
            guard hello.pid == expectedPID else {
                // The socket now belongs to another process (a replacement): not this worker.
                logger.debug("worker socket answered with another pid", metadata: ["worker": "\(name)", "pid": "\(hello.pid)"])
                context.close(promise: nil)
                return
            }
            ready = true
            shard.connectionReady(self, hello: hello, modelName: shard.modelName)
            return
        }
        shard.received(frame, on: self)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if ready { shard.lost(self) }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.warning("worker connection failed", metadata: ["worker": "\(name)", "error": "\(error)"])
        context.close(promise: nil)
    }

    // MARK: Writing (on the shard's loop)

    /// Writes an INFER_REQUEST for `request` as request `id`, unflushed.
    func writeRequest(id: UInt64, _ request: PoolRequest, shard: WorkerPoolShard) {
        guard let context else { return }
        let head = WorkerProtocol.InferRequest.frameHead(
            requestID: id, modelName: request.modelName, modelVersion: request.modelVersion,
            deadlineUnixNanos: request.deadlineUnixNanos, requestByteCount: request.bytes.readableBytes,
            allocator: context.channel.allocator)
        context.write(wrapOutboundOut(head), promise: nil)
        if request.bytes.readableBytes > 0 { context.write(wrapOutboundOut(request.bytes), promise: nil) }
        markUnflushed(shard)
    }

    /// Writes any other frame, unflushed.
    func write(_ frame: WorkerFrame, shard: WorkerPoolShard) {
        guard let context else { return }
        var buffer = context.channel.allocator.buffer(capacity: WorkerFrame.headerSize + frame.payload.readableBytes)
        frame.write(to: &buffer)
        context.write(wrapOutboundOut(buffer), promise: nil)
        markUnflushed(shard)
    }

    private func markUnflushed(_ shard: WorkerPoolShard) {
        guard !flushPending else { return }
        flushPending = true
        shard.needsFlush(self)
    }

    func flush() {
        flushPending = false
        context?.flush()
    }

    func close() {
        context?.close(promise: nil)
    }
}
