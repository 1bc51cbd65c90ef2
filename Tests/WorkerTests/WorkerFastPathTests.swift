import InferenceProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import XCTest

@testable import Worker

/// The worker's fast path: trivial models run their batches on the event loop, and a batch
/// that can run at once arms no timer.
final class WorkerFastPathTests: RuntimeTestCase {
    /// A batched model that records, for each batch, whether it ran on the worker's event loop.
    private struct ThreadRecordingModel: BatchedModel {
        let inner: any BatchedModel
        let eventLoop: any EventLoop
        let ranOnLoop = NIOLockedValueBox<[Bool]>([])

        func validate(_ inputs: [String: Tensor]) throws(InferenceError) { try inner.validate(inputs) }

        func execute(_ inputs: [String: Tensor]) throws(InferenceError) -> [String: Tensor] {
            let onLoop = eventLoop.inEventLoop
            ranOnLoop.withLockedValue { $0.append(onLoop) }
            return try inner.execute(inputs)
        }
    }

    private func runtime(_ models: [ServedModel]) -> WorkerRuntime {
        makeRuntime(models, workerID: "fast")
    }

    /// `name` with its batches recorded, executing inline or not.
    private func recorded(_ name: String, inline: Bool, delayMicroseconds: UInt64 = 0) throws -> (ServedModel, ThreadRecordingModel) {
        var model = try XCTUnwrap(BuiltinModels.model(named: name, maxBatchSize: 8, maxQueueDelayMicroseconds: delayMicroseconds))
        guard case .batched(let inner) = model.backend else { throw XCTSkip("\(name) does not batch") }
        let recorder = ThreadRecordingModel(inner: inner, eventLoop: group.next())
        model.backend = .batched(recorder)
        model.executesInline = inline
        return (model, recorder)
    }

    private func simpleRequest(_ value: Int32) -> WorkerProtocol.InferRequest {
        Requests.frame(Requests.simple([Int32](repeating: value, count: 16), [Int32](repeating: 1, count: 16), raw: true))
    }

    func testTheTrivialBuiltInModelsExecuteInlineAndTheOthersDoNot() throws {
        for name in ["simple", "simple_string", "simple_identity"] {
            XCTAssertEqual(BuiltinModels.model(named: name)?.executesInline, true, name)
        }
        XCTAssertEqual(BuiltinModels.model(named: "repeat_int32")?.executesInline, false)
        XCTAssertEqual(DiagnosticModels.model(named: "diagnostic_crash")?.executesInline, false)
    }

    func testAnInlineModelsBatchRunsOnTheEventLoopAndAnyOtherOnTheThreadPool() throws {
        for inline in [true, false] {
            let (model, recorder) = try recorded("simple", inline: inline)
            let runtime = runtime([model])
            let frames = try runtime.infer(requestID: 1, simpleRequest(4)).wait()
            XCTAssertEqual(try frames.first?.modelResponse().int32s("OUTPUT0"), [Int32](repeating: 5, count: 16))
            XCTAssertEqual(recorder.ranOnLoop.withLockedValue { $0 }, [inline], inline ? "inline: on the loop" : "not inline: on the pool")
        }
    }

    func testALargeBatchOfAnInlineModelStillGoesToTheThreadPool() throws {
        let (model, recorder) = try recorded("simple_identity", inline: true)
        let runtime = runtime([model])
        let big = String(repeating: "x", count: RuntimeCore.inlineRequestLimit + 1)
        var request = ModelInferRequest()
        request.modelName = "simple_identity"
        request.inputs = [Requests.input("INPUT0", "BYTES", shape: [1, 1])]
        request.rawInputContents = [Requests.raw([big])]
        let small = Requests.frame({ var small = request; small.rawInputContents = [Requests.raw(["x"])]; return small }())

        XCTAssertEqual(try runtime.infer(requestID: 1, Requests.frame(request)).wait().first?.modelResponse().strings("OUTPUT0"), [big])
        XCTAssertEqual(try runtime.infer(requestID: 2, small).wait().first?.modelResponse().strings("OUTPUT0"), ["x"])
        XCTAssertEqual(recorder.ranOnLoop.withLockedValue { $0 }, [false, true])
    }

    private func batchTimersArmed(_ runtime: WorkerRuntime) throws -> Int {
        try runtime.eventLoop.submit { runtime.core.value.batchTimersArmed }.wait()
    }

    func testABatchThatCanRunAtOnceArmsNoTimer() throws {
        // No queue delay: every request runs as it arrives.
        let immediate = runtime([try XCTUnwrap(BuiltinModels.model(named: "simple", maxBatchSize: 8, maxQueueDelayMicroseconds: 0))])
        for id in 1...3 { _ = try immediate.infer(requestID: UInt64(id), simpleRequest(Int32(id))).wait() }
        XCTAssertEqual(try batchTimersArmed(immediate), 0)

        // A delay, but a batch of one is full as soon as it arrives.
        let full = runtime([try XCTUnwrap(BuiltinModels.model(named: "simple", maxBatchSize: 1, maxQueueDelayMicroseconds: 10_000_000))])
        let started = NIODeadline.now()
        _ = try full.infer(requestID: 1, simpleRequest(1)).wait()
        XCTAssertLessThan(NIODeadline.now() - started, .seconds(5), "a full batch does not wait for the delay")
        XCTAssertEqual(try batchTimersArmed(full), 0)
    }

    func testABatchThatWaitsToFillArmsOneTimer() throws {
        let waiting = runtime([try XCTUnwrap(BuiltinModels.model(named: "simple", maxBatchSize: 8, maxQueueDelayMicroseconds: 20_000))])
        let frames = try waiting.infer(requestID: 1, simpleRequest(1)).wait()
        XCTAssertNil(try frames.first?.inferResponse().status)
        XCTAssertEqual(try batchTimersArmed(waiting), 1)
    }
}
