import FuzzCommon
import InferenceProtocol
import NIOCore
import ProtoWire

/// One input: a whole `inference.ModelInferRequest`, scanned by the gateway's validation path
/// (`ModelInferRequestScan`) and decoded in full (`ModelInferRequest`), which the worker does.
///
/// Differential: both must accept or both reject; a rejection must be the very same
/// `ProtoDecodingError` (code, detail, field path); an acceptance must extract the same model,
/// version, id, parameters, inputs (name, datatype, shape, parameters, and per typed contents
/// field the element count), requested outputs (names, parameters) and raw contents. The input
/// is also tried under a depth limit taken from its first byte, so the depth checks meet.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMe(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let input = FuzzCheck.buffer(start, count)
    let depthLimit = Int(input.getInteger(at: input.readerIndex, as: UInt8.self) ?? 0) % 6
    for limits in [ProtoLimits.default, ProtoLimits(maxDepth: depthLimit)] {
        let full = Result { try ModelInferRequest(decoding: input, limits: limits) }
        let scan = Result { try ModelInferRequestScan(decoding: input, limits: limits) }
        switch (full, scan) {
        case (.failure(let fullError), .failure(let scanError)):
            FuzzCheck.require(
                (fullError as? ProtoDecodingError) == (scanError as? ProtoDecodingError) && fullError is ProtoDecodingError,
                "full decode failed with \(fullError) but the scan with \(scanError)")
        case (.success, .failure(let scanError)):
            FuzzCheck.fail("full decode succeeded but the scan failed: \(scanError)")
        case (.failure(let fullError), .success):
            FuzzCheck.fail("full decode failed (\(fullError)) but the scan succeeded")
        case (.success(let request), .success(let scanned)):
            // Parameters compared by their encodings: a double parameter may be NaN.
            let sameParameters = { (lhs: [String: InferParameter], rhs: [String: InferParameter]) -> Bool in
                lhs.count == rhs.count
                    && lhs.allSatisfy { key, value in rhs[key].map { $0.encodedBytes() == value.encodedBytes() } ?? false }
            }
            FuzzCheck.require(
                request.modelName == scanned.modelName && request.modelVersion == scanned.modelVersion
                    && request.id == scanned.id && sameParameters(request.parameters, scanned.parameters),
                "scan header differs from the full decode")
            FuzzCheck.require(request.inputs.count == scanned.inputs.count, "scan input count differs")
            for (index, (tensor, summary)) in zip(request.inputs, scanned.inputs).enumerated() {
                FuzzCheck.require(
                    tensor.name == summary.name && tensor.datatype == summary.datatype && tensor.shape == summary.shape
                        && sameParameters(tensor.parameters, summary.parameters),
                    "scan input \(index) description differs")
                let expected = tensor.contents.map(ModelInferRequestScan.ContentsSummary.init)
                FuzzCheck.require(
                    expected == summary.contents,
                    "scan input \(index) contents \(String(describing: summary.contents)), full decode \(String(describing: expected))")
            }
            FuzzCheck.require(
                request.outputs.count == scanned.outputs.count
                    && zip(request.outputs, scanned.outputs).allSatisfy { $0.name == $1.name && sameParameters($0.parameters, $1.parameters) },
                "scan outputs differ")
            FuzzCheck.require(request.rawInputContents == scanned.rawInputContents, "scan raw contents differ")
        }
    }
    return 0
}
