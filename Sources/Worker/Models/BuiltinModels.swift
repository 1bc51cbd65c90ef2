import InferenceProtocol
import NIOCore

/// The example models built into the worker, with the configurations and semantics that
/// Triton's example clients (tritonclient's `simple_*` and `*_repeat` examples) expect.
public enum BuiltinModels {
    /// Every built-in model's name.
    public static let names = ["simple", "simple_string", "simple_identity", "repeat_int32"]

    /// The largest batch of a batching built-in model unless the worker is told otherwise.
    public static let defaultMaxBatchSize: Int32 = 8
    /// How long the dynamic batcher waits for a batch to fill unless told otherwise: 0, Triton's
    /// default. A batch runs as soon as the model is free, so a lone request on an idle model
    /// waits for no timer; requests that arrive while a batch runs form the next one.
    public static let defaultMaxQueueDelayMicroseconds: UInt64 = 0

    /// The built-in model called `name`, or nil when there is none. The batching models
    /// (`simple`, `simple_string`, `simple_identity`) do trivial work and execute inline on the
    /// event loop (`ServedModel.executesInline`).
    ///
    /// - Parameters:
    ///   - maxBatchSize: `max_batch_size` of the batching models (`simple`, `simple_string`,
    ///     `simple_identity`), which is also their preferred batch size; at least 1.
    ///   - maxQueueDelayMicroseconds: how long their dynamic batcher waits for a batch to fill.
    public static func model(
        named name: String,
        maxBatchSize: Int32 = defaultMaxBatchSize,
        maxQueueDelayMicroseconds: UInt64 = defaultMaxQueueDelayMicroseconds
    ) -> ServedModel? {
        func batchedConfig(_ dataType: DataType, inputs: [String], outputs: [String], dims: [Int64]) -> ModelConfig {
            var config = baseConfig(name)
            config.maxBatchSize = maxBatchSize
            config.input = inputs.map { ModelInput(name: $0, dataType: dataType, dims: dims) }
            config.output = outputs.map { ModelOutput(name: $0, dataType: dataType, dims: dims) }
            var batching = ModelDynamicBatching()
            batching.preferredBatchSize = [maxBatchSize]
            batching.maxQueueDelayMicroseconds = maxQueueDelayMicroseconds
            config.schedulingChoice = .dynamicBatching(batching)
            return config
        }
        switch name {
        case "simple":
            return ServedModel(
                config: batchedConfig(.int32, inputs: ["INPUT0", "INPUT1"], outputs: ["OUTPUT0", "OUTPUT1"], dims: [16]),
                backend: .batched(SimpleModel()), executesInline: true)
        case "simple_string":
            return ServedModel(
                config: batchedConfig(.string, inputs: ["INPUT0", "INPUT1"], outputs: ["OUTPUT0", "OUTPUT1"], dims: [16]),
                backend: .batched(SimpleStringModel()), executesInline: true)
        case "simple_identity":
            return ServedModel(
                config: batchedConfig(.string, inputs: ["INPUT0"], outputs: ["OUTPUT0"], dims: [-1]),
                backend: .batched(IdentityModel()), executesInline: true)
        case "repeat_int32":
            var config = baseConfig(name)
            config.maxBatchSize = 0
            config.input = [
                ModelInput(name: "IN", dataType: .int32, dims: [-1]),
                ModelInput(name: "DELAY", dataType: .uint32, dims: [-1]),
                ModelInput(name: "WAIT", dataType: .uint32, dims: [1]),
            ]
            config.output = [
                ModelOutput(name: "OUT", dataType: .int32, dims: [1]),
                ModelOutput(name: "IDX", dataType: .uint32, dims: [1]),
            ]
            config.modelTransactionPolicy = ModelTransactionPolicy(decoupled: true)
            return ServedModel(config: config, backend: .decoupled(RepeatModel()))
        default:
            return nil
        }
    }

    /// What every built-in configuration shares: the name, the backend, the latest version
    /// only, and one CPU instance.
    static func baseConfig(_ name: String) -> ModelConfig {
        var config = ModelConfig()
        config.name = name
        config.backend = "switchyard"
        config.versionPolicy = ModelVersionPolicy(.latest(.init(numVersions: 1)))
        var instances = ModelInstanceGroup()
        instances.name = name
        instances.kind = .cpu
        instances.count = 1
        config.instanceGroup = [instances]
        return config
    }
}

/// `simple`: `OUTPUT0 = INPUT0 + INPUT1` and `OUTPUT1 = INPUT0 - INPUT1`, element-wise over
/// INT32 with two's-complement wrap-around.
struct SimpleModel: BatchedModel {
    func validate(_ inputs: [String: Tensor]) throws(InferenceError) {}

    func execute(_ inputs: [String: Tensor]) -> [String: Tensor] {
        guard let input0 = inputs["INPUT0"], let input1 = inputs["INPUT1"],
            let left = input0.int32Values, let right = input1.int32Values
        else { return [:] }
        let sum = zip(left, right).map { $0 &+ $1 }
        let difference = zip(left, right).map { $0 &- $1 }
        return ["OUTPUT0": .int32(sum, shape: input0.shape), "OUTPUT1": .int32(difference, shape: input0.shape)]
    }
}

