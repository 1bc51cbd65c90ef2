#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One node of a loaded graph: its operator with the attributes read and checked at load time.
struct Step: Sendable {
    enum BinaryOp: Sendable { case add, sub, mul, div }
    enum UnaryOp: Sendable { case relu, leakyRelu(Float), sigmoid, tanh, identity }
    enum PostTransform: String, Sendable { case none = "NONE", logistic = "LOGISTIC", softmax = "SOFTMAX" }
    enum Norm: String, Sendable { case max = "MAX", l1 = "L1", l2 = "L2" }

    enum Operator: Sendable {
        case gemm(alpha: Float, beta: Float, transA: Bool, transB: Bool)
        case matMul
        case binary(BinaryOp)
        case unary(UnaryOp)
        case softmax(axis: Int, legacy: Bool, log: Bool)
        case flatten(axis: Int)
        case reshape(allowZero: Bool)
        case squeeze(axes: [Int]?)
        case unsqueeze(axes: [Int]?)
        case transpose(perm: [Int]?)
        case concat(axis: Int)
        case gather(axis: Int)
        case cast(toFloat: Bool, toBool: Bool)
        case argMax(axis: Int, keepDims: Bool, selectLast: Bool)
        case clip(min: Float, max: Float)
        /// Scores = X · coefficientsᵀ + intercepts (coefficients: classes × features), then the
        /// post transform; the label is the class of the highest score.
        case linearClassifier(coefficients: [Float], intercepts: [Float], classes: Int, labels: [Int64], post: PostTransform)
        case linearRegressor(coefficients: [Float], intercepts: [Float], targets: Int, post: PostTransform)
        case normalizer(Norm)
        case scaler(offset: [Float], scale: [Float])
    }

    let op: Operator
    let inputs: [String]
    let outputs: [String]
    let label: String

    /// The operators this runtime implements, by domain.
    static let standardOperators: Set<String> = [
        "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "Flatten",
        "Reshape", "Squeeze", "Unsqueeze", "Transpose", "Concat", "Gather", "Identity", "Cast", "ArgMax", "Clip", "Constant", "Dropout",
    ]
    static let mlOperators: Set<String> = ["LinearClassifier", "LinearRegressor", "Normalizer", "Scaler"]

