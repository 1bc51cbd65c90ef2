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
final class WorkerChannelHandler: ChannelInboundHandler, WorkerFrameHandling {
    typealias InboundIn = WorkerFrame
    typealias OutboundOut = ByteBuffer

    /// The worker process this connection reaches.
    let worker: WorkerPoolStateMachine<PoolRequest>.WorkerID
    /// For logs and messages: "simple-0 (pid 123)".
    let name: String
    /// The worker's process id.
    let expectedPID: Int32
    private let shard: WorkerPoolShard
    private let logger: Logger
    private var context: ChannelHandlerContext?
    private var ready = false
    private var flushPending = false
    /// Frames of this tick not yet handed to the channel: heads, and small requests' bytes.
    private var outbound: ByteBuffer
    /// Requests up to this size are copied next to their head (one buffer per tick for many
    /// small requests); larger ones go out as their own buffer, uncopied.
    static let copyLimit = 2048

    init(worker: WorkerPoolStateMachine<PoolRequest>.WorkerID, name: String, expectedPID: Int32, shard: WorkerPoolShard, logger: Logger) {
        self.worker = worker
        self.name = name
        self.expectedPID = expectedPID
        self.shard = shard
        self.logger = logger
        self.outbound = ByteBuffer()
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    /// One frame from the worker, from the `WorkerFrameReader` before this handler.
    func handle(_ frame: WorkerFrame) {
        guard let context else { return }
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
    func writeRequest(id: UInt64, _ request: PoolRequest) {
        guard let context else { return }
        let trace = request.trace?.dispatched(toWorker: name, pid: expectedPID) ?? WorkerProtocol.TraceContext()
        WorkerProtocol.InferRequest.writeFrameHead(
            requestID: id, modelName: request.modelName, modelVersion: request.modelVersion,
            deadlineUnixNanos: request.deadlineUnixNanos, trace: trace, clientRequestID: request.clientRequestID,
            requestByteCount: request.bytes.readableBytes, to: &outbound)
        if request.bytes.readableBytes <= Self.copyLimit {
            outbound.writeImmutableBuffer(request.bytes)
        } else {
            writeOutbound(context)
            context.write(wrapOutboundOut(request.bytes), promise: nil)
        }
        markUnflushed()
    }

    /// Writes any other frame, unflushed.
    func write(_ frame: WorkerFrame) {
        frame.write(to: &outbound)
        markUnflushed()
    }

    private func markUnflushed() {
        guard !flushPending else { return }
        flushPending = true
        shard.needsFlush(self)
    }

    /// Hands the gathered bytes to the channel; a new buffer takes the next ones.
    private func writeOutbound(_ context: ChannelHandlerContext) {
        guard outbound.readableBytes > 0 else { return }
        context.write(wrapOutboundOut(outbound), promise: nil)
        outbound = ByteBuffer()  // shared empty storage: the next write allocates, if there is one
    }

    func flush() {
        flushPending = false
        guard let context else { return }
        writeOutbound(context)
        context.flush()
    }

    func close() {
        context?.close(promise: nil)
    }
}
