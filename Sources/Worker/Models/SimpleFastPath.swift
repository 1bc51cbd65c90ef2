import InferenceProtocol
import NIOCore
import ProtoWire

/// The built-in `simple` model answered straight from a request's bytes: the sum and the
/// difference are computed from the raw input contents into the buffer that goes to the socket,
/// with no `PreparedRequest`, tensors, dictionaries or intermediate response.
///
/// It takes only requests that the general path would accept and run at once as a batch of
/// their own (the runtime checks the batch queue); for those the answer is the same, byte for
/// byte, up to the timing. Anything else (typed contents, parameters, a wrong shape, name or
/// datatype, more inputs than the model has) is left to the general path, which gives the
/// precise error. The model name and version, and each output's name and datatype, are encoded
/// once, when the lane is made. Immutable, so it may be used from any thread.
final class SimpleFastPath: Sendable {
    private let input0Name: String
    private let input1Name: String
    /// The configured output names: the first is the sum, the second the difference.
    private let output0Name: String
    private let output1Name: String
    /// The configured dimensions after the batch dimension (`[16]`), all fixed.
    private let innerDims: [Int64]
    private let elementsPerRow: Int
    private let maxBatchSize: Int
    /// `ModelInferResponse` fields 1 and 2: model name and version.
    private let responseHead: [UInt8]
    /// Each output's `InferOutputTensor` up to its shape: name, datatype and the shape's tag.
    private let output0Head: [UInt8]
    private let output1Head: [UInt8]

    /// The fast path of `model`, or nil when `model` is not the built-in `simple` executing
    /// inline with a configuration of the shape it was built with (a test's recording wrapper
    /// around `SimpleModel`, say, must see every batch, so it gets none).
    init?(model: ServedModel) {
        guard case .batched(let backend) = model.backend, backend is SimpleModel, model.executesInline else { return nil }
        let config = model.config
        guard config.maxBatchSize > 0, config.input.count == 2, config.output.count == 2 else { return nil }
        let dims = config.input[0].dims
        guard !dims.isEmpty, dims.allSatisfy({ $0 >= 0 }), let perRow = PreparedRequest.elementCount(dims) else { return nil }
        for input in config.input {
            guard input.dataType == .int32, input.dims == dims, !input.optional else { return nil }
        }
        guard config.input[0].name != config.input[1].name, config.output[0].name != config.output[1].name else { return nil }
        input0Name = config.input[0].name
        input1Name = config.input[1].name
        output0Name = config.output[0].name
        output1Name = config.output[1].name
        innerDims = dims
        elementsPerRow = perRow
        maxBatchSize = Int(config.maxBatchSize)

        var head = ProtoWriter(capacity: 64)
        if !model.name.isEmpty { head.writeString(field: 1, model.name) }
        if !model.version.isEmpty { head.writeString(field: 2, model.version) }
        responseHead = Array(head.buffer.readableBytesView)
        func outputHead(_ name: String) -> [UInt8] {
            var writer = ProtoWriter(capacity: 32)
            writer.writeString(field: 1, name)
            writer.writeString(field: 2, TensorDatatype.int32.rawValue)
            writer.writeTag(3, .lengthDelimited)
            return Array(writer.buffer.readableBytesView)
        }
        output0Head = outputHead(output0Name)
        output1Head = outputHead(output1Name)
    }

