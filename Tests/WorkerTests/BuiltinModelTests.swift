import InferenceProtocol
import NIOCore
import ProtoWire
import XCTest

@testable import Worker

/// The built-in models' arithmetic, on typed and raw inputs, run the way the batcher runs them.
final class BuiltinModelTests: XCTestCase {
    private func model(_ name: String) throws -> ServedModel {
        try XCTUnwrap(BuiltinModels.model(named: name))
    }

    /// Prepares each request and runs them as one batch.
    private func run(_ name: String, _ requests: [ModelInferRequest]) throws -> [ModelInferResponse] {
        let model = try model(name)
        let prepared = try requests.map { try model.prepare($0.encoded()).0 }
        return try model.executeBatch(prepared).map { try $0.get() }
    }

    func testAnswerFramesCarryTheSameResponseBytesAsTheResponseItself() throws {
        // The runtime writes tensors straight into the answer frame; the bytes must be those of
        // `response(for:outputs:)`, for INT32 and BYTES models, batches of one and of several.
        let strings = (0..<16).map { String($0 * 7 - 40) }
        var identity = ModelInferRequest()
        identity.modelName = "simple_identity"
        identity.id = "identity"
        identity.inputs = [Requests.input("INPUT0", "BYTES", shape: [2, 3])]
        identity.rawInputContents = [Requests.raw(["a", "", "ccc", "dd", "é", "\u{0}"])]
        var onlyOne = Requests.simple(Array(0..<32), [Int32](repeating: 3, count: 32), raw: true, id: "one")
        onlyOne.outputs = [{ var output = ModelInferRequest.InferRequestedOutputTensor(); output.name = "OUTPUT1"; return output }()]
        let batches: [(String, [ModelInferRequest])] = [
            ("simple", [Requests.simple(Array(0..<16), [Int32](repeating: -5, count: 16), raw: false)]),
            ("simple", [onlyOne, Requests.simple(Array(0..<16), Array(0..<16), raw: true, id: "two")]),
            ("simple_string", [Requests.simpleString(strings, strings.reversed(), raw: true)]),
            ("simple_string", [Requests.simpleString(strings, strings, raw: false), Requests.simpleString(strings, strings, raw: true)]),
            ("simple_identity", [identity, identity]),
        ]
        for (name, requests) in batches {
            let model = try model(name)
            let prepared = try requests.map { try model.prepare($0.encoded()).0 }
            for (request, outputs) in zip(prepared, model.executeBatchOutputs(prepared)) {
                let outputs = try outputs.get()
                try model.checkOutputs(for: request, outputs)
                var frameBytes = AnswerFrame.response(requestID: 3, model: model, request: request, outputs: outputs, final: true)
                let frame = try XCTUnwrap(try WorkerFrame.read(from: &frameBytes))
                let envelope = try frame.inferResponse()
                XCTAssertTrue(envelope.final)
                XCTAssertEqual(envelope.response, try model.response(for: request, outputs: outputs).encoded(), name)
            }
        }
    }

    func testSimpleAddsAndSubtractsTypedInputs() throws {
        let input0 = (0..<16).map { Int32($0) }
        let input1 = [Int32](repeating: 1, count: 16)
        let response = try XCTUnwrap(run("simple", [Requests.simple(input0, input1, raw: false, id: "req-1")]).first)
        XCTAssertEqual(response.modelName, "simple")
        XCTAssertEqual(response.modelVersion, "1")
        XCTAssertEqual(response.id, "req-1")
        XCTAssertEqual(response.outputs.map(\.name), ["OUTPUT0", "OUTPUT1"])
        XCTAssertEqual(response.outputs.map(\.datatype), ["INT32", "INT32"])
        XCTAssertEqual(response.shape("OUTPUT0"), [1, 16])
        XCTAssertEqual(response.int32s("OUTPUT0"), input0.map { $0 + 1 })
        XCTAssertEqual(response.int32s("OUTPUT1"), input0.map { $0 - 1 })
    }

