import InferenceProtocol
import NIOCore
import ProtoWire

/// A model whose requests the dynamic batcher queues and runs in batches: the inputs of every
/// request in a batch are joined along dimension 0, the model runs once, and each output is cut
/// back into per-request pieces.
///
/// Implementations are pure functions of their inputs; `execute` runs on the worker's thread
/// pool, never on an event loop.
public protocol BatchedModel: Sendable {
    /// Checks one request's values beyond names, datatypes and shapes (which `PreparedRequest`
    /// has checked), before the request may join a batch.
    ///
    /// - Throws: `InferenceError` (`INVALID_ARGUMENT`) naming the tensor and element at fault.
    func validate(_ inputs: [String: Tensor]) throws(InferenceError)

    /// Runs one batch of validated requests. Every output's first dimension equals the inputs'.
    ///
    /// - Throws: `InferenceError` when the model cannot run these inputs after all (a model
    ///   file's graph that rejects them); every request of the batch gets it.
    func execute(_ inputs: [String: Tensor]) throws(InferenceError) -> [String: Tensor]
}

/// A decoupled model: it answers one request with zero, one or many responses over time.
public protocol DecoupledModel: Sendable {
    /// Works out the responses for one request and when each is due.
    ///
    /// - Throws: `InferenceError` (`INVALID_ARGUMENT`) when the inputs disagree with each other.
    func plan(_ inputs: [String: Tensor]) throws(InferenceError) -> DecoupledPlan
}

/// The responses a decoupled model sends for one request, in order, with their timing.
///
/// Responses are made one at a time as they fall due, so a request with millions of elements
/// costs memory for its inputs only, not for every response at once.
public struct DecoupledPlan: Sendable {
    /// How many responses the request gets.
    public var responseCount: Int
    /// How long, from the start, the request occupies the model's instance; other requests for
    /// the model wait meanwhile. Responses go on being sent after the instance is released.
    public var instanceHold: TimeAmount
    private let delayAt: @Sendable (Int) -> TimeAmount
    private let outputsAt: @Sendable (Int) -> [String: Tensor]

    /// A plan of `responseCount` responses: the one at index `i` is sent `delay(i)` after the
    /// previous one and carries `outputs(i)`.
    public init(
        responseCount: Int, instanceHold: TimeAmount,
        delay: @escaping @Sendable (Int) -> TimeAmount, outputs: @escaping @Sendable (Int) -> [String: Tensor]
    ) {
        self.responseCount = responseCount
        self.instanceHold = instanceHold
        self.delayAt = delay
        self.outputsAt = outputs
    }

    /// How long to wait, after the previous response (or the start), before response `index`.
    public func delay(at index: Int) -> TimeAmount { delayAt(index) }

    /// The outputs of response `index`.
    public func outputs(at index: Int) -> [String: Tensor] { outputsAt(index) }
}

/// A model that runs every request on its own as soon as it arrives: no batching and no
/// instance to wait for, so any number of requests run at once. Each gets one answer, after a
/// delay the model chooses (the time "spent" on the request, without holding a thread).
public protocol ConcurrentModel: Sendable {
    /// Works out one request's answer and when it is due.
    ///
    /// Called on the worker's event loop, so it must not block (unless blocking the worker is
    /// the point, as for the `diagnostic_stall` model).
    ///
    /// - Throws: `InferenceError` (`INVALID_ARGUMENT`) when the inputs are unacceptable.
    func answer(_ inputs: [String: Tensor]) throws(InferenceError) -> ConcurrentAnswer
}

/// What a `ConcurrentModel` answers to one request, and after how long.
public struct ConcurrentAnswer: Sendable {
    /// How long after the request starts the answer is sent.
    public var delay: TimeAmount
    /// The outputs of the answer.
    public var outputs: [String: Tensor]

    public init(delay: TimeAmount, outputs: [String: Tensor]) {
        self.delay = delay
        self.outputs = outputs
    }
}

