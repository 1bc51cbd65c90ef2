import Foundation
import InferenceProtocol
import NIOCore
import SwiftProtobuf
import SwiftProtobufPeer

/// One encoded `ModelInferRequest`, prepared once, in the forms each codec takes, plus the
/// decoded values that the encode benchmarks write back out.
///
/// The reference bytes come from SwiftProtobuf, so our decoder is measured on what a
/// protoc-generated client sends. `verify()` checks, outside any measured loop, that both
/// decoders read the same content from these bytes, that our encoder writes exactly those bytes
/// back, and that the peek agrees with a full decode; it stops the process if not.
public struct CodecFixture: Sendable {
    /// A short name for benchmark titles, e.g. `int32x2-raw`.
    public let label: String
    /// The encoded request as our decoder takes it.
    public let buffer: ByteBuffer
    /// The same bytes as SwiftProtobuf's decoder takes them.
    public let data: Data
    /// The request decoded by our codec (the input of our encode benchmark).
    public let ours: ModelInferRequest
    /// The request as SwiftProtobuf holds it (the input of its encode benchmark).
    public let theirs: Inference_ModelInferRequest

    public init(label: String, request: Inference_ModelInferRequest) {
        let data: Data
        do {
            data = try request.serializedBytes()
        } catch {
            fatalError("\(label): SwiftProtobuf cannot encode the fixture: \(error)")
        }
        self.label = label
        self.data = data
        self.buffer = ByteBuffer(bytes: data)
        self.theirs = request
        do {
            self.ours = try ModelInferRequest(decoding: buffer)
        } catch {
            fatalError("\(label): our decoder rejects SwiftProtobuf's bytes: \(error)")
        }
    }

    /// Checks both codecs against each other on this fixture; stops the process on a mismatch.
    public func verify() {
        do {
            let theirsDecoded = try Inference_ModelInferRequest(serializedBytes: data)
            guard theirsDecoded == theirs else {
                fatalError("\(label): SwiftProtobuf does not round-trip its own fixture")
            }
            let oursDecoded = try ModelInferRequest(decoding: buffer)
            if let difference = firstDifference(oursDecoded, theirsDecoded) {
                fatalError("\(label): decoders disagree: \(difference)")
            }

            let oursEncoded = Array(oursDecoded.encoded().readableBytesView)
            let theirsEncoded: [UInt8] = try theirsDecoded.serializedBytes()
            guard oursEncoded == theirsEncoded else {
                fatalError(
                    "\(label): encoders disagree: ours wrote \(oursEncoded.count) bytes, SwiftProtobuf \(theirsEncoded.count)")
            }

            let peek = try ModelInferRequestPeek(peeking: buffer)
            guard peek.modelName == theirs.modelName, peek.modelVersion == theirs.modelVersion,
                peek.id == theirs.id, peek.parameters.count == theirs.parameters.count,
                peek.inputCount == theirs.inputs.count,
                peek.rawInputContentsCount == theirs.rawInputContents.count
            else {
                fatalError("\(label): the peek disagrees with a full decode: \(peek)")
            }
        } catch {
            fatalError("\(label): verification failed: \(error)")
        }
    }

    /// The encoded size, for benchmark descriptions.
    public var encodedSize: Int { data.count }
}

