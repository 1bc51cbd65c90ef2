import Foundation
import InferenceProtocol
import NIOCore
import ProtoWire
import XCTest

/// The `inference` package's messages: round trips, exact bytes, zero-copy slices, the router's
/// peek, unknown-field preservation, and agreement with `protoc` on the published contract.
final class InferenceMessagesTests: XCTestCase {

    // MARK: Round trips

    func testEveryMessageRoundTripsWithEveryFieldSet() throws {
        // Health and metadata.
        try assertRoundTrip(ServerLiveRequest())
        try assertRoundTrip(Samples.serverLiveResponse)
        try assertRoundTrip(ServerReadyRequest())
        try assertRoundTrip(Samples.serverReadyResponse)
        try assertRoundTrip(Samples.modelReadyRequest)
        try assertRoundTrip(Samples.modelReadyResponse)
        try assertRoundTrip(ServerMetadataRequest())
        try assertRoundTrip(Samples.serverMetadataResponse)
        try assertRoundTrip(Samples.modelMetadataRequest)
        try assertRoundTrip(Samples.tensorMetadata("INPUT0"))
        try assertRoundTrip(Samples.modelMetadataResponse)
        // Inference.
        try assertRoundTrip(Samples.inputTensor)
        try assertRoundTrip(Samples.requestedOutput)
        try assertRoundTrip(Samples.modelInferRequest)
        try assertRoundTrip(Samples.outputTensor)
        try assertRoundTrip(Samples.modelInferResponse)
        try assertRoundTrip(Samples.modelStreamInferResponse)
        // Model configuration.
        try assertRoundTrip(Samples.modelConfigRequest)
        try assertRoundTrip(Samples.modelConfigResponse)
        // Statistics.
        try assertRoundTrip(Samples.modelStatisticsRequest)
        try assertRoundTrip(Samples.duration(1))
        try assertRoundTrip(Samples.inferStatistics)
        try assertRoundTrip(Samples.inferResponseStatistics)
        try assertRoundTrip(Samples.inferBatchStatistics)
        try assertRoundTrip(Samples.memoryUsage)
        try assertRoundTrip(Samples.modelStatistics)
        try assertRoundTrip(Samples.modelStatisticsResponse)
        // Model repository.
        for parameter in Samples.repositoryParameters.values { try assertRoundTrip(parameter) }
        try assertRoundTrip(Samples.repositoryIndexRequest)
        try assertRoundTrip(Samples.modelIndex)
        try assertRoundTrip(Samples.repositoryIndexResponse)
        try assertRoundTrip(Samples.repositoryModelLoadRequest)
        try assertRoundTrip(RepositoryModelLoadResponse())
        try assertRoundTrip(Samples.repositoryModelUnloadRequest)
        try assertRoundTrip(RepositoryModelUnloadResponse())
        // Shared memory.
        try assertRoundTrip(Samples.systemSharedMemoryStatusRequest)
        try assertRoundTrip(Samples.systemRegionStatus("region0"))
        try assertRoundTrip(Samples.systemSharedMemoryStatusResponse)
        try assertRoundTrip(Samples.systemSharedMemoryRegisterRequest)
        try assertRoundTrip(SystemSharedMemoryRegisterResponse())
        try assertRoundTrip(Samples.systemSharedMemoryUnregisterRequest)
        try assertRoundTrip(SystemSharedMemoryUnregisterResponse())
        try assertRoundTrip(Samples.cudaSharedMemoryStatusRequest)
        try assertRoundTrip(Samples.cudaRegionStatus("gpu0"))
        try assertRoundTrip(Samples.cudaSharedMemoryStatusResponse)
        try assertRoundTrip(Samples.cudaSharedMemoryRegisterRequest)
        try assertRoundTrip(CudaSharedMemoryRegisterResponse())
        try assertRoundTrip(Samples.cudaSharedMemoryUnregisterRequest)
        try assertRoundTrip(CudaSharedMemoryUnregisterResponse())
        // Trace and log settings.
        try assertRoundTrip(TraceSettingRequest.SettingValue(["TIMESTAMPS", "TENSORS"]))
        try assertRoundTrip(Samples.traceSettingRequest)
        try assertRoundTrip(TraceSettingResponse.SettingValue(["1000"]))
        try assertRoundTrip(Samples.traceSettingResponse)
        for choice in Samples.logChoices {
            try assertRoundTrip(LogSettingsRequest.SettingValue(choice))
            try assertRoundTrip(LogSettingsResponse.SettingValue(choice))
        }
        try assertRoundTrip(Samples.logSettingsRequest)
        try assertRoundTrip(Samples.logSettingsResponse)
    }