/// One model a worker serves: its name, configuration (sent in HELLO) and implementation.
public struct ServedModel: Sendable {
    /// How the model runs.
    public enum Backend: Sendable {
        case batched(any BatchedModel)
        case decoupled(any DecoupledModel)
        case concurrent(any ConcurrentModel)
    }

    /// The version a model is served as unless the worker is told otherwise.
    public static let defaultVersion = "1"

    public var config: ModelConfig
    public var backend: Backend
    /// The one version the worker serves the model as (`switchyard worker --model-version`):
    /// HELLO lists it, every response carries it, and a request naming another version gets
    /// `NOT_FOUND`.
    public var version: String
    /// True when a batch of the model costs so little (a few additions, a copy of small
    /// tensors) that running it on the worker's event loop is cheaper than the hop to the
    /// thread pool and back. The runtime then executes small batches (up to the inline request
    /// size, 64 KiB of request bytes) on the loop, answering within the same turn; larger ones
    /// and other models go to the thread pool. Only for batched models. Default false.
    public var executesInline: Bool

    public init(config: ModelConfig, backend: Backend, version: String = ServedModel.defaultVersion, executesInline: Bool = false) {
        self.config = config
        self.backend = backend
        self.version = version
        self.executesInline = executesInline
    }

    public var name: String { config.name }

    /// True when the model answers on a stream (`model_transaction_policy { decoupled: true }`).
    public var isDecoupled: Bool { config.modelTransactionPolicy?.decoupled ?? false }

    /// What HELLO says about the model.
    public var descriptor: WorkerProtocol.ModelDescriptor {
        var descriptor = WorkerProtocol.ModelDescriptor()
        descriptor.name = name
        descriptor.versions = [version]
        descriptor.maxBatchSize = config.maxBatchSize
        descriptor.decoupled = isDecoupled
        descriptor.config = config
        return descriptor
    }

    /// Decodes and checks a request's bytes, and for a decoupled model works out its plan.
    /// (A concurrent model's answer is worked out later, on the event loop.)
    /// Runs on any thread.
    ///
    /// - Throws: `InferenceError` (`INVALID_ARGUMENT`) for malformed bytes or a request the model
    ///   cannot take.
    public func prepare(_ requestBytes: ByteBuffer) throws(InferenceError) -> (PreparedRequest, DecoupledPlan?) {
        let request: ModelInferRequest
        do {
            request = try ModelInferRequest(decoding: requestBytes)
        } catch {
            throw .invalidArgument("the request is not a valid inference.ModelInferRequest: \(error)")
        }
        let prepared = try PreparedRequest(request, config: config)
        switch backend {
        case .batched(let model):
            try model.validate(prepared.inputs)
            return (prepared, nil)
        case .decoupled(let model):
            return (prepared, try model.plan(prepared.inputs))
        case .concurrent:
            // Its answer is worked out on the event loop when the request starts.
            return (prepared, nil)
        }
    }

    /// The `ModelInferResponse` for `request` carrying `outputs` (those it asked for, in its
    /// order) as raw output contents.
    ///
    /// - Throws: `InferenceError` (`INTERNAL`) when the model did not produce a requested output.
    public func response(for request: PreparedRequest, outputs: [String: Tensor]) throws(InferenceError) -> ModelInferResponse {
        var response = ModelInferResponse()
        response.modelName = name
        response.modelVersion = version
        response.id = request.id
        for outputName in request.requestedOutputs {
            guard let tensor = outputs[outputName] else {
                throw InferenceError(.internal, "model '\(name)' produced no output '\(outputName)'")
            }
            var output = ModelInferResponse.InferOutputTensor()
            output.name = outputName
            output.datatype = tensor.datatype.rawValue
            output.shape = tensor.shape
            response.outputs.append(output)
            response.rawOutputContents.append(tensor.rawContents())
        }
        return response
    }