/// The first field where the two decoded requests differ, or nil when they hold the same content.
/// Covers every field the fixtures set (and the counts of the ones they leave empty).
public func firstDifference(_ ours: ModelInferRequest, _ theirs: Inference_ModelInferRequest) -> String? {
    if ours.modelName != theirs.modelName { return "model_name \(ours.modelName) vs \(theirs.modelName)" }
    if ours.modelVersion != theirs.modelVersion { return "model_version" }
    if ours.id != theirs.id { return "id \(ours.id) vs \(theirs.id)" }
    if ours.parameters.count != theirs.parameters.count { return "parameters count" }
    if ours.outputs.count != theirs.outputs.count { return "outputs count" }
    if ours.inputs.count != theirs.inputs.count { return "inputs count" }
    for (index, (mine, other)) in zip(ours.inputs, theirs.inputs).enumerated() {
        if mine.name != other.name { return "inputs[\(index)].name" }
        if mine.datatype != other.datatype { return "inputs[\(index)].datatype" }
        if Array(mine.shape) != other.shape { return "inputs[\(index)].shape \(mine.shape) vs \(other.shape)" }
        if mine.parameters.count != other.parameters.count { return "inputs[\(index)].parameters count" }
        if (mine.contents != nil) != other.hasContents { return "inputs[\(index)].contents presence" }
        let contents = mine.contents ?? InferTensorContents()
        let otherContents = other.contents
        if contents.boolContents != otherContents.boolContents { return "inputs[\(index)].contents.bool_contents" }
        if contents.intContents != otherContents.intContents { return "inputs[\(index)].contents.int_contents" }
        if contents.int64Contents != otherContents.int64Contents { return "inputs[\(index)].contents.int64_contents" }
        if contents.uintContents != otherContents.uintContents { return "inputs[\(index)].contents.uint_contents" }
        if contents.uint64Contents != otherContents.uint64Contents { return "inputs[\(index)].contents.uint64_contents" }
        // Compare bit patterns so that a NaN would still compare equal to itself.
        if contents.fp32Contents.map(\.bitPattern) != otherContents.fp32Contents.map(\.bitPattern) {
            return "inputs[\(index)].contents.fp32_contents"
        }
        if contents.fp64Contents.map(\.bitPattern) != otherContents.fp64Contents.map(\.bitPattern) {
            return "inputs[\(index)].contents.fp64_contents"
        }
        if contents.bytesContents.map({ Array($0.readableBytesView) }) != otherContents.bytesContents.map({ Array($0) }) {
            return "inputs[\(index)].contents.bytes_contents"
        }
    }
    if ours.rawInputContents.count != theirs.rawInputContents.count { return "raw_input_contents count" }
    for (index, (mine, other)) in zip(ours.rawInputContents, theirs.rawInputContents).enumerated() {
        if Array(mine.readableBytesView) != Array(other) { return "raw_input_contents[\(index)]" }
    }
    return nil
}

// MARK: - The requests

extension CodecFixture {
    /// Every fixture, in the order the benchmarks run them.
    public static func all() -> [CodecFixture] {
        [simpleInt32Raw(), fp32Raw(), fp32Typed()]
    }

    /// Triton's `simple` example: INT32 INPUT0 = 0...15 and INPUT1 = sixteen ones, shape [1,16],
    /// as two 64-byte `raw_input_contents` entries; model "simple", id "42".
    public static func simpleInt32Raw() -> CodecFixture {
        var request = Inference_ModelInferRequest()
        request.modelName = "simple"
        request.id = "42"
        for name in ["INPUT0", "INPUT1"] {
            var input = Inference_ModelInferRequest.InferInputTensor()
            input.name = name
            input.datatype = "INT32"
            input.shape = [1, 16]
            request.inputs.append(input)
        }
        request.rawInputContents = [
            littleEndianBytes((0..<16).map { Int32($0) }),
            littleEndianBytes([Int32](repeating: 1, count: 16)),
        ]
        return CodecFixture(label: "int32x2-raw", request: request)
    }

    /// Elements of the 1 MiB FP32 tensor: [1, 262144].
    public static let fp32ElementCount = 262_144

    /// Deterministic FP32 values with varied bit patterns (not all zero, not all equal).
    public static func fp32Values() -> [Float] {
        (0..<fp32ElementCount).map { Float($0 % 4099) * 0.125 - 256 }
    }

    static func fp32Request() -> Inference_ModelInferRequest {
        var request = Inference_ModelInferRequest()
        request.modelName = "identity_fp32"
        request.id = "42"
        var input = Inference_ModelInferRequest.InferInputTensor()
        input.name = "INPUT0"
        input.datatype = "FP32"
        input.shape = [1, Int64(fp32ElementCount)]
        request.inputs = [input]
        return request
    }

    /// One FP32 [1,262144] input whose 1 MiB of data is one `raw_input_contents` entry.
    public static func fp32Raw() -> CodecFixture {
        var request = fp32Request()
        request.rawInputContents = [littleEndianBytes(fp32Values().map(\.bitPattern))]
        return CodecFixture(label: "fp32-1MiB-raw", request: request)
    }

    /// The same tensor as typed `contents.fp32_contents` (a packed repeated float, 1 MiB).
    public static func fp32Typed() -> CodecFixture {
        var request = fp32Request()
        request.inputs[0].contents.fp32Contents = fp32Values()
        return CodecFixture(label: "fp32-1MiB-typed", request: request)
    }
}

/// Fixed-width integers as their little-endian bytes, the layout of `raw_input_contents`.
public func littleEndianBytes<T: FixedWidthInteger>(_ values: [T]) -> Data {
    var data = Data(capacity: values.count * MemoryLayout<T>.size)
    for value in values {
        withUnsafeBytes(of: value.littleEndian) { data.append(contentsOf: $0) }
    }
    return data
}