    func testMessagesAtTheirDefaultsEncodeToNothing() {
        XCTAssertEqual(ServerLiveResponse().encodedBytes(), [])
        XCTAssertEqual(ModelMetadataResponse().encodedBytes(), [])
        XCTAssertEqual(ModelInferRequest().encodedBytes(), [])
        XCTAssertEqual(ModelInferRequest.InferInputTensor().encodedBytes(), [])
        XCTAssertEqual(ModelInferResponse().encodedBytes(), [])
        XCTAssertEqual(ModelStreamInferResponse().encodedBytes(), [])
        XCTAssertEqual(ModelConfigResponse().encodedBytes(), [])
        XCTAssertEqual(ModelStatistics().encodedBytes(), [])
        XCTAssertEqual(InferStatistics().encodedBytes(), [])
        XCTAssertEqual(ModelRepositoryParameter().encodedBytes(), [])
        XCTAssertEqual(CudaSharedMemoryRegisterRequest().encodedBytes(), [])
        XCTAssertEqual(LogSettingsRequest.SettingValue().encodedBytes(), [])
        XCTAssertEqual(TraceSettingRequest().encodedBytes(), [])
    }

    func testPresenceIsKeptForEmptyEmbeddedMessagesAndDefaultOneofValues() throws {
        // An empty sub-message is present on the wire (tag, length 0) and after decoding.
        var stream = ModelStreamInferResponse()
        stream.inferResponse = ModelInferResponse()
        XCTAssertEqual(stream.encodedBytes(), [0x12, 0x00])
        XCTAssertEqual(try ModelStreamInferResponse(decodingBytes: [0x12, 0x00]).inferResponse, ModelInferResponse())

        var statistics = InferBatchStatistics()
        statistics.computeInfer = StatisticDuration()
        XCTAssertEqual(statistics.encodedBytes(), [0x1A, 0x00])

        var config = ModelConfigResponse()
        config.config = ModelConfig()
        XCTAssertEqual(config.encodedBytes(), [0x0A, 0x00])
        XCTAssertEqual(try ModelConfigResponse(decodingBytes: [0x0A, 0x00]).config, ModelConfig())

        // A oneof member holding its type's default is still written: that is its presence.
        XCTAssertEqual(ModelRepositoryParameter(.bool(false)).encodedBytes(), [0x08, 0x00])
        XCTAssertEqual(LogSettingsRequest.SettingValue(.uint32(0)).encodedBytes(), [0x10, 0x00])
        XCTAssertEqual(try ModelRepositoryParameter(decodingBytes: [0x08, 0x00]).choice, .bool(false))
    }

    func testRepeatedEmbeddedMessageFieldsMerge() throws {
        // Two occurrences of `inference_stats` (field 6) merge: success from the first, fail from
        // the second; `success.count` from the first, `success.ns` from the second.
        let bytes: [UInt8] = [
            0x32, 0x04, 0x0A, 0x02, 0x08, 0x05,  // inference_stats { success { count: 5 } }
            0x32, 0x08, 0x0A, 0x02, 0x10, 0x07, 0x12, 0x02, 0x08, 0x01,  // { success { ns: 7 } fail { count: 1 } }
        ]
        let statistics = try ModelStatistics(decodingBytes: bytes)
        XCTAssertEqual(statistics.inferenceStats?.success, StatisticDuration(count: 5, ns: 7))
        XCTAssertEqual(statistics.inferenceStats?.fail, StatisticDuration(count: 1, ns: 0))

        // Two occurrences of `config` merge: max_batch_size (4) from the first, name (1) from the second.
        let config = try ModelConfigResponse(decodingBytes: [0x0A, 0x02, 0x20, 0x08, 0x0A, 0x03, 0x0A, 0x01, 0x41])
        XCTAssertEqual(config.config?.maxBatchSize, 8)
        XCTAssertEqual(config.config?.name, "A")
    }

    func testShapeIsAcceptedPackedAndUnpacked() throws {
        let packed: [UInt8] = [0x1A, 0x03, 0x01, 0x10, 0x7F]
        let unpacked: [UInt8] = [0x18, 0x01, 0x18, 0x10, 0x18, 0x7F]
        XCTAssertEqual(try ModelInferRequest.InferInputTensor(decodingBytes: packed).shape, [1, 16, 127])
        XCTAssertEqual(try ModelInferRequest.InferInputTensor(decodingBytes: unpacked).shape, [1, 16, 127])
        XCTAssertEqual(try ModelMetadataResponse.TensorMetadata(decodingBytes: unpacked).shape, [1, 16, 127])
        // -1 (a variable dimension) is a ten-byte varint.
        var tensor = ModelInferResponse.InferOutputTensor()
        tensor.shape = [-1]
        XCTAssertEqual(tensor.encodedBytes(), [0x1A, 0x0A] + [UInt8](repeating: 0xFF, count: 9) + [0x01])
        XCTAssertEqual(try ModelInferResponse.InferOutputTensor(decodingBytes: tensor.encodedBytes()).shape, [-1])
    }

    // MARK: Exact bytes

