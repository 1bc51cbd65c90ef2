@testable import Gateway
import H2Transport
import InferenceProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import XCTest

/// A pool shard against fake worker processes (in-process servers on Unix sockets that speak
/// the worker protocol), while several threads fire submits, cancels, worker deaths and
/// replacements at it: every request is answered exactly once unless its owner cancelled it
/// first, and no worker process ever receives the same request twice.
final class WorkerPoolShardStressTests: XCTestCase {
    func testEveryRequestIsAnsweredOnceAndSentAtMostOncePerWorkerUnderConcurrentEvents() throws {
        let shardGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let workerGroup = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        defer {
            try? shardGroup.syncShutdownGracefully()
            try? workerGroup.syncShutdownGracefully()
        }
        let directory = NSTemporaryDirectory() + "shard-stress-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }

        let loop = shardGroup.next()
        var configured = ModelDeployment(model: "fake", workers: 3)
        configured.maxInFlightPerWorker = 4
        configured.maxQueuedRequests = 200
        var quiet = Logger(label: "stress")
        quiet.logLevel = .critical
        let deployment = configured
        let logger = quiet
        let shard = try loop.submit {
            NIOLoopBoundBox.makeBoxSendingValue(WorkerPoolShard(eventLoop: loop, deployment: deployment, shardCount: 1, logger: logger), eventLoop: loop)
        }.wait()

        let slots = (0..<3).map { _ in NIOLockedValueBox<FakeWorker?>(nil) }
        let nextPID = ManagedPID()
        @Sendable func startWorker(slot: Int, generation: Int) throws {
            let pid = nextPID.next()
            let worker = try FakeWorker.start(path: "\(directory)/w\(slot)-\(generation).sock", pid: pid, group: workerGroup)
            slots[slot].withLockedValue { $0 = worker }
            loop.execute {
                shard.value.attach(
                    worker: .init(slot: slot, generation: generation), name: "fake-\(slot) (pid \(pid))", socketPath: worker.path, pid: pid,
                    connectTimeout: .seconds(2))
            }
        }
        let generations = NIOLockedValueBox([1, 1, 1])
        for slot in 0..<3 { try startWorker(slot: slot, generation: 1) }
        XCTAssertTrue(waitUntil { (try? loop.submit { shard.value.hasWorker }.wait()) == true })

        let recorder = Recorder()
        let threads = 4
        let operations = 1000
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            var random = SplitMix64(seed: UInt64(thread + 1))
            for _ in 0..<operations {
                switch random.next() % 40 {
                case 0...29:
                    let request = RecordingReceiver(recorder: recorder)
                    loop.execute {
                        let result = shard.value.submit(
                            PoolRequest(modelName: "fake", modelVersion: "1", bytes: ByteBuffer(string: "x"), deadlineUnixNanos: 0, receiver: request))
                        switch result {
                        case .success(let id): request.submitted(id)
                        case .failure: request.refused()
                        }
                    }
                case 30...35:
                    let pick = random.next()
                    loop.execute {
                        guard let victim = recorder.live(at: pick) else { return }
                        if victim.cancel() { shard.value.cancel(victim.id!, reason: "test") }
                    }
                case 36, 37:
                    let slot = Int(random.next() % 3)
                    slots[slot].withLockedValue { $0 }?.die()
                default:
                    let slot = Int(random.next() % 3)
                    let dead = slots[slot].withLockedValue { $0?.isDead ?? true }
                    if dead {
                        let generation = generations.withLockedValue { $0[slot] += 1; return $0[slot] }
                        try? startWorker(slot: slot, generation: generation)
                    }
                }
                usleep(UInt32(random.next() % 1500))
            }
        }
        // Bring every slot back, so that re-queued requests can finish.
        for slot in 0..<3 where slots[slot].withLockedValue({ $0?.isDead ?? true }) {
            let generation = generations.withLockedValue { $0[slot] += 1; return $0[slot] }
            try startWorker(slot: slot, generation: generation)
        }
        XCTAssertTrue(
            waitUntil(seconds: 20) { (try? loop.submit { shard.value.outstanding }.wait()) == 0 },
            "requests still outstanding: \((try? loop.submit { shard.value.outstanding }.wait()) ?? -1)")

        let all = try loop.submit { recorder.all }.wait()
        XCTAssertGreaterThan(all.count, 500)
        var answered = 0
        var cancelled = 0
        for request in all {
            switch request.outcome {
            case .refused: XCTAssertEqual(request.finals, 0)
            case .cancelled: cancelled += 1; XCTAssertEqual(request.finals, 0, "a cancelled request was answered")
            case .submitted:
                answered += 1
                XCTAssertEqual(request.finals, 1, "request \(request.id ?? 0) was answered \(request.finals) times")
            }
        }
        // Enough of each kind of event happened for the test to mean something.
        XCTAssertGreaterThan(answered, 1000, "answered \(answered), cancelled \(cancelled), of \(all.count)")
        XCTAssertGreaterThan(cancelled, 20, "answered \(answered), cancelled \(cancelled), of \(all.count)")
        for slot in slots {
            if let worker = slot.withLockedValue({ $0 }) { XCTAssertEqual(worker.duplicates, 0, "a worker received a request twice") }
        }
        XCTAssertEqual(FakeWorker.duplicatesSeen.withLockedValue { $0 }, 0, "a worker process received a request twice")
    }

    private func waitUntil(seconds: Double = 10, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(10_000)
        }
        return condition()
    }
}

