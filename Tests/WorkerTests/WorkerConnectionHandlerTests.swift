import InferenceProtocol
import Logging
import NIOCore
import NIOEmbedded
import NIOPosix
import XCTest

@testable import Worker

/// One gateway connection on an `EmbeddedChannel`, with the worker's real pipeline and a
/// runtime on the channel's loop: flushes per read burst and per turn, and PAUSE / RESUME.
final class WorkerConnectionHandlerTests: XCTestCase {
    /// Counts the flushes that reach the socket.
    private final class FlushCounter: ChannelOutboundHandler {
        typealias OutboundIn = ByteBuffer
        var flushes = 0

        func flush(context: ChannelHandlerContext) {
            flushes += 1
            context.flush()
        }
    }

    private var channel: EmbeddedChannel!
    private var flushCounter: FlushCounter!
    private var runtime: WorkerRuntime!
    /// Never started: nothing on these paths may use the thread pool (a use would fail the
    /// request with UNAVAILABLE).
    private var threadPool: NIOThreadPool!
    /// Bytes read from the channel and not yet parsed into frames.
    private var received = ByteBuffer()

    override func setUpWithError() throws {
        channel = EmbeddedChannel()
        flushCounter = FlushCounter()
        threadPool = NIOThreadPool(numberOfThreads: 1)
        let models = ["simple", "repeat_int32"].compactMap {
            BuiltinModels.model(named: $0, maxBatchSize: 8, maxQueueDelayMicroseconds: 0)
        }
        runtime = WorkerRuntime(
            workerID: "embedded", models: models, eventLoop: channel.embeddedEventLoop, threadPool: threadPool,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        let connection = WorkerConnectionHandler.pipeline(
            runtime: runtime, logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        try channel.pipeline.syncOperations.addHandlers([connection.reader, flushCounter, connection.handler])
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        XCTAssertEqual(try sent().map(\.kind), [.hello])
        flushCounter.flushes = 0
    }

    override func tearDownWithError() throws {
        _ = try? channel.finish()
        channel = nil
    }

    /// The frames flushed to the socket since the last call.
    private func sent() throws -> [WorkerFrame] {
        while var bytes = try channel.readOutbound(as: ByteBuffer.self) { received.writeBuffer(&bytes) }
        var frames: [WorkerFrame] = []
        while let frame = try WorkerFrame.read(from: &received) { frames.append(frame) }
        return frames
    }

    private func bytes(of frames: [WorkerFrame]) -> ByteBuffer {
        var buffer = ByteBuffer()
        for frame in frames { frame.write(to: &buffer) }
        return buffer
    }

    private func infer(_ id: UInt64, _ request: ModelInferRequest) -> WorkerFrame {
        WorkerFrame(kind: .inferRequest, requestID: id, message: Requests.frame(request))
    }

    private func simple(_ value: Int32) -> ModelInferRequest {
        Requests.simple([Int32](repeating: value, count: 16), [Int32](repeating: 1, count: 16), raw: true)
    }

    private func control(_ kind: WorkerFrame.Kind, _ id: UInt64) -> WorkerFrame {
        WorkerFrame(kind: kind, requestID: id, payload: ByteBuffer())
    }

    // MARK: Coalesced writes

    func testRequestsReadInOneBurstAreAnsweredWithOneFlushAtReadComplete() throws {
        // Four requests in one read: each runs inline as it is read, and nothing is flushed
        // until the burst ends.
        let burst = bytes(of: (1...4).map { infer(UInt64($0), simple(Int32($0))) })
        channel.pipeline.syncOperations.fireChannelRead(NIOAny(burst))
        XCTAssertEqual(flushCounter.flushes, 0, "no flush while the burst is being read")
        XCTAssertEqual(try sent(), [], "answers wait for the flush")

        channel.pipeline.syncOperations.fireChannelReadComplete()
        XCTAssertEqual(flushCounter.flushes, 1)
        let answers = try sent()
        XCTAssertEqual(answers.map(\.requestID), [1, 2, 3, 4])
        for answer in answers {
            XCTAssertEqual(try answer.modelResponse().int32s("OUTPUT0"), [Int32](repeating: Int32(answer.requestID) + 1, count: 16))
        }
        channel.embeddedEventLoop.run()
        XCTAssertEqual(flushCounter.flushes, 1, "no second flush is scheduled for answers already flushed")
    }

    func testAnswersProducedLaterInATurnShareOneScheduledFlush() throws {
        // Two streams whose second responses fall due at the same moment, outside any read.
        try channel.writeInbound(bytes(of: [
            infer(1, Requests.repeatInt32([10, 11], delays: [0, 5])),
            infer(2, Requests.repeatInt32([20, 21], delays: [0, 5])),
        ]))
        XCTAssertEqual(try sent().map(\.requestID), [1, 2])
        XCTAssertEqual(flushCounter.flushes, 1)

        channel.embeddedEventLoop.advanceTime(by: .milliseconds(5))
        XCTAssertEqual(flushCounter.flushes, 2, "one flush for every frame the timers wrote in that turn")
        let later = try sent()
        XCTAssertEqual(later.map(\.requestID), [1, 1, 2, 2])
        XCTAssertEqual(later.map(\.kind), [.inferResponse, .streamEnd, .inferResponse, .streamEnd])
    }

    // MARK: Frame reader

    func testFramesSplitAtEveryByteAreReadAndAnswered() throws {
        let burst = bytes(of: [infer(1, simple(1)), control(.ping, 0), infer(2, simple(2))])
        var remaining = burst
        while let byte = remaining.readSlice(length: 1) {
            try channel.writeInbound(byte)
        }
        let answers = try sent()
        XCTAssertEqual(answers.map(\.kind), [.inferResponse, .pong, .inferResponse])
        XCTAssertEqual(try answers[2].modelResponse().int32s("OUTPUT0"), [Int32](repeating: 3, count: 16))
    }

    func testFastAndGeneralAnswersOfOneBurstAllGoOutInOneFlush() throws {
        // simple is answered at once (gathered), repeat_int32 and a bad request by the general path.
        var bad = simple(5)
        bad.inputs[0].datatype = "FP32"
        try channel.writeInbound(bytes(of: [
            infer(1, simple(1)), infer(2, Requests.repeatInt32([7], delays: [0])), infer(3, simple(3)), infer(4, bad),
            infer(5, simple(5)),
        ]))
        XCTAssertEqual(flushCounter.flushes, 1)
        let answers = try sent()
        XCTAssertEqual(Set(answers.map(\.requestID)), [1, 2, 3, 4, 5])
        XCTAssertEqual(answers.count, 6, "repeat_int32 adds STREAM_END")
        for answer in answers where [1, 3, 5].contains(answer.requestID) {
            XCTAssertEqual(try answer.modelResponse().int32s("OUTPUT1"), [Int32](repeating: Int32(answer.requestID) - 1, count: 16))
        }
        let refused = try XCTUnwrap(answers.first { $0.requestID == 4 }?.inferResponse().status)
        XCTAssertEqual(refused.code, 3)
        XCTAssertTrue(refused.message.contains("input 'INPUT0' has datatype FP32"), refused.message)

        // The next burst reuses the gathering buffer; its answers are whole and new.
        try channel.writeInbound(bytes(of: [infer(6, simple(6)), infer(7, simple(7))]))
        XCTAssertEqual(try sent().map { try $0.modelResponse().int32s("OUTPUT0")?.first }, [7, 8])
    }

    func testAFramingErrorClosesTheConnection() throws {
        // The handler takes the reader's FramingError and closes: nothing reaches the pipeline's end.
        XCTAssertNoThrow(try channel.writeInbound(ByteBuffer(bytes: [0, 0, 0, 3, 1, 2, 3])))
        XCTAssertFalse(channel.isActive)
    }

    // MARK: PAUSE and RESUME

    func testAPausedStreamSendsNothingUntilResumeThenTheRest() throws {
        try channel.writeInbound(bytes(of: [infer(7, Requests.repeatInt32([1, 2, 3, 4], delays: [0, 10, 10, 10]))]))
        XCTAssertEqual(try sent().map { try $0.modelResponse().int32s("OUT") }, [[1]])

        try channel.writeInbound(bytes(of: [control(.pause, 7)]))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(100))
        XCTAssertEqual(try sent(), [], "nothing while paused, though three delays have passed")
        XCTAssertEqual(runtime.core.value.inFlight, 1, "the paused stream is still in flight")

        try channel.writeInbound(bytes(of: [control(.resume, 7)]))
        // The delay of the parked response has passed: it goes at once, the others keep their delays.
        XCTAssertEqual(try sent().map { try $0.modelResponse().int32s("OUT") }, [[2]])
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(10))
        XCTAssertEqual(try sent().map { try $0.modelResponse().int32s("OUT") }, [[3]])
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(10))
        let rest = try sent()
        XCTAssertEqual(rest.map(\.kind), [.inferResponse, .streamEnd])
        XCTAssertEqual(try rest.first?.modelResponse().int32s("OUT"), [4])
        XCTAssertEqual(runtime.core.value.inFlight, 0)
    }

    func testAStreamPausedBeforeItsFirstResponseSendsNothingUntilResume() throws {
        try channel.writeInbound(bytes(of: [infer(4, Requests.repeatInt32([8, 9], delays: [5, 5]))]))
        try channel.writeInbound(bytes(of: [control(.pause, 4)]))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(50))
        XCTAssertEqual(try sent(), [], "paused before its first response")
        try channel.writeInbound(bytes(of: [control(.resume, 4)]))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(5))
        XCTAssertEqual(try sent().map(\.kind), [.inferResponse, .inferResponse, .streamEnd])
    }

    func testCancelWhilePausedEndsTheStreamAndResumeThenDoesNothing() throws {
        try channel.writeInbound(bytes(of: [infer(9, Requests.repeatInt32([1, 2, 3], delays: [0, 10, 10]))]))
        XCTAssertEqual(try sent().count, 1)
        try channel.writeInbound(bytes(of: [control(.pause, 9)]))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(20))
        try channel.writeInbound(bytes(of: [WorkerFrame(kind: .cancel, requestID: 9, message: WorkerProtocol.Cancel())]))
        XCTAssertEqual(runtime.core.value.inFlight, 0, "CANCEL ends a paused request")
        try channel.writeInbound(bytes(of: [control(.resume, 9)]))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(100))
        XCTAssertEqual(try sent(), [], "nothing after CANCEL, RESUME or not")
    }

    func testPauseAndResumeForUnknownOrFinishedIdsAreIgnored() throws {
        try channel.writeInbound(bytes(of: [control(.pause, 99), control(.resume, 98)]))
        try channel.writeInbound(bytes(of: [infer(1, simple(1))]))
        XCTAssertEqual(try sent().map(\.requestID), [1])
        try channel.writeInbound(bytes(of: [control(.pause, 1)]))
        // The id is free again: a new request with it runs and is not held by the old PAUSE.
        try channel.writeInbound(bytes(of: [infer(1, Requests.repeatInt32([4], delays: [0]))]))
        XCTAssertEqual(try sent().map(\.kind), [.inferResponse, .streamEnd])
        XCTAssertTrue(channel.isActive)
    }
}
