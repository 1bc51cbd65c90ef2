import InferenceProtocol
import NIOCore

/// A tensor as the built-in models compute on it: a shape and its elements in row-major order.
///
/// The element types the built-in models and the native ONNX backend use are held (INT32,
/// UINT32, BYTES, FP32, INT64); a request with any other datatype is rejected while it is
/// decoded, before a tensor exists. BYTES elements stay slices of the request's buffer.
public struct Tensor: Sendable, Hashable {
    /// The elements, flattened in row-major order.
    public enum Elements: Sendable, Hashable {
        case int32([Int32])
        case uint32([UInt32])
        case bytes([ByteBuffer])
        case fp32([Float])
        case int64([Int64])
    }

    /// The full shape, batch dimension (if any) first.
    public var shape: TensorShape
    public var elements: Elements

    /// A tensor; `elements` must hold exactly as many values as `shape` describes.
    public init(shape: TensorShape, elements: Elements) {
        self.shape = shape
        self.elements = elements
    }

    /// An INT32 tensor.
    public static func int32(_ values: [Int32], shape: TensorShape) -> Tensor {
        Tensor(shape: shape, elements: .int32(values))
    }

    /// A UINT32 tensor.
    public static func uint32(_ values: [UInt32], shape: TensorShape) -> Tensor {
        Tensor(shape: shape, elements: .uint32(values))
    }

    /// An FP32 tensor.
    public static func fp32(_ values: [Float], shape: TensorShape) -> Tensor {
        Tensor(shape: shape, elements: .fp32(values))
    }

    /// An INT64 tensor.
    public static func int64(_ values: [Int64], shape: TensorShape) -> Tensor {
        Tensor(shape: shape, elements: .int64(values))
    }

    /// A BYTES tensor.
    public static func bytes(_ values: [ByteBuffer], shape: TensorShape) -> Tensor {
        Tensor(shape: shape, elements: .bytes(values))
    }

    /// The protocol datatype of the elements.
    public var datatype: TensorDatatype {
        switch elements {
        case .int32: return .int32
        case .uint32: return .uint32
        case .bytes: return .bytes
        case .fp32: return .fp32
        case .int64: return .int64
        }
    }

    /// How many elements the tensor holds.
    public var elementCount: Int {
        switch elements {
        case .int32(let values): return values.count
        case .uint32(let values): return values.count
        case .bytes(let values): return values.count
        case .fp32(let values): return values.count
        case .int64(let values): return values.count
        }
    }

    /// The INT32 elements, or nil for another datatype.
    public var int32Values: [Int32]? {
        if case .int32(let values) = elements { return values }
        return nil
    }

    /// The UINT32 elements, or nil for another datatype.
    public var uint32Values: [UInt32]? {
        if case .uint32(let values) = elements { return values }
        return nil
    }

    /// The FP32 elements, or nil for another datatype.
    public var fp32Values: [Float]? {
        if case .fp32(let values) = elements { return values }
        return nil
    }

    /// The INT64 elements, or nil for another datatype.
    public var int64Values: [Int64]? {
        if case .int64(let values) = elements { return values }
        return nil
    }

    /// The BYTES elements, or nil for another datatype.
    public var bytesValues: [ByteBuffer]? {
        if case .bytes(let values) = elements { return values }
        return nil
    }

    /// The elements as `raw_output_contents` carries them: little-endian fixed-width values, or
    /// for BYTES each element as a 4-byte little-endian length followed by its bytes.
    public func rawContents(allocator: ByteBufferAllocator = ByteBufferAllocator()) -> ByteBuffer {
        var buffer = allocator.buffer(capacity: rawContentsByteCount)
        writeRawContents(to: &buffer)
        return buffer
    }

    /// The size of `rawContents()`, in bytes.
    var rawContentsByteCount: Int {
        switch elements {
        case .int32(let values): return values.count * 4
        case .uint32(let values): return values.count * 4
        case .bytes(let values): return values.reduce(0) { $0 + 4 + $1.readableBytes }
        case .fp32(let values): return values.count * 4
        case .int64(let values): return values.count * 8
        }
    }

    /// Appends `rawContents()` to `buffer`, with no buffer of its own.
    func writeRawContents(to buffer: inout ByteBuffer) {
        switch elements {
        case .int32(let values):
            Self.writeLittleEndian(values, to: &buffer)
        case .uint32(let values):
            Self.writeLittleEndian(values, to: &buffer)
        case .bytes(let values):
            for value in values {
                buffer.writeInteger(UInt32(value.readableBytes), endianness: .little)
                buffer.writeImmutableBuffer(value)
            }
        case .fp32(let values):
            #if _endian(little)
            _ = values.withUnsafeBytes { buffer.writeBytes($0) }
            #else
            for value in values { buffer.writeInteger(value.bitPattern, endianness: .little) }
            #endif
        case .int64(let values):
            Self.writeLittleEndian(values, to: &buffer)
        }
    }

    private static func writeLittleEndian<Value: FixedWidthInteger>(_ values: [Value], to buffer: inout ByteBuffer) {
        #if _endian(little)
        // Little-endian values are their memory on this host: one copy.
        _ = values.withUnsafeBytes { buffer.writeBytes($0) }
        #else
        for value in values { buffer.writeInteger(value, endianness: .little) }
        #endif
    }
}

// MARK: Batching along dimension 0

extension Tensor {
    /// Joins tensors along dimension 0, as the dynamic batcher does with the requests of one
    /// batch. The tensors must share a datatype and every dimension but the first (the batcher
    /// only groups requests whose shapes agree); the result's first dimension is the sum of theirs.
    static func concatenate(_ parts: [Tensor]) -> Tensor {
        precondition(!parts.isEmpty, "a batch holds at least one request")
        if parts.count == 1 { return parts[0] }
        var shape = parts[0].shape
        shape[0] = parts.reduce(0) { $0 + $1.shape[0] }
        switch parts[0].elements {
        case .int32:
            return .int32(parts.flatMap { $0.int32Values! }, shape: shape)
        case .uint32:
            return .uint32(parts.flatMap { $0.uint32Values! }, shape: shape)
        case .bytes:
            return .bytes(parts.flatMap { $0.bytesValues! }, shape: shape)
        case .fp32:
            return .fp32(parts.flatMap { $0.fp32Values! }, shape: shape)
        case .int64:
            return .int64(parts.flatMap { $0.int64Values! }, shape: shape)
        }
    }

    /// Cuts the tensor along dimension 0 into consecutive pieces of `rows` rows each; the rows
    /// must add up to the first dimension.
    func split(rows: [Int]) -> [Tensor] {
        if rows.count == 1 { return [self] }
        let rowCount = Int(shape[0])
        let perRow = rowCount == 0 ? 0 : elementCount / rowCount
        var pieces: [Tensor] = []
        pieces.reserveCapacity(rows.count)
        var start = 0
        for count in rows {
            var pieceShape = shape
            pieceShape[0] = Int64(count)
            let range = (start * perRow)..<((start + count) * perRow)
            switch elements {
            case .int32(let values): pieces.append(.int32(Array(values[range]), shape: pieceShape))
            case .uint32(let values): pieces.append(.uint32(Array(values[range]), shape: pieceShape))
            case .bytes(let values): pieces.append(.bytes(Array(values[range]), shape: pieceShape))
            case .fp32(let values): pieces.append(.fp32(Array(values[range]), shape: pieceShape))
            case .int64(let values): pieces.append(.int64(Array(values[range]), shape: pieceShape))
            }
            start += count
        }
        return pieces
    }
}
