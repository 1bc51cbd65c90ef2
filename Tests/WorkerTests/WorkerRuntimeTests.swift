import InferenceProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ProtoWire
import XCTest

@testable import Worker

/// The runtime with a real event loop and thread pool: batching across requests, answers by
/// id, statuses for requests it cannot run, decoupled streams and draining.
final class WorkerRuntimeTests: RuntimeTestCase {
    private func runtime(delayMicroseconds: UInt64 = 100, maxBatchSize: Int32 = 8) -> WorkerRuntime {
        let models = BuiltinModels.names.compactMap {
            BuiltinModels.model(named: $0, maxBatchSize: maxBatchSize, maxQueueDelayMicroseconds: delayMicroseconds)
        }
        return makeRuntime(models, workerID: "test-worker")
    }

    func testRequestsSubmittedWithinTheDelayRunAsFewerBatchesAndSplitCorrectly() throws {
        let runtime = runtime(delayMicroseconds: 300_000)
        let count = 20
        let futures = (0..<count).map { index in
            let input0 = (0..<16).map { Int32(index * 16 + $0) }
            let input1 = [Int32](repeating: Int32(index), count: 16)
            return runtime.infer(requestID: UInt64(index + 1), Requests.frame(Requests.simple(input0, input1, raw: index % 2 == 0, id: "id-\(index)")))
        }
        var executionsCounted = 0
        for (index, future) in futures.enumerated() {
            let frames = try future.wait()
            XCTAssertEqual(frames.count, 1)
            XCTAssertEqual(frames[0].requestID, UInt64(index + 1))
            let envelope = try frames[0].inferResponse()
            XCTAssertTrue(envelope.final)
            let timing = try XCTUnwrap(envelope.timing, "every batched answer says where its time went")
            XCTAssertGreaterThan(timing.queueNs, 0, "request \(index) waited for its batch to fill")
            XCTAssertGreaterThan(timing.computeInferNs, 0)
            if timing.countsExecution { executionsCounted += 1 }
            let response = try frames[0].modelResponse()
            XCTAssertEqual(response.id, "id-\(index)")
            XCTAssertEqual(response.shape("OUTPUT0"), [1, 16])
            XCTAssertEqual(response.int32s("OUTPUT0"), (0..<16).map { Int32(index * 16 + $0 + index) })
            XCTAssertEqual(response.int32s("OUTPUT1"), (0..<16).map { Int32(index * 16 + $0 - index) })
        }
        let statistics = try runtime.statistics().wait()
        let simple = try XCTUnwrap(statistics.models["simple"])
        // 20 single-row requests with a batch size of 8: batches of 8, 8 and 4.
        XCTAssertEqual(simple.executions, 3)
        XCTAssertEqual(executionsCounted, 3, "one answer of each batch counts its execution")
        XCTAssertEqual(simple.inferences, 20)
        XCTAssertEqual(simple.succeeded, 20)
        XCTAssertEqual(statistics.inFlight, 0)
        XCTAssertEqual(statistics.queued, 0)
    }

    func testABadRequestDoesNotSpoilTheBatchItArrivedWith() throws {
        let runtime = runtime(delayMicroseconds: 100_000, maxBatchSize: 2)
        var bad = Requests.simple([Int32](repeating: 1, count: 16), [Int32](repeating: 1, count: 16), raw: true)
        bad.rawInputContents[0] = Requests.raw([Int32](repeating: 1, count: 3))
        let good1 = runtime.infer(requestID: 1, Requests.frame(Requests.simple([Int32](repeating: 2, count: 16), [Int32](repeating: 1, count: 16), raw: true)))
        let failed = runtime.infer(requestID: 2, Requests.frame(bad))
        let good2 = runtime.infer(requestID: 3, Requests.frame(Requests.simple([Int32](repeating: 4, count: 16), [Int32](repeating: 1, count: 16), raw: false)))
        let status = try XCTUnwrap(try failed.wait().first?.inferResponse().status)
        XCTAssertEqual(status.code, 3)
        XCTAssertTrue(status.message.contains("input 'INPUT0' raw contents hold 12 bytes"), status.message)
        XCTAssertEqual(try good1.wait().first?.modelResponse().int32s("OUTPUT0"), [Int32](repeating: 3, count: 16))
        XCTAssertEqual(try good2.wait().first?.modelResponse().int32s("OUTPUT0"), [Int32](repeating: 5, count: 16))
        XCTAssertEqual(try runtime.statistics().wait().models["simple"]?.executions, 1)
    }

