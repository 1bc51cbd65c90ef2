import InferenceProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import ProtoWire
import XCTest

@testable import Worker

/// The diagnostic models in the runtime, with their faults recorded instead of done: their
/// configurations, `OUT = IN` after `SLEEP_MS` with requests running concurrently, the fault
/// inputs, cancellation and deadlines, and that they are served only when enabled.
final class DiagnosticModelTests: RuntimeTestCase {
    private let faults = NIOLockedValueBox<[DiagnosticModels.Fault]>([])

    override func setUp() {
        super.setUp()
        faults.withLockedValue { $0 = [] }
    }

    /// A runtime serving every diagnostic model, whose faults are only recorded.
    private func runtime() -> WorkerRuntime {
        let faults = self.faults
        let models = DiagnosticModels.names.compactMap { name in
            DiagnosticModels.model(named: name, onFault: { fault in faults.withLockedValue { $0.append(fault) } })
        }
        return makeRuntime(models, workerID: "diagnostic-test")
    }

    private func request(_ model: String, _ value: Int32, sleepMilliseconds: UInt32? = nil, id: String = "") -> WorkerProtocol.InferRequest {
        var request = ModelInferRequest()
        request.modelName = model
        request.id = id
        request.inputs = [Requests.input("IN", "INT32", shape: [1])]
        request.rawInputContents = [Requests.raw([value])]
        if let sleepMilliseconds {
            request.inputs.append(Requests.input("SLEEP_MS", "UINT32", shape: [1]))
            request.rawInputContents.append(Requests.raw([sleepMilliseconds]))
        }
        return Requests.frame(request)
    }

    // MARK: Configuration

    func testDiagnosticModelsAreNotBuiltinAndHaveTheirConfigurations() throws {
        XCTAssertEqual(DiagnosticModels.names, ["diagnostic_crash", "diagnostic_stall", "diagnostic_stateful"])
        for name in DiagnosticModels.names {
            XCTAssertFalse(BuiltinModels.names.contains(name))
            XCTAssertNil(BuiltinModels.model(named: name), "\(name) is not a built-in model")
            let model = try XCTUnwrap(DiagnosticModels.model(named: name))
            XCTAssertEqual(model.name, name)
            XCTAssertEqual(model.config.maxBatchSize, 0)
            XCTAssertFalse(model.isDecoupled)
            XCTAssertEqual(model.config.input.map(\.name), ["IN", "SLEEP_MS"])
            XCTAssertEqual(model.config.input.map(\.dataType), [.int32, .uint32])
            XCTAssertEqual(model.config.input.map(\.dims), [[1], [1]])
            XCTAssertEqual(model.config.input.map(\.optional), [false, true])
            XCTAssertEqual(model.config.output.map(\.name), ["OUT"])
            XCTAssertEqual(model.config.output.first?.dims, [1])
            let idempotent = model.config.parameters["switchyard.idempotent"]?.stringValue
            XCTAssertEqual(idempotent, name == "diagnostic_stateful" ? "false" : nil, name)
            // The configuration survives HELLO's encoding, where the gateway reads it.
            let decoded = try ModelConfig(decoding: model.config.encoded())
            XCTAssertEqual(decoded.parameters["switchyard.idempotent"]?.stringValue, idempotent)
        }
        XCTAssertNil(DiagnosticModels.model(named: "simple"))
    }

    func testAnOutputOffsetAddsToEveryIntegerOutputOfTheBatchedModelsOnly() throws {
        var configuration = WorkerConfiguration(socketPath: "/tmp/unused.sock", modelNames: ["simple", "simple_string"], workerID: "w")
        configuration.diagnosticOutputOffset = 3
        let models = try WorkerServer.models(for: configuration)
        guard case .batched(let simple) = models[0].backend, case .batched(let strings) = models[1].backend else {
            return XCTFail("the built-in batched models stay batched")
        }
        XCTAssertNil(SimpleFastPath(model: models[0]), "the fast path would skip the offset")
        let inputs: [String: Tensor] = ["INPUT0": .int32([1, 2], shape: [1, 2]), "INPUT1": .int32([1, 1], shape: [1, 2])]
        let outputs = try simple.execute(inputs)
        XCTAssertEqual(outputs["OUTPUT0"]?.int32Values, [5, 6])
        XCTAssertEqual(outputs["OUTPUT1"]?.int32Values, [3, 4])
        let text: [String: Tensor] = [
            "INPUT0": .bytes([ByteBuffer(string: "1")], shape: [1, 1]), "INPUT1": .bytes([ByteBuffer(string: "1")], shape: [1, 1]),
        ]
        XCTAssertEqual(try strings.execute(text)["OUTPUT0"]?.bytesValues, [ByteBuffer(string: "2")], "BYTES outputs are left alone")
        configuration.diagnosticOutputOffset = 0
        XCTAssertNotNil(SimpleFastPath(model: try WorkerServer.models(for: configuration)[0]))
    }

