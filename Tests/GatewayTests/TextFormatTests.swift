@testable import Gateway
import Foundation
import InferenceProtocol
import ProtoWire
import XCTest

/// Triton's `config.pbtxt` (protobuf text format) read through the schema of
/// Protos/inference/model_config.proto into the hand-written `ModelConfig` decoder.
final class TextFormatTests: XCTestCase {
    private func config(_ text: String) throws -> ModelConfig {
        try ModelConfig(decodingBytes: ProtoTextFormat.encode(text, as: "inference.ModelConfig", schema: ModelRepositoryDirectory.schema))
    }

    func testATritonConfigReadsAsTritonReadsIt() throws {
        let text = """
            name: "iris"   # the model
            platform: "onnxruntime_onnx"
            max_batch_size: 32
            input [
              {
                name: "X"
                data_type: TYPE_FP32
                dims: [ 4 ]
              }
            ]
            output [
              { name: "probabilities", data_type: TYPE_FP32, dims: [ 3 ] },
              { name: 'label' data_type: TYPE_INT64 dims: [ 1 ] reshape: { shape: [ ] } }
            ]
            instance_group [ { count: 2, kind: KIND_CPU } ]
            dynamic_batching {
              preferred_batch_size: [ 4, 8 ]
              max_queue_delay_microseconds: 100
            }
            version_policy: { specific: { versions: [1, 3] } }
            parameters { key: "intra_op_thread_count" value: { string_value: "1" } }
            parameters: < key: "note" value < string_value: "tab\\there \\"quoted\\" " "joined" > >
            """
        let config = try config(text)
        XCTAssertEqual(config.name, "iris")
        XCTAssertEqual(config.platform, "onnxruntime_onnx")
        XCTAssertEqual(config.maxBatchSize, 32)
        XCTAssertEqual(config.input.map(\.name), ["X"])
        XCTAssertEqual(config.input.first?.dataType, .fp32)
        XCTAssertEqual(config.input.first?.dims, [4])
        XCTAssertEqual(config.output.map(\.name), ["probabilities", "label"])
        XCTAssertEqual(config.output.last?.dataType, .int64)
        XCTAssertEqual(config.output.last?.reshape?.shape, [])
        XCTAssertEqual(config.instanceGroup.first?.count, 2)
        XCTAssertEqual(config.instanceGroup.first?.kind, .cpu)
        guard case .dynamicBatching(let batching)? = config.schedulingChoice else { return XCTFail("no dynamic batching") }
        XCTAssertEqual(batching.preferredBatchSize, [4, 8])
        XCTAssertEqual(batching.maxQueueDelayMicroseconds, 100)
        XCTAssertEqual(config.versionPolicy, ModelVersionPolicy(.specific(.init(versions: [1, 3]))))
        XCTAssertEqual(config.parameters["intra_op_thread_count"]?.stringValue, "1")
        XCTAssertEqual(config.parameters["note"]?.stringValue, "tab\there \"quoted\" joined")
    }

    func testMistakesAreReportedWithLineColumnAndTheNearestName() throws {
        let cases: [(String, String)] = [
            ("name: \"m\"\nmax_batch_sise: 4", "2:1: inference.ModelConfig has no field 'max_batch_sise'; did you mean 'max_batch_size'?"),
            ("input [ { name: \"x\" data_type: TYPE_FP33 } ]", "1:32: 'TYPE_FP33' is not a value of inference.DataType; did you mean TYPE_FP32?"),
            ("max_batch_size: lots", "1:17: 'max_batch_size' takes a whole number, not 'lots'"),
            ("max_batch_size: 99999999999", "1:17: 99999999999 does not fit 'max_batch_size' (int32)"),
            ("dynamic_batching { max_queue_delay_microseconds: 5", "1:51: '}' expected before the end"),
            ("name: \"open", "1:12: a string is not closed"),
            ("name \"x\"", "1:6: ':' expected after 'name'"),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try config(text), text) { error in XCTAssertEqual("\(error)", expected, text) }
        }
    }
}