    func testSimpleModelInferRequestEncodesToHandComputedBytes() throws {
        let raw: [UInt8] = (0..<16).flatMap { [UInt8($0), 0, 0, 0] }  // INT32 0...15, little-endian
        var input = ModelInferRequest.InferInputTensor()
        input.name = "INPUT0"
        input.datatype = "INT32"
        input.shape = [1, 16]
        var request = ModelInferRequest()
        request.modelName = "simple"
        request.inputs = [input]
        request.rawInputContents = [ByteBuffer(bytes: raw)]

        let expected: [UInt8] =
            [0x0A, 0x06] + Array("simple".utf8)  // model_name = 1
            + [0x2A, 0x13]  // inputs = 5, 19 bytes
            + [0x0A, 0x06] + Array("INPUT0".utf8)  //   name = 1
            + [0x12, 0x05] + Array("INT32".utf8)  //   datatype = 2
            + [0x1A, 0x02, 0x01, 0x10]  //   shape = 3, packed [1, 16]
            + [0x3A, 0x40] + raw  // raw_input_contents = 7, 64 bytes
        XCTAssertEqual(expected.count, 95)
        XCTAssertEqual(request.encodedBytes(), expected)
        XCTAssertEqual(try ModelInferRequest(decodingBytes: expected), request)

        // protoc, an independent encoder, produces the same bytes from the same request.
        let text = """
            model_name: "simple"
            inputs { name: "INPUT0" datatype: "INT32" shape: [1, 16] }
            raw_input_contents: "\(raw.map { String(format: "\\%03o", $0) }.joined())"
            """
        XCTAssertEqual(try ProtocRunner.encode("inference.ModelInferRequest", text: text), expected)
    }

    // MARK: Zero copy

    func testRawInputContentsShareStorageWithTheDecodedBuffer() throws {
        let buffer = Samples.modelInferRequest.encoded()
        let request = try ModelInferRequest(decoding: buffer)
        XCTAssertEqual(request.rawInputContents.map(\.readableBytes), [64, 0])
        XCTAssertTrue(Self.lies(request.rawInputContents[0], inside: buffer))
        // BYTES elements inside a tensor's contents are slices too.
        for element in try XCTUnwrap(request.inputs.first?.contents).bytesContents {
            XCTAssertTrue(Self.lies(element, inside: buffer))
        }
        let responseBuffer = Samples.modelInferResponse.encoded()
        let response = try ModelInferResponse(decoding: responseBuffer)
        for slice in response.rawOutputContents {
            XCTAssertTrue(Self.lies(slice, inside: responseBuffer))
        }
    }