    /// Appends the final INFER_RESPONSE frame for `bytes`, a `ModelInferRequest`, to `buffer`
    /// and returns the request's batch size; or returns nil, having written nothing, when the
    /// request is not one this path takes. With `fullBatchOnly`, only a request of
    /// `max_batch_size` rows is taken (the batcher would make a smaller one wait).
    ///
    /// `arrivedAt` is when the request arrived: the timing counts the time until the request is
    /// decoded and checked as compute_input, and the rest as compute_infer, since computing and
    /// encoding are one pass here.
    func answer(
        _ bytes: ByteBuffer, requestID: UInt64, arrivedAt: NIODeadline, fullBatchOnly: Bool, into buffer: inout ByteBuffer
    ) -> Int? {
        guard let request = CompactInferRequest(decoding: bytes),
            request.inputCount == 2, request.rawCount == 2
        else { return nil }

        // Which of the request's inputs (and raw contents, which follow their order) is which.
        let firstIsInput0: Bool
        if request.input0.name == input0Name && request.input1.name == input1Name {
            firstIsInput0 = true
        } else if request.input0.name == input1Name && request.input1.name == input0Name {
            firstIsInput0 = false
        } else {
            return nil
        }
        guard let rows = rowCount(request.input0), let secondRows = rowCount(request.input1), rows == secondRows else { return nil }
        guard !fullBatchOnly || rows == maxBatchSize else { return nil }
        let count = rows * elementsPerRow
        let dataLength = count * 4
        guard request.raw0.readableBytes == dataLength, request.raw1.readableBytes == dataLength else { return nil }

        // Requested outputs, in request order without repeats (as `PreparedRequest` lists them);
        // none means both, in configuration order. `true` is the difference.
        var outputs: (Bool, Bool) = (false, true)
        var outputCount = 2
        if request.outputCount > 0 {
            outputCount = 0
            for index in 0..<request.outputCount {
                let name = request.output(index)
                let isDifference: Bool
                if name == output0Name {
                    isDifference = false
                } else if name == output1Name {
                    isDifference = true
                } else {
                    return nil
                }
                if outputCount == 1 && outputs.0 == isDifference { continue }
                if outputCount == 0 { outputs.0 = isDifference } else { outputs.1 = isDifference }
                outputCount += 1
            }
        }

        // Every size is known before a byte is written, so each length is written once, and
        // the whole frame is written through one pointer.
        var shapeLength = varintSize(UInt64(rows))
        for dimension in innerDims { shapeLength += varintSize(UInt64(dimension)) }
        let tensor0Length = output0Head.count + varintSize(UInt64(shapeLength)) + shapeLength
        let tensor1Length = output1Head.count + varintSize(UInt64(shapeLength)) + shapeLength
        var id = request.id
        let idLength = id.utf8.count
        var responseLength = responseHead.count + (idLength == 0 ? 0 : 1 + varintSize(UInt64(idLength)) + idLength)
        for index in 0..<outputCount {
            let tensor = (index == 0 ? outputs.0 : outputs.1) ? tensor1Length : tensor0Length
            responseLength += 1 + varintSize(UInt64(tensor)) + tensor + 1 + varintSize(UInt64(dataLength)) + dataLength
        }
        // Header, `InferResponse.response`, `final` and the timing (at most 2 + 11 + 11 + 2 bytes).
        let capacity = WorkerFrame.headerSize + 1 + varintSize(UInt64(responseLength)) + responseLength + 2 + 26
        let decoded = NIODeadline.now()
        let inputNanos = UInt64(max(0, (decoded - arrivedAt).nanoseconds))

        request.raw0.withUnsafeReadableBytes { raw0 in
            request.raw1.withUnsafeReadableBytes { raw1 in
                id.withUTF8 { idBytes in
                    _ = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity) { out in
                        var cursor = Cursor(out)
                        cursor.putInteger(UInt32(0).bigEndian)  // the length, filled in at the end
                        cursor.putByte(WorkerFrame.Kind.inferResponse.rawValue)
                        cursor.putInteger(requestID.bigEndian)
                        cursor.putByte(0x0A)  // InferResponse.response
                        cursor.putVarint(responseLength)
                        cursor.put(responseHead)
                        if idLength > 0 {
                            cursor.putByte(0x1A)
                            cursor.putVarint(idLength)
                            cursor.put(UnsafeRawBufferPointer(idBytes))
                        }
                        for index in 0..<outputCount {
                            let isDifference = index == 0 ? outputs.0 : outputs.1
                            cursor.putByte(0x2A)
                            cursor.putVarint(isDifference ? tensor1Length : tensor0Length)
                            cursor.put(isDifference ? output1Head : output0Head)
                            cursor.putVarint(shapeLength)
                            cursor.putVarint(rows)
                            for dimension in innerDims { cursor.putVarint(Int(dimension)) }
                        }
                        let left = firstIsInput0 ? raw0 : raw1
                        let right = firstIsInput0 ? raw1 : raw0
                        for index in 0..<outputCount {
                            cursor.putByte(0x32)
                            cursor.putVarint(dataLength)
                            cursor.putElementwise(left, right, count: count, difference: index == 0 ? outputs.0 : outputs.1)
                        }
                        cursor.putByte(0x18)  // final: true
                        cursor.putByte(0x01)
                        // The timing: decoding and checking as compute_input, computing and
                        // encoding (one pass) as compute_infer; it is the batch's one request, so
                        // it counts the execution.
                        let inferNanos = UInt64(max(0, (NIODeadline.now() - decoded).nanoseconds))
                        cursor.putByte(0x22)
                        cursor.putByte(
                            UInt8(2 + (inputNanos == 0 ? 0 : 1 + varintSize(inputNanos)) + (inferNanos == 0 ? 0 : 1 + varintSize(inferNanos))))
                        if inputNanos != 0 {
                            cursor.putByte(0x10)
                            cursor.putVarint(inputNanos)
                        }
                        if inferNanos != 0 {
                            cursor.putByte(0x18)
                            cursor.putVarint(inferNanos)
                        }
                        cursor.putByte(0x28)
                        cursor.putByte(0x01)
                        out.storeBytes(of: UInt32(cursor.offset - 4).bigEndian, toByteOffset: 0, as: UInt32.self)
                        return cursor.offset
                    }
                }
            }
        }
        return rows
    }

    /// The batch size of an input of the model's datatype and shape, or nil.
    private func rowCount(_ input: CompactInferRequest.Input) -> Int? {
        guard input.datatype == TensorDatatype.int32.rawValue, input.shape.count == innerDims.count + 1 else { return nil }
        for index in innerDims.indices where input.shape[index + 1] != innerDims[index] { return nil }
        let rows = input.shape[0]
        guard rows >= 1, rows <= Int64(maxBatchSize) else { return nil }
        return Int(rows)
    }

    /// Writes bytes at an offset of a buffer that the caller has sized for everything written.
    private struct Cursor {
        let out: UnsafeMutableRawBufferPointer
        var offset = 0

        init(_ out: UnsafeMutableRawBufferPointer) { self.out = out }

        /// Stores `value`'s bytes as they are in memory (callers pass `.bigEndian` values).
        mutating func putInteger<Value: FixedWidthInteger>(_ value: Value) {
            out.storeBytes(of: value, toByteOffset: offset, as: Value.self)
            offset &+= MemoryLayout<Value>.size
        }

        mutating func putByte(_ byte: UInt8) {
            out.storeBytes(of: byte, toByteOffset: offset, as: UInt8.self)
            offset &+= 1
        }

        mutating func putVarint(_ value: Int) { putVarint(UInt64(value)) }

        mutating func putVarint(_ value: UInt64) {
            var value = value
            while value >= 0x80 {
                putByte(UInt8(truncatingIfNeeded: value) | 0x80)
                value >>= 7
            }
            putByte(UInt8(truncatingIfNeeded: value))
        }

        mutating func put(_ bytes: [UInt8]) {
            bytes.withUnsafeBytes { put($0) }
        }

        mutating func put(_ bytes: UnsafeRawBufferPointer) {
            guard let source = bytes.baseAddress, let target = out.baseAddress else { return }
            (target + offset).copyMemory(from: source, byteCount: bytes.count)
            offset &+= bytes.count
        }

        /// `left + right` (or `left - right`), element-wise over `count` little-endian INT32
        /// values with wrap-around.
        mutating func putElementwise(_ left: UnsafeRawBufferPointer, _ right: UnsafeRawBufferPointer, count: Int, difference: Bool) {
            for index in 0..<count {
                let position = index &* 4
                let a = Int32(littleEndian: left.loadUnaligned(fromByteOffset: position, as: Int32.self))
                let b = Int32(littleEndian: right.loadUnaligned(fromByteOffset: position, as: Int32.self))
                out.storeBytes(of: (difference ? a &- b : a &+ b).littleEndian, toByteOffset: offset &+ position, as: Int32.self)
            }
            offset &+= count &* 4
        }
    }
}
