import NIOCore
import ProtoWire

/// Why a model cannot be loaded or run. Load-time errors name the node and operator.
public enum ONNXModelError: Error, Equatable, CustomStringConvertible {
    /// The file is not a valid ONNX model.
    case invalidModel(String)
    /// An operator, attribute value, opset or element type this runtime does not support.
    case unsupported(String)
    /// A request's inputs do not fit the model (INVALID_ARGUMENT).
    case invalidInput(String)

    public var description: String {
        switch self {
        case .invalidModel(let why): return "not a valid ONNX model: \(why)"
        case .unsupported(let why): return why
        case .invalidInput(let why): return why
        }
    }
}

/// An ONNX model loaded for inference: the graph checked once (every operator supported, every
/// attribute read, every value produced before it is used), then run on request.
public struct ONNXModel: Sendable {
    /// A graph input or output: its name, element type and shape (nil: any size).
    public struct Value: Sendable, Equatable {
        public var name: String
        public var elementType: ONNXElementType
        public var shape: [Int?]
    }

    public let inputs: [Value]
    public let outputs: [Value]
    /// The opset of the standard domain the model was exported with.
    public let opset: Int64
    let steps: [Step]
    let constants: [String: NDArray]

    /// The opsets this runtime implements the operators of.
    public static let supportedOpsets: ClosedRange<Int64> = 7...21

    /// Loads a model from the bytes of an .onnx file.
    public init(bytes: [UInt8]) throws(ONNXModelError) {
        let proto: ONNXModelProto
        do {
            // Models carry their weights: allow large messages, keep the nesting limit.
            proto = try ONNXModelProto(decodingBytes: bytes, limits: ProtoLimits(maxMessageSize: 2 << 30, maxDepth: 64))
        } catch {
            throw .invalidModel("\(error)")
        }
        try self.init(proto)
    }

    public init(_ proto: ONNXModelProto) throws(ONNXModelError) {
        var opset: Int64?
        for entry in proto.opsetImports {
            switch entry.domain {
            case "", "ai.onnx": opset = entry.version
            case "ai.onnx.ml": break
            default: throw .unsupported("the model uses operator domain '\(entry.domain)', which this runtime does not implement")
            }
        }
        guard let opset else { throw .invalidModel("it imports no opset of the standard domain") }
        guard Self.supportedOpsets.contains(opset) else {
            throw .unsupported("the model's opset \(opset) is outside the opsets this runtime implements (\(Self.supportedOpsets.lowerBound)–\(Self.supportedOpsets.upperBound)); re-export it with one of those")
        }
        self.opset = opset
        var constants: [String: NDArray] = [:]
        for initializer in proto.graph.initializers { constants[initializer.name] = try NDArray(initializer) }
        let initializerNames = Set(constants.keys)
        func value(_ info: ONNXValueInfo, _ role: String) throws(ONNXModelError) -> Value {
            guard let type = ONNXElementType(rawValue: info.elementType), type == .float || type == .int64 || type == .double || type == .int32 else {
                throw .unsupported("graph \(role) '\(info.name)' has element type \(info.elementType); this runtime serves FLOAT, DOUBLE, INT32 and INT64 tensors")
            }
            return Value(name: info.name, elementType: type, shape: info.shape.map { $0.map { Int($0) } })
        }
        // Initializers may be listed as inputs too (older exporters): they are not request inputs.
        inputs = try proto.graph.inputs.filter { !initializerNames.contains($0.name) }.map { info throws(ONNXModelError) in try value(info, "input") }
        outputs = try proto.graph.outputs.map { info throws(ONNXModelError) in try value(info, "output") }
        guard !outputs.isEmpty else { throw .invalidModel("the graph has no outputs") }
        var known = Set(inputs.map(\.name)).union(initializerNames)
        var steps: [Step] = []
        for (index, node) in proto.graph.nodes.enumerated() {
            let label = node.name.isEmpty ? "#\(index) (\(node.opType))" : "'\(node.name)' (\(node.opType))"
            for input in node.inputs where !input.isEmpty && !known.contains(input) {
                throw .invalidModel("node \(label) reads '\(input)' before any node makes it (the graph is not in topological order)")
            }
            var step = try Step(node: node, label: label, opset: opset, constants: &constants)
            // A Gemm with constant weights given transposed (torch's Linear): transpose them once
            // here rather than at every call.
            if case .gemm(let alpha, let beta, let transA, true) = step.op, step.inputs.count > 1, let weights = constants[step.inputs[1]],
                weights.shape.count == 2
            {
                let name = step.inputs[1] + "\u{1}transposed"
                if constants[name] == nil { constants[name] = Kernels.transpose(weights, perm: [1, 0]) }
                var inputs = step.inputs
                inputs[1] = name
                step = Step(op: .gemm(alpha: alpha, beta: beta, transA: transA, transB: false), inputs: inputs, outputs: step.outputs, label: step.label)
            }
            steps.append(step)
            known.formUnion(node.outputs)
        }
        for output in outputs where !known.contains(output.name) {
            throw .invalidModel("graph output '\(output.name)' is made by no node")
        }
        self.steps = steps
        self.constants = constants
    }

    /// Runs the model on `inputs` (by graph input name): every graph output by name.
    public func run(_ inputs: [String: NDArray]) throws(ONNXModelError) -> [String: NDArray] {
        var values = constants
        for input in self.inputs {
            guard var given = inputs[input.name] else { throw .invalidInput("input '\(input.name)' is missing") }
            guard given.shape.count == input.shape.count else {
                throw .invalidInput("input '\(input.name)' has shape \(given.shape); the model takes \(Self.describe(input.shape))")
            }
            for (axis, expected) in input.shape.enumerated() {
                if let expected, expected != given.shape[axis] {
                    throw .invalidInput("input '\(input.name)' has shape \(given.shape); the model takes \(Self.describe(input.shape))")
                }
            }
            // The runtime computes in Float and Int64: convert only a tensor of the other kind.
            let wantsFloat = input.elementType == .float || input.elementType == .double
            if wantsFloat != (given.elementType == .float) {
                given = wantsFloat ? NDArray(shape: given.shape, floats: given.floats) : NDArray(shape: given.shape, int64s: given.int64s)
            }
            values[input.name] = given
        }
        for step in steps { try step.run(&values) }
        var result: [String: NDArray] = [:]
        for output in outputs { result[output.name] = values[output.name] }
        return result
    }

    static func describe(_ shape: [Int?]) -> String {
        "[" + shape.map { $0.map(String.init) ?? "-1" }.joined(separator: ", ") + "]"
    }
}
