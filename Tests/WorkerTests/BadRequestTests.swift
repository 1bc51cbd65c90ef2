import InferenceProtocol
import NIOCore
import ProtoWire
import XCTest

@testable import Worker

/// Every way a request can be wrong ends in INVALID_ARGUMENT with a message that says where and
/// what, never a crash.
final class BadRequestTests: XCTestCase {
    private let simple = BuiltinModels.model(named: "simple")!
    private let identity = BuiltinModels.model(named: "simple_identity")!

    private func ones(_ count: Int = 16) -> [Int32] { [Int32](repeating: 1, count: count) }

    private func assertInvalid(
        _ request: ModelInferRequest, model: ServedModel? = nil, _ fragments: String..., file: StaticString = #filePath, line: UInt = #line
    ) {
        let served = model ?? simple
        assertInferenceError(.invalidArgument, containing: fragments, file: file, line: line) {
            try served.prepare(request.encoded())
        }
    }

    func testMalformedProtobufIsInvalidArgumentNamingTheFault() {
        for bytes in [[0xFF], [0x0A, 0x10, 0x41], [0x2A, 0x05, 0x0A, 0x0A]] as [[UInt8]] {
            assertInferenceError(.invalidArgument, containing: ["not a valid inference.ModelInferRequest", "malformed protobuf"]) {
                try simple.prepare(ByteBuffer(bytes: bytes))
            }
        }
    }

    func testEveryTruncationOfAValidRequestIsRefusedOrAccepted_neverACrash() throws {
        let bytes = Requests.simple(ones(), ones(), raw: true).encodedBytes()
        for length in 0..<bytes.count {
            _ = try? simple.prepare(ByteBuffer(bytes: bytes[0..<length]))
        }
        let bytesRequest = Requests.simpleString((0..<16).map(String.init), (0..<16).map(String.init), raw: true).encodedBytes()
        let stringModel = try XCTUnwrap(BuiltinModels.model(named: "simple_string"))
        for length in 0..<bytesRequest.count {
            _ = try? stringModel.prepare(ByteBuffer(bytes: bytesRequest[0..<length]))
        }
    }

    func testMissingUnknownAndDuplicateInputs() {
        var missing = Requests.simple(ones(), ones(), raw: false)
        missing.inputs.removeLast()
        assertInvalid(missing, "model 'simple' expects input 'INPUT1', which the request does not have")

        var unknown = Requests.simple(ones(), ones(), raw: false)
        unknown.inputs[1].name = "INPUT9"
        assertInvalid(unknown, "unexpected input 'INPUT9' for model 'simple', which takes INPUT0, INPUT1")

        var duplicate = Requests.simple(ones(), ones(), raw: false)
        duplicate.inputs[1].name = "INPUT0"
        assertInvalid(duplicate, "input 'INPUT0' appears more than once")

        // Past a few inputs duplicates are found with a set: the same errors, in the same order.
        var many = Requests.simple(ones(), ones(), raw: false)
        many.inputs += [many.inputs[1]] + (0..<8).map { Requests.input("EXTRA\($0)", "INT32", shape: [1, 16]) }
        assertInvalid(many, "input 'INPUT1' appears more than once")
        var manyUnknown = Requests.simple(ones(), ones(), raw: false)
        manyUnknown.inputs += (0..<8).map { Requests.input("EXTRA\($0)", "INT32", shape: [1, 16]) } + [manyUnknown.inputs[0]]
        assertInvalid(manyUnknown, "unexpected input 'EXTRA0' for model 'simple'")
    }

    func testWrongDatatypes() {
        var wrong = Requests.simple(ones(), ones(), raw: false)
        wrong.inputs[0].datatype = "FP32"
        assertInvalid(wrong, "input 'INPUT0' has datatype FP32; model 'simple' expects INT32")

        var unknown = Requests.simple(ones(), ones(), raw: false)
        unknown.inputs[1].datatype = "INT33"
        assertInvalid(unknown, "input 'INPUT1' has unknown datatype 'INT33'")
    }