    /// True when `slice`'s readable bytes lie within `buffer`'s readable bytes in memory.
    private static func lies(_ slice: ByteBuffer, inside buffer: ByteBuffer) -> Bool {
        let outer = buffer.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) ..< UInt(bitPattern: $0.baseAddress) + UInt($0.count) }
        let inner = slice.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) ..< UInt(bitPattern: $0.baseAddress) + UInt($0.count) }
        return !inner.isEmpty && outer.lowerBound <= inner.lowerBound && inner.upperBound <= outer.upperBound
    }

    // MARK: Peek

    func testPeekGivesTheSameHeaderAsAFullDecode() throws {
        let buffer = Samples.modelInferRequest.encoded()
        let full = try ModelInferRequest(decoding: buffer)
        let peek = try ModelInferRequestPeek(peeking: buffer)
        XCTAssertEqual(peek.modelName, full.modelName)
        XCTAssertEqual(peek.modelVersion, full.modelVersion)
        XCTAssertEqual(peek.id, full.id)
        XCTAssertEqual(peek.parameters, full.parameters)
        XCTAssertEqual(peek.inputCount, full.inputs.count)
        XCTAssertEqual(peek.rawInputContentsCount, full.rawInputContents.count)
        XCTAssertEqual(peek.inputCount, 2)
        XCTAssertEqual(peek.rawInputContentsCount, 2)
    }

    func testPeekStepsOverGarbageInsideAnInputTensorThatAFullDecodeRejects() throws {
        // inputs { name: "IN" contents { fp32_contents: <3 bytes> } }: a packed float run must be
        // a multiple of 4 bytes long.
        var writer = ProtoWriter()
        writer.writeString(field: 1, "simple")
        writer.writeString(field: 3, "req-7")
        writer.writeLengthDelimited(field: 5) { tensor in
            tensor.writeString(field: 1, "IN")
            tensor.writeLengthDelimited(field: 5) { contents in
                contents.writeBytes(field: 6, [0x00, 0x00, 0x80] as [UInt8])
            }
        }
        writer.writeBytes(field: 7, [1, 2, 3] as [UInt8])
        let buffer = writer.buffer

        XCTAssertThrowsError(try ModelInferRequest(decoding: buffer)) { error in
            let error = error as? ProtoDecodingError
            XCTAssertEqual(error?.code, .invalidValue)
            XCTAssertEqual(error?.path.map(\.fieldNumber), [5, 5, 6])
        }
        let peek = try ModelInferRequestPeek(peeking: buffer)
        XCTAssertEqual(peek.modelName, "simple")
        XCTAssertEqual(peek.id, "req-7")
        XCTAssertEqual(peek.inputCount, 1)
        XCTAssertEqual(peek.rawInputContentsCount, 1)
    }

    func testPeekFailsLikeAFullDecodeOnMalformedFraming() {
        let valid = Array(Samples.modelInferRequest.encoded().readableBytesView)
        let cases: [(String, [UInt8], ProtoLimits)] = [
            ("buffer ends inside the last field", Array(valid.prefix(valid.count - 1)), .default),
            ("input length past the end", [0x2A, 0x05, 0x0A], .default),
            ("inputs as a varint", [0x28, 0x01], .default),
            ("requested outputs as fixed32", [0x35, 0, 0, 0, 0], .default),
            ("raw contents as a varint", [0x38, 0x01], .default),
            ("raw contents length past the end", [0x3A, 0x10, 0x00], .default),
            ("model name not UTF-8", [0x0A, 0x02, 0xC3, 0x28], .default),
            ("parameters entry past the end", [0x22, 0x04, 0x0A, 0x01], .default),
            ("parameters key past the entry's end", [0x22, 0x02, 0x0A, 0x05, 0x61, 0x62, 0x63, 0x64, 0x65], .default),
            ("parameter value of the wrong wire type", [0x22, 0x02, 0x10, 0x01], .default),
            ("invalid wire type", [0x0F], .default),
            ("field number zero", [0x02, 0x00], .default),
            ("varint tag never ends", [0x80, 0x80], .default),
            ("unknown field's end group without a start", [0x64], .default),
            ("unknown group never ends", [0x63, 0x08, 0x01], .default),
            ("too large", valid, ProtoLimits(maxMessageSize: 16)),
            ("input nested past the depth limit", [0x2A, 0x00], ProtoLimits(maxDepth: 0)),
        ]
        for (name, bytes, limits) in cases {
            let buffer = ByteBuffer(bytes: bytes)
            var fullError: ProtoDecodingError?
            var peekError: ProtoDecodingError?
            XCTAssertThrowsError(try ModelInferRequest(decoding: buffer, limits: limits), name) {
                fullError = $0 as? ProtoDecodingError
            }
            XCTAssertThrowsError(try ModelInferRequestPeek(peeking: buffer, limits: limits), name) {
                peekError = $0 as? ProtoDecodingError
            }
            XCTAssertNotNil(fullError, name)
            XCTAssertEqual(peekError, fullError, name)
        }
    }

    // MARK: Unknown fields

    func testUnknownFieldsInModelInferRequestSurviveDecodeAndEncode() throws {
        // Unknown fields of every wire type, at the end of the request, an input tensor, a
        // requested output and an InferParameter, in the order a re-encode writes known fields.
        func unknowns(_ writer: inout ProtoWriter, base: Int) {
            writer.write(ProtoUInt64.self, field: base, 300)
            writer.write(ProtoFixed64.self, field: base + 1, 0x0102_0304_0506_0708)
            writer.writeString(field: base + 2, "from a newer client")
            writer.writeTag(base + 3, .startGroup)
            writer.write(ProtoInt32.self, field: 1, 7)
            writer.writeTag(base + 3, .endGroup)
            writer.write(ProtoFixed32.self, field: base + 4, 9)
        }
        var writer = ProtoWriter()
        writer.writeString(field: 1, "simple")
        writer.writeLengthDelimited(field: 4) { entry in
            entry.writeString(field: 1, "priority")
            entry.writeLengthDelimited(field: 2) { parameter in
                parameter.write(ProtoInt64.self, field: 2, 3)
                unknowns(&parameter, base: 40)
            }
        }
        writer.writeLengthDelimited(field: 5) { tensor in
            tensor.writeString(field: 1, "INPUT0")
            tensor.writePacked(ProtoInt64.self, field: 3, [1, 16])
            unknowns(&tensor, base: 20)
        }
        writer.writeLengthDelimited(field: 6) { output in
            output.writeString(field: 1, "OUTPUT0")
            unknowns(&output, base: 30)
        }
        writer.writeBytes(field: 7, [9, 9, 9, 9] as [UInt8])
        unknowns(&writer, base: 1000)
        let original = Array(writer.buffer.readableBytesView)

        let request = try ModelInferRequest(decodingBytes: original)
        XCTAssertFalse(request.unknownFields.isEmpty)
        XCTAssertFalse(request.inputs[0].unknownFields.isEmpty)
        XCTAssertFalse(request.outputs[0].unknownFields.isEmpty)
        XCTAssertFalse(try XCTUnwrap(request.parameters["priority"]).unknownFields.isEmpty)
        XCTAssertEqual(request.modelName, "simple")
        XCTAssertEqual(request.inputs[0].shape, [1, 16])
        XCTAssertEqual(request.encodedBytes(), original)

        // The same holds for a response relayed on a stream.
        var response = ProtoWriter()
        response.writeLengthDelimited(field: 2) { inner in
            inner.writeString(field: 1, "simple")
            inner.writeLengthDelimited(field: 5) { tensor in
                tensor.writeString(field: 1, "OUTPUT0")
                unknowns(&tensor, base: 20)
            }
            unknowns(&inner, base: 100)
        }
        unknowns(&response, base: 200)
        let responseBytes = Array(response.buffer.readableBytesView)
        XCTAssertEqual(try ModelStreamInferResponse(decodingBytes: responseBytes).encodedBytes(), responseBytes)
    }

    func testUnknownFieldsOutsideTheHotPathAreSkipped() throws {
        let bytes: [UInt8] = [0x0A, 0x01, 0x61, 0xC0, 0x3E, 0x05, 0x12, 0x01, 0x62]  // name, field 1000, version
        let request = try ModelReadyRequest(decodingBytes: bytes)
        XCTAssertEqual(request.name, "a")
        XCTAssertEqual(request.version, "b")
        XCTAssertEqual(request.encodedBytes(), [0x0A, 0x01, 0x61, 0x12, 0x01, 0x62])
    }

    func testWrongWireTypeNamesTheFieldPath() {
        // RepositoryModelLoadRequest.parameters["k"] = ModelRepositoryParameter { bool_param as fixed32 }
        let bytes: [UInt8] = [0x1A, 0x0A, 0x0A, 0x01, 0x6B, 0x12, 0x05, 0x0D, 0x01, 0x00, 0x00, 0x00]
        XCTAssertThrowsError(try RepositoryModelLoadRequest(decodingBytes: bytes)) { error in
            let error = error as? ProtoDecodingError
            XCTAssertEqual(error?.code, .wrongWireType)
            XCTAssertEqual(error?.path.first, .init(message: "inference.RepositoryModelLoadRequest", fieldNumber: 3))
        }
    }

    // MARK: Agreement with protoc

    /// Each sample goes through protoc (decode to text, encode again) and back: protoc must accept
    /// our bytes as the published message, and we must read protoc's bytes as the same value.
    func testProtocReadsAndWritesTheSameMessages() throws {
        try assertProtocAgrees(Samples.serverLiveResponse)
        try assertProtocAgrees(Samples.modelReadyRequest)
        try assertProtocAgrees(Samples.serverMetadataResponse)
        try assertProtocAgrees(Samples.modelMetadataResponse)
        try assertProtocAgrees(Samples.modelInferRequest)
        try assertProtocAgrees(Samples.modelInferResponse)
        try assertProtocAgrees(Samples.modelStreamInferResponse)
        try assertProtocAgrees(Samples.modelConfigRequest)
        try assertProtocAgrees(Samples.modelConfigResponse)
        try assertProtocAgrees(Samples.modelStatisticsRequest)
        try assertProtocAgrees(Samples.modelStatisticsResponse)
        for parameter in Samples.repositoryParameters.values { try assertProtocAgrees(parameter) }
        try assertProtocAgrees(Samples.repositoryIndexRequest)
        try assertProtocAgrees(Samples.repositoryIndexResponse)
        try assertProtocAgrees(Samples.repositoryModelLoadRequest)
        try assertProtocAgrees(Samples.repositoryModelUnloadRequest)
        try assertProtocAgrees(Samples.systemSharedMemoryStatusResponse)
        try assertProtocAgrees(Samples.systemSharedMemoryRegisterRequest)
        try assertProtocAgrees(Samples.cudaSharedMemoryStatusResponse)
        try assertProtocAgrees(Samples.cudaSharedMemoryRegisterRequest)
        try assertProtocAgrees(Samples.traceSettingRequest)
        try assertProtocAgrees(Samples.traceSettingResponse)
        try assertProtocAgrees(Samples.logSettingsRequest)
        try assertProtocAgrees(Samples.logSettingsResponse)
    }

    // MARK: Helpers

    /// Encodes, decodes and compares; also checks that `message` sets every field (so that the
    /// round trip covers each one) and that encoding is deterministic.
    private func assertRoundTrip<M: ProtoMessage & Hashable>(
        _ message: M, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let empty = M()
        for (sampleChild, defaultChild) in zip(Mirror(reflecting: message).children, Mirror(reflecting: empty).children)
        where sampleChild.label != "unknownFields" {
            let sampleValue = try XCTUnwrap(sampleChild.value as? AnyHashable, file: file, line: line)
            let defaultValue = try XCTUnwrap(defaultChild.value as? AnyHashable, file: file, line: line)
            XCTAssertNotEqual(
                sampleValue, defaultValue, "\(M.protoMessageName).\(sampleChild.label ?? "?") is left at its default",
                file: file, line: line)
        }
        let bytes = message.encodedBytes()
        if Mirror(reflecting: message).children.contains(where: { $0.label != "unknownFields" }) {
            XCTAssertFalse(bytes.isEmpty, "\(M.protoMessageName) encoded to nothing", file: file, line: line)
        }
        let decoded = try M(decoding: ByteBuffer(bytes: bytes))
        XCTAssertEqual(decoded, message, "\(M.protoMessageName) changed in a round trip", file: file, line: line)
        XCTAssertEqual(decoded.encodedBytes(), bytes, "\(M.protoMessageName) re-encoded differently", file: file, line: line)
    }

    private func assertProtocAgrees<M: ProtoMessage & Hashable>(
        _ message: M, file: StaticString = #filePath, line: UInt = #line
    ) throws {
        let text = try ProtocRunner.decode(M.protoMessageName, bytes: message.encodedBytes())
        let bytes = try ProtocRunner.encode(M.protoMessageName, text: text)
        XCTAssertEqual(try M(decodingBytes: bytes), message, "\(M.protoMessageName) via protoc:\n\(text)", file: file, line: line)
    }
}

