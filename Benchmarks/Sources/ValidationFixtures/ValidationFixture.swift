import CodecFixtures
import Foundation
import Gateway
import InferenceProtocol
import NIOCore
import ProtoWire
import SwiftProtobufPeer

/// One encoded `ModelInferRequest` and the configuration of the model it is for, to measure
/// the gateway's validation path before and after issue 8:
///
/// - before: `ModelInferRequest(decoding:)` (every tensor materialised) then the validator that
///   took a decoded request (`ReferenceInferRequestValidator`, the copy the gateway's tests keep
///   as their oracle; this target links it from `Tests/GatewayTests`);
/// - after: `ModelInferRequestScan(decoding:)` (one pass, nothing materialised) then
///   `InferRequestValidator.validate(_:config:)`.
///
/// The bytes come from SwiftProtobuf, as `CodecFixture`'s do. `verify()` checks outside any
/// measured loop that both paths accept the request with the same batch size.
public struct ValidationFixture: Sendable {
    /// A short name for benchmark titles, e.g. `int32x2-raw`.
    public let label: String
    /// The encoded request.
    public let buffer: ByteBuffer
    /// The configuration of the model the request is for.
    public let config: ModelConfig

    /// Before: full decode, then the decoded-request validator; returns the batch size.
    @inline(__always)
    public func decodeAndValidate() throws -> Int64 {
        let request = try ModelInferRequest(decoding: buffer)
        return try ReferenceInferRequestValidator.validate(request, config: config)
    }

    /// After: scan, then the scan validator; returns the batch size.
    @inline(__always)
    public func scanAndValidate() throws -> Int64 {
        let scan = try ModelInferRequestScan(decoding: buffer)
        return try InferRequestValidator.validate(scan, config: config)
    }

    /// Stops the process unless both paths accept the request with the same batch size.
    public func verify() {
        do {
            let before = try decodeAndValidate()
            let after = try scanAndValidate()
            guard before == after, before == 1 else {
                fatalError("\(label): batch size \(before) before, \(after) after (expected 1)")
            }
        } catch {
            fatalError("\(label): a validation path rejects the fixture: \(error)")
        }
    }

    /// Every fixture, in the order the benchmarks run them.
    public static func all() -> [ValidationFixture] {
        [simpleInt32Raw(), int32Raw(), int32Typed()]
    }

    static func batchedInt32Config(_ name: String, inputs: [String], dims: [Int64]) -> ModelConfig {
        var config = ModelConfig()
        config.name = name
        config.maxBatchSize = 8
        config.input = inputs.map { ModelInput(name: $0, dataType: .int32, dims: dims) }
        config.output = inputs.map { ModelOutput(name: $0.replacingOccurrences(of: "INPUT", with: "OUTPUT"), dataType: .int32, dims: dims) }
        return config
    }

    /// `CodecFixture.simpleInt32Raw()` (perf_analyzer's request to Triton's `simple`) with
    /// `simple`'s configuration: INT32 INPUT0, INPUT1 of dims [16], max_batch_size 8.
    public static func simpleInt32Raw() -> ValidationFixture {
        ValidationFixture(
            label: "int32x2-raw", buffer: CodecFixture.simpleInt32Raw().buffer,
            config: batchedInt32Config("simple", inputs: ["INPUT0", "INPUT1"], dims: [16]))
    }

    /// Elements of the 1 MiB INT32 tensor: [1, 262144].
    public static let int32ElementCount = 262_144

    static func int32Request() -> Inference_ModelInferRequest {
        var request = Inference_ModelInferRequest()
        request.modelName = "identity_int32"
        request.id = "42"
        var input = Inference_ModelInferRequest.InferInputTensor()
        input.name = "INPUT0"
        input.datatype = "INT32"
        input.shape = [1, Int64(int32ElementCount)]
        request.inputs = [input]
        return request
    }

    static func fixture(_ label: String, _ request: Inference_ModelInferRequest) -> ValidationFixture {
        let data: Data
        do {
            data = try request.serializedBytes()
        } catch {
            fatalError("\(label): SwiftProtobuf cannot encode the fixture: \(error)")
        }
        return ValidationFixture(
            label: label, buffer: ByteBuffer(bytes: data),
            config: batchedInt32Config("identity_int32", inputs: ["INPUT0"], dims: [-1]))
    }

    /// One INT32 [1,262144] input whose 1 MiB of data is one `raw_input_contents` entry.
    public static func int32Raw() -> ValidationFixture {
        var request = int32Request()
        request.rawInputContents = [littleEndianBytes((0..<int32ElementCount).map { Int32($0) })]
        return fixture("int32-1MiB-raw", request)
    }

    /// The same tensor as typed `contents.int_contents` (packed varints), with values of
    /// 2^21 and above so that each takes 4 bytes: 1 MiB of varints.
    public static func int32Typed() -> ValidationFixture {
        var request = int32Request()
        request.inputs[0].contents.intContents = (0..<int32ElementCount).map { Int32(1 << 21 + $0 * 7) }
        return fixture("int32-1MiB-typed", request)
    }
}