    func testTheWorkerServesDiagnosticModelsOnlyWhenEnabled() throws {
        var configuration = WorkerConfiguration(socketPath: "/tmp/unused.sock", modelNames: ["simple", "diagnostic_crash"], workerID: "w")
        XCTAssertThrowsError(try WorkerServer.models(for: configuration)) { error in
            let message = String(describing: error)
            XCTAssertTrue(message.contains("model 'diagnostic_crash' is a diagnostic model"), message)
            XCTAssertTrue(message.contains("--enable-diagnostic-models"), message)
        }
        configuration.enableDiagnosticModels = true
        XCTAssertEqual(try WorkerServer.models(for: configuration).map(\.name), ["simple", "diagnostic_crash"])
        configuration.modelNames = ["diagnostic_nope"]
        XCTAssertThrowsError(try WorkerServer.models(for: configuration))
    }

    // MARK: Answers

    func testOutEqualsInAfterSleepAndRequestsRunConcurrently() throws {
        let runtime = runtime()
        let started = NIODeadline.now()
        let futures = (0..<6).map { index in
            runtime.infer(
                requestID: UInt64(index + 1),
                request(DiagnosticModels.names[index % 3], Int32(100 + index), sleepMilliseconds: 300, id: "r\(index)"))
        }
        for (index, future) in futures.enumerated() {
            let frames = try future.wait()
            XCTAssertEqual(frames.count, 1)
            XCTAssertTrue(try frames[0].inferResponse().final)
            let response = try frames[0].modelResponse()
            XCTAssertEqual(response.id, "r\(index)")
            XCTAssertEqual(response.modelName, DiagnosticModels.names[index % 3])
            XCTAssertEqual(response.shape("OUT"), [1])
            XCTAssertEqual(response.int32s("OUT"), [Int32(100 + index)])
        }
        let elapsed = NIODeadline.now() - started
        XCTAssertGreaterThanOrEqual(elapsed, .milliseconds(300), "each answer waits for SLEEP_MS")
        XCTAssertLessThan(elapsed, .milliseconds(900), "six requests of 300 ms overlap instead of queueing")

        let quick = NIODeadline.now()
        let frames = try runtime.infer(requestID: 99, request("diagnostic_crash", -5)).wait()
        XCTAssertEqual(try frames.first?.modelResponse().int32s("OUT"), [-5])
        XCTAssertLessThan(NIODeadline.now() - quick, .milliseconds(200), "no SLEEP_MS, no wait")

        let statistics = try runtime.statistics().wait()
        XCTAssertEqual(statistics.models["diagnostic_crash"]?.succeeded, 3)
        XCTAssertEqual(statistics.models["diagnostic_crash"]?.executions, 3)
        XCTAssertEqual(statistics.inFlight, 0)
        XCTAssertEqual(statistics.queued, 0)
        XCTAssertEqual(faults.withLockedValue { $0 }, [])
    }

