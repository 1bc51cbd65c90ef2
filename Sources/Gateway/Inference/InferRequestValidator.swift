import InferenceProtocol
import NIOCore
import ProtoWire

/// Checks a `ModelInferRequest`, from its one-pass scan (`ModelInferRequestScan`, no tensor
/// materialised), against the model's configuration before it reaches a worker: input names,
/// datatypes, shapes (with the batch dimension), byte sizes and element counts consistent with
/// the shapes, the batch size against `max_batch_size`, and requested output names. Every
/// failure names the input and what was expected, so a person can fix the request.
public enum InferRequestValidator {
    /// A failed check, as the INVALID_ARGUMENT message.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public var description: String
    }

    /// Validates the scanned `request` for `config`; returns the batch size (1 for models without
    /// batching). The checks run in a fixed order and the first failure is thrown; its message is
    /// what the client sees (the interop tests pin them down).
    @discardableResult
    public static func validate(_ request: ModelInferRequestScan, config: ModelConfig) throws(Failure) -> Int64 {
        // No dictionary or set per request: models have a handful of inputs, and a linear
        // search over them costs less than hashing (this runs for every request on a loop).
        let model = config.name
        guard request.rawInputContents.isEmpty || request.rawInputContents.count == request.inputs.count else {
            throw Failure(
                description:
                    "request has \(request.inputs.count) inputs but \(request.rawInputContents.count) raw_input_contents; send one raw buffer per input, in the same order, or none")
        }
        var seen = SpecSet(count: config.input.count)
        var batchSize: Int64?
        // By index, so that neither the request's inputs nor the model's specs are copied.
        for index in request.inputs.indices {
            try check(request.inputs[index], index: index, of: request, config: config, seen: &seen, batchSize: &batchSize)
        }
        for (specIndex, spec) in config.input.enumerated() where !spec.optional && !seen.contains(specIndex) {
            // A later spec that repeats an earlier one's name counts as seen with it.
            let first = config.input.firstIndex(where: { $0.name == spec.name }) ?? specIndex
            if first != specIndex && seen.contains(first) { continue }
            throw Failure(description: "input '\(spec.name)' of model '\(model)' is missing")
        }
        for output in request.outputs where !config.output.contains(where: { $0.name == output.name }) {
            let names = Set(config.output.map(\.name)).sorted().joined(separator: ", ")
            throw Failure(description: "requested output '\(output.name)' is not an output of model '\(model)'; it has: \(names)")
        }
        return batchSize ?? 1
    }

    /// The checks of one input (`request.inputs[index]`), passed by reference from the caller.
    private static func check(
        _ input: ModelInferRequestScan.Input, index: Int, of request: ModelInferRequestScan, config: ModelConfig, seen: inout SpecSet,
        batchSize: inout Int64?
    ) throws(Failure) {
        let model = config.name
        // The first spec of that name, as a by-name lookup would find it.
        guard let specIndex = config.input.firstIndex(where: { $0.name == input.name }) else {
            let names = config.input.map(\.name).sorted().joined(separator: ", ")
            throw Failure(description: "unexpected input '\(input.name)' for model '\(model)'; it takes: \(names)")
        }
        guard seen.insert(specIndex) else {
            throw Failure(description: "input '\(input.name)' appears more than once")
        }
        try check(input, index: index, of: request, against: config.input[specIndex], config: config, batchSize: &batchSize)
    }

    /// The checks of one input against its spec.
    private static func check(
        _ input: ModelInferRequestScan.Input, index: Int, of request: ModelInferRequestScan, against spec: ModelInput, config: ModelConfig,
        batchSize: inout Int64?
    ) throws(Failure) {
        let model = config.name
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

    private static func dimsText(_ dims: [Int64]) -> String {
        dims.map(String.init).joined(separator: ", ")
    }

    private static func checkContents(of input: ModelInferRequestScan.Input, index: Int, elements: Int64, request: ModelInferRequestScan) throws(Failure) {
        let datatype = TensorDatatype(protocolName: input.datatype)
        if !request.rawInputContents.isEmpty {
            if let contents = input.contents, !contents.isEmpty {
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
        let contents = input.contents ?? ModelInferRequestScan.ContentsSummary()
        guard let datatype, let count = contents.elementCount(for: datatype) else {
            throw Failure(description: "input '\(input.name)' of datatype \(input.datatype) must be sent as raw_input_contents")
        }
        guard Int64(count) == elements else {
            throw Failure(description: "input '\(input.name)' has \(count) elements in \(datatype.contentsField!); shape \(input.shape) needs \(elements)")
        }
    }
}

/// Which of a model's input specs a request has named: bits for up to 64 inputs, an array
/// beyond (allocated only for such models).
private struct SpecSet {
    private var bits: UInt64 = 0
    private var more: [Bool]

    init(count: Int) {
        more = count > 64 ? Array(repeating: false, count: count) : []
    }

    /// Inserts `index`; false when it was there already.
    mutating func insert(_ index: Int) -> Bool {
        if !more.isEmpty {
            defer { more[index] = true }
            return !more[index]
        }
        let bit = UInt64(1) << UInt64(index)
        defer { bits |= bit }
        return bits & bit == 0
    }

    func contains(_ index: Int) -> Bool {
        more.isEmpty ? bits & (UInt64(1) << UInt64(index)) != 0 : more[index]
    }
}