    /// Reads `node`; a `Constant` node's value goes into `constants` and the step is an identity.
    init(node: ONNXNodeProto, label: String, opset: Int64, constants: inout [String: NDArray]) throws(ONNXModelError) {
        let op: Operator
        var stepInputs = node.inputs
        func int(_ name: String, _ fallback: Int64) -> Int64 { node.attribute(name)?.int ?? fallback }
        func float(_ name: String, _ fallback: Float) -> Float { node.attribute(name).map(\.float) ?? fallback }
        func unsupported(_ why: String) -> ONNXModelError { .unsupported("node \(label): \(why)") }
        func need(_ count: Int) throws(ONNXModelError) {
            guard node.inputs.filter({ !$0.isEmpty }).count >= count, !node.outputs.isEmpty else {
                throw .invalidModel("node \(label) needs \(count) input(s) and an output")
            }
        }
        switch node.domain {
        case "", "ai.onnx":
            guard Self.standardOperators.contains(node.opType) else {
                throw .unsupported("node \(label): operator \(node.opType) is not supported by this runtime (supported: \(Self.standardOperators.sorted().joined(separator: ", ")))")
            }
        case "ai.onnx.ml":
            guard Self.mlOperators.contains(node.opType) else {
                throw .unsupported("node \(label): operator ai.onnx.ml.\(node.opType) is not supported by this runtime (supported: \(Self.mlOperators.sorted().joined(separator: ", ")))")
            }
        default:
            throw .unsupported("node \(label): operator domain '\(node.domain)' is not supported")
        }
        switch node.opType {
        case "Gemm":
            try need(2)
            op = .gemm(alpha: float("alpha", 1), beta: float("beta", 1), transA: int("transA", 0) != 0, transB: int("transB", 0) != 0)
        case "MatMul":
            try need(2)
            op = .matMul
        case "Add": try need(2); op = .binary(.add)
        case "Sub": try need(2); op = .binary(.sub)
        case "Mul": try need(2); op = .binary(.mul)
        case "Div": try need(2); op = .binary(.div)
        case "Relu": try need(1); op = .unary(.relu)
        case "LeakyRelu": try need(1); op = .unary(.leakyRelu(float("alpha", 0.01)))
        case "Sigmoid": try need(1); op = .unary(.sigmoid)
        case "Tanh": try need(1); op = .unary(.tanh)
        case "Identity", "Dropout": try need(1); op = .unary(.identity)
        case "Softmax", "LogSoftmax":
            try need(1)
            op = .softmax(axis: Int(int("axis", opset < 13 ? 1 : -1)), legacy: opset < 13, log: node.opType == "LogSoftmax")
        case "Flatten": try need(1); op = .flatten(axis: Int(int("axis", 1)))
        case "Reshape": try need(2); op = .reshape(allowZero: int("allowzero", 0) != 0)
        case "Squeeze":
            try need(1)
            op = .squeeze(axes: node.attribute("axes").map { $0.ints.map { Int($0) } })
        case "Unsqueeze":
            try need(1)
            let axes = node.attribute("axes").map { $0.ints.map { Int($0) } }
            if opset < 13, axes == nil { throw .invalidModel("node \(label): Unsqueeze needs its axes attribute") }
            op = .unsqueeze(axes: axes)
        case "Transpose": try need(1); op = .transpose(perm: node.attribute("perm").map { $0.ints.map { Int($0) } })
        case "Concat":
            try need(1)
            guard let axis = node.attribute("axis") else { throw .invalidModel("node \(label): Concat needs its axis attribute") }
            op = .concat(axis: Int(axis.int))
        case "Gather": try need(2); op = .gather(axis: Int(int("axis", 0)))
        case "Cast":
            try need(1)
            guard let to = node.attribute("to").flatMap({ ONNXElementType(rawValue: Int32($0.int)) }) else {
                throw unsupported("Cast to element type \(int("to", 0)) is not supported (FLOAT, DOUBLE, INT32, INT64, INT8, UINT8, BOOL are)")
            }
            op = .cast(toFloat: to == .float || to == .double, toBool: to == .bool)
        case "ArgMax":
            try need(1)
            op = .argMax(axis: Int(int("axis", 0)), keepDims: int("keepdims", 1) != 0, selectLast: int("select_last_index", 0) != 0)
        case "Clip":
            try need(1)
            op = .clip(min: float("min", -.infinity), max: float("max", .infinity))
        case "Constant":
            guard let tensor = node.attribute("value")?.tensor, let output = node.outputs.first else {
                throw unsupported("Constant without a tensor value is not supported")
            }
            var proto = tensor
            proto.name = output
            constants[output] = try NDArray(proto)
            op = .unary(.identity)
            stepInputs = [output]
        case "LinearClassifier":
            try need(1)
            guard node.attribute("classlabels_strings") == nil else {
                throw unsupported("LinearClassifier with string class labels is not supported (export with integer labels)")
            }
            let coefficients = node.attribute("coefficients")?.floats ?? []
            let labels = node.attribute("classlabels_ints")?.ints ?? []
            let intercepts = node.attribute("intercepts")?.floats ?? []
            guard labels.count >= 2, !coefficients.isEmpty, coefficients.count % labels.count == 0 else {
                throw unsupported("LinearClassifier needs one row of coefficients per class label (binary single-row classifiers are not supported)")
            }
            guard intercepts.isEmpty || intercepts.count == labels.count else { throw .invalidModel("node \(label): \(intercepts.count) intercepts for \(labels.count) classes") }
            op = .linearClassifier(
                coefficients: coefficients, intercepts: intercepts.isEmpty ? Array(repeating: 0, count: labels.count) : intercepts, classes: labels.count,
                labels: labels, post: try Self.postTransform(node, label))
        case "LinearRegressor":
            try need(1)
            let targets = Int(int("targets", 1))
            let coefficients = node.attribute("coefficients")?.floats ?? []
            guard targets >= 1, !coefficients.isEmpty, coefficients.count % targets == 0 else { throw .invalidModel("node \(label): coefficients do not fit \(targets) targets") }
            let intercepts = node.attribute("intercepts")?.floats ?? []
            op = .linearRegressor(
                coefficients: coefficients, intercepts: intercepts.isEmpty ? Array(repeating: 0, count: targets) : intercepts, targets: targets,
                post: try Self.postTransform(node, label))
        case "Normalizer":
            try need(1)
            guard let norm = Norm(rawValue: node.attribute("norm")?.text ?? "MAX") else { throw unsupported("Normalizer norm '\(node.attribute("norm")?.text ?? "")'") }
            op = .normalizer(norm)
        case "Scaler":
            try need(1)
            op = .scaler(offset: node.attribute("offset")?.floats ?? [0], scale: node.attribute("scale")?.floats ?? [1])
        default:
            throw unsupported("operator \(node.opType) is not supported")
        }
        self.init(op: op, inputs: stepInputs, outputs: node.outputs, label: label)
    }

    init(op: Operator, inputs: [String], outputs: [String], label: String) {
        self.op = op
        self.inputs = inputs
        self.outputs = outputs
        self.label = label
    }

    private static func postTransform(_ node: ONNXNodeProto, _ label: String) throws(ONNXModelError) -> PostTransform {
        let text = node.attribute("post_transform")?.text ?? "NONE"
        guard let post = PostTransform(rawValue: text) else {
            throw .unsupported("node \(label): post_transform \(text) is not supported (NONE, LOGISTIC, SOFTMAX are)")
        }
        return post
    }

