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
/// once, when the lane is made.
struct SimpleFastPath {
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
    private let responseHead: ByteBuffer
    /// Each output's `InferOutputTensor` up to its shape: name, datatype and the shape's tag.
    private let output0Head: ByteBuffer
    private let output1Head: ByteBuffer

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
        head.writeString(field: 1, model.name)
        if !model.version.isEmpty { head.writeString(field: 2, model.version) }
        responseHead = head.buffer
        func outputHead(_ name: String) -> ByteBuffer {
            var writer = ProtoWriter(capacity: 32)
            writer.writeString(field: 1, name)
            writer.writeString(field: 2, TensorDatatype.int32.rawValue)
            writer.writeTag(3, .lengthDelimited)
            return writer.buffer
        }
        output0Head = outputHead(output0Name)
        output1Head = outputHead(output1Name)
    }

    /// Appends the final INFER_RESPONSE frame for `bytes`, a `ModelInferRequest`, to `buffer`
    /// and returns the request's batch size; or returns nil, having written nothing, when the
    /// request is not one this path takes. With `fullBatchOnly`, only a request of
    /// `max_batch_size` rows is taken (the batcher would make a smaller one wait).
    ///
    /// `arrivedAt` is when the request arrived, for its timing.
    func answer(
        _ bytes: ByteBuffer, requestID: UInt64, arrivedAt: NIODeadline, fullBatchOnly: Bool, into buffer: inout ByteBuffer
    ) -> Int? {
        guard let request = CompactInferRequest(decoding: bytes),
            request.inputCount == 2, request.rawCount == 2
        else { return nil }

        // Which of the request's inputs (and raw contents, which follow their order) is which.
        let first = request.input0
        let second = request.input1
        let firstIsInput0: Bool
        if first.name == input0Name && second.name == input1Name {
            firstIsInput0 = true
        } else if first.name == input1Name && second.name == input0Name {
            firstIsInput0 = false
        } else {
            return nil
        }
        guard let rows = rowCount(first), let secondRows = rowCount(second), rows == secondRows else { return nil }
        guard !fullBatchOnly || rows == maxBatchSize else { return nil }
        let count = rows * elementsPerRow
        let dataLength = count * 4
        guard request.raw0.readableBytes == dataLength, request.raw1.readableBytes == dataLength else { return nil }
        let left = firstIsInput0 ? request.raw0 : request.raw1
        let right = firstIsInput0 ? request.raw1 : request.raw0

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

        // Every size is known before a byte is written, so each length is written once.
        var shapeLength = varintSize(UInt64(rows))
        for dimension in innerDims { shapeLength += varintSize(UInt64(dimension)) }
        func tensorLength(_ isDifference: Bool) -> Int {
            let head = (isDifference ? output1Head : output0Head).readableBytes
            return head + varintSize(UInt64(shapeLength)) + shapeLength
        }
        let idLength = request.id.utf8.count
        var responseLength = responseHead.readableBytes + (idLength == 0 ? 0 : 1 + varintSize(UInt64(idLength)) + idLength)
        for index in 0..<outputCount {
            let tensor = tensorLength(index == 0 ? outputs.0 : outputs.1)
            responseLength += 1 + varintSize(UInt64(tensor)) + tensor + 1 + varintSize(UInt64(dataLength)) + dataLength
        }

        let start = buffer.writerIndex
        var writer = ProtoWriter(buffer: buffer)
        buffer = ByteBuffer()  // the writer holds the only reference while it appends
        // Header, `InferResponse.response` and room for `final` and the timing.
        writer.buffer.reserveCapacity(minimumWritableBytes: WorkerFrame.headerSize + 4 + responseLength + 40)
        WorkerFrame.writeHeader(kind: .inferResponse, requestID: requestID, payloadLength: 0, to: &writer.buffer)
        writer.writeTag(1, .lengthDelimited)
        writer.writeVarint(UInt64(responseLength))
        writer.buffer.writeImmutableBuffer(responseHead)
        if idLength > 0 { writer.writeString(field: 3, request.id) }
        for index in 0..<outputCount {
            let isDifference = index == 0 ? outputs.0 : outputs.1
            writer.writeTag(5, .lengthDelimited)
            writer.writeVarint(UInt64(tensorLength(isDifference)))
            writer.buffer.writeImmutableBuffer(isDifference ? output1Head : output0Head)
            writer.writeVarint(UInt64(shapeLength))
            writer.writeVarint(UInt64(rows))
            for dimension in innerDims { writer.writeVarint(UInt64(dimension)) }
        }
        let computeStart = NIODeadline.now()
        for index in 0..<outputCount {
            writer.writeTag(6, .lengthDelimited)
            writer.writeVarint(UInt64(dataLength))
            Self.write(left, right, count: count, difference: index == 0 ? outputs.0 : outputs.1, to: &writer.buffer)
        }
        let computeEnd = NIODeadline.now()
        writer.write(ProtoBool.self, field: 3, true)
        // Computing is writing the response here: it all counts as inference, and the request
        // neither waited in a queue nor had an output to encode afterwards.
        var timing = WorkerProtocol.Timing()
        timing.computeInputNs = UInt64(max(0, (computeStart - arrivedAt).nanoseconds))
        timing.computeInferNs = UInt64(max(0, (computeEnd - computeStart).nanoseconds))
        timing.countsExecution = true
        writer.writeMessage(field: 4, timing)
        let length = writer.buffer.writerIndex - start - 4
        writer.buffer.setInteger(UInt32(length), at: start, endianness: .big)
        buffer = writer.buffer
        return rows
    }

    /// The batch size of an input of the model's datatype and shape, or nil.
    private func rowCount(_ input: CompactInferRequest.Input) -> Int? {
        guard input.datatype == TensorDatatype.int32.rawValue, input.shape.count == innerDims.count + 1 else { return nil }
        for (actual, wanted) in zip(input.shape.dropFirst(), innerDims) where actual != wanted { return nil }
        let rows = input.shape[0]
        guard rows >= 1, rows <= Int64(maxBatchSize) else { return nil }
        return Int(rows)
    }

    /// Appends `left + right` (or `left - right`), element-wise over `count` little-endian
    /// INT32 values with wrap-around, as raw contents.
    private static func write(_ left: ByteBuffer, _ right: ByteBuffer, count: Int, difference: Bool, to buffer: inout ByteBuffer) {
        left.withUnsafeReadableBytes { x in
            right.withUnsafeReadableBytes { y in
                _ = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count &* 4) { out in
                    for index in 0..<count {
                        let offset = index &* 4
                        let a = Int32(littleEndian: x.loadUnaligned(fromByteOffset: offset, as: Int32.self))
                        let b = Int32(littleEndian: y.loadUnaligned(fromByteOffset: offset, as: Int32.self))
                        out.storeBytes(of: (difference ? a &- b : a &+ b).littleEndian, toByteOffset: offset, as: Int32.self)
                    }
                    return count &* 4
                }
            }
        }
    }
}
