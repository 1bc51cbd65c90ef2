import InferenceProtocol
import NIOCore
import ProtoWire
import XCTest

@testable import Worker

/// `simple` answered straight from its request bytes (`RuntimeCore.answerAtOnce`): the same
/// answers, byte for byte, as the general path, and only for requests the general path would
/// run at once; every other request still takes the general path and its precise errors.
final class SimpleFastPathTests: RuntimeTestCase {
    private func runtime(maxBatchSize: Int32 = 8, delayMicroseconds: UInt64 = 0, answersAtOnce: Bool = true) throws -> WorkerRuntime {
        let models = BuiltinModels.names.compactMap {
            BuiltinModels.model(named: $0, maxBatchSize: maxBatchSize, maxQueueDelayMicroseconds: delayMicroseconds)
        }
        let runtime = makeRuntime(models, workerID: "fast-path")
        try runtime.eventLoop.submit { runtime.core.value.answersAtOnce = answersAtOnce }.wait()
        return runtime
    }

    /// The fast path's frame for `request`, or nil when it leaves the request to the general path
    /// (then it must have written nothing).
    private func fastFrame(_ runtime: WorkerRuntime, id: UInt64, _ request: WorkerProtocol.InferRequest) throws -> WorkerFrame? {
        let payload = request.encoded()
        return try runtime.eventLoop.submit { () throws -> WorkerFrame? in
            var buffer = ByteBuffer()
            let answered = runtime.core.value.answerAtOnce(requestID: id, payload: payload, into: &buffer)
            guard answered else {
                XCTAssertEqual(buffer.readableBytes, 0, "a request left to the general path gets no bytes")
                return nil
            }
            let frame = try XCTUnwrap(try WorkerFrame.read(from: &buffer))
            XCTAssertEqual(buffer.readableBytes, 0, "exactly one frame")
            return frame
        }.wait()
    }

    private func randomValues(_ count: Int, using generator: inout some RandomNumberGenerator) -> [Int32] {
        (0..<count).map { _ in
            // Extremes too, so that wrap-around is exercised.
            switch Int.random(in: 0..<8, using: &generator) {
            case 0: return .max
            case 1: return .min
            default: return Int32.random(in: .min ... .max, using: &generator)
            }
        }
    }

    func testAnswersEqualTheGeneralPathsByteForByte() throws {
        let fast = try runtime()
        let general = try runtime(answersAtOnce: false)
        var generator = SystemRandomNumberGenerator()
        let outputChoices: [[String]] = [[], ["OUTPUT0"], ["OUTPUT1"], ["OUTPUT1", "OUTPUT0"], ["OUTPUT0", "OUTPUT0"], ["OUTPUT1", "OUTPUT1"]]
        var requestID: UInt64 = 0
        for rows in 1...8 {
            for outputs in outputChoices {
                for id in ["", "req-\(rows)", String(repeating: "long-id-", count: 20)] {
                    requestID += 1
                    var request = Requests.simple(
                        randomValues(rows * 16, using: &generator), randomValues(rows * 16, using: &generator), raw: true, id: id)
                    if Bool.random(using: &generator) {
                        request.inputs.reverse()
                        request.rawInputContents.reverse()
                    }
                    request.outputs = outputs.map {
                        var output = ModelInferRequest.InferRequestedOutputTensor()
                        output.name = $0
                        return output
                    }
                    let frame = try XCTUnwrap(try fastFrame(fast, id: requestID, Requests.frame(request)), "rows \(rows), outputs \(outputs)")
                    let expected = try XCTUnwrap(try general.infer(requestID: requestID, Requests.frame(request)).wait().first)
                    XCTAssertEqual(frame.requestID, requestID)
                    XCTAssertEqual(frame.kind, .inferResponse)
                    let envelope = try frame.inferResponse()
                    let expectedEnvelope = try expected.inferResponse()
                    XCTAssertNil(envelope.status)
                    XCTAssertTrue(envelope.final)
                    XCTAssertEqual(envelope.response, expectedEnvelope.response, "rows \(rows), outputs \(outputs), id '\(id)'")
                    let timing = try XCTUnwrap(envelope.timing)
                    XCTAssertTrue(timing.countsExecution)
                    XCTAssertGreaterThan(timing.computeInferNs, 0)
                    XCTAssertEqual(timing.queueNs, 0, "it did not wait")
                }
            }
        }
        let counted = try XCTUnwrap(try fast.statistics().wait().models["simple"])
        XCTAssertEqual(counted, try XCTUnwrap(try general.statistics().wait().models["simple"]))
        XCTAssertEqual(counted.executions, Int(requestID))
        XCTAssertEqual(counted.succeeded, Int(requestID))
        XCTAssertEqual(counted.inferences, 3 * 6 * (1...8).reduce(0, +))
    }