// MARK: - Samples: every field set to something other than its default

private enum Samples {
    static func bytes(_ values: [UInt8]) -> ByteBuffer { ByteBuffer(bytes: values) }

    static let parameters: [String: InferParameter] = [
        "binary_data": InferParameter(.bool(true)),
        "priority": InferParameter(.int64(-3)),
        "mode": InferParameter(.string("modèle rapide")),
        "scale": InferParameter(.double(0.5)),
        "sequence_id": InferParameter(.uint64(UInt64.max)),
    ]

    static let serverLiveResponse: ServerLiveResponse = { var m = ServerLiveResponse(); m.live = true; return m }()
    static let serverReadyResponse: ServerReadyResponse = { var m = ServerReadyResponse(); m.ready = true; return m }()
    static let modelReadyRequest: ModelReadyRequest = {
        var m = ModelReadyRequest()
        m.name = "simple"
        m.version = "3"
        return m
    }()
    static let modelReadyResponse: ModelReadyResponse = { var m = ModelReadyResponse(); m.ready = true; return m }()
    static let serverMetadataResponse: ServerMetadataResponse = {
        var m = ServerMetadataResponse()
        m.name = "switchyard"
        m.version = "0.1.0"
        m.extensions = ["classification", "sequence", "model_repository"]
        return m
    }()
    static let modelMetadataRequest: ModelMetadataRequest = {
        var m = ModelMetadataRequest()
        m.name = "simple"
        m.version = "1"
        return m
    }()
    static func tensorMetadata(_ name: String) -> ModelMetadataResponse.TensorMetadata {
        var m = ModelMetadataResponse.TensorMetadata()
        m.name = name
        m.datatype = "INT32"
        m.shape = [-1, 16]
        return m
    }
    static let modelMetadataResponse: ModelMetadataResponse = {
        var m = ModelMetadataResponse()
        m.name = "simple"
        m.versions = ["1", "2"]
        m.platform = "switchyard_builtin"
        m.inputs = [tensorMetadata("INPUT0"), tensorMetadata("INPUT1")]
        m.outputs = [tensorMetadata("OUTPUT0")]
        return m
    }()

