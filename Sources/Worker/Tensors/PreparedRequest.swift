import InferenceProtocol
import NIOCore

/// A `ModelInferRequest` checked against one model's configuration, with its inputs decoded into
/// tensors and its requested outputs resolved.
///
/// Every check the worker makes on a request happens here, before the request reaches a queue,
/// so a bad request never joins a batch: names, datatypes, shapes, batch size, data size and the
/// framing of BYTES elements. Each failure is an `INVALID_ARGUMENT` whose message names the
/// tensor and says what was expected.
public struct PreparedRequest: Sendable {
    /// The request's `id`, echoed in every response.
    public var id: String
    /// The inputs by name, each with its full shape (batch dimension first for batching models).
    public var inputs: [String: Tensor]
    /// The outputs to return, in response order: those requested, or every output in
    /// configuration order when the request names none.
    public var requestedOutputs: [String]
    /// The rows along dimension 0 for a batching model; 1 for a model that does not batch.
    public var batchSize: Int
    /// Requests whose inputs agree in every dimension after the first may share a batch.
    var batchKey: [TensorShape]

    /// Checks `request` against `config` and decodes its inputs.
    ///
    /// - Throws: `InferenceError` with `INVALID_ARGUMENT` naming what is wrong.
    public init(_ request: ModelInferRequest, config: ModelConfig) throws(InferenceError) {
        let model = config.name
        let batching = config.maxBatchSize > 0
        id = request.id

        // A request has a few inputs: looking back over them costs less than hashing into a
        // set, which is kept for requests with many.
        var seen: Set<String> = []
        let manyInputs = request.inputs.count > Self.inputsCheckedLinearly
        for (position, input) in request.inputs.enumerated() {
            let repeated = manyInputs
                ? !seen.insert(input.name).inserted
                : request.inputs[..<position].contains(where: { $0.name == input.name })
            guard !repeated else {
                throw .invalidArgument("input '\(input.name)' appears more than once in the request")
            }
            guard config.input.contains(where: { $0.name == input.name }) else {
                throw .invalidArgument(
                    "unexpected input '\(input.name)' for model '\(model)', which takes \(Self.list(config.input.map(\.name)))")
            }
        }
        if !request.rawInputContents.isEmpty && request.rawInputContents.count != request.inputs.count {
            throw .invalidArgument(
                "the request has \(request.inputs.count) inputs but \(request.rawInputContents.count) raw_input_contents entries; "
                    + "send one entry per input, in the order of inputs")
        }

        // Sized once for every input the model takes, not grown at the second.
        var inputs = [String: Tensor](minimumCapacity: config.input.count)
        var batchSize: Int?
        var batchSizeSource = ""
        var batchKey: [TensorShape] = []
        if batching { batchKey.reserveCapacity(config.input.count) }
        for spec in config.input {
            guard let index = request.inputs.firstIndex(where: { $0.name == spec.name }) else {
                if spec.optional { continue }
                throw .invalidArgument("model '\(model)' expects input '\(spec.name)', which the request does not have")
            }
            let input = request.inputs[index]
            let name = spec.name
            guard let expected = spec.dataType.protocolName.flatMap(TensorDatatype.init(protocolName:)) else {
                throw InferenceError(.internal, "model '\(model)' declares input '\(name)' with no usable datatype")
            }
            guard let datatype = TensorDatatype(protocolName: input.datatype) else {
                throw .invalidArgument("input '\(name)' has unknown datatype '\(input.datatype)'; model '\(model)' expects \(expected)")
            }
            guard datatype == expected else {
                throw .invalidArgument("input '\(name)' has datatype \(datatype); model '\(model)' expects \(expected)")
            }

            // Shape: the batch dimension (if the model batches) and then the configured dims.
            // The expected shape is spelled out only for an error message.
            let shape = input.shape
            let leading = batching ? 1 : 0
            func expectedShape() -> [Int64] { (batching ? [-1] : []) + spec.dims }
            guard shape.count == leading + spec.dims.count else {
                throw .invalidArgument(
                    "input '\(name)' has shape \(Self.format(shape)); model '\(model)' expects \(Self.format(expectedShape()))"
                        + (batching ? " (batch dimension first, at most \(config.maxBatchSize))" : ""))
            }
            if let negative = shape.first(where: { $0 < 0 }) {
                throw .invalidArgument("input '\(name)' has shape \(Self.format(shape)) with negative dimension \(negative)")
            }
            for (index, wanted) in spec.dims.enumerated() where wanted >= 0 && shape[leading + index] != wanted {
                throw .invalidArgument(
                    "input '\(name)' has shape \(Self.format(shape)); model '\(model)' expects \(Self.format(expectedShape())) "
                        + "(dimension \(leading + index) must be \(wanted))")
            }
            if batching {
                let rows = Int(shape[0])
                guard rows >= 1 else {
                    throw .invalidArgument("input '\(name)' has batch size 0; send at least one row")
                }
                guard rows <= Int(config.maxBatchSize) else {
                    throw .invalidArgument(
                        "input '\(name)' has batch size \(rows); model '\(model)' accepts at most \(config.maxBatchSize)")
                }
                if let batchSize, batchSize != rows {
                    throw .invalidArgument(
                        "input '\(name)' has batch size \(rows) but input '\(batchSizeSource)' has \(batchSize); all inputs must agree")
                }
                batchSize = rows
                batchSizeSource = name
                batchKey.append(TensorShape(shape.dropFirst()))
            }
            guard let count = Self.elementCount(shape) else {
                throw .invalidArgument("input '\(name)' has shape \(Self.format(shape)), which describes too many elements")
            }

            if input.parameters["shared_memory_region"] != nil {
                throw .invalidArgument(
                    "input '\(name)' uses shared memory (shared_memory_region), which this worker does not support; "
                        + "send the data in the request")
            }
            let raw = request.rawInputContents.isEmpty ? nil : request.rawInputContents[index]
            let tensor: Tensor
            if let raw {
                if let contents = input.contents, contents != InferTensorContents() {
                    throw .invalidArgument(
                        "input '\(name)' has both contents and raw_input_contents; send its data in one of them")
                }
                tensor = try Self.decodeRaw(raw, name: name, datatype: datatype, shape: shape, count: count)
            } else if let contents = input.contents {
                tensor = try Self.decodeTyped(contents, name: name, datatype: datatype, shape: shape, count: count)
            } else {
                throw .invalidArgument("input '\(name)' carries no data: set its contents or send raw_input_contents")
            }
            inputs[name] = tensor
        }
        self.inputs = inputs
        self.batchSize = batching ? (batchSize ?? 1) : 1
        self.batchKey = batchKey

        var outputs: [String] = []
        for requested in request.outputs {
            guard config.output.contains(where: { $0.name == requested.name }) else {
                throw .invalidArgument(
                    "unknown output '\(requested.name)' requested; model '\(model)' has \(Self.list(config.output.map(\.name)))")
            }
            if requested.parameters["shared_memory_region"] != nil {
                throw .invalidArgument(
                    "output '\(requested.name)' asks for shared memory (shared_memory_region), which this worker does not support")
            }
            if let classification = requested.parameters["classification"], classification != InferParameter(.int64(0)) {
                throw .invalidArgument(
                    "output '\(requested.name)' asks for classification, which model '\(model)' does not support")
            }
            if !outputs.contains(requested.name) { outputs.append(requested.name) }
        }
        requestedOutputs = outputs.isEmpty ? config.output.map(\.name) : outputs
    }

