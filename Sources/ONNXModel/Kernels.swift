#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The numeric kernels of the operators.
enum Kernels {
    /// C (m×n) = A (m×k) · B (k×n), row-major. Register-blocked: four rows of C by eight
    /// columns are accumulated in SIMD registers over the whole of k (each B row slice loaded
    /// once for four rows of A), then stored once; leftover rows and columns take the same path
    /// one row or one column at a time.
    static func matmul(_ a: [Float], _ b: [Float], m: Int, k: Int, n: Int) -> [Float] {
        var c = [Float](repeating: 0, count: m * n)
        guard m > 0, n > 0, k > 0 else { return c }
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                c.withUnsafeMutableBufferPointer { c in
                    let aBase = a.baseAddress!, bBase = b.baseAddress!, cBase = c.baseAddress!
                    let vectorEnd = n - n % 8
                    var i = 0
                    while i + 4 <= m {
                        let a0 = aBase + i * k, a1 = a0 + k, a2 = a1 + k, a3 = a2 + k
                        var j = 0
                        while j < vectorEnd {
                            var c0 = SIMD8<Float>(), c1 = SIMD8<Float>(), c2 = SIMD8<Float>(), c3 = SIMD8<Float>()
                            var bRow = bBase + j
                            for p in 0..<k {
                                let bv = UnsafeRawPointer(bRow).loadUnaligned(as: SIMD8<Float>.self)
                                c0 += SIMD8(repeating: a0[p]) * bv
                                c1 += SIMD8(repeating: a1[p]) * bv
                                c2 += SIMD8(repeating: a2[p]) * bv
                                c3 += SIMD8(repeating: a3[p]) * bv
                                bRow += n
                            }
                            UnsafeMutableRawPointer(cBase + i * n + j).storeBytes(of: c0, as: SIMD8<Float>.self)
                            UnsafeMutableRawPointer(cBase + (i + 1) * n + j).storeBytes(of: c1, as: SIMD8<Float>.self)
                            UnsafeMutableRawPointer(cBase + (i + 2) * n + j).storeBytes(of: c2, as: SIMD8<Float>.self)
                            UnsafeMutableRawPointer(cBase + (i + 3) * n + j).storeBytes(of: c3, as: SIMD8<Float>.self)
                            j += 8
                        }
                        i += 4
                    }
                    // Rows left over: one at a time, eight columns at a time.
                    while i < m {
                        let aRow = aBase + i * k
                        var j = 0
                        while j < vectorEnd {
                            var acc = SIMD8<Float>()
                            var bRow = bBase + j
                            for p in 0..<k {
                                acc += SIMD8(repeating: aRow[p]) * UnsafeRawPointer(bRow).loadUnaligned(as: SIMD8<Float>.self)
                                bRow += n
                            }
                            UnsafeMutableRawPointer(cBase + i * n + j).storeBytes(of: acc, as: SIMD8<Float>.self)
                            j += 8
                        }
                        i += 1
                    }
                    // Columns left over (n not a multiple of 8), for every row.
                    if vectorEnd < n {
                        for row in 0..<m {
                            let aRow = aBase + row * k
                            for column in vectorEnd..<n {
                                var sum: Float = 0
                                for p in 0..<k { sum += aRow[p] * bBase[p * n + column] }
                                cBase[row * n + column] = sum
                            }
                        }
                    }
                }
            }
        }
        return c
    }

    /// numpy.matmul for the shapes models use: 2-D × 2-D, N-D × 2-D (leading dimensions as rows),
    /// 1-D on either side, and N-D × N-D with equal batch dimensions.
    static func matmul(_ a: NDArray, _ b: NDArray, _ fail: (String) -> ONNXModelError) throws(ONNXModelError) -> NDArray {
        var aShape = a.shape, bShape = b.shape
        let aVector = aShape.count == 1, bVector = bShape.count == 1
        if aVector { aShape = [1, aShape[0]] }
        if bVector { bShape = [bShape[0], 1] }
        guard aShape.count >= 2, bShape.count >= 2, aShape[aShape.count - 1] == bShape[bShape.count - 2] else {
            throw fail("MatMul cannot multiply \(a.shape) by \(b.shape)")
        }
        let k = aShape[aShape.count - 1], n = bShape[bShape.count - 1]
        var shape: [Int]
        var c: [Float]
        if bShape.count == 2 {
            let rows = aShape.dropLast().reduce(1, *)
            c = matmul(a.floats, b.floats, m: rows, k: k, n: n)
            shape = Array(aShape.dropLast()) + [n]
        } else {
            guard aShape.dropLast(2) == bShape.dropLast(2) else { throw fail("MatMul batch dimensions differ: \(a.shape) and \(b.shape)") }
            let m = aShape[aShape.count - 2]
            let batches = aShape.dropLast(2).reduce(1, *)
            let af = a.floats, bf = b.floats
            c = []
            c.reserveCapacity(batches * m * n)
            for batch in 0..<batches {
                c += matmul(Array(af[batch * m * k..<(batch + 1) * m * k]), Array(bf[batch * k * n..<(batch + 1) * k * n]), m: m, k: k, n: n)
            }
            shape = Array(aShape.dropLast(2)) + [m, n]
        }
        if aVector { shape.remove(at: shape.count - 2) }
        if bVector { shape.removeLast() }
        return NDArray(shape: shape, floats: c)
    }

    /// The shape both operands broadcast to (numpy rules), or nil.
    static func broadcastShape(_ a: [Int], _ b: [Int]) -> [Int]? {
        let rank = max(a.count, b.count)
        var shape = [Int](repeating: 1, count: rank)
        for axis in 0..<rank {
            let x = axis - (rank - a.count) >= 0 ? a[axis - (rank - a.count)] : 1
            let y = axis - (rank - b.count) >= 0 ? b[axis - (rank - b.count)] : 1
            guard x == y || x == 1 || y == 1 else { return nil }
            shape[axis] = x == 1 ? y : x
        }
        return shape
    }

    /// Element-wise Add, Sub, Mul, Div with broadcasting. Integers stay integers when both are.
    static func binary(_ op: Step.BinaryOp, _ a: NDArray, _ b: NDArray, _ fail: (String) -> ONNXModelError) throws(ONNXModelError) -> NDArray {
        guard let shape = broadcastShape(a.shape, b.shape) else { throw fail("cannot broadcast \(a.shape) with \(b.shape)") }
        if case .int64(let x) = a.storage, case .int64(let y) = b.storage {
            let values = broadcast(x, a.shape, y, b.shape, to: shape) { l, r -> Int64 in
                switch op {
                case .add: return l &+ r
                case .sub: return l &- r
                case .mul: return l &* r
                case .div: return r == 0 ? 0 : l / r
                }
            }
            return NDArray(shape: shape, int64s: values)
        }
        let values: [Float]
        switch op {
        case .add: values = broadcast(a.floats, a.shape, b.floats, b.shape, to: shape, +)
        case .sub: values = broadcast(a.floats, a.shape, b.floats, b.shape, to: shape, -)
        case .mul: values = broadcast(a.floats, a.shape, b.floats, b.shape, to: shape, *)
        case .div: values = broadcast(a.floats, a.shape, b.floats, b.shape, to: shape, /)
        }
        return NDArray(shape: shape, floats: values)
    }

    @inline(__always)
    static func broadcast<T>(_ x: [T], _ xShape: [Int], _ y: [T], _ yShape: [Int], to shape: [Int], _ f: (T, T) -> T) -> [T] {
        let count = shape.reduce(1, *)
        if xShape == yShape { return zip(x, y).map(f) }
        if y.count == 1 { return x.map { f($0, y[0]) } }
        if x.count == 1 { return y.map { f(x[0], $0) } }
        // A row vector over the last dimension (a bias): y repeats every y.count elements.
        if xShape == shape, yShape.drop(while: { $0 == 1 }) == shape.suffix(yShape.drop(while: { $0 == 1 }).count) {
            var out = x
            let period = y.count
            for index in out.indices { out[index] = f(x[index], y[index % period]) }
            return out
        }
        let rank = shape.count
        let xs = paddedStrides(xShape, rank), ys = paddedStrides(yShape, rank)
        let strides = NDArray.strides(shape)
        var out: [T] = []
        out.reserveCapacity(count)
        for flat in 0..<count {
            var rest = flat, xi = 0, yi = 0
            for axis in 0..<rank {
                let coordinate = rest / strides[axis]
                rest %= strides[axis]
                xi += coordinate * xs[axis]
                yi += coordinate * ys[axis]
            }
            out.append(f(x[xi], y[yi]))
        }
        return out
    }

    /// Strides of `shape` right-aligned to `rank`, 0 on broadcast dimensions.
    static func paddedStrides(_ shape: [Int], _ rank: Int) -> [Int] {
        let own = NDArray.strides(shape)
        return (0..<rank).map { axis in
            let index = axis - (rank - shape.count)
            guard index >= 0, shape[index] != 1 else { return 0 }
            return own[index]
        }
    }

    static func unary(_ op: Step.UnaryOp, _ x: NDArray) -> NDArray {
        switch op {
        case .identity: return x
        case .relu:
            if case .int64(let values) = x.storage { return NDArray(shape: x.shape, int64s: values.map { max($0, 0) }) }
            return NDArray(shape: x.shape, floats: x.floats.map { max($0, 0) })
        case .leakyRelu(let alpha): return NDArray(shape: x.shape, floats: x.floats.map { $0 < 0 ? alpha * $0 : $0 })
        case .sigmoid: return NDArray(shape: x.shape, floats: x.floats.map(sigmoid))
        case .tanh: return NDArray(shape: x.shape, floats: x.floats.map { Float(Foundation_tanh(Double($0))) })
        }
    }

    static func sigmoid(_ x: Float) -> Float {
        // Stable for large |x|.
        x >= 0 ? 1 / (1 + Float(exp(Double(-x)))) : Float(exp(Double(x))) / (1 + Float(exp(Double(x))))
    }

    /// Softmax or LogSoftmax along `axis` (opset 13+), or over everything from `axis` on (before
    /// opset 13: the input taken as 2-D).
    static func softmax(_ x: NDArray, axis: Int, legacy: Bool, log: Bool, _ fail: (String) -> ONNXModelError) throws(ONNXModelError) -> NDArray {
        let rank = x.shape.count
        let a = axis < 0 ? axis + rank : axis
        guard (0..<max(rank, 1)).contains(a) else { throw fail("softmax axis \(axis) outside rank \(rank)") }
        var values = x.floats
        let outer = x.shape[..<a].reduce(1, *)
        let (length, inner) = legacy ? (x.shape[a...].reduce(1, *), 1) : (x.shape[a], x.shape[(a + 1)...].reduce(1, *))
        for o in 0..<outer {
            for i in 0..<inner {
                let base = o * length * inner + i
                var maximum = -Float.infinity
                for j in 0..<length { maximum = max(maximum, values[base + j * inner]) }
                var sum: Double = 0
                for j in 0..<length { sum += exp(Double(values[base + j * inner] - maximum)) }
                for j in 0..<length {
                    let shifted = Double(values[base + j * inner] - maximum)
                    values[base + j * inner] = log ? Float(shifted - Foundation_log(sum)) : Float(exp(shifted) / sum)
                }
            }
        }
        return NDArray(shape: x.shape, floats: values)
    }

    static func transpose(_ x: NDArray, perm: [Int]) -> NDArray {
        if perm == [1, 0], case .float(let values) = x.storage {
            let rows = x.shape[0], columns = x.shape[1]
            var out = [Float](repeating: 0, count: values.count)
            for row in 0..<rows {
                for column in 0..<columns { out[column * rows + row] = values[row * columns + column] }
            }
            return NDArray(shape: [columns, rows], floats: out)
        }
        let shape = perm.map { x.shape[$0] }
        let strides = NDArray.strides(x.shape)
        let outStrides = NDArray.strides(shape)
        let count = x.count
        func permute<T>(_ values: [T]) -> [T] {
            if count == 0 { return [] }
            var out = values
            for flat in 0..<count {
                var rest = flat, source = 0
                for axis in 0..<shape.count {
                    let coordinate = rest / outStrides[axis]
                    rest %= outStrides[axis]
                    source += coordinate * strides[perm[axis]]
                }
                out[flat] = values[source]
            }
            return out
        }
        switch x.storage {
        case .float(let values): return NDArray(shape: shape, floats: permute(values))
        case .int64(let values): return NDArray(shape: shape, int64s: permute(values))
        }
    }

    static func concat(_ parts: [NDArray], axis: Int, _ fail: (String) -> ONNXModelError) throws(ONNXModelError) -> NDArray {
        guard let first = parts.first else { throw fail("Concat of nothing") }
        let rank = first.shape.count
        let a = axis < 0 ? axis + rank : axis
        guard (0..<rank).contains(a) else { throw fail("Concat axis \(axis) outside rank \(rank)") }
        for part in parts where part.shape.count != rank || zip(part.shape, first.shape).enumerated().contains(where: { $0.offset != a && $0.element.0 != $0.element.1 }) {
            throw fail("Concat of \(parts.map(\.shape)) along axis \(axis)")
        }
        var shape = first.shape
        shape[a] = parts.reduce(0) { $0 + $1.shape[a] }
        let outer = first.shape[..<a].reduce(1, *)
        let allInt = parts.allSatisfy { $0.elementType == .int64 }
        if allInt {
            var out: [Int64] = []
            for o in 0..<outer {
                for part in parts {
                    let chunk = part.shape[a...].reduce(1, *)
                    out += part.int64s[o * chunk..<(o + 1) * chunk]
                }
            }
            return NDArray(shape: shape, int64s: out)
        }
        var out: [Float] = []
        out.reserveCapacity(shape.reduce(1, *))
        let floats = parts.map(\.floats)
        for o in 0..<outer {
            for (index, part) in parts.enumerated() {
                let chunk = part.shape[a...].reduce(1, *)
                out += floats[index][o * chunk..<(o + 1) * chunk]
            }
        }
        return NDArray(shape: shape, floats: out)
    }

    static func gather(_ data: NDArray, indices: NDArray, axis: Int, _ fail: (String) -> ONNXModelError) throws(ONNXModelError) -> NDArray {
        let rank = data.shape.count
        let a = axis < 0 ? axis + rank : axis
        guard (0..<rank).contains(a) else { throw fail("Gather axis \(axis) outside rank \(rank)") }
        let size = data.shape[a]
        let picks = try indices.int64s.map { index throws(ONNXModelError) -> Int in
            let resolved = index < 0 ? Int(index) + size : Int(index)
            guard (0..<size).contains(resolved) else { throw fail("Gather index \(index) is outside 0..<\(size)") }
            return resolved
        }
        let outer = data.shape[..<a].reduce(1, *)
        let inner = data.shape[(a + 1)...].reduce(1, *)
        let shape = Array(data.shape[..<a]) + indices.shape + Array(data.shape[(a + 1)...])
        func pick<T>(_ values: [T]) -> [T] {
            var out: [T] = []
            out.reserveCapacity(outer * picks.count * inner)
            for o in 0..<outer {
                for index in picks { out += values[(o * size + index) * inner..<(o * size + index + 1) * inner] }
            }
            return out
        }
        switch data.storage {
        case .float(let values): return NDArray(shape: shape, floats: pick(values))
        case .int64(let values): return NDArray(shape: shape, int64s: pick(values))
        }
    }

    static func argMax(_ x: NDArray, axis: Int, keepDims: Bool, selectLast: Bool, _ fail: (String) -> ONNXModelError) throws(ONNXModelError) -> NDArray {
        let rank = x.shape.count
        let a = axis < 0 ? axis + rank : axis
        guard (0..<rank).contains(a) else { throw fail("ArgMax axis \(axis) outside rank \(rank)") }
        let values = x.floats
        let outer = x.shape[..<a].reduce(1, *), length = x.shape[a], inner = x.shape[(a + 1)...].reduce(1, *)
        var out = [Int64](repeating: 0, count: outer * inner)
        for o in 0..<outer {
            for i in 0..<inner {
                var best = 0
                for j in 1..<max(length, 1) {
                    let value = values[(o * length + j) * inner + i], current = values[(o * length + best) * inner + i]
                    if value > current || (selectLast && value == current) { best = j }
                }
                out[o * inner + i] = Int64(best)
            }
        }
        var shape = x.shape
        if keepDims { shape[a] = 1 } else { shape.remove(at: a) }
        return NDArray(shape: shape, int64s: out)
    }

    /// Rows and features of a classic-ML operator's input: [N, F] (or [F] as one row).
    static func rowsAndFeatures(_ x: NDArray, _ features: Int, _ fail: (String) -> ONNXModelError) throws(ONNXModelError) -> (Int, Int) {
        let rows = x.shape.count == 1 ? 1 : x.shape[0]
        guard x.count == rows * features else { throw fail("input of shape \(x.shape) does not have \(features) features per row") }
        return (rows, features)
    }

    /// outputs = X · coefficientsᵀ + intercepts, coefficients being outputs × features.
    static func linear(_ x: [Float], rows: Int, features: Int, coefficients: [Float], intercepts: [Float], outputs: Int) -> [Float] {
        var y = [Float](repeating: 0, count: rows * outputs)
        for row in 0..<rows {
            for output in 0..<outputs {
                var sum = intercepts[output]
                for feature in 0..<features { sum += x[row * features + feature] * coefficients[output * features + feature] }
                y[row * outputs + output] = sum
            }
        }
        return y
    }

    static func apply(_ post: Step.PostTransform, to scores: inout [Float], rows: Int, columns: Int) {
        switch post {
        case .none: return
        case .logistic: for index in scores.indices { scores[index] = sigmoid(scores[index]) }
        case .softmax:
            for row in 0..<rows {
                let range = row * columns..<(row + 1) * columns
                let maximum = scores[range].max() ?? 0
                var sum: Float = 0
                for index in range {
                    scores[index] = Float(exp(Double(scores[index] - maximum)))
                    sum += scores[index]
                }
                for index in range { scores[index] /= sum }
            }
        }
    }
}

@inline(__always) private func Foundation_tanh(_ x: Double) -> Double { tanh(x) }
@inline(__always) private func Foundation_log(_ x: Double) -> Double { log(x) }