    func testInferTakesTheFastPathAndAnswersAsBefore() throws {
        let runtime = try runtime()
        let frames = try runtime.infer(
            requestID: 7, Requests.frame(Requests.simple(Array(0..<16), [Int32](repeating: 2, count: 16), raw: true, id: "x"))
        ).wait()
        XCTAssertEqual(frames.count, 1)
        XCTAssertEqual(frames[0].requestID, 7)
        let response = try frames[0].modelResponse()
        XCTAssertEqual(response.modelName, "simple")
        XCTAssertEqual(response.modelVersion, "1")
        XCTAssertEqual(response.id, "x")
        XCTAssertEqual(response.shape("OUTPUT0"), [1, 16])
        XCTAssertEqual(response.int32s("OUTPUT0"), (0..<16).map { $0 + 2 })
        XCTAssertEqual(response.int32s("OUTPUT1"), (0..<16).map { $0 - 2 })
        let statistics = try runtime.statistics().wait()
        XCTAssertEqual(statistics.inFlight, 0)
        XCTAssertEqual(statistics.queued, 0)
        XCTAssertEqual(statistics.models["simple"]?.succeeded, 1)
    }

    func testRequestsOutsideTheFastPathAreLeftToTheGeneralPath() throws {
        let runtime = try runtime()
        let good = Requests.simple([Int32](repeating: 1, count: 16), [Int32](repeating: 2, count: 16), raw: true)
        XCTAssertNotNil(try fastFrame(runtime, id: 1, Requests.frame(good)))

        var cases: [(String, ModelInferRequest, version: String)] = []
        cases.append(("typed contents", Requests.simple([Int32](repeating: 1, count: 16), [Int32](repeating: 2, count: 16), raw: false), ""))
        var wrongSize = good
        wrongSize.rawInputContents[1] = Requests.raw([Int32](repeating: 1, count: 15))
        cases.append(("raw contents of the wrong size", wrongSize, ""))
        var wrongDatatype = good
        wrongDatatype.inputs[0].datatype = "UINT32"
        cases.append(("wrong datatype", wrongDatatype, ""))
        var wrongShape = good
        wrongShape.inputs[1].shape = [1, 8]
        cases.append(("wrong shape", wrongShape, ""))
        var tooManyRows = Requests.simple([Int32](repeating: 1, count: 9 * 16), [Int32](repeating: 2, count: 9 * 16), raw: true)
        tooManyRows.id = "nine"
        cases.append(("more rows than max_batch_size", tooManyRows, ""))
        var rowsDisagree = good
        rowsDisagree.inputs[1].shape = [2, 16]
        rowsDisagree.rawInputContents[1] = Requests.raw([Int32](repeating: 1, count: 32))
        cases.append(("batch sizes disagree", rowsDisagree, ""))
        var duplicate = good
        duplicate.inputs[1].name = "INPUT0"
        cases.append(("duplicate input", duplicate, ""))
        var missingRaw = good
        missingRaw.rawInputContents.removeLast()
        cases.append(("one raw entry for two inputs", missingRaw, ""))
        var unknownOutput = good
        unknownOutput.outputs = [{ var output = ModelInferRequest.InferRequestedOutputTensor(); output.name = "OUTPUT2"; return output }()]
        cases.append(("unknown output", unknownOutput, ""))
        var outputParameters = good
        outputParameters.outputs = [{
            var output = ModelInferRequest.InferRequestedOutputTensor()
            output.name = "OUTPUT0"
            output.parameters["classification"] = InferParameter(.int64(2))
            return output
        }()]
        cases.append(("output with parameters", outputParameters, ""))
        var requestParameters = good
        requestParameters.parameters["priority"] = InferParameter(.int64(1))
        cases.append(("request parameters", requestParameters, ""))
        cases.append(("another version", good, "2"))
        cases.append(("a BYTES model", Requests.simpleString((0..<16).map(String.init), (0..<16).map(String.init), raw: true), ""))

        for (index, (what, request, version)) in cases.enumerated() {
            XCTAssertNil(try fastFrame(runtime, id: UInt64(10 + index), Requests.frame(request, version: version)), what)
        }
        // The general path still answers each as it did, for instance with its precise errors.
        let status = try XCTUnwrap(try runtime.infer(requestID: 99, Requests.frame(wrongSize)).wait().first?.inferResponse().status)
        XCTAssertEqual(status.code, 3)
        XCTAssertTrue(status.message.contains("input 'INPUT1' raw contents hold 60 bytes"), status.message)
        let typed = try runtime.infer(requestID: 100, Requests.frame(cases[0].1)).wait()
        XCTAssertEqual(try typed.first?.modelResponse().int32s("OUTPUT0"), [Int32](repeating: 3, count: 16))
        XCTAssertEqual(try runtime.statistics().wait().models["simple"]?.succeeded, 2)
    }

