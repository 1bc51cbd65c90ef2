import Foundation
import InferenceProtocol
import ONNXModel

/// A model read from an .onnx file and run by the native runtime (Sources/ONNXModel), batched by
/// the dynamic batcher: requests' inputs are joined along dimension 0 and the graph runs once.
struct ONNXBatchedModel: BatchedModel {
    let model: ONNXModel

    func validate(_ inputs: [String: Tensor]) throws(InferenceError) {}  // names, datatypes and dims: PreparedRequest, against the config

    func execute(_ inputs: [String: Tensor]) throws(InferenceError) -> [String: Tensor] {
        var arrays: [String: NDArray] = [:]
        for (name, tensor) in inputs {
            let shape = tensor.shape.map { Int($0) }
            switch tensor.elements {
            case .fp32(let values): arrays[name] = NDArray(shape: shape, floats: values)
            case .int64(let values): arrays[name] = NDArray(shape: shape, int64s: values)
            case .int32(let values): arrays[name] = NDArray(shape: shape, int64s: values.map(Int64.init))
            case .uint32(let values): arrays[name] = NDArray(shape: shape, int64s: values.map(Int64.init))
            case .bytes: throw InferenceError(.invalidArgument, "input '\(name)' is BYTES; ONNX models here take FP32 and INT64 tensors")
            }
        }
        let outputs: [String: NDArray]
        do {
            outputs = try model.run(arrays)
        } catch {
            throw InferenceError(.invalidArgument, "the model cannot run these inputs: \(error)")
        }
        return outputs.mapValues { array in
            let shape = TensorShape(array.shape.map { Int64($0) })
            switch array.storage {
            case .float(let values): return .fp32(values, shape: shape)
            case .int64(let values): return .int64(values, shape: shape)
            }
        }
    }
}

extension ServedModel {
    /// The model in the .onnx file at `path`, served as `name`: its graph's inputs and outputs
    /// become the model configuration (FP32 for FLOAT and DOUBLE, INT64 for integers). When every
    /// input's first dimension is dynamic, that dimension is the batch: `max_batch_size` is
    /// `maxBatchSize` and the dynamic batcher joins requests along it; otherwise the model does
    /// not batch (`max_batch_size` 0) and a request's shapes are the graph's.
    ///
    /// - Throws: `WorkerServer.ConfigurationError` when the file cannot be read, or holds a model the native
    ///   runtime cannot load (the error names the node and operator).
    static func onnx(
        named name: String, file path: String, maxBatchSize: Int32, maxQueueDelayMicroseconds: UInt64
    ) throws(WorkerServer.ConfigurationError) -> ServedModel {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw WorkerServer.ConfigurationError(description: "cannot read the ONNX model file \(path)")
        }
        let model: ONNXModel
        do {
            model = try ONNXModel(bytes: [UInt8](data))
        } catch {
            throw WorkerServer.ConfigurationError(description: "model '\(name)' (\(path)): \(error)")
        }
        let batches = !model.inputs.isEmpty && model.inputs.allSatisfy { $0.shape.first.map { $0 == nil } ?? false }
        func dataType(_ type: ONNXElementType) -> DataType { type == .float || type == .double ? .fp32 : .int64 }
        func dims(_ shape: [Int?]) -> [Int64] { (batches ? Array(shape.dropFirst()) : shape).map { Int64($0 ?? -1) } }
        var config = BuiltinModels.baseConfig(name)
        config.platform = "onnxruntime_onnx"
        config.backend = "switchyard_onnx"
        config.maxBatchSize = batches ? maxBatchSize : 0
        config.input = model.inputs.map { ModelInput(name: $0.name, dataType: dataType($0.elementType), dims: dims($0.shape)) }
        config.output = model.outputs.map { ModelOutput(name: $0.name, dataType: dataType($0.elementType), dims: dims($0.shape)) }
        if batches {
            var batching = ModelDynamicBatching()
            batching.preferredBatchSize = [maxBatchSize]
            batching.maxQueueDelayMicroseconds = maxQueueDelayMicroseconds
            config.schedulingChoice = .dynamicBatching(batching)
        }
        return ServedModel(config: config, backend: .batched(ONNXBatchedModel(model: model)))
    }
}