/// Every request of the test, touched only on the shard's loop.
private final class Recorder: @unchecked Sendable {
    var all: [RecordingReceiver] = []
    var live: [RecordingReceiver] = []

    func live(at pick: UInt64) -> RecordingReceiver? {
        live.removeAll { $0.outcome != .submitted || $0.finals > 0 }
        return live.isEmpty ? nil : live[Int(pick % UInt64(live.count))]
    }
}

private final class RecordingReceiver: WorkerReplyReceiver, @unchecked Sendable {
    enum Outcome { case submitted, refused, cancelled }
    let recorder: Recorder
    var id: UInt64?
    var outcome = Outcome.submitted
    var finals = 0

    init(recorder: Recorder) { self.recorder = recorder }

    func submitted(_ id: UInt64) {
        self.id = id
        recorder.all.append(self)
        recorder.live.append(self)
    }

    func refused() {
        outcome = .refused
        recorder.all.append(self)
    }

    /// True when the request was still open (so the shard must be told).
    func cancel() -> Bool {
        guard outcome == .submitted, finals == 0 else { return false }
        outcome = .cancelled
        return true
    }

    func workerReplied(_ reply: WorkerReply, requestID: UInt64, queueNanoseconds: Int64, shard: WorkerPoolShard) {
        switch reply {
        case .response(_, let final, _): if final { finals += 1 }
        case .streamEnd, .failed: finals += 1
        }
    }
}

private final class ManagedPID: Sendable {
    private let value = NIOLockedValueBox<Int32>(50_000)
    func next() -> Int32 { value.withLockedValue { $0 += 1; return $0 } }
}

/// An in-process worker: HELLO, then a final response to every INFER_REQUEST after a short
/// random delay, nothing for cancelled ones. `die()` closes its listener and connections.
private final class FakeWorker: Sendable {
    static let duplicatesSeen = NIOLockedValueBox(0)
    let path: String
    private let server: Channel
    private let state: NIOLockedValueBox<(seen: Set<UInt64>, duplicates: Int, connections: [Channel], dead: Bool)>

    var duplicates: Int { state.withLockedValue { $0.duplicates } }
    var isDead: Bool { state.withLockedValue { $0.dead } }

    private init(path: String, server: Channel, state: NIOLockedValueBox<(seen: Set<UInt64>, duplicates: Int, connections: [Channel], dead: Bool)>) {
        self.path = path
        self.server = server
        self.state = state
    }

    static func start(path: String, pid: Int32, group: EventLoopGroup) throws -> FakeWorker {
        let state = NIOLockedValueBox<(seen: Set<UInt64>, duplicates: Int, connections: [Channel], dead: Bool)>(([], 0, [], false))
        let server = try ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    state.withLockedValue { $0.connections.append(channel) }
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(WorkerFrameDecoder()))
                    try channel.pipeline.syncOperations.addHandler(FakeWorkerHandler(pid: pid, state: state))
                }
            }
            .bind(unixDomainSocketPath: path, cleanupExistingSocketFile: true).wait()
        return FakeWorker(path: path, server: server, state: state)
    }

    func die() {
        let connections = state.withLockedValue { state -> [Channel] in
            state.dead = true
            return state.connections
        }
        server.close(promise: nil)
        for connection in connections { connection.close(promise: nil) }
    }
}

private final class FakeWorkerHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = WorkerFrame
    let pid: Int32
    let state: NIOLockedValueBox<(seen: Set<UInt64>, duplicates: Int, connections: [Channel], dead: Bool)>
    let cancelled = NIOLockedValueBox<Set<UInt64>>([])

    init(pid: Int32, state: NIOLockedValueBox<(seen: Set<UInt64>, duplicates: Int, connections: [Channel], dead: Bool)>) {
        self.pid = pid
        self.state = state
    }

    func channelActive(context: ChannelHandlerContext) {
        var hello = WorkerProtocol.Hello()
        hello.pid = pid
        hello.protocolVersion = 1
        var buffer = context.channel.allocator.buffer(capacity: 64)
        WorkerFrame(kind: .hello, requestID: 0, message: hello).write(to: &buffer)
        context.writeAndFlush(NIOAny(buffer), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.kind {
        case .inferRequest:
            let first = state.withLockedValue { state -> Bool in
                let inserted = state.seen.insert(frame.requestID).inserted
                if !inserted {
                    state.duplicates += 1
                    FakeWorker.duplicatesSeen.withLockedValue { $0 += 1 }
                }
                return inserted
            }
            guard first else { return }
            let id = frame.requestID
            let channel = context.channel
            channel.eventLoop.scheduleTask(in: .microseconds(Int64.random(in: 0...2000))) {
                guard !self.cancelled.withLockedValue({ $0.contains(id) }) else { return }
                var response = WorkerProtocol.InferResponse()
                response.final = true
                response.response = ByteBuffer(string: "done")
                var buffer = channel.allocator.buffer(capacity: 64)
                WorkerFrame(kind: .inferResponse, requestID: id, message: response).write(to: &buffer)
                channel.writeAndFlush(buffer, promise: nil)
            }
        case .cancel:
            _ = cancelled.withLockedValue { $0.insert(frame.requestID) }
        default:
            break
        }
    }
}