    func testAModelWhoseBatcherWaitsIsAnsweredAtOnceOnlyForAFullBatch() throws {
        let runtime = try runtime(maxBatchSize: 2, delayMicroseconds: 10_000_000)
        let one = Requests.simple([Int32](repeating: 1, count: 16), [Int32](repeating: 2, count: 16), raw: true)
        let two = Requests.simple([Int32](repeating: 1, count: 32), [Int32](repeating: 2, count: 32), raw: true)
        XCTAssertNil(try fastFrame(runtime, id: 1, Requests.frame(one)), "a batch of one row would wait for a second")
        XCTAssertNotNil(try fastFrame(runtime, id: 2, Requests.frame(two)), "a full batch runs at once")
    }

    func testARequestIsNotAnsweredAtOnceWhileItsModelsBatchQueueIsBusy() throws {
        let runtime = try runtime(maxBatchSize: 8, delayMicroseconds: 10_000_000)
        // A lone row waits in the queue for the batch to fill ...
        let waiting = runtime.infer(
            requestID: 1, Requests.frame(Requests.simple([Int32](repeating: 1, count: 16), [Int32](repeating: 1, count: 16), raw: true)))
        // ... so a full batch behind it must queue too, not overtake it.
        let full = Requests.simple([Int32](repeating: 1, count: 8 * 16), [Int32](repeating: 1, count: 8 * 16), raw: true)
        XCTAssertNil(try fastFrame(runtime, id: 2, Requests.frame(full)))
        XCTAssertEqual(try runtime.statistics().wait().queued, 1)
        _ = waiting
    }

    func testADrainingWorkerLeavesRequestsToTheGeneralPath() throws {
        let runtime = try runtime()
        XCTAssertTrue(try runtime.drain(timeout: .seconds(1)).wait())
        let request = Requests.simple([Int32](repeating: 1, count: 16), [Int32](repeating: 1, count: 16), raw: true)
        XCTAssertNil(try fastFrame(runtime, id: 1, Requests.frame(request)))
        let status = try XCTUnwrap(try runtime.infer(requestID: 2, Requests.frame(request)).wait().first?.inferResponse().status)
        XCTAssertEqual(status.code, 14)
    }
}