    static let contents: InferTensorContents = {
        var m = InferTensorContents()
        m.boolContents = [true, false]
        m.intContents = [-1, 2]
        m.int64Contents = [Int64.min, 5]
        m.uintContents = [UInt32.max]
        m.uint64Contents = [7]
        m.fp32Contents = [1.5, -0.25]
        m.fp64Contents = [3.25]
        m.bytesContents = [bytes([0x68, 0x69]), bytes([0x00, 0xFF])]
        return m
    }()
    static let inputTensor: ModelInferRequest.InferInputTensor = {
        var m = ModelInferRequest.InferInputTensor()
        m.name = "INPUT0"
        m.datatype = "INT32"
        m.shape = [1, 16]
        m.parameters = ["shared_memory_region": InferParameter(.string("in0")), "shared_memory_offset": InferParameter(.int64(64))]
        m.contents = contents
        return m
    }()
    static let requestedOutput: ModelInferRequest.InferRequestedOutputTensor = {
        var m = ModelInferRequest.InferRequestedOutputTensor()
        m.name = "OUTPUT0"
        m.parameters = ["classification": InferParameter(.int64(3)), "binary_data": InferParameter(.bool(false))]
        return m
    }()
    static let modelInferRequest: ModelInferRequest = {
        var second = inputTensor
        second.name = "INPUT1"
        second.contents = nil
        var m = ModelInferRequest()
        m.modelName = "simple"
        m.modelVersion = "1"
        m.id = "request-42"
        m.parameters = parameters
        m.inputs = [inputTensor, second]
        m.outputs = [requestedOutput]
        m.rawInputContents = [bytes(Array(0..<64)), bytes([])]
        return m
    }()
    static let outputTensor: ModelInferResponse.InferOutputTensor = {
        var m = ModelInferResponse.InferOutputTensor()
        m.name = "OUTPUT0"
        m.datatype = "FP32"
        m.shape = [1, 2]
        m.parameters = ["binary_data_size": InferParameter(.int64(8))]
        m.contents = contents
        return m
    }()
    static let modelInferResponse: ModelInferResponse = {
        var m = ModelInferResponse()
        m.modelName = "simple"
        m.modelVersion = "1"
        m.id = "request-42"
        m.parameters = ["triton_final_response": InferParameter(.bool(true))]
        m.outputs = [outputTensor]
        m.rawOutputContents = [bytes([0, 0, 0x80, 0x3F, 0, 0, 0, 0x40])]
        return m
    }()
    static let modelStreamInferResponse: ModelStreamInferResponse = {
        var m = ModelStreamInferResponse()
        m.errorMessage = "partial failure"
        m.inferResponse = modelInferResponse
        return m
    }()