    /// Checks that `outputs` hold every output `request` asked for, as `response(for:outputs:)`
    /// does before building a response.
    ///
    /// - Throws: `InferenceError` (`INTERNAL`) naming the first missing output.
    func checkOutputs(for request: PreparedRequest, _ outputs: [String: Tensor]) throws(InferenceError) {
        for outputName in request.requestedOutputs where outputs[outputName] == nil {
            throw InferenceError(.internal, "model '\(name)' produced no output '\(outputName)'")
        }
    }

    /// Writes the `ModelInferResponse` that `response(for:outputs:)` makes, the same bytes,
    /// straight into `writer`: each tensor's raw contents go into the frame's buffer in place,
    /// with no buffer or response of their own. `outputs` must pass `checkOutputs`.
    func writeResponse(for request: PreparedRequest, outputs: [String: Tensor], to writer: inout ProtoWriter) {
        if !name.isEmpty { writer.writeString(field: 1, name) }
        if !version.isEmpty { writer.writeString(field: 2, version) }
        if !request.id.isEmpty { writer.writeString(field: 3, request.id) }
        for outputName in request.requestedOutputs {
            guard let tensor = outputs[outputName] else { continue }
            var output = ModelInferResponse.InferOutputTensor()
            output.name = outputName
            output.datatype = tensor.datatype.rawValue
            output.shape = tensor.shape
            writer.writeMessage(field: 5, output)
        }
        for outputName in request.requestedOutputs {
            guard let tensor = outputs[outputName] else { continue }
            writer.writeTag(6, .lengthDelimited)
            writer.writeVarint(UInt64(tensor.rawContentsByteCount))
            tensor.writeRawContents(to: &writer.buffer)
        }
    }

    /// Runs a batch of prepared requests of a batched model at once: joins their inputs along
    /// dimension 0, executes, and cuts the outputs back into one response per request, in order.
    /// Runs on the worker's thread pool.
    func executeBatch(_ requests: [PreparedRequest]) -> [Result<ModelInferResponse, InferenceError>] {
        zip(requests, executeBatchOutputs(requests)).map { request, outputs in
            Result { () throws(InferenceError) in try response(for: request, outputs: outputs.get()) }
        }
    }

    /// `executeBatch`, with each request's outputs (its rows of every output the model made)
    /// instead of a response, for encoding straight into its answer frame.
    func executeBatchOutputs(_ requests: [PreparedRequest]) -> [Result<[String: Tensor], InferenceError>] {
        guard case .batched(let model) = backend else {
            return requests.map { _ in .failure(InferenceError(.internal, "model '\(name)' does not batch")) }
        }
        // A batch of one, an idle worker's usual case, runs on the request's own tensors (they
        // are the model's inputs, checked) and needs no joining or cutting.
        let single = requests.count == 1
        var joined: [String: Tensor] = [:]
        if single {
            joined = requests[0].inputs
        } else {
            for input in config.input {
                let parts = requests.compactMap { $0.inputs[input.name] }
                if parts.count == requests.count { joined[input.name] = Tensor.concatenate(parts) }
            }
        }
        let outputs: [String: Tensor]
        do {
            outputs = try model.execute(joined)
        } catch {
            return requests.map { _ in .failure(error) }
        }
        let totalRows = Int64(requests.reduce(0) { $0 + $1.batchSize })
        if let wrong = outputs.first(where: { $0.value.shape.first != totalRows }) {
            let error = InferenceError(
                .internal, "model '\(name)' returned output '\(wrong.key)' with shape \(PreparedRequest.format(wrong.value.shape)) "
                    + "for a batch of \(totalRows) rows")
            return requests.map { _ in .failure(error) }
        }
        if single { return [.success(outputs)] }
        let rows = requests.map(\.batchSize)
        let pieces = outputs.mapValues { $0.split(rows: rows) }
        return requests.indices.map { index in .success(pieces.mapValues { $0[index] }) }
    }
}