/// `simple_string`: `simple` over BYTES tensors whose elements are decimal INT32 strings; the
/// outputs are the decimal strings of the sum and difference.
struct SimpleStringModel: BatchedModel {
    func validate(_ inputs: [String: Tensor]) throws(InferenceError) {
        for name in ["INPUT0", "INPUT1"] {
            guard let elements = inputs[name]?.bytesValues else { continue }
            for (index, element) in elements.enumerated() where Self.parse(element) == nil {
                throw .invalidArgument(
                    "input '\(name)' element \(index) is not a decimal INT32: \(Self.quote(element)); "
                        + "model 'simple_string' takes numbers such as \"42\" or \"-7\"")
            }
        }
    }

    func execute(_ inputs: [String: Tensor]) -> [String: Tensor] {
        guard let input0 = inputs["INPUT0"], let input1 = inputs["INPUT1"],
            let left = input0.bytesValues, let right = input1.bytesValues
        else { return [:] }
        var sum: [ByteBuffer] = []
        var difference: [ByteBuffer] = []
        sum.reserveCapacity(left.count)
        difference.reserveCapacity(left.count)
        for (a, b) in zip(left, right) {
            let x = Self.parse(a) ?? 0
            let y = Self.parse(b) ?? 0
            sum.append(ByteBuffer(string: String(x &+ y)))
            difference.append(ByteBuffer(string: String(x &- y)))
        }
        return ["OUTPUT0": .bytes(sum, shape: input0.shape), "OUTPUT1": .bytes(difference, shape: input0.shape)]
    }

    /// An optional sign and 1 to 10 ASCII digits whose value fits in INT32; nil otherwise.
    static func parse(_ element: ByteBuffer) -> Int32? {
        element.withUnsafeReadableBytes { bytes -> Int32? in
            var index = 0
            var negative = false
            if let first = bytes.first, first == UInt8(ascii: "-") || first == UInt8(ascii: "+") {
                negative = first == UInt8(ascii: "-")
                index = 1
            }
            guard index < bytes.count, bytes.count - index <= 10 else { return nil }
            var value: Int64 = 0
            while index < bytes.count {
                let byte = bytes[index]
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value = value * 10 + Int64(byte - UInt8(ascii: "0"))
                index += 1
            }
            if negative { value = -value }
            guard let result = Int32(exactly: value) else { return nil }
            return result
        }
    }

    /// The element as a short quoted string for an error message: printable ASCII as is,
    /// anything else as `\xNN`, at most 32 bytes.
    static func quote(_ element: ByteBuffer) -> String {
        let bytes = element.getBytes(at: element.readerIndex, length: min(element.readableBytes, 32)) ?? []
        var text = "\""
        for byte in bytes {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): text += "\\" + String(UnicodeScalar(byte))
            case 0x20..<0x7F: text += String(UnicodeScalar(byte))
            default: text += "\\x" + (byte < 16 ? "0" : "") + String(byte, radix: 16)
            }
        }
        text += element.readableBytes > 32 ? "\"… (\(element.readableBytes) bytes)" : "\""
        return text
    }
}

/// `simple_identity`: `OUTPUT0` is `INPUT0`, element for element.
struct IdentityModel: BatchedModel {
    func validate(_ inputs: [String: Tensor]) throws(InferenceError) {}

    func execute(_ inputs: [String: Tensor]) -> [String: Tensor] {
        guard let input = inputs["INPUT0"] else { return [:] }
        return ["OUTPUT0": input]
    }
}

/// `repeat_int32`, with the semantics of Triton's repeat backend: one response per element of
/// `IN`, in order, the i-th carrying `OUT = IN[i]` and `IDX = i` (shape [1] each) and sent
/// `DELAY[i]` milliseconds after the previous one; then the end of the stream. `WAIT` is how
/// many milliseconds, from the start, the request holds the model's one instance (so with
/// `WAIT` shorter than the delays, the next request starts while this one is still answering).
/// An empty `IN` sends no response, only the end of the stream.
struct RepeatModel: DecoupledModel {
    func plan(_ inputs: [String: Tensor]) throws(InferenceError) -> DecoupledPlan {
        guard let input = inputs["IN"], let values = input.int32Values,
            let delay = inputs["DELAY"], let delays = delay.uint32Values,
            let wait = inputs["WAIT"]?.uint32Values?.first
        else {
            throw InferenceError(.internal, "model 'repeat_int32' is missing an input after validation")
        }
        guard input.shape == delay.shape else {
            throw .invalidArgument(
                "expected IN and DELAY shape to match, got \(PreparedRequest.format(input.shape)) and "
                    + PreparedRequest.format(delay.shape))
        }
        return DecoupledPlan(
            responseCount: values.count, instanceHold: .milliseconds(Int64(wait)),
            delay: { index in .milliseconds(Int64(delays[index])) },
            outputs: { index in
                ["OUT": .int32([values[index]], shape: [1]), "IDX": .uint32([UInt32(index)], shape: [1])]
            })
    }
}
