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
    /// The little-endian 32-bit word at `offset`.
    static func littleEndian32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        var word: UInt32 = 0
        for byte in 0..<4 { word |= UInt32(bytes[offset + byte]) << (8 * UInt32(byte)) }
        return word
    }

    /// The little-endian 64-bit word at `offset`.
    static func littleEndian64(_ bytes: [UInt8], _ offset: Int) -> UInt64 {
        UInt64(littleEndian32(bytes, offset)) | UInt64(littleEndian32(bytes, offset + 4)) << 32
    }

    /// An initializer or constant from its TensorProto.
    init(_ proto: ONNXTensorProto) throws(ONNXModelError) {
        let shape = proto.dims.map { Int($0) }
        guard shape.allSatisfy({ $0 >= 0 }) else { throw .invalidModel("tensor '\(proto.name)' has a negative dimension \(proto.dims)") }
        let count = shape.reduce(1, *)
        func check(_ found: Int) throws(ONNXModelError) {
            guard found == count else {
                throw .invalidModel("tensor '\(proto.name)' has \(found) elements, its dims \(proto.dims) say \(count)")
            }
        }
        switch ONNXElementType(rawValue: proto.dataType) {
        case .float:
            var values = proto.floatData
            if !proto.rawData.isEmpty {
                guard proto.rawData.count % 4 == 0 else { throw .invalidModel("tensor '\(proto.name)': raw_data is not a whole number of FLOATs") }
                values = stride(from: 0, to: proto.rawData.count, by: 4).map { Float(bitPattern: Self.littleEndian32(proto.rawData, $0)) }
            }
            try check(values.count)
            self.init(shape: shape, floats: values)
        case .double:
            var values = proto.doubleData
            if !proto.rawData.isEmpty {
                guard proto.rawData.count % 8 == 0 else { throw .invalidModel("tensor '\(proto.name)': raw_data is not a whole number of DOUBLEs") }
                values = stride(from: 0, to: proto.rawData.count, by: 8).map { Double(bitPattern: Self.littleEndian64(proto.rawData, $0)) }
            }
            try check(values.count)
            self.init(shape: shape, floats: values.map { Float($0) })
        case .int64:
            var values = proto.int64Data
            if !proto.rawData.isEmpty {
                guard proto.rawData.count % 8 == 0 else { throw .invalidModel("tensor '\(proto.name)': raw_data is not a whole number of INT64s") }
                values = stride(from: 0, to: proto.rawData.count, by: 8).map { Int64(bitPattern: Self.littleEndian64(proto.rawData, $0)) }
            }
            try check(values.count)
            self.init(shape: shape, int64s: values)
        case .int32, .int8, .uint8, .bool:
            var values = proto.int32Data.map { Int64($0) }
            if !proto.rawData.isEmpty {
                switch ONNXElementType(rawValue: proto.dataType) {
                case .int32:
                    guard proto.rawData.count % 4 == 0 else { throw .invalidModel("tensor '\(proto.name)': raw_data is not a whole number of INT32s") }
                    values = stride(from: 0, to: proto.rawData.count, by: 4).map { Int64(Int32(bitPattern: Self.littleEndian32(proto.rawData, $0))) }
                case .int8: values = proto.rawData.map { Int64(Int8(bitPattern: $0)) }
                default: values = proto.rawData.map { Int64($0) }
                }
            }
            try check(values.count)
            self.init(shape: shape, int64s: values)
        default:
            throw .unsupported("tensor '\(proto.name)' has element type \(proto.dataType), which this runtime does not compute with")
        }
    }
}