    func testUnknownModelOrVersionIsNotFound() throws {
        let runtime = runtime()
        var request = Requests.simple([Int32](repeating: 1, count: 16), [Int32](repeating: 1, count: 16), raw: true)
        request.modelName = "resnet"
        let unknown = try XCTUnwrap(runtime.infer(requestID: 9, Requests.frame(request)).wait().first?.inferResponse())
        XCTAssertEqual(unknown.status?.code, 5)
        XCTAssertTrue(unknown.final)
        XCTAssertTrue(unknown.status?.message.contains("model 'resnet' is not served by worker test-worker") ?? false)

        request.modelName = "simple"
        let version = try XCTUnwrap(runtime.infer(requestID: 10, Requests.frame(request, version: "2")).wait().first?.inferResponse())
        XCTAssertEqual(version.status?.code, 5)
        XCTAssertEqual(version.status?.message, "model 'simple' has no version '2' on worker test-worker; it serves version 1")

        let explicit = try XCTUnwrap(runtime.infer(requestID: 11, Requests.frame(request, version: "1")).wait().first)
        XCTAssertEqual(try explicit.modelResponse().modelVersion, "1")
    }

    func testGarbagePayloadsAreInvalidArgument() throws {
        let runtime = runtime()
        var payload = WorkerProtocol.InferRequest()
        payload.modelName = "simple"
        payload.request = ByteBuffer(bytes: [0x2A, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F])
        let frame = try XCTUnwrap(runtime.infer(requestID: 1, payload).wait().first)
        let status = try XCTUnwrap(try frame.inferResponse().status)
        XCTAssertEqual(status.code, 3)
        XCTAssertTrue(status.message.hasPrefix("the request is not a valid inference.ModelInferRequest: malformed protobuf"), status.message)
    }

    func testAPassedDeadlineIsDeadlineExceeded() throws {
        let runtime = runtime()
        var payload = Requests.frame(Requests.simple([Int32](repeating: 1, count: 16), [Int32](repeating: 1, count: 16), raw: true))
        payload.deadlineUnixNanos = 1_000
        let status = try XCTUnwrap(try runtime.infer(requestID: 1, payload).wait().first?.inferResponse().status)
        XCTAssertEqual(status.code, 4)
    }

    func testDecoupledModelStreamsOneResponsePerElementThenStreamEnd() throws {
        let runtime = runtime()
        let frames = try runtime.infer(requestID: 42, Requests.frame(Requests.repeatInt32([4, 5, 6], delays: [5, 5, 5]))).wait()
        XCTAssertEqual(frames.map(\.kind), [.inferResponse, .inferResponse, .inferResponse, .streamEnd])
        XCTAssertTrue(frames.allSatisfy { $0.requestID == 42 })
        let responses = try frames.prefix(3).map { frame -> ModelInferResponse in
            XCTAssertFalse(try frame.inferResponse().final)
            return try frame.modelResponse()
        }
        XCTAssertEqual(responses.map { $0.int32s("OUT") }, [[4], [5], [6]])
        XCTAssertEqual(responses.map { $0.uint32s("IDX") }, [[0], [1], [2]])
        XCTAssertEqual(responses.map { $0.modelName }, ["repeat_int32", "repeat_int32", "repeat_int32"])

        let values = (0..<1000).map { Int32($0 * 3) }
        let long = try runtime.infer(requestID: 44, Requests.frame(Requests.repeatInt32(values, delays: [UInt32](repeating: 0, count: 1000)))).wait()
        XCTAssertEqual(long.count, 1001)
        XCTAssertEqual(long.last?.kind, .streamEnd)
        XCTAssertEqual(try long.dropLast().map { try $0.modelResponse().int32s("OUT")?.first }, values)

        let empty = try runtime.infer(requestID: 43, Requests.frame(Requests.repeatInt32([], delays: []))).wait()
        XCTAssertEqual(empty.map(\.kind), [.streamEnd])
    }

    func testWaitHoldsTheDecoupledInstanceSoTheNextRequestStartsLater() throws {
        let runtime = runtime()
        let started = NIODeadline.now()
        let first = runtime.infer(requestID: 1, Requests.frame(Requests.repeatInt32([1], delays: [0], wait: 200)))
        let second = runtime.infer(requestID: 2, Requests.frame(Requests.repeatInt32([2], delays: [0], wait: 0)))
        XCTAssertEqual(try first.wait().map(\.kind), [.inferResponse, .streamEnd])
        XCTAssertLessThan(NIODeadline.now() - started, .milliseconds(150), "the first request's responses do not wait for WAIT")
        XCTAssertEqual(try second.wait().map(\.kind), [.inferResponse, .streamEnd])
        XCTAssertGreaterThanOrEqual(NIODeadline.now() - started, .milliseconds(200), "the second request waits for the instance")
    }