    func testSimpleAddsAndSubtractsRawInputsWithWrapAround() throws {
        var input0 = (0..<32).map { Int32($0) * 1000 }
        var input1 = (0..<32).map { Int32(-$0) }
        input0[0] = .max
        input1[0] = 1
        input0[1] = .min
        input1[1] = 1
        let response = try XCTUnwrap(run("simple", [Requests.simple(input0, input1, raw: true)]).first)
        XCTAssertEqual(response.shape("OUTPUT1"), [2, 16])
        XCTAssertEqual(response.int32s("OUTPUT0"), zip(input0, input1).map { $0 &+ $1 })
        XCTAssertEqual(response.int32s("OUTPUT1"), zip(input0, input1).map { $0 &- $1 })
        XCTAssertEqual(response.int32s("OUTPUT0")?.first, .min)
        XCTAssertEqual(response.int32s("OUTPUT1")?[1], .max)
    }

    func testOnlyRequestedOutputsAreReturnedInRequestedOrder() throws {
        var request = Requests.simple([Int32](repeating: 5, count: 16), [Int32](repeating: 2, count: 16), raw: true)
        var output = ModelInferRequest.InferRequestedOutputTensor()
        output.name = "OUTPUT1"
        request.outputs = [output]
        let response = try XCTUnwrap(run("simple", [request]).first)
        XCTAssertEqual(response.outputs.map(\.name), ["OUTPUT1"])
        XCTAssertEqual(response.rawOutputContents.count, 1)
        XCTAssertEqual(response.int32s("OUTPUT1"), [Int32](repeating: 3, count: 16))
    }

    func testABatchIsSplitBackIntoEachRequestsOwnRows() throws {
        let requests = (0..<5).map { index -> ModelInferRequest in
            let rows = index % 2 + 1
            let input0 = (0..<(16 * rows)).map { Int32(index * 100 + $0) }
            return Requests.simple(input0, [Int32](repeating: Int32(index), count: 16 * rows), raw: index % 2 == 0, id: "r\(index)")
        }
        let responses = try run("simple", requests)
        XCTAssertEqual(responses.count, 5)
        for (index, response) in responses.enumerated() {
            let rows = index % 2 + 1
            XCTAssertEqual(response.id, "r\(index)")
            XCTAssertEqual(response.shape("OUTPUT0"), [Int64(rows), 16])
            XCTAssertEqual(response.int32s("OUTPUT0"), (0..<(16 * rows)).map { Int32(index * 100 + $0 + index) })
            XCTAssertEqual(response.int32s("OUTPUT1"), (0..<(16 * rows)).map { Int32(index * 100 + $0 - index) })
        }
    }

    func testSimpleStringComputesOnDecimalStringsTypedAndRaw() throws {
        let input0 = (0..<16).map { String($0) }
        let input1 = (0..<16).map { $0 == 3 ? "-2147483648" : "+\($0 * 2)" }
        for raw in [false, true] {
            let response = try XCTUnwrap(run("simple_string", [Requests.simpleString(input0, input1, raw: raw)]).first)
            XCTAssertEqual(response.outputs.map(\.datatype), ["BYTES", "BYTES"])
            XCTAssertEqual(response.shape("OUTPUT0"), [1, 16])
            let expectedSum = (0..<16).map { $0 == 3 ? String(Int32(3) &+ Int32.min) : String($0 * 3) }
            let expectedDifference = (0..<16).map { $0 == 3 ? String(Int32(3) &- Int32.min) : String(-$0) }
            XCTAssertEqual(response.strings("OUTPUT0"), expectedSum, "raw: \(raw)")
            XCTAssertEqual(response.strings("OUTPUT1"), expectedDifference, "raw: \(raw)")
        }
    }

    func testSimpleStringNamesTheElementThatIsNotANumber() throws {
        var input0 = (0..<16).map { String($0) }
        input0[7] = "seven"
        let request = Requests.simpleString(input0, [String](repeating: "1", count: 16), raw: true)
        let model = try model("simple_string")
        assertInferenceError(.invalidArgument, containing: ["input 'INPUT0' element 7", "\"seven\""]) {
            try model.prepare(request.encoded())
        }
        var input1 = [String](repeating: "1", count: 16)
        input1[15] = "99999999999"
        let overflow = Requests.simpleString((0..<16).map { String($0) }, input1, raw: false)
        assertInferenceError(.invalidArgument, containing: ["input 'INPUT1' element 15", "not a decimal INT32"]) {
            try model.prepare(overflow.encoded())
        }
    }