    func testFaultInputsTriggerTheirModelsFaultOnly() throws {
        let runtime = runtime()
        // Recorded rather than done, so the model goes on to answer.
        XCTAssertEqual(try runtime.infer(requestID: 1, request("diagnostic_crash", 42)).wait().first?.modelResponse().int32s("OUT"), [42])
        XCTAssertEqual(faults.withLockedValue { $0 }, [.crash])
        _ = try runtime.infer(requestID: 2, request("diagnostic_stateful", 42)).wait()
        XCTAssertEqual(faults.withLockedValue { $0 }, [.crash, .crash])
        _ = try runtime.infer(requestID: 3, request("diagnostic_stall", 7)).wait()
        XCTAssertEqual(faults.withLockedValue { $0 }, [.crash, .crash, .stall])
        // Another model's fault input is a normal value.
        _ = try runtime.infer(requestID: 4, request("diagnostic_crash", 7)).wait()
        _ = try runtime.infer(requestID: 5, request("diagnostic_stall", 42)).wait()
        _ = try runtime.infer(requestID: 6, request("diagnostic_stateful", 7)).wait()
        XCTAssertEqual(faults.withLockedValue { $0 }, [.crash, .crash, .stall])
    }

    func testBadInputsAreInvalidArgumentAndNoFault() throws {
        let runtime = runtime()
        var wrongShape = ModelInferRequest()
        wrongShape.modelName = "diagnostic_crash"
        wrongShape.inputs = [Requests.input("IN", "INT32", shape: [2])]
        wrongShape.rawInputContents = [Requests.raw([Int32(42), 42])]
        let status = try XCTUnwrap(try runtime.infer(requestID: 1, Requests.frame(wrongShape)).wait().first?.inferResponse().status)
        XCTAssertEqual(status.code, 3)
        XCTAssertTrue(status.message.contains("input 'IN' has shape [2]"), status.message)

        var missing = ModelInferRequest()
        missing.modelName = "diagnostic_stall"
        missing.inputs = [Requests.input("SLEEP_MS", "UINT32", shape: [1])]
        missing.rawInputContents = [Requests.raw([UInt32(1)])]
        let missingStatus = try XCTUnwrap(try runtime.infer(requestID: 2, Requests.frame(missing)).wait().first?.inferResponse().status)
        XCTAssertEqual(missingStatus.code, 3)
        XCTAssertTrue(missingStatus.message.contains("expects input 'IN'"), missingStatus.message)
        XCTAssertEqual(faults.withLockedValue { $0 }, [])
    }

    func testADeadlineThatPassesDuringTheSleepIsDeadlineExceeded() throws {
        let runtime = runtime()
        var payload = request("diagnostic_crash", 3, sleepMilliseconds: 300)
        payload.deadlineUnixNanos = WorkerProtocol.unixTimeNanoseconds() + 100_000_000
        let status = try XCTUnwrap(try runtime.infer(requestID: 1, payload).wait().first?.inferResponse().status)
        XCTAssertEqual(status.code, 4)
        XCTAssertTrue(status.message.contains("model 'diagnostic_crash'"), status.message)
    }

    func testCancelStopsASleepingRequestAndNothingIsSent() throws {
        let runtime = runtime()
        let frames = NIOLockedValueBox<[ByteBuffer]>([])
        let payload = request("diagnostic_stall", 5, sleepMilliseconds: 200).encoded()
        let eventLoop = runtime.eventLoop
        let call = try eventLoop.submit {
            let call = runtime.core.value.start(requestID: 1, payload: payload) { frame, _ in frames.withLockedValue { $0.append(frame) } }
            return NIOLoopBound(call, eventLoop: eventLoop)
        }.wait()
        let busy = try runtime.statistics().wait()
        XCTAssertEqual(busy.inFlight, 1)
        try eventLoop.submit { runtime.core.value.cancel(call.value, reason: "test") }.wait()
        Thread.sleep(forTimeInterval: 0.35)
        XCTAssertEqual(frames.withLockedValue { $0.count }, 0, "nothing is sent for a cancelled request")
        let idle = try runtime.statistics().wait()
        XCTAssertEqual(idle.inFlight, 0)
        XCTAssertEqual(idle.models["diagnostic_stall"]?.succeeded, 0)
    }

    func testDrainWaitsForSleepingRequests() throws {
        let runtime = runtime()
        let slow = runtime.infer(requestID: 1, request("diagnostic_crash", 8, sleepMilliseconds: 150))
        XCTAssertTrue(try runtime.drain(timeout: .seconds(5)).wait())
        XCTAssertEqual(try slow.wait().first?.modelResponse().int32s("OUT"), [8])
    }
}
