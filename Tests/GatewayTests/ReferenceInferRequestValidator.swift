import InferenceProtocol
import NIOCore

// The test oracle: `InferRequestValidator` as it was before it took a `ModelInferRequestScan`
// (commit c6ef2ae), copied unchanged but for its name and access level. It validates a fully
// decoded `ModelInferRequest`; `InferRequestValidatorTests` checks that the scan-based
// validator gives the same result and the same message on every request of its table.
enum ReferenceInferRequestValidator {
    /// A failed check, as the INVALID_ARGUMENT message.
    struct Failure: Error, Sendable, CustomStringConvertible {
        var description: String
    }

    /// Validates `request` for `config`; returns the batch size (1 for models without batching).
    @discardableResult
    static func validate(_ request: ModelInferRequest, config: ModelConfig) throws(Failure) -> Int64 {
        let model = config.name
        let expected = Dictionary(config.input.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        guard request.rawInputContents.isEmpty || request.rawInputContents.count == request.inputs.count else {
            throw Failure(
                description:
                    "request has \(request.inputs.count) inputs but \(request.rawInputContents.count) raw_input_contents; send one raw buffer per input, in the same order, or none")
        }
        var seen: Set<String> = []
        var batchSize: Int64?
        for (index, input) in request.inputs.enumerated() {
            guard let spec = expected[input.name] else {
                let names = config.input.map(\.name).sorted().joined(separator: ", ")
                throw Failure(description: "unexpected input '\(input.name)' for model '\(model)'; it takes: \(names)")
            }
            guard seen.insert(input.name).inserted else {
                throw Failure(description: "input '\(input.name)' appears more than once")
            }
            let expectedType = spec.dataType.protocolName ?? "(a type this gateway cannot check)"
            guard input.datatype == expectedType else {
                throw Failure(description: "input '\(input.name)' has datatype \(input.datatype.isEmpty ? "(none)" : input.datatype); model '\(model)' expects \(expectedType)")
            }
            // Shape: [batch] + dims when the model batches, else dims; -1 in dims matches any size.
            var shape = input.shape[...]
            if config.maxBatchSize > 0 {
                guard let batch = shape.first else {
                    throw Failure(description: "input '\(input.name)' has an empty shape; expected [batch, \(dimsText(spec.dims))]")
                }
                guard batch >= 1 && batch <= Int64(config.maxBatchSize) else {
                    throw Failure(description: "input '\(input.name)' has batch size \(batch); model '\(model)' accepts 1 to \(config.maxBatchSize)")
                }
                if let batchSize, batchSize != batch {
                    throw Failure(description: "input '\(input.name)' has batch size \(batch) but an earlier input has \(batchSize); all inputs must agree")
                }
                batchSize = batch
                shape = shape.dropFirst()
            }
            guard shape.count == spec.dims.count, zip(shape, spec.dims).allSatisfy({ $1 == -1 ? $0 >= 0 : $0 == $1 }) else {
                let expectedShape = config.maxBatchSize > 0 ? "[-1, \(dimsText(spec.dims))]" : "[\(dimsText(spec.dims))]"
                throw Failure(description: "input '\(input.name)' has shape \(input.shape); model '\(model)' expects \(expectedShape)")
            }
            let elements = input.shape.reduce(Int64(1)) { $0.multipliedReportingOverflow(by: $1).overflow ? Int64.max : $0 * $1 }
            try checkContents(of: input, index: index, elements: elements, request: request)
        }
        for spec in config.input where !spec.optional && !seen.contains(spec.name) {
            throw Failure(description: "input '\(spec.name)' of model '\(model)' is missing")
        }
        let outputs = Set(config.output.map(\.name))
        for output in request.outputs where !outputs.contains(output.name) {
            throw Failure(description: "requested output '\(output.name)' is not an output of model '\(model)'; it has: \(outputs.sorted().joined(separator: ", "))")
        }
        return batchSize ?? 1
    }

    private static func dimsText(_ dims: [Int64]) -> String {
        dims.map(String.init).joined(separator: ", ")
    }

    private static func checkContents(of input: ModelInferRequest.InferInputTensor, index: Int, elements: Int64, request: ModelInferRequest) throws(Failure) {
        let datatype = TensorDatatype(protocolName: input.datatype)
        if !request.rawInputContents.isEmpty {
            if let contents = input.contents, contents != InferTensorContents() {
                throw Failure(description: "input '\(input.name)' has both typed contents and raw_input_contents; send one of them")
            }
            let raw = request.rawInputContents[index]
            if let size = datatype?.elementSize {
                let expected = elements.multipliedReportingOverflow(by: Int64(size))
                guard !expected.overflow, Int64(raw.readableBytes) == expected.partialValue else {
                    throw Failure(
                        description:
                            "input '\(input.name)' has \(raw.readableBytes) bytes of raw contents; shape \(input.shape) of \(input.datatype) needs \(expected.overflow ? "more than Int64.max" : String(expected.partialValue)) bytes")
                }
            } else {
                // BYTES: a 4-byte little-endian length before each element.
                var view = raw
                var count: Int64 = 0
                while view.readableBytes > 0 {
                    guard let length = view.readInteger(endianness: .little, as: UInt32.self), view.readSlice(length: Int(length)) != nil else {
                        throw Failure(description: "input '\(input.name)' has malformed BYTES raw contents: element \(count) runs past the end; each element is a 4-byte little-endian length followed by its bytes")
                    }
                    count += 1
                }
                guard count == elements else {
                    throw Failure(description: "input '\(input.name)' has \(count) BYTES elements in raw contents; shape \(input.shape) needs \(elements)")
                }
            }
            return
        }
        let contents = input.contents ?? InferTensorContents()
        let count: Int
        switch datatype {
        case .bool: count = contents.boolContents.count
        case .int8, .int16, .int32: count = contents.intContents.count
        case .int64: count = contents.int64Contents.count
        case .uint8, .uint16, .uint32: count = contents.uintContents.count
        case .uint64: count = contents.uint64Contents.count
        case .fp32: count = contents.fp32Contents.count
        case .fp64: count = contents.fp64Contents.count
        case .bytes: count = contents.bytesContents.count
        case .fp16, .bf16, nil:
            throw Failure(description: "input '\(input.name)' of datatype \(input.datatype) must be sent as raw_input_contents")
        }
        guard Int64(count) == elements else {
            throw Failure(description: "input '\(input.name)' has \(count) elements in \(datatype!.contentsField!); shape \(input.shape) needs \(elements)")
        }
    }
}