    func testIdentityReturnsItsInputUnchanged() throws {
        let values = ["", "hello", "\u{0}\u{1}binary", String(repeating: "x", count: 1000)]
        for raw in [false, true] {
            var request = ModelInferRequest()
            request.modelName = "simple_identity"
            if raw {
                request.inputs = [Requests.input("INPUT0", "BYTES", shape: [2, 2])]
                request.rawInputContents = [Requests.raw(values)]
            } else {
                request.inputs = [Requests.input("INPUT0", "BYTES", shape: [2, 2], contents: Requests.bytesContents(values))]
            }
            let response = try XCTUnwrap(run("simple_identity", [request]).first)
            XCTAssertEqual(response.outputs.map(\.name), ["OUTPUT0"])
            XCTAssertEqual(response.shape("OUTPUT0"), [2, 2])
            XCTAssertEqual(response.strings("OUTPUT0"), values)
        }
    }

    func testRepeatPlansOneResponsePerElementWithItsDelay() throws {
        let model = try model("repeat_int32")
        for raw in [false, true] {
            let (_, plan) = try model.prepare(Requests.repeatInt32([4, 5, 6], delays: [10, 0, 30], wait: 7, raw: raw).encoded())
            let steps = try XCTUnwrap(plan)
            XCTAssertEqual(steps.responseCount, 3)
            XCTAssertEqual((0..<3).map { steps.delay(at: $0) }, [.milliseconds(10), .zero, .milliseconds(30)])
            XCTAssertEqual((0..<3).map { steps.outputs(at: $0)["OUT"]?.int32Values }, [[4], [5], [6]])
            XCTAssertEqual((0..<3).map { steps.outputs(at: $0)["IDX"]?.uint32Values }, [[0], [1], [2]])
            XCTAssertEqual((0..<3).map { steps.outputs(at: $0)["OUT"]?.shape }, [[1], [1], [1]])
            XCTAssertEqual(steps.instanceHold, .milliseconds(7))
        }
        let (_, empty) = try model.prepare(Requests.repeatInt32([], delays: []).encoded())
        XCTAssertEqual(empty?.responseCount, 0)
    }

    func testRepeatRefusesDelaysThatDoNotMatchItsValues() throws {
        let model = try model("repeat_int32")
        assertInferenceError(.invalidArgument, containing: ["expected IN and DELAY shape to match, got [3] and [2]"]) {
            try model.prepare(Requests.repeatInt32([1, 2, 3], delays: [1, 2]).encoded())
        }
    }

    func testConfigurationsAreWhatTritonClientsExpect() throws {
        let simple = try model("simple").config
        XCTAssertEqual(simple.maxBatchSize, 8)
        XCTAssertEqual(simple.input.map(\.name), ["INPUT0", "INPUT1"])
        XCTAssertEqual(simple.input.map(\.dims), [[16], [16]])
        XCTAssertEqual(simple.input.map(\.dataType), [.int32, .int32])
        guard case .dynamicBatching(let batching)? = simple.schedulingChoice else { return XCTFail("simple batches") }
        XCTAssertEqual(batching.preferredBatchSize, [8])
        XCTAssertEqual(batching.maxQueueDelayMicroseconds, 0, "as Triton's default: a batch runs as soon as the model is free")

        XCTAssertEqual(try model("simple_string").config.input.map(\.dataType), [.string, .string])
        XCTAssertEqual(try model("simple_identity").config.input.map(\.dims), [[-1]])

        let repeatModel = try model("repeat_int32")
        XCTAssertTrue(repeatModel.isDecoupled)
        XCTAssertEqual(repeatModel.config.maxBatchSize, 0)
        XCTAssertEqual(repeatModel.config.input.map(\.name), ["IN", "DELAY", "WAIT"])
        XCTAssertEqual(repeatModel.config.input.map(\.dataType), [.int32, .uint32, .uint32])
        XCTAssertEqual(repeatModel.config.output.map(\.name), ["OUT", "IDX"])
        XCTAssertEqual(repeatModel.descriptor.decoupled, true)
        XCTAssertEqual(repeatModel.descriptor.versions, ["1"])

        let custom = try XCTUnwrap(BuiltinModels.model(named: "simple", maxBatchSize: 4, maxQueueDelayMicroseconds: 2500))
        XCTAssertEqual(custom.descriptor.maxBatchSize, 4)
        guard case .dynamicBatching(let customBatching)? = custom.config.schedulingChoice else { return XCTFail("simple batches") }
        XCTAssertEqual(customBatching.preferredBatchSize, [4])
        XCTAssertEqual(customBatching.maxQueueDelayMicroseconds, 2500)
        XCTAssertNil(BuiltinModels.model(named: "resnet50"))
    }
}
