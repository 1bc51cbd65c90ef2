import Foundation
import InferenceProtocol
import NIOCore
import XCTest

@testable import LoadTest

final class InferRequestBodiesTests: XCTestCase {
    private func tensor(_ name: String, _ datatype: String, _ shape: [Int64]) -> ModelMetadataResponse.TensorMetadata {
        var tensor = ModelMetadataResponse.TensorMetadata()
        tensor.name = name
        tensor.datatype = datatype
        tensor.shape = shape
        return tensor
    }

    func testMetadataShapesGetTheBatchSizeAndOverrides() throws {
        let inputs = [tensor("INPUT0", "INT32", [-1, 16]), tensor("INPUT1", "INT32", [-1, 16])]
        XCTAssertEqual(
            try InferRequestBodies.resolve(metadata: inputs, shapes: [:], batchSize: 4).map(\.shape), [[4, 16], [4, 16]])
        // perf_analyzer's --shape without the batch dimension, and a full shape.
        XCTAssertEqual(
            try InferRequestBodies.resolve(metadata: inputs, shapes: ["INPUT0": [16], "INPUT1": [2, 16]], batchSize: 3).map(\.shape),
            [[3, 16], [2, 16]])
        XCTAssertThrowsError(try InferRequestBodies.resolve(metadata: [tensor("X", "FP32", [-1, -1])], shapes: [:], batchSize: 1)) { error in
            XCTAssertTrue("\(error)".contains("--shape X:1,1"), "\(error)")
        }
        XCTAssertThrowsError(try InferRequestBodies.resolve(metadata: inputs, shapes: ["NOPE": [1]], batchSize: 1))
    }

    func testRequestIsEncodedOnceWithRawContents() throws {
        let specs = [InputTensorSpec(name: "INPUT0", datatype: "INT32", shape: [1, 16]), InputTensorSpec(name: "S", datatype: "BYTES", shape: [2])]
        let bodies = try InferRequestBodies.make(model: "simple", version: "2", inputs: specs, data: .zero)
        XCTAssertEqual(bodies.count, 1)
        let request = try ModelInferRequest(decoding: bodies[0])
        XCTAssertEqual(request.modelName, "simple")
        XCTAssertEqual(request.modelVersion, "2")
        XCTAssertEqual(request.inputs.map(\.name), ["INPUT0", "S"])
        XCTAssertEqual(request.inputs[0].shape, [1, 16])
        XCTAssertEqual(request.rawInputContents[0].readableBytes, 64)
        XCTAssertEqual(Array(request.rawInputContents[0].readableBytesView), [UInt8](repeating: 0, count: 64))
        XCTAssertEqual(Array(request.rawInputContents[1].readableBytesView), [1, 0, 0, 0, 0x30, 1, 0, 0, 0, 0x30])
    }

    func testRandomDataRepeatsForTheSameSeed() throws {
        let specs = [InputTensorSpec(name: "X", datatype: "FP32", shape: [8])]
        let a = try InferRequestBodies.make(model: "m", version: "", inputs: specs, data: .random, seed: 9)
        let b = try InferRequestBodies.make(model: "m", version: "", inputs: specs, data: .random, seed: 9)
        XCTAssertEqual(a, b)
        XCTAssertNotEqual(try ModelInferRequest(decoding: a[0]).rawInputContents[0], ByteBuffer(repeating: 0, count: 32))
    }

    func testPerfAnalyzerDataFileGivesOneRequestPerEntry() throws {
        let json = """
            {"data": [
              {"INPUT0": [1, 2, 3, 4], "NAME": ["a", "bc"]},
              {"INPUT0": {"content": [[5, 6]], "shape": [1, 2]}, "NAME": {"content": ["x", "y"], "shape": [2]}}
            ]}
            """
        let specs = [InputTensorSpec(name: "INPUT0", datatype: "INT32", shape: [1, 4]), InputTensorSpec(name: "NAME", datatype: "BYTES", shape: [2])]
        let entries = try InferRequestBodies.parseDataFile(Data(json.utf8), path: "data.json", inputs: specs)
        XCTAssertEqual(entries.count, 2)
        XCTAssertEqual(entries[0][0].bytes, ByteBuffer(bytes: [1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0]))
        XCTAssertEqual(entries[1][0].shape, [1, 2])
        XCTAssertEqual(entries[0][1].bytes, ByteBuffer(bytes: [1, 0, 0, 0, 0x61, 2, 0, 0, 0, 0x62, 0x63]))
        XCTAssertThrowsError(try InferRequestBodies.parseDataFile(Data(#"{"data": [{"INPUT0": [1]}]}"#.utf8), path: "d", inputs: specs)) { error in
            XCTAssertTrue("\(error)".contains("1 values for shape [1, 4]"), "\(error)")
        }
        XCTAssertThrowsError(try InferRequestBodies.parseDataFile(Data("[]".utf8), path: "d", inputs: specs))
    }

    func testInputFlagParses() {
        XCTAssertEqual(InputTensorSpec(parsing: "INPUT0:int32:1,16"), InputTensorSpec(name: "INPUT0", datatype: "INT32", shape: [1, 16]))
        XCTAssertEqual(InputTensorSpec(parsing: "S:BYTES:"), InputTensorSpec(name: "S", datatype: "BYTES", shape: []))
        XCTAssertNil(InputTensorSpec(parsing: "X:FLOAT:1"))
        XCTAssertNil(InputTensorSpec(parsing: "X:FP32:-1,3"))
        XCTAssertNil(InputTensorSpec(parsing: "X:FP32"))
    }

    func testStreamResponseWithAnErrorMessageCountsAsAnError() {
        var ok = ModelStreamInferResponse()
        ok.inferResponse = ModelInferResponse()
        var failed = ModelStreamInferResponse()
        failed.errorMessage = "boom"
        XCTAssertEqual(ConnectionRunner.streamResponseStatus(ok.encoded()), 0)
        XCTAssertEqual(ConnectionRunner.streamResponseStatus(failed.encoded()), 2)
        XCTAssertEqual(ConnectionRunner.streamResponseStatus(ByteBuffer()), 0)
    }
}