    func testDrainFinishesWhatIsInFlightAndRefusesNewRequests() throws {
        let runtime = runtime()
        let slow = runtime.infer(requestID: 1, Requests.frame(Requests.repeatInt32([7], delays: [150])))
        let drained = runtime.drain(timeout: .seconds(5))
        let refused = try XCTUnwrap(runtime.infer(requestID: 2, Requests.frame(Requests.repeatInt32([8], delays: [0]))).wait().first)
        XCTAssertEqual(try refused.inferResponse().status?.code, 14)
        XCTAssertEqual(try slow.wait().map(\.kind), [.inferResponse, .streamEnd])
        XCTAssertTrue(try drained.wait())

        let stuck = self.runtime()
        let slower = stuck.infer(requestID: 1, Requests.frame(Requests.repeatInt32([7], delays: [400])))
        XCTAssertFalse(try stuck.drain(timeout: .milliseconds(50)).wait(), "a drain gives up after its timeout")
        XCTAssertEqual(try slower.wait().map(\.kind), [.inferResponse, .streamEnd])
    }
}

/// `--model-version`, and PAUSE seen from the runtime: a paused stream still ends at its deadline.
final class WorkerRuntimeVersionAndPauseTests: RuntimeTestCase {
    private func runtime(version: String) throws -> WorkerRuntime {
        var configuration = WorkerConfiguration(socketPath: "/unused", modelNames: ["simple", "repeat_int32"], workerID: "versioned")
        configuration.modelVersion = version
        return makeRuntime(try WorkerServer.models(for: configuration), workerID: "versioned")
    }

    func testModelsAreServedUnderTheConfiguredVersion() throws {
        let runtime = try runtime(version: "2024-06")
        XCTAssertEqual(runtime.hello().models.map(\.versions), [["2024-06"], ["2024-06"]])

        let request = Requests.simple([Int32](repeating: 1, count: 16), [Int32](repeating: 1, count: 16), raw: true)
        for (id, version) in [(1, ""), (2, "2024-06")] {
            let answer = try XCTUnwrap(runtime.infer(requestID: UInt64(id), Requests.frame(request, version: version)).wait().first)
            XCTAssertEqual(try answer.modelResponse().modelVersion, "2024-06", "request for version '\(version)'")
        }
        let stream = try runtime.infer(requestID: 3, Requests.frame(Requests.repeatInt32([5], delays: [0]))).wait()
        XCTAssertEqual(try stream.first?.modelResponse().modelVersion, "2024-06")

        let other = try XCTUnwrap(runtime.infer(requestID: 4, Requests.frame(request, version: "1")).wait().first?.inferResponse())
        XCTAssertEqual(other.status?.code, 5)
        XCTAssertEqual(other.status?.message, "model 'simple' has no version '1' on worker versioned; it serves version 2024-06")
    }

    func testAnEmptyModelVersionIsAConfigurationError() {
        var configuration = WorkerConfiguration(socketPath: "/unused", modelNames: ["simple"], workerID: "w")
        configuration.modelVersion = ""
        XCTAssertThrowsError(try WorkerServer.models(for: configuration)) { error in
            XCTAssertEqual("\(error)", "the model version must not be empty")
        }
    }

    func testAPausedStreamStillEndsAtItsDeadline() throws {
        let runtime = try runtime(version: "1")
        let eventLoop = runtime.eventLoop
        var payload = Requests.frame(Requests.repeatInt32([1, 2, 3], delays: [0, 10, 10]))
        payload.deadlineUnixNanos = WorkerProtocol.unixTimeNanoseconds() + 200_000_000
        let encoded = payload.encoded()
        let frames = NIOLockedValueBox<[WorkerFrame]>([])
        let ended = eventLoop.makePromise(of: Void.self)
        let started = NIODeadline.now()
        try eventLoop.submit {
            let core = runtime.core.value
            let call = core.start(requestID: 1, payload: encoded) { bytes, final in
                var bytes = bytes
                if let frame = try? WorkerFrame.read(from: &bytes) { frames.withLockedValue { $0.append(frame) } }
                if final { ended.succeed() }
            }
            core.pause(call)
        }.wait()
        try ended.futureResult.wait()
        XCTAssertGreaterThanOrEqual(NIODeadline.now() - started, .milliseconds(150), "ended by the deadline, not before")
        let sent = frames.withLockedValue { $0 }
        XCTAssertEqual(sent.count, 2, "the first response (sent before PAUSE) and the deadline's status")
        XCTAssertEqual(try sent.first?.modelResponse().int32s("OUT"), [1])
        let status = try XCTUnwrap(try sent.last?.inferResponse().status)
        XCTAssertEqual(status.code, 4)
        XCTAssertTrue(status.message.contains("paused"), status.message)
        XCTAssertEqual(try runtime.statistics().wait().inFlight, 0)
    }
}
