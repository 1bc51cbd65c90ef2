import H2Transport
import InferenceProtocol
import NIOCore
import ProtoWire

/// What the gateway reads from a `ModelInferRequest` before it forwards the bytes: the fields
/// the router needs, and enough to validate the request against the model's configuration,
/// from one pass over the bytes (`ModelInferRequestScan`: no tensor is materialised; the
/// worker decodes the request once).
struct InspectedInferRequest: Sendable {
    /// Requests larger than this are inspected on the thread pool, not on the call's loop.
    static let inlineLimit = ModelInferRequestScan.inlineScanLimit

    let modelName: String
    let modelVersion: String
    let id: String
    let parameters: [String: InferParameter]
    private let request: ModelInferRequestScan

    /// Reads `bytes`; INVALID_ARGUMENT when they are not a valid ModelInferRequest.
    init(_ bytes: ByteBuffer, limits: ProtoLimits) throws(RPCError) {
        do {
            request = try ModelInferRequestScan(decoding: bytes, limits: limits)
        } catch {
            throw RPCError(code: .invalidArgument, message: "request is not a valid inference.ModelInferRequest: \(error)")
        }
        modelName = request.modelName
        modelVersion = request.modelVersion
        id = request.id
        parameters = request.parameters
    }

    /// `init`, with its error as the result's failure.
    static func inspect(_ bytes: ByteBuffer, limits: ProtoLimits) -> Result<InspectedInferRequest, RPCError> {
        Result { () throws(RPCError) in try InspectedInferRequest(bytes, limits: limits) }
    }

    /// Checks the request against the model's configuration; returns its batch size.
    /// INVALID_ARGUMENT otherwise.
    func validate(against model: DescribedModel) throws(RPCError) -> Int64 {
        do {
            return try model.validate(request)
        } catch {
            throw RPCError(code: .invalidArgument, message: error.description)
        }
    }

    /// True when the client asked for an empty final response on decoupled streams.
    var wantsEmptyFinal: Bool {
        if case .bool(true)? = parameters["triton_enable_empty_final_response"]?.choice { return true }
        return false
    }
}
