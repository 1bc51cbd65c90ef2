import InferenceProtocol
import NIOCore

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
        // No per-call dictionary or set: configurations have a handful of inputs and outputs,
        // and finding a name among them by comparing strings costs less than hashing it (see
        // loadtest/RESULTS.md, issue 8). Large configurations get a dictionary.
        let model = config.name
        let specs = NameLookup(config.input) { $0.name }
        guard request.rawInputContents.isEmpty || request.rawInputContents.count == request.inputs.count else {
            throw Failure(
                description:
                    "request has \(request.inputs.count) inputs but \(request.rawInputContents.count) raw_input_contents; send one raw buffer per input, in the same order, or none")
        }
        // Inputs seen, by the index of the first spec of their name.
        var seen = IndexSet()
        var batchSize: Int64?
        for index in request.inputs.indices {
            let input = request.inputs[index]
            guard let specIndex = specs.firstIndex(of: input.name) else {
                let names = config.input.map(\.name).sorted().joined(separator: ", ")
                throw Failure(description: "unexpected input '\(input.name)' for model '\(model)'; it takes: \(names)")
            }
            guard seen.insert(specIndex) else {
                throw Failure(description: "input '\(input.name)' appears more than once")
            }
            let spec = config.input[specIndex]
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
            // The datatype matched the spec's spelling, so it is the spec's type (a switch, not
            // the standard library's string switch over every spelling).
            try checkContents(of: input, datatype: tensorDatatype(of: spec.dataType), index: index, elements: elements, request: request)
        }
        for spec in config.input where !spec.optional && !seen.contains(specs.firstIndex(of: spec.name)!) {
            throw Failure(description: "input '\(spec.name)' of model '\(model)' is missing")
        }
        let outputs = NameLookup(config.output) { $0.name }
        for output in request.outputs where outputs.firstIndex(of: output.name) == nil {
            let names = Set(config.output.map(\.name)).sorted().joined(separator: ", ")
            throw Failure(description: "requested output '\(output.name)' is not an output of model '\(model)'; it has: \(names)")
        }
        return batchSize ?? 1
    }

    /// `TensorDatatype(protocolName: dataType.protocolName)`, by a switch on the enum.
    static func tensorDatatype(of dataType: DataType) -> TensorDatatype? {
        switch dataType {
        case .bool: .bool
        case .uint8: .uint8
        case .uint16: .uint16
        case .uint32: .uint32
        case .uint64: .uint64
        case .int8: .int8
        case .int16: .int16
        case .int32: .int32
        case .int64: .int64
        case .fp16: .fp16
        case .fp32: .fp32
        case .fp64: .fp64
        case .string: .bytes
        case .bf16: .bf16
        case .invalid, .unrecognized: nil
        }
    }

    /// Finds the first element of a few named ones by comparing names; past `linearLimit`
    /// elements, through a dictionary built once per validation.
    struct NameLookup<Element> {
        static var linearLimit: Int { 16 }
        private let elements: [Element]
        private let name: (Element) -> String
        private let byName: [String: Int]?

        init(_ elements: [Element], name: @escaping (Element) -> String) {
            self.elements = elements
            self.name = name
            byName = elements.count > Self.linearLimit
                ? Dictionary(elements.enumerated().map { (name($1), $0) }, uniquingKeysWith: { first, _ in first }) : nil
        }

        func firstIndex(of wanted: String) -> Int? {
            if let byName { return byName[wanted] }
            return elements.firstIndex { name($0) == wanted }
        }
    }

    /// A set of small non-negative integers: a bit mask up to 63, a `Set` beyond.
    struct IndexSet {
        private var mask: UInt64 = 0
        private var large: Set<Int> = []

        /// Inserts `index`; false when it was already there.
        mutating func insert(_ index: Int) -> Bool {
            if index < 64 {
                let bit = UInt64(1) << UInt64(index)
                defer { mask |= bit }
                return mask & bit == 0
            }
            return large.insert(index).inserted
        }

        func contains(_ index: Int) -> Bool {
            index < 64 ? mask & (UInt64(1) << UInt64(index)) != 0 : large.contains(index)
        }
    }

    private static func dimsText(_ dims: [Int64]) -> String {
        dims.map(String.init).joined(separator: ", ")
    }

    /// The pre-scan entry point, kept only until `prepareInfer` scans instead of decoding: it
    /// validates the scan summary of the decoded request (`ModelInferRequestScan.init(_:)`).
    @available(*, deprecated, message: "scan the request bytes with ModelInferRequestScan and validate the scan")
    @discardableResult
    public static func validate(_ request: ModelInferRequest, config: ModelConfig) throws(Failure) -> Int64 {
        try validate(ModelInferRequestScan(request), config: config)
    }

    private static func checkContents(
        of input: ModelInferRequestScan.Input, datatype: TensorDatatype?, index: Int, elements: Int64, request: ModelInferRequestScan
    ) throws(Failure) {
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
