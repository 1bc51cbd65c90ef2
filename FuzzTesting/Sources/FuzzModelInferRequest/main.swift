import FuzzCommon
import InferenceProtocol
import NIOCore
import ProtoWire

/// One input: a whole `inference.ModelInferRequest` as a client sends it on ModelInfer.
///
/// Checks that decoding never traps, that a request that decodes survives a round trip, and that
/// the router's `ModelInferRequestPeek` agrees with the full decode: whenever the full decode
/// succeeds the peek succeeds with the same header, and whenever the full decode fails at the
/// request's own framing or in fields 1 to 4 the peek fails with the same error.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMe(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let input = FuzzCheck.buffer(start, count)
    let limits = ProtoLimits.default

    let request: ModelInferRequest
    do {
        request = try ModelInferRequest(decoding: input, limits: limits)
    } catch let fullError as ProtoDecodingError {
        // The peek reads a subset of what the full decode reads, in the same order, so a fault
        // the peek also reads must give it the very same error (code, detail and path).
        let peekResult = Result { try ModelInferRequestPeek(peeking: input, limits: limits) }
        if fullError.path.first.map({ (1...4).contains($0.fieldNumber) }) ?? true {
            guard case .failure(let peekError) = peekResult else {
                FuzzCheck.fail("full decode failed in the header (\(fullError)) but the peek succeeded")
            }
            FuzzCheck.require(
                (peekError as? ProtoDecodingError) == fullError,
                "full decode failed with \(fullError) but the peek with \(peekError)")
        }
        return 0
    } catch {
        FuzzCheck.fail("decoding threw something other than ProtoDecodingError: \(error)")
    }

    FuzzCheck.requireStableRoundTrip(request, maxDepth: limits.maxDepth)

    let peek: ModelInferRequestPeek
    do {
        peek = try ModelInferRequestPeek(peeking: input, limits: limits)
    } catch {
        FuzzCheck.fail("full decode succeeded but the peek failed: \(error)")
    }
    FuzzCheck.require(
        peek.modelName == request.modelName && peek.modelVersion == request.modelVersion
            && peek.id == request.id,
        "peek header (\(peek.modelName), \(peek.modelVersion), \(peek.id)) differs from the full decode (\(request.modelName), \(request.modelVersion), \(request.id))")
    // Compared through a second full decode: InferParameter holds doubles, and NaN != NaN.
    if let twin = try? ModelInferRequest(decoding: input, limits: limits), twin.parameters == request.parameters {
        FuzzCheck.require(peek.parameters == request.parameters, "peek parameters differ from the full decode")
    }
    FuzzCheck.require(
        peek.inputCount == request.inputs.count && peek.rawInputContentsCount == request.rawInputContents.count,
        "peek counts (\(peek.inputCount) inputs, \(peek.rawInputContentsCount) raw) differ from the full decode (\(request.inputs.count), \(request.rawInputContents.count))")
    return 0
}