    /// Up to this many inputs, duplicates are found by looking back rather than with a set.
    static let inputsCheckedLinearly = 8

    // MARK: Data

    /// `count` little-endian values read straight into the array (the caller has checked the size).
    private static func littleEndianValues<Value: FixedWidthInteger>(_ raw: ByteBuffer, count: Int) -> [Value] {
        raw.withUnsafeReadableBytes { bytes in
            [Value](unsafeUninitializedCapacity: count) { storage, initialized in
                let width = MemoryLayout<Value>.size
                for index in 0..<count {
                    storage[index] = Value(littleEndian: bytes.loadUnaligned(fromByteOffset: index * width, as: Value.self))
                }
                initialized = count
            }
        }
    }

    private static func decodeRaw(
        _ raw: ByteBuffer, name: String, datatype: TensorDatatype, shape: TensorShape, count: Int
    ) throws(InferenceError) -> Tensor {
        switch datatype {
        case .int32, .uint32:
            let needed = count * 4
            guard raw.readableBytes == needed else {
                throw .invalidArgument(
                    "input '\(name)' raw contents hold \(raw.readableBytes) bytes; shape \(format(shape)) of \(datatype) "
                        + "needs \(needed) (\(count) elements of 4 bytes)")
            }
            if datatype == .uint32 { return .uint32(littleEndianValues(raw, count: count), shape: shape) }
            return .int32(littleEndianValues(raw, count: count), shape: shape)
        case .fp32, .int64:
            let width = datatype == .fp32 ? 4 : 8
            let needed = count * width
            guard raw.readableBytes == needed else {
                throw .invalidArgument(
                    "input '\(name)' raw contents hold \(raw.readableBytes) bytes; shape \(format(shape)) of \(datatype) "
                        + "needs \(needed) (\(count) elements of \(width) bytes)")
            }
            if datatype == .int64 { return .int64(littleEndianValues(raw, count: count), shape: shape) }
            let bits: [UInt32] = littleEndianValues(raw, count: count)
            return .fp32(bits.map(Float.init(bitPattern:)), shape: shape)
        case .bytes:
            var buffer = raw
            var elements: [ByteBuffer] = []
            elements.reserveCapacity(count)
            while buffer.readableBytes > 0 {
                let index = elements.count
                let offset = raw.readableBytes - buffer.readableBytes
                guard index < count else {
                    throw .invalidArgument(
                        "input '\(name)' raw contents hold more than the \(count) elements shape \(format(shape)) describes "
                            + "(\(buffer.readableBytes) bytes left over at byte offset \(offset))")
                }
                guard let length = buffer.readInteger(endianness: .little, as: UInt32.self) else {
                    throw .invalidArgument(
                        "input '\(name)' raw contents end inside the 4-byte length prefix of element \(index) (byte offset \(offset))")
                }
                guard let element = buffer.readSlice(length: Int(length)) else {
                    throw .invalidArgument(
                        "input '\(name)' element \(index) claims \(length) bytes but only \(buffer.readableBytes) remain "
                            + "in its raw contents (byte offset \(offset))")
                }
                elements.append(element)
            }
            guard elements.count == count else {
                throw .invalidArgument(
                    "input '\(name)' raw contents hold \(elements.count) elements; shape \(format(shape)) needs \(count)")
            }
            return .bytes(elements, shape: shape)
        default:
            throw .invalidArgument("input '\(name)' has datatype \(datatype), which no model of this worker takes")
        }
    }

