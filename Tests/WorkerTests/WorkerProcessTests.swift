import Foundation
import InferenceProtocol
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ProtoWire
import Worker
import XCTest

/// The real `switchyard worker` binary on a real socket, driven the way the gateway drives it.
///
/// Needs `swift build` to have produced `.build/debug/switchyard` (`swift build --build-tests`
/// does); fails with that hint when it has not.
final class WorkerProcessTests: XCTestCase {
    private static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    private static let binary = repositoryRoot.appendingPathComponent(".build/debug/switchyard")

    private var group: MultiThreadedEventLoopGroup!
    private var processes: [Process] = []
    private var logs: [String] = []

    override func setUp() async throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    }

    override func tearDown() async throws {
        for process in processes where process.isRunning { process.interrupt(); kill(process.processIdentifier, SIGKILL) }
        if let run = testRun, run.failureCount + run.unexpectedExceptionCount > 0 {
            for log in logs { print("---- worker log \(log)\n" + ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "(none)")) }
        }
        for log in logs { try? FileManager.default.removeItem(atPath: log) }
        try await group.shutdownGracefully()
    }

    // MARK: The worker process

    private struct Launched {
        var process: Process
        var socketPath: String
    }

    private func launch(_ arguments: [String], workerID: String = "e2e") throws -> Launched {
        guard FileManager.default.isExecutableFile(atPath: Self.binary.path) else {
            throw XCTSkip("no \(Self.binary.path): run `swift build --build-tests` first") as Error
        }
        let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let socketPath = "/tmp/sy-\(tag).sock"
        let logPath = "/tmp/sy-\(tag).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        logs.append(logPath)
        let process = Process()
        process.executableURL = Self.binary
        process.arguments = ["worker", "--socket", socketPath, "--worker-id", workerID, "--log-level", "debug"] + arguments
        process.standardError = FileHandle(forWritingAtPath: logPath)
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        processes.append(process)
        return Launched(process: process, socketPath: socketPath)
    }

    private typealias Connection = NIOAsyncChannel<WorkerFrame, WorkerFrame>

    /// Connects (retrying while the worker starts) with the frame codec on both directions.
    private func connect(_ path: String) async throws -> Connection {
        try await retryingConnect(path) { channel in
            try channel.pipeline.syncOperations.addHandlers([
                ByteToMessageHandler(WorkerFrameDecoder()), MessageToByteHandler(WorkerFrameEncoder()),
            ])
            return try Connection(wrappingChannelSynchronously: channel)
        }
    }

    /// Connects with only the decoder, so that raw bytes can be written.
    private func connectRaw(_ path: String) async throws -> NIOAsyncChannel<WorkerFrame, ByteBuffer> {
        try await retryingConnect(path) { channel in
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(WorkerFrameDecoder()))
            return try NIOAsyncChannel<WorkerFrame, ByteBuffer>(wrappingChannelSynchronously: channel)
        }
    }

    private func retryingConnect<Output: Sendable>(
        _ path: String, _ initializer: @escaping @Sendable (any Channel) throws -> Output
    ) async throws -> Output {
        let deadline = Date().addingTimeInterval(10)
        while true {
            do {
                return try await ClientBootstrap(group: group).connect(unixDomainSocketPath: path) { channel in
                    channel.eventLoop.makeCompletedFuture { try initializer(channel) }
                }
            } catch {
                if Date() > deadline { throw error }
                try await Task.sleep(nanoseconds: 20_000_000)
            }
        }
    }

    private func waitForExit(_ process: Process, within seconds: Double) async throws -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while process.isRunning {
            if Date() > deadline { return nil }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        return process.terminationStatus
    }

    private func ping(_ nonce: UInt64) -> WorkerFrame {
        var ping = WorkerProtocol.Ping()
        ping.nonce = nonce
        ping.sentUnixNanos = 1_700_000_000_000_000_000
        return WorkerFrame(kind: .ping, requestID: 0, message: ping)
    }

    private func inferFrame(_ id: UInt64, _ request: ModelInferRequest) -> WorkerFrame {
        WorkerFrame(kind: .inferRequest, requestID: id, message: Requests.frame(request))
    }

    // MARK: Tests

    func testWorkerGreetsAnswersPingsAndServesConcurrentRequestsAndStreams() async throws {
        let worker = try launch(["--model", "simple", "--model", "repeat_int32"])
        try await connect(worker.socketPath).executeThenClose { inbound, outbound in
            var frames = inbound.makeAsyncIterator()

            let helloFrame = try await XCTUnwrapAsync(try await frames.next())
            XCTAssertEqual(helloFrame.kind, .hello)
            XCTAssertEqual(helloFrame.requestID, 0)
            let hello = try helloFrame.decodePayload(as: WorkerProtocol.Hello.self)
            XCTAssertEqual(hello.protocolVersion, 1)
            XCTAssertEqual(hello.pid, worker.process.processIdentifier)
            XCTAssertEqual(hello.workerID, "e2e")
            XCTAssertEqual(hello.models.map(\.name), ["simple", "repeat_int32"])
            XCTAssertEqual(hello.models.map(\.versions), [["1"], ["1"]])
            XCTAssertEqual(hello.models.map(\.maxBatchSize), [8, 0])
            XCTAssertEqual(hello.models.map(\.decoupled), [false, true])
            XCTAssertEqual(hello.models.first?.config?.input.map(\.name), ["INPUT0", "INPUT1"])
            XCTAssertEqual(hello.models.last?.config?.modelTransactionPolicy?.decoupled, true)

            try await outbound.write(self.ping(99))
            let pongFrame = try await XCTUnwrapAsync(try await frames.next())
            XCTAssertEqual(pongFrame.kind, .pong)
            let pong = try pongFrame.decodePayload(as: WorkerProtocol.Pong.self)
            XCTAssertEqual(pong.nonce, 99)
            XCTAssertEqual(pong.sentUnixNanos, 1_700_000_000_000_000_000)
            XCTAssertEqual(pong.inFlight, 0)
            XCTAssertEqual(pong.queued, 0)

            // 100 requests in flight at once, answered by id.
            let requests = (1...100).map { id -> WorkerFrame in
                let input0 = (0..<16).map { Int32(id * 1000 + $0) }
                return self.inferFrame(UInt64(id), Requests.simple(input0, [Int32](repeating: Int32(id), count: 16), raw: id % 2 == 0, id: "c\(id)"))
            }
            try await outbound.write(contentsOf: requests)
            var answered: Set<UInt64> = []
            while answered.count < 100 {
                let frame = try await XCTUnwrapAsync(try await frames.next())
                let id = Int(frame.requestID)
                XCTAssertTrue(answered.insert(frame.requestID).inserted, "one answer per id")
                XCTAssertTrue(try frame.inferResponse().final)
                let response = try frame.modelResponse()
                XCTAssertEqual(response.id, "c\(id)")
                XCTAssertEqual(response.int32s("OUTPUT0"), (0..<16).map { Int32(id * 1000 + $0 + id) })
                XCTAssertEqual(response.int32s("OUTPUT1"), (0..<16).map { Int32(id * 1000 + $0 - id) })
            }
            XCTAssertEqual(answered, Set(1...100))

            // A decoupled stream: one response per element, then STREAM_END.
            try await outbound.write(self.inferFrame(1000, Requests.repeatInt32([4, 5, 6], delays: [10, 10, 10])))
            var outs: [[Int32]?] = []
            var indices: [[UInt32]?] = []
            while true {
                let frame = try await XCTUnwrapAsync(try await frames.next())
                XCTAssertEqual(frame.requestID, 1000)
                if frame.kind == .streamEnd { break }
                XCTAssertFalse(try frame.inferResponse().final)
                let response = try frame.modelResponse()
                outs.append(response.int32s("OUT"))
                indices.append(response.uint32s("IDX"))
            }
            XCTAssertEqual(outs, [[4], [5], [6]])
            XCTAssertEqual(indices, [[0], [1], [2]])
        }
    }

    func testModelVersionFlagSetsTheVersionServed() async throws {
        let worker = try launch(["--model", "simple", "--model-version", "3"])
        try await connect(worker.socketPath).executeThenClose { inbound, outbound in
            var frames = inbound.makeAsyncIterator()
            let hello = try await XCTUnwrapAsync(try await frames.next()).decodePayload(as: WorkerProtocol.Hello.self)
            XCTAssertEqual(hello.models.map(\.versions), [["3"]])

            let request = Requests.simple([Int32](repeating: 2, count: 16), [Int32](repeating: 1, count: 16), raw: true)
            try await outbound.write(WorkerFrame(kind: .inferRequest, requestID: 1, message: Requests.frame(request, version: "3")))
            let answer = try await XCTUnwrapAsync(try await frames.next())
            XCTAssertEqual(try answer.modelResponse().modelVersion, "3")

            try await outbound.write(WorkerFrame(kind: .inferRequest, requestID: 2, message: Requests.frame(request, version: "1")))
            let refused = try await XCTUnwrapAsync(try await frames.next()).inferResponse()
            XCTAssertEqual(refused.status?.code, 5)
            XCTAssertEqual(refused.status?.message, "model 'simple' has no version '1' on worker e2e; it serves version 3")
        }
    }

    func testCancelStopsASlowRequestAndNothingMoreArrivesForIt() async throws {
        let worker = try launch(["--model", "simple", "--model", "repeat_int32", "--max-queue-delay-us", "800000"])
        try await connect(worker.socketPath).executeThenClose { inbound, outbound in
            var frames = inbound.makeAsyncIterator()
            _ = try await frames.next()  // HELLO

            // A stream cancelled after its first response, and a request cancelled in the batch queue.
            try await outbound.write(self.inferFrame(7, Requests.repeatInt32([1, 2, 3], delays: [0, 400, 400])))
            let first = try await XCTUnwrapAsync(try await frames.next())
            XCTAssertEqual(first.requestID, 7)
            XCTAssertEqual(try first.modelResponse().int32s("OUT"), [1])
            try await outbound.write(self.inferFrame(8, Requests.simple([Int32](repeating: 1, count: 16), [Int32](repeating: 1, count: 16), raw: true)))
            try await outbound.write(self.ping(1))
            let busy = try await XCTUnwrapAsync(try await frames.next()).decodePayload(as: WorkerProtocol.Pong.self)
            XCTAssertEqual(busy.inFlight, 1, "the stream is running")
            XCTAssertEqual(busy.queued, 1, "the simple request waits for its batch")

            var cancel = WorkerProtocol.Cancel()
            cancel.reason = "client cancelled"
            try await outbound.write(WorkerFrame(kind: .cancel, requestID: 7, message: cancel))
            try await outbound.write(WorkerFrame(kind: .cancel, requestID: 8, message: cancel))
            try await outbound.write(self.ping(2))
            let idle = try await XCTUnwrapAsync(try await frames.next())
            XCTAssertEqual(idle.kind, .pong, "no frame for a cancelled request")
            let idlePong = try idle.decodePayload(as: WorkerProtocol.Pong.self)
            XCTAssertEqual(idlePong.nonce, 2)
            XCTAssertEqual(idlePong.inFlight, 0)
            XCTAssertEqual(idlePong.queued, 0)

            // Past the stream's next delay and the batch delay: still nothing for 7 or 8.
            try await Task.sleep(nanoseconds: 1_000_000_000)
            try await outbound.write(self.inferFrame(9, Requests.repeatInt32([9], delays: [0])))
            let next = try await XCTUnwrapAsync(try await frames.next())
            XCTAssertEqual(next.requestID, 9)
            XCTAssertEqual(try next.modelResponse().int32s("OUT"), [9])
            let end = try await XCTUnwrapAsync(try await frames.next())
            XCTAssertEqual(end.kind, .streamEnd)
            XCTAssertEqual(end.requestID, 9)
        }
    }

    func testGarbageClosesThatConnectionWhileTheWorkerServesOthers() async throws {
        let worker = try launch(["--model", "simple"])

        // A frame length beyond the limit: the worker cannot resynchronise, so it hangs up.
        try await connectRaw(worker.socketPath).executeThenClose { inbound, outbound in
            var frames = inbound.makeAsyncIterator()
            let hello = try await frames.next()
            XCTAssertEqual(hello?.kind, .hello)
            try await outbound.write(ByteBuffer(bytes: [0xFF, 0xFF, 0xFF, 0xFF, 0x02, 0x00, 0x01]))
            let after = try await frames.next()
            XCTAssertNil(after, "the connection is closed")
        }

        // Well-framed garbage inside an INFER_REQUEST is the request's problem, not the connection's.
        try await connect(worker.socketPath).executeThenClose { inbound, outbound in
            var frames = inbound.makeAsyncIterator()
            let hello = try await frames.next()
            XCTAssertEqual(hello?.kind, .hello)
            try await outbound.write(WorkerFrame(kind: .inferRequest, requestID: 3, payload: ByteBuffer(bytes: [0x0A, 0x99])))
            let refused = try await XCTUnwrapAsync(try await frames.next())
            XCTAssertEqual(refused.requestID, 3)
            XCTAssertEqual(try refused.inferResponse().status?.code, 3)
            XCTAssertTrue(try refused.inferResponse().final)

            var request = Requests.simple([Int32](repeating: 2, count: 16), [Int32](repeating: 3, count: 16), raw: true)
            request.modelName = "nope"
            try await outbound.write(self.inferFrame(4, request))
            let notFound = try await XCTUnwrapAsync(try await frames.next())
            XCTAssertEqual(try notFound.inferResponse().status?.code, 5)

            request.modelName = "simple"
            try await outbound.write(self.inferFrame(5, request))
            let answer = try await XCTUnwrapAsync(try await frames.next())
            XCTAssertEqual(try answer.modelResponse().int32s("OUTPUT0"), [Int32](repeating: 5, count: 16))
        }
        XCTAssertTrue(worker.process.isRunning)
    }

    func testSIGTERMFinishesWhatIsInFlightAndExitsZero() async throws {
        let worker = try launch(["--model", "repeat_int32"])
        try await connect(worker.socketPath).executeThenClose { inbound, outbound in
            var frames = inbound.makeAsyncIterator()
            _ = try await frames.next()  // HELLO
            try await outbound.write(self.inferFrame(1, Requests.repeatInt32([11, 12], delays: [300, 100])))
            try await outbound.write(self.ping(1))
            _ = try await frames.next()  // PONG: the request has arrived.
            kill(worker.process.processIdentifier, SIGTERM)
            var kinds: [WorkerFrame.Kind] = []
            while let frame = try await frames.next() { kinds.append(frame.kind) }
            XCTAssertEqual(kinds, [.inferResponse, .inferResponse, .streamEnd], "in-flight work finishes, then the worker hangs up")
        }
        let status = try await waitForExit(worker.process, within: 6)
        XCTAssertEqual(status, 0)
        XCTAssertEqual(worker.process.terminationReason, .exit)
        XCTAssertFalse(FileManager.default.fileExists(atPath: worker.socketPath), "the socket file is removed")
    }

    func testWorkerExitsWhenItsParentIsKilled() async throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary.path) else {
            throw XCTSkip("no \(Self.binary.path): run `swift build --build-tests` first")
        }
        let socketPath = "/tmp/sy-parent-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
        let parent = Process()
        parent.executableURL = URL(fileURLWithPath: "/bin/sh")
        let logPath = socketPath.replacingOccurrences(of: ".sock", with: ".log")
        logs.append(logPath)
        parent.arguments = ["-c", "\"$0\" worker --socket \"$1\" --model simple 2>\"$2\" & echo $!; wait", Self.binary.path, socketPath, logPath]
        let output = Pipe()
        parent.standardOutput = output
        try parent.run()
        processes.append(parent)
        let line = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
        let workerPID = try XCTUnwrap(pid_t(line.trimmingCharacters(in: .whitespacesAndNewlines)))
        // Serving: HELLO arrives.
        try await connect(socketPath).executeThenClose { inbound, _ in
            var frames = inbound.makeAsyncIterator()
            let hello = try await frames.next()
            XCTAssertEqual(hello?.kind, .hello)
        }
        let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        XCTAssertTrue(log.contains("parent-death signal armed"), log)
        kill(parent.processIdentifier, SIGKILL)
        let deadline = Date().addingTimeInterval(3)
        while Self.isAlive(workerPID), Date() < deadline {
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        XCTAssertFalse(Self.isAlive(workerPID), "the worker outlived its parent")
        if Self.isAlive(workerPID) { kill(workerPID, SIGKILL) }
        unlink(socketPath)
    }

    func testWorkerOutlivesTheThreadThatStartedIt() async throws {
        // Linux's parent-death signal fires when the spawning *thread* ends; the worker must tell
        // that apart from the death of the gateway process.
        let tag = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let socketPath = "/tmp/sy-thread-\(tag).sock"
        let logPath = "/tmp/sy-thread-\(tag).log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        logs.append(logPath)
        guard FileManager.default.isExecutableFile(atPath: Self.binary.path) else {
            throw XCTSkip("no \(Self.binary.path): run `swift build --build-tests` first")
        }
        let process = Process()
        process.executableURL = Self.binary
        process.arguments = ["worker", "--socket", socketPath, "--model", "simple", "--log-level", "debug"]
        process.standardError = FileHandle(forWritingAtPath: logPath)
        processes.append(process)
        let spawnerEnded = expectation(description: "the spawning thread ended")
        let spawner = Thread {
            try? process.run()
            // Outlive the worker's start-up, so that it is watching when this thread ends.
            Thread.sleep(forTimeInterval: 0.6)
            spawnerEnded.fulfill()
        }
        spawner.start()
        try await connect(socketPath).executeThenClose { inbound, _ in
            var frames = inbound.makeAsyncIterator()
            let hello = try await frames.next()
            XCTAssertEqual(hello?.kind, .hello)
        }
        await fulfillment(of: [spawnerEnded], timeout: 5)
        try await Task.sleep(nanoseconds: 300_000_000)
        XCTAssertTrue(process.isRunning, "the worker died with the thread that started it")
        let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        XCTAssertTrue(log.contains("the thread that started this worker ended"), log)
        process.terminate()
        let status = try await waitForExit(process, within: 6)
        XCTAssertEqual(status, 0)
    }

    func testAWorkerWhoseParentIsAlreadyGoneExitsAtOnce() async throws {
        // The parent named by --parent-pid is not this worker's parent: it died while the
        // worker started, and the worker was handed to another process.
        let orphan = try launch(["--model", "simple", "--parent-pid", "999999999"])
        let status = try await waitForExit(orphan.process, within: 10)
        XCTAssertEqual(status, 1)
        let log = try String(contentsOfFile: logs.last!, encoding: .utf8)
        XCTAssertTrue(log.contains("parent process 999999999 has exited"), log)

        // Its real parent's pid: it serves.
        let worker = try launch(["--model", "simple", "--parent-pid", "\(getpid())"])
        try await connect(worker.socketPath).executeThenClose { inbound, _ in
            var frames = inbound.makeAsyncIterator()
            let hello = try await frames.next()
            XCTAssertEqual(hello?.kind, .hello)
        }
        XCTAssertTrue(worker.process.isRunning)
    }

    // MARK: Diagnostic models

    private func diagnosticFrame(_ id: UInt64, _ model: String, _ value: Int32, sleepMilliseconds: UInt32 = 0) -> WorkerFrame {
        var request = ModelInferRequest()
        request.modelName = model
        request.inputs = [Requests.input("IN", "INT32", shape: [1]), Requests.input("SLEEP_MS", "UINT32", shape: [1])]
        request.rawInputContents = [Requests.raw([value]), Requests.raw([sleepMilliseconds])]
        return inferFrame(id, request)
    }

    /// Collects every frame the worker sends, in the background, until the connection ends.
    private final class FrameCollector: Sendable {
        let frames = NIOLockedValueBox<[WorkerFrame]>([])
        let ended = NIOLockedValueBox(false)

        func start(_ inbound: NIOAsyncChannelInboundStream<WorkerFrame>) -> Task<Void, Never> {
            Task {
                do {
                    for try await frame in inbound { self.frames.withLockedValue { $0.append(frame) } }
                } catch {}
                self.ended.withLockedValue { $0 = true }
            }
        }

        /// Waits (at most `seconds`) until `condition` holds for the frames received so far.
        func wait(_ seconds: Double, until condition: ([WorkerFrame]) -> Bool) async throws -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if frames.withLockedValue({ condition($0) }) { return true }
                try await Task.sleep(nanoseconds: 10_000_000)
            }
            return frames.withLockedValue { condition($0) }
        }
    }

    func testDiagnosticModelsAreRefusedWithoutTheFlag() async throws {
        let worker = try launch(["--model", "diagnostic_crash"])
        let status = try await waitForExit(worker.process, within: 10)
        XCTAssertNotNil(status)
        XCTAssertNotEqual(status, 0)
    }

    func testDiagnosticCrashKillsTheWorkerOnItsPoisonInput() async throws {
        let worker = try launch(["--enable-diagnostic-models", "--model", "diagnostic_crash", "--model", "simple"])
        try await connect(worker.socketPath).executeThenClose { inbound, outbound in
            let collector = FrameCollector()
            let reader = collector.start(inbound)
            let greeted = try await collector.wait(10) { $0.first?.kind == .hello }
            XCTAssertTrue(greeted)
            let hello = try collector.frames.withLockedValue { $0[0] }.decodePayload(as: WorkerProtocol.Hello.self)
            XCTAssertEqual(hello.models.map(\.name), ["diagnostic_crash", "simple"])

            // Two requests of 300 ms overlap, and answer OUT = IN.
            let started = Date()
            try await outbound.write(contentsOf: [
                self.diagnosticFrame(1, "diagnostic_crash", 11, sleepMilliseconds: 300),
                self.diagnosticFrame(2, "diagnostic_crash", 12, sleepMilliseconds: 300),
            ])
            let bothAnswered = try await collector.wait(5) { $0.count == 3 }
            XCTAssertTrue(bothAnswered)
            XCTAssertLessThan(Date().timeIntervalSince(started), 0.55)
            let answers = try collector.frames.withLockedValue { Array($0.dropFirst()) }.map { ($0.requestID, try $0.modelResponse().int32s("OUT")) }
            XCTAssertEqual(answers.sorted { $0.0 < $1.0 }.map(\.1), [[11], [12]])

            // IN=42: the worker dies at once with SIGKILL, and the connection ends.
            try await outbound.write(self.diagnosticFrame(3, "diagnostic_crash", 42, sleepMilliseconds: 1000))
            let connectionEnded = try await collector.wait(5) { _ in collector.ended.withLockedValue { $0 } }
            XCTAssertTrue(connectionEnded)
            XCTAssertEqual(collector.frames.withLockedValue { $0.count }, 3, "no answer to the poison input")
            await reader.value
        }
        let status = try await waitForExit(worker.process, within: 5)
        XCTAssertEqual(status, SIGKILL)
        XCTAssertEqual(worker.process.terminationReason, .uncaughtSignal)
        let log = try String(contentsOfFile: logs.last!, encoding: .utf8)
        XCTAssertTrue(log.contains("model 'diagnostic_crash' received its fault input IN=42"), log)
    }

    func testDiagnosticStallLeavesTheWorkerAliveButAnsweringNothing() async throws {
        let worker = try launch(["--enable-diagnostic-models", "--model", "diagnostic_stall", "--model", "diagnostic_stateful"])
        try await connect(worker.socketPath).executeThenClose { inbound, outbound in
            let collector = FrameCollector()
            let reader = collector.start(inbound)
            let greeted = try await collector.wait(10) { $0.first?.kind == .hello }
            XCTAssertTrue(greeted)
            let hello = try collector.frames.withLockedValue { $0[0] }.decodePayload(as: WorkerProtocol.Hello.self)
            XCTAssertEqual(hello.models.map(\.name), ["diagnostic_stall", "diagnostic_stateful"])
            XCTAssertEqual(hello.models.last?.config?.parameters["switchyard.idempotent"]?.stringValue, "false")

            // Before the stall: a ping is answered, and a request in flight holds 500 ms.
            try await outbound.write(self.ping(1))
            let ponged = try await collector.wait(5) { $0.contains { $0.kind == .pong } }
            XCTAssertTrue(ponged)
            try await outbound.write(self.diagnosticFrame(1, "diagnostic_stateful", 5, sleepMilliseconds: 500))

            // IN=7: from now on nothing is answered, not the sleeping request, not a ping, not a
            // new request; the process lives on.
            try await outbound.write(self.diagnosticFrame(2, "diagnostic_stall", 7))
            try await outbound.write(self.ping(2))
            try await outbound.write(self.diagnosticFrame(3, "diagnostic_stateful", 6))
            let answered = try await collector.wait(1.5) { $0.count > 2 }
            XCTAssertFalse(answered, "a stalled worker sent \(collector.frames.withLockedValue { $0.map(\.kind) })")
            XCTAssertTrue(worker.process.isRunning)
            XCTAssertTrue(Self.isAlive(worker.process.processIdentifier))
            reader.cancel()
        }
        let log = try String(contentsOfFile: logs.last!, encoding: .utf8)
        XCTAssertTrue(log.contains("model 'diagnostic_stall' received its fault input IN=7"), log)
        // tearDown SIGKILLs it, as the gateway does.
    }

    /// True while `pid` runs (a zombie waiting for a reaper counts as gone).
    private static func isAlive(_ pid: pid_t) -> Bool {
        guard kill(pid, 0) == 0 else { return false }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return true }
        let state = stat[stat.index(close, offsetBy: 2)]
        return state != "Z" && state != "X"
    }
}

/// `XCTUnwrap` for values produced by an `await`.
func XCTUnwrapAsync<T>(_ value: @autoclosure () async throws -> T?, file: StaticString = #filePath, line: UInt = #line) async throws -> T {
    let result = try await value()
    return try XCTUnwrap(result, file: file, line: line)
}