    static let modelConfigRequest: ModelConfigRequest = {
        var m = ModelConfigRequest()
        m.name = "simple"
        m.version = "2"
        return m
    }()
    static let modelConfigResponse: ModelConfigResponse = {
        var m = ModelConfigResponse()
        var config = ModelConfig()
        config.name = "simple"
        config.maxBatchSize = 8
        m.config = config
        return m
    }()

    static let modelStatisticsRequest: ModelStatisticsRequest = {
        var m = ModelStatisticsRequest()
        m.name = "simple"
        m.version = "1"
        return m
    }()
    static func duration(_ seed: UInt64) -> StatisticDuration { StatisticDuration(count: seed, ns: seed * 1_000_003) }
    static let inferStatistics: InferStatistics = {
        var m = InferStatistics()
        m.success = duration(1)
        m.fail = duration(2)
        m.queue = duration(3)
        m.computeInput = duration(4)
        m.computeInfer = duration(5)
        m.computeOutput = duration(6)
        m.cacheHit = duration(7)
        m.cacheMiss = duration(8)
        return m
    }()
    static let inferResponseStatistics: InferResponseStatistics = {
        var m = InferResponseStatistics()
        m.computeInfer = duration(11)
        m.computeOutput = duration(12)
        m.success = duration(13)
        m.fail = duration(14)
        m.emptyResponse = duration(15)
        m.cancel = duration(16)
        return m
    }()
    static let inferBatchStatistics: InferBatchStatistics = {
        var m = InferBatchStatistics()
        m.batchSize = 8
        m.computeInput = duration(21)
        m.computeInfer = duration(22)
        m.computeOutput = duration(23)
        return m
    }()
    static let memoryUsage: MemoryUsage = {
        var m = MemoryUsage()
        m.type = "GPU"
        m.id = 1
        m.byteSize = 1 << 33
        return m
    }()
    static let modelStatistics: ModelStatistics = {
        var m = ModelStatistics()
        m.name = "simple"
        m.version = "1"
        m.lastInference = 1_767_225_600_000
        m.inferenceCount = 640
        m.executionCount = 80
        m.inferenceStats = inferStatistics
        m.batchStats = [inferBatchStatistics]
        m.memoryUsage = [memoryUsage]
        var second = inferResponseStatistics
        second.cancel = nil
        m.responseStats = ["0": inferResponseStatistics, "1": second]
        return m
    }()
    static let modelStatisticsResponse: ModelStatisticsResponse = {
        var m = ModelStatisticsResponse()
        var other = modelStatistics
        other.version = "2"
        m.modelStats = [modelStatistics, other]
        return m
    }()

    static let repositoryParameters: [String: ModelRepositoryParameter] = [
        "bool": ModelRepositoryParameter(.bool(true)),
        "int64": ModelRepositoryParameter(.int64(-9)),
        "config": ModelRepositoryParameter(.string("{\"max_batch_size\": 8}")),
        "file:1/model.onnx": ModelRepositoryParameter(.bytes(bytes([0x08, 0x07, 0x00, 0xFF]))),
    ]
    static let repositoryIndexRequest: RepositoryIndexRequest = {
        var m = RepositoryIndexRequest()
        m.repositoryName = "models"
        m.ready = true
        return m
    }()
    static let modelIndex: RepositoryIndexResponse.ModelIndex = {
        var m = RepositoryIndexResponse.ModelIndex()
        m.name = "simple"
        m.version = "1"
        m.state = "UNAVAILABLE"
        m.reason = "unloaded"
        return m
    }()
    static let repositoryIndexResponse: RepositoryIndexResponse = {
        var m = RepositoryIndexResponse()
        var ready = modelIndex
        ready.name = "simple_string"
        ready.state = "READY"
        m.models = [modelIndex, ready]
        return m
    }()
    static let repositoryModelLoadRequest: RepositoryModelLoadRequest = {
        var m = RepositoryModelLoadRequest()
        m.repositoryName = "models"
        m.modelName = "simple"
        m.parameters = repositoryParameters
        return m
    }()
    static let repositoryModelUnloadRequest: RepositoryModelUnloadRequest = {
        var m = RepositoryModelUnloadRequest()
        m.repositoryName = "models"
        m.modelName = "simple"
        m.parameters = ["unload_dependents": ModelRepositoryParameter(.bool(true))]
        return m
    }()