    func testWrongShapesAndBatchSizes() {
        var rank = Requests.simple(ones(), ones(), raw: false)
        rank.inputs[0].shape = [16]
        assertInvalid(rank, "input 'INPUT0' has shape [16]; model 'simple' expects [-1,16]", "at most 8")

        var width = Requests.simple(ones(), ones(), raw: false)
        width.inputs[0].shape = [1, 15]
        assertInvalid(width, "input 'INPUT0' has shape [1,15]", "dimension 1 must be 16")

        let tooMany = Requests.simple(ones(16 * 9), ones(16 * 9), raw: true)
        assertInvalid(tooMany, "input 'INPUT0' has batch size 9; model 'simple' accepts at most 8")

        var zero = Requests.simple(ones(), ones(), raw: true)
        zero.inputs[0].shape = [0, 16]
        zero.inputs[1].shape = [0, 16]
        zero.rawInputContents = [ByteBuffer(), ByteBuffer()]
        assertInvalid(zero, "input 'INPUT0' has batch size 0")

        var disagree = Requests.simple(ones(32), ones(32), raw: true)
        disagree.inputs[1].shape = [1, 16]
        disagree.rawInputContents[1] = Requests.raw(ones())
        assertInvalid(disagree, "input 'INPUT1' has batch size 1 but input 'INPUT0' has 2")

        var negative = ModelInferRequest()
        negative.inputs = [Requests.input("INPUT0", "BYTES", shape: [1, -3], contents: Requests.bytesContents([]))]
        assertInvalid(negative, model: identity, "negative dimension -3")

        var huge = ModelInferRequest()
        huge.inputs = [Requests.input("INPUT0", "BYTES", shape: [1, Int64.max], contents: Requests.bytesContents([]))]
        assertInvalid(huge, model: identity, "describes too many elements")
    }

    func testDataThatDoesNotMatchTheShape() {
        var short = Requests.simple(ones(), ones(), raw: true)
        short.rawInputContents[1] = Requests.raw(ones(15))
        assertInvalid(short, "input 'INPUT1' raw contents hold 60 bytes; shape [1,16] of INT32 needs 64")

        var typed = Requests.simple(ones(), ones(), raw: false)
        typed.inputs[0].contents = Requests.intContents(ones(17))
        assertInvalid(typed, "input 'INPUT0' has 17 int_contents values; shape [1,16] of INT32 needs 16")

        var wrongField = Requests.simple(ones(), ones(), raw: false)
        var floats = InferTensorContents()
        floats.fp32Contents = [Float](repeating: 1, count: 16)
        wrongField.inputs[0].contents = floats
        assertInvalid(wrongField, "input 'INPUT0' has 0 int_contents values")

        var none = Requests.simple(ones(), ones(), raw: false)
        none.inputs[1].contents = nil
        assertInvalid(none, "input 'INPUT1' carries no data")
    }

    func testRawContentsThatDisagreeWithTheInputs() {
        var count = Requests.simple(ones(), ones(), raw: true)
        count.rawInputContents.removeLast()
        assertInvalid(count, "2 inputs but 1 raw_input_contents entries")

        var both = Requests.simple(ones(), ones(), raw: true)
        both.inputs[0].contents = Requests.intContents(ones())
        assertInvalid(both, "input 'INPUT0' has both contents and raw_input_contents")

        var sharedMemory = Requests.simple(ones(), ones(), raw: true)
        sharedMemory.inputs[0].parameters["shared_memory_region"] = InferParameter(.string("region0"))
        assertInvalid(sharedMemory, "input 'INPUT0' uses shared memory")
    }

    func testMalformedBytesElementsAreLocated() {
        func identityRequest(_ raw: ByteBuffer, count: Int64) -> ModelInferRequest {
            var request = ModelInferRequest()
            request.inputs = [Requests.input("INPUT0", "BYTES", shape: [1, count])]
            request.rawInputContents = [raw]
            return request
        }
        var truncatedPrefix = Requests.raw(["ab", "cd"])
        truncatedPrefix.writeBytes([0x01, 0x00])
        assertInvalid(identityRequest(truncatedPrefix, count: 3), model: identity,
            "input 'INPUT0' raw contents end inside the 4-byte length prefix of element 2 (byte offset 12)")

        var overlong = Requests.raw(["ab"])
        overlong.writeInteger(UInt32(100), endianness: .little)
        overlong.writeString("xyz")
        assertInvalid(identityRequest(overlong, count: 2), model: identity,
            "input 'INPUT0' element 1 claims 100 bytes but only 3 remain")

        assertInvalid(identityRequest(Requests.raw(["a", "b", "c"]), count: 2), model: identity,
            "raw contents hold more than the 2 elements shape [1,2] describes")
        assertInvalid(identityRequest(Requests.raw(["a"]), count: 2), model: identity,
            "input 'INPUT0' raw contents hold 1 elements; shape [1,2] needs 2")
    }

    func testUnknownOrUnsupportedOutputs() {
        var unknown = Requests.simple(ones(), ones(), raw: true)
        var output = ModelInferRequest.InferRequestedOutputTensor()
        output.name = "OUTPUT7"
        unknown.outputs = [output]
        assertInvalid(unknown, "unknown output 'OUTPUT7' requested; model 'simple' has OUTPUT0, OUTPUT1")

        var classification = Requests.simple(ones(), ones(), raw: true)
        output.name = "OUTPUT0"
        output.parameters["classification"] = InferParameter(.int64(3))
        classification.outputs = [output]
        assertInvalid(classification, "output 'OUTPUT0' asks for classification")
    }
}