    // MARK: Running

    func run(_ values: inout [String: NDArray]) throws(ONNXModelError) {
        func input(_ index: Int) throws(ONNXModelError) -> NDArray {
            guard index < inputs.count, let value = values[inputs[index]] else { throw .invalidInput("node \(label): input \(index) is missing") }
            return value
        }
        func optional(_ index: Int) -> NDArray? {
            guard index < inputs.count, !inputs[index].isEmpty else { return nil }
            return values[inputs[index]]
        }
        func fail(_ why: String) -> ONNXModelError { .invalidInput("node \(label): \(why)") }
        let result: NDArray
        switch op {
        case .gemm(let alpha, let beta, let transA, let transB):
            var a = try input(0)
            var b = try input(1)
            guard a.shape.count == 2, b.shape.count == 2 else { throw fail("Gemm takes 2-D inputs, got \(a.shape) and \(b.shape)") }
            if transA { a = Kernels.transpose(a, perm: [1, 0]) }
            if transB { b = Kernels.transpose(b, perm: [1, 0]) }
            guard a.shape[1] == b.shape[0] else { throw fail("Gemm cannot multiply \(a.shape) by \(b.shape)") }
            var product = Kernels.matmul(a.floats, b.floats, m: a.shape[0], k: a.shape[1], n: b.shape[1])
            if alpha != 1 { for index in product.indices { product[index] *= alpha } }
            var y = NDArray(shape: [a.shape[0], b.shape[1]], floats: product)
            if let c = optional(2) {
                let scaled = beta == 1 ? c : NDArray(shape: c.shape, floats: c.floats.map { $0 * beta })
                y = try Kernels.binary(.add, y, scaled, fail)
            }
            result = y
        case .matMul:
            result = try Kernels.matmul(try input(0), try input(1), fail)
        case .binary(let operation):
            result = try Kernels.binary(operation, try input(0), try input(1), fail)
        case .unary(let operation):
            result = Kernels.unary(operation, try input(0))
        case .softmax(let axis, let legacy, let log):
            result = try Kernels.softmax(try input(0), axis: axis, legacy: legacy, log: log, fail)
        case .flatten(let axis):
            let x = try input(0)
            let split = axis < 0 ? axis + x.shape.count : axis
            guard (0...x.shape.count).contains(split) else { throw fail("Flatten axis \(axis) is outside rank \(x.shape.count)") }
            var y = x
            y.shape = [x.shape[..<split].reduce(1, *), x.shape[split...].reduce(1, *)]
            result = y
        case .reshape(let allowZero):
            let x = try input(0)
            let requested = try input(1).int64s.map { Int($0) }
            var shape: [Int] = []
            var inferred: Int?
            for (index, dim) in requested.enumerated() {
                if dim == 0 && !allowZero {
                    guard index < x.shape.count else { throw fail("Reshape copies dimension \(index) of \(x.shape), which has none") }
                    shape.append(x.shape[index])
                } else if dim == -1 {
                    guard inferred == nil else { throw fail("Reshape has more than one -1 in \(requested)") }
                    inferred = index
                    shape.append(1)
                } else {
                    guard dim >= 0 else { throw fail("Reshape to \(requested)") }
                    shape.append(dim)
                }
            }
            if let inferred {
                let known = shape.reduce(1, *)
                guard known > 0, x.count % known == 0 else { throw fail("Reshape cannot make \(x.shape) into \(requested)") }
                shape[inferred] = x.count / known
            }
            guard shape.reduce(1, *) == x.count else { throw fail("Reshape cannot make \(x.shape) into \(requested)") }
            var y = x
            y.shape = shape
            result = y
        case .squeeze(let attributeAxes):
            let x = try input(0)
            let axes = try attributeAxes ?? optional(1).map { $0.int64s.map { Int($0) } }
            var y = x
            if let axes {
                let normalized = Set(axes.map { $0 < 0 ? $0 + x.shape.count : $0 })
                for axis in normalized where !(0..<x.shape.count).contains(axis) || x.shape[axis] != 1 {
                    throw fail("Squeeze axis \(axis) of \(x.shape) is not of size 1")
                }
                y.shape = x.shape.enumerated().filter { !normalized.contains($0.offset) }.map(\.element)
            } else {
                y.shape = x.shape.filter { $0 != 1 }
            }
            result = y
        case .unsqueeze(let attributeAxes):
            let x = try input(0)
            guard let axes = attributeAxes ?? optional(1).map({ $0.int64s.map { Int($0) } }) else { throw fail("Unsqueeze has no axes") }
            let rank = x.shape.count + axes.count
            let normalized = Set(axes.map { $0 < 0 ? $0 + rank : $0 })
            guard normalized.count == axes.count, normalized.allSatisfy({ (0..<rank).contains($0) }) else { throw fail("Unsqueeze axes \(axes) for rank \(x.shape.count)") }
            var shape: [Int] = []
            var next = x.shape.makeIterator()
            for axis in 0..<rank { shape.append(normalized.contains(axis) ? 1 : next.next()!) }
            var y = x
            y.shape = shape
            result = y
        case .transpose(let perm):
            let x = try input(0)
            let order = perm ?? Array((0..<x.shape.count).reversed())
            guard order.sorted() == Array(0..<x.shape.count) else { throw fail("Transpose perm \(order) for rank \(x.shape.count)") }
            result = Kernels.transpose(x, perm: order)
        case .concat(let axis):
            let parts = try inputs.indices.filter { !inputs[$0].isEmpty }.map { index throws(ONNXModelError) in try input(index) }
            result = try Kernels.concat(parts, axis: axis, fail)
        case .gather(let axis):
            result = try Kernels.gather(try input(0), indices: try input(1), axis: axis, fail)
        case .cast(let toFloat, let toBool):
            let x = try input(0)
            if toFloat { result = NDArray(shape: x.shape, floats: x.floats) } else if toBool {
                result = NDArray(shape: x.shape, int64s: x.floats.map { $0 != 0 ? 1 : 0 })
            } else {
                result = NDArray(shape: x.shape, int64s: x.int64s)
            }
        case .argMax(let axis, let keepDims, let selectLast):
            result = try Kernels.argMax(try input(0), axis: axis, keepDims: keepDims, selectLast: selectLast, fail)
        case .clip(let attributeMin, let attributeMax):
            let x = try input(0)
            let low = optional(1)?.floats.first ?? attributeMin
            let high = optional(2)?.floats.first ?? attributeMax
            switch x.storage {
            case .float(let values): result = NDArray(shape: x.shape, floats: values.map { Swift.min(Swift.max($0, low), high) })
            case .int64(let values): result = NDArray(shape: x.shape, int64s: values.map { Int64(Swift.min(Swift.max(Float($0), low), high)) })
            }
        case .linearClassifier(let coefficients, let intercepts, let classes, let labels, let post):
            let x = try input(0)
            let (rows, features) = try Kernels.rowsAndFeatures(x, coefficients.count / classes, fail)
            var scores = Kernels.linear(x.floats, rows: rows, features: features, coefficients: coefficients, intercepts: intercepts, outputs: classes)
            Kernels.apply(post, to: &scores, rows: rows, columns: classes)
            var predicted = [Int64](repeating: 0, count: rows)
            for row in 0..<rows {
                var best = 0
                for column in 1..<classes where scores[row * classes + column] > scores[row * classes + best] { best = column }
                predicted[row] = labels[best]
            }
            values[outputs[0]] = NDArray(shape: [rows], int64s: predicted)
            if outputs.count > 1 { values[outputs[1]] = NDArray(shape: [rows, classes], floats: scores) }
            return
        case .linearRegressor(let coefficients, let intercepts, let targets, let post):
            let x = try input(0)
            let (rows, features) = try Kernels.rowsAndFeatures(x, coefficients.count / targets, fail)
            var y = Kernels.linear(x.floats, rows: rows, features: features, coefficients: coefficients, intercepts: intercepts, outputs: targets)
            Kernels.apply(post, to: &y, rows: rows, columns: targets)
            result = NDArray(shape: [rows, targets], floats: y)
        case .normalizer(let norm):
            let x = try input(0)
            let columns = x.shape.last ?? 1
            var y = x.floats
            for row in 0..<(columns == 0 ? 0 : y.count / columns) {
                let slice = y[row * columns..<(row + 1) * columns]
                let divisor: Float
                switch norm {
                case .max: divisor = slice.max() ?? 1
                case .l1: divisor = slice.reduce(0) { $0 + abs($1) }
                case .l2: divisor = slice.reduce(0) { $0 + $1 * $1 }.squareRoot()
                }
                if divisor != 0 { for index in row * columns..<(row + 1) * columns { y[index] /= divisor } }
            }
            result = NDArray(shape: x.shape, floats: y)
        case .scaler(let offset, let scale):
            let x = try input(0)
            let columns = x.shape.last ?? 1
            guard offset.count == 1 || offset.count == columns, scale.count == 1 || scale.count == columns else {
                throw fail("Scaler has \(offset.count) offsets and \(scale.count) scales for \(columns) columns")
            }
            var y = x.floats
            for index in y.indices {
                let column = index % Swift.max(columns, 1)
                y[index] = (y[index] - offset[offset.count == 1 ? 0 : column]) * scale[scale.count == 1 ? 0 : column]
            }
            result = NDArray(shape: x.shape, floats: y)
        }
        values[outputs[0]] = result
    }
}
