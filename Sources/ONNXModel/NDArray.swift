/// A tensor as the ONNX runtime computes on it: a shape and row-major elements, 32-bit floats or
/// 64-bit integers (indices, shapes, class labels).
public struct NDArray: Sendable, Equatable {
    public enum Storage: Sendable, Equatable {
        case float([Float])
        case int64([Int64])
    }

    public var shape: [Int]
    public var storage: Storage

    public init(shape: [Int], floats: [Float]) {
        precondition(shape.reduce(1, *) == floats.count, "shape \(shape) does not hold \(floats.count) elements")
        self.shape = shape
        self.storage = .float(floats)
    }

    public init(shape: [Int], int64s: [Int64]) {
        precondition(shape.reduce(1, *) == int64s.count, "shape \(shape) does not hold \(int64s.count) elements")
        self.shape = shape
        self.storage = .int64(int64s)
    }

    public var count: Int { shape.reduce(1, *) }

    public var elementType: ONNXElementType {
        switch storage {
        case .float: return .float
        case .int64: return .int64
        }
    }

    /// The elements as floats (integers converted).
    public var floats: [Float] {
        switch storage {
        case .float(let values): return values
        case .int64(let values): return values.map { Float($0) }
        }
    }

    /// The elements as integers (floats truncated toward zero, as ONNX Cast does).
    public var int64s: [Int64] {
        switch storage {
        case .int64(let values): return values
        case .float(let values): return values.map { $0.isFinite ? Int64(max(min($0, 9.2e18), -9.2e18)) : 0 }
        }
    }

    /// Row-major strides of `shape`.
    static func strides(_ shape: [Int]) -> [Int] {
        var strides = [Int](repeating: 1, count: shape.count)
        var stride = 1
        for axis in shape.indices.reversed() {
            strides[axis] = stride
            stride *= shape[axis]
        }
        return strides
    }
}

extension NDArray {
    /// An initializer or constant from its TensorProto: its typed data, or its `raw_data` read as
    /// little-endian words of the element type's width.
    init(_ proto: ONNXTensorProto) throws(ONNXModelError) {
        let shape = proto.dims.map { Int($0) }
        guard shape.allSatisfy({ $0 >= 0 }) else { throw .invalidModel("tensor '\(proto.name)' has a negative dimension \(proto.dims)") }
        guard let type = ONNXElementType(rawValue: proto.dataType), type != .string else {
            throw .unsupported("tensor '\(proto.name)' has element type \(proto.dataType), which this runtime does not compute with")
        }
        let width: Int
        switch type {
        case .double, .int64: width = 8
        case .float, .int32: width = 4
        default: width = 1  // INT8, UINT8, BOOL
        }
        // raw_data as words of `width` bytes, zero-extended; nil without raw_data.
        var words: [UInt64]?
        if !proto.rawData.isEmpty {
            guard proto.rawData.count % width == 0 else {
                throw .invalidModel("tensor '\(proto.name)': raw_data is not a whole number of \(type.name)s")
            }
            words = stride(from: 0, to: proto.rawData.count, by: width).map { offset in
                var word: UInt64 = 0
                for byte in 0..<width { word |= UInt64(proto.rawData[offset + byte]) << (8 * UInt64(byte)) }
                return word
            }
        }
        let count = shape.reduce(1, *)
        func check(_ found: Int) throws(ONNXModelError) {
            guard found == count else {
                throw .invalidModel("tensor '\(proto.name)' has \(found) elements, its dims \(proto.dims) say \(count)")
            }
        }
        switch type {
        case .float, .double:
            let values: [Float] =
                switch (type, words) {
                case (.float, let words?): words.map { Float(bitPattern: UInt32(truncatingIfNeeded: $0)) }
                case (_, let words?): words.map { Float(Double(bitPattern: $0)) }
                case (.float, nil): proto.floatData
                case (_, nil): proto.doubleData.map { Float($0) }
                }
            try check(values.count)
            self.init(shape: shape, floats: values)
        default:
            let values: [Int64] =
                switch (type, words) {
                case (.int64, let words?): words.map { Int64(bitPattern: $0) }
                case (.int32, let words?): words.map { Int64(Int32(bitPattern: UInt32(truncatingIfNeeded: $0))) }
                case (.int8, let words?): words.map { Int64(Int8(bitPattern: UInt8(truncatingIfNeeded: $0))) }
                case (_, let words?): words.map { Int64($0) }
                case (.int64, nil): proto.int64Data
                case (_, nil): proto.int32Data.map { Int64($0) }
                }
            try check(values.count)
            self.init(shape: shape, int64s: values)
        }
    }
}