    static let systemSharedMemoryStatusRequest: SystemSharedMemoryStatusRequest = {
        var m = SystemSharedMemoryStatusRequest()
        m.name = "region0"
        return m
    }()
    static func systemRegionStatus(_ name: String) -> SystemSharedMemoryStatusResponse.RegionStatus {
        var m = SystemSharedMemoryStatusResponse.RegionStatus()
        m.name = name
        m.key = "/\(name)"
        m.offset = 4096
        m.byteSize = 65536
        return m
    }
    static let systemSharedMemoryStatusResponse: SystemSharedMemoryStatusResponse = {
        var m = SystemSharedMemoryStatusResponse()
        m.regions = ["region0": systemRegionStatus("region0"), "region1": systemRegionStatus("region1")]
        return m
    }()
    static let systemSharedMemoryRegisterRequest: SystemSharedMemoryRegisterRequest = {
        var m = SystemSharedMemoryRegisterRequest()
        m.name = "region0"
        m.key = "/region0"
        m.offset = 128
        m.byteSize = 1024
        return m
    }()
    static let systemSharedMemoryUnregisterRequest: SystemSharedMemoryUnregisterRequest = {
        var m = SystemSharedMemoryUnregisterRequest()
        m.name = "region0"
        return m
    }()
    static let cudaSharedMemoryStatusRequest: CudaSharedMemoryStatusRequest = {
        var m = CudaSharedMemoryStatusRequest()
        m.name = "gpu0"
        return m
    }()
    static func cudaRegionStatus(_ name: String) -> CudaSharedMemoryStatusResponse.RegionStatus {
        var m = CudaSharedMemoryStatusResponse.RegionStatus()
        m.name = name
        m.deviceId = 1
        m.byteSize = 1 << 20
        return m
    }
    static let cudaSharedMemoryStatusResponse: CudaSharedMemoryStatusResponse = {
        var m = CudaSharedMemoryStatusResponse()
        m.regions = ["gpu0": cudaRegionStatus("gpu0"), "gpu1": cudaRegionStatus("gpu1")]
        return m
    }()
    static let cudaSharedMemoryRegisterRequest: CudaSharedMemoryRegisterRequest = {
        var m = CudaSharedMemoryRegisterRequest()
        m.name = "gpu0"
        m.rawHandle = bytes(Array(repeating: 0xAB, count: 64))
        m.deviceId = 2
        m.byteSize = 1 << 20
        return m
    }()
    static let cudaSharedMemoryUnregisterRequest: CudaSharedMemoryUnregisterRequest = {
        var m = CudaSharedMemoryUnregisterRequest()
        m.name = "gpu0"
        return m
    }()

    static let traceSettingRequest: TraceSettingRequest = {
        var m = TraceSettingRequest()
        m.settings = ["trace_level": .init(["TIMESTAMPS", "TENSORS"]), "trace_rate": .init(["1000"]), "log_frequency": .init([])]
        m.modelName = "simple"
        return m
    }()
    static let traceSettingResponse: TraceSettingResponse = {
        var m = TraceSettingResponse()
        m.settings = ["trace_level": .init(["TIMESTAMPS"]), "trace_rate": .init(["1000"])]
        return m
    }()
    static let logChoices: [LogSettingsRequest.SettingValue.Choice] = [.bool(true), .uint32(2), .string("default")]
    static let logSettingsRequest: LogSettingsRequest = {
        var m = LogSettingsRequest()
        m.settings = ["log_info": .init(.bool(true)), "log_verbose_level": .init(.uint32(2)), "log_format": .init(.string("ISO8601"))]
        return m
    }()
    static let logSettingsResponse: LogSettingsResponse = {
        var m = LogSettingsResponse()
        m.settings = ["log_error": .init(.bool(false)), "log_verbose_level": .init(.uint32(0)), "log_file": .init(.string(""))]
        return m
    }()
}

// MARK: - protoc

/// Runs Debian's `protoc` (package protobuf-compiler, which scripts/bootstrap.sh installs) on
/// Protos/inference/grpc_service.proto, as an independent implementation of the contract.
private enum ProtocRunner {
    static let protosDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Protos")

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    static func encode(_ type: String, text: String) throws -> [UInt8] {
        try run("--encode=\(type)", input: Array(text.utf8))
    }

    static func decode(_ type: String, bytes: [UInt8]) throws -> String {
        String(decoding: try run("--decode=\(type)", input: bytes), as: UTF8.self)
    }

    private static func run(_ mode: String, input: [UInt8]) throws -> [UInt8] {
        guard let executable = ["/usr/bin/protoc", "/usr/local/bin/protoc"].first(where: { FileManager.default.isExecutableFile(atPath: $0) })
        else {
            throw Failure(description: "protoc not found: install Debian's protobuf-compiler (scripts/bootstrap.sh does)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = [mode, "-I", protosDirectory.path, "inference/grpc_service.proto"]
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        // Feed stdin from another thread so that neither pipe can fill and stall the other side.
        let feeder = Thread {
            stdin.fileHandleForWriting.write(Data(input))
            try? stdin.fileHandleForWriting.close()
        }
        feeder.start()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        let errors = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "protoc \(mode) failed: \(String(decoding: errors, as: UTF8.self))")
        }
        return Array(output)
    }
}