    private static func decodeTyped(
        _ contents: InferTensorContents, name: String, datatype: TensorDatatype, shape: TensorShape, count: Int
    ) throws(InferenceError) -> Tensor {
        func check(_ actual: Int, _ field: String) throws(InferenceError) {
            guard actual == count else {
                throw .invalidArgument(
                    "input '\(name)' has \(actual) \(field) values; shape \(format(shape)) of \(datatype) needs \(count)")
            }
        }
        switch datatype {
        case .int32:
            try check(contents.intContents.count, "int_contents")
            return .int32(contents.intContents, shape: shape)
        case .uint32:
            try check(contents.uintContents.count, "uint_contents")
            return .uint32(contents.uintContents, shape: shape)
        case .bytes:
            try check(contents.bytesContents.count, "bytes_contents")
            return .bytes(contents.bytesContents, shape: shape)
        case .fp32:
            try check(contents.fp32Contents.count, "fp32_contents")
            return .fp32(contents.fp32Contents, shape: shape)
        case .int64:
            try check(contents.int64Contents.count, "int64_contents")
            return .int64(contents.int64Contents, shape: shape)
        default:
            throw .invalidArgument("input '\(name)' has datatype \(datatype), which no model of this worker takes")
        }
    }

    // MARK: Formatting

    /// The number of elements `shape` describes, or nil when it does not fit in an `Int32`
    /// (no single request the worker accepts is that large).
    static func elementCount(_ shape: some Collection<Int64>) -> Int? {
        var product: Int64 = 1
        for dimension in shape {
            let (next, overflow) = product.multipliedReportingOverflow(by: dimension)
            guard !overflow, next <= Int64(Int32.max) else { return nil }
            product = next
        }
        return Int(product)
    }

    /// A shape as Triton prints it: `[1,16]`.
    static func format(_ shape: some Collection<Int64>) -> String {
        "[" + shape.map(String.init).joined(separator: ",") + "]"
    }

    private static func list(_ names: [String]) -> String {
        names.joined(separator: ", ")
    }
}
