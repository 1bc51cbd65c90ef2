import NIOCore
import ProtoWire
import XCTest

@testable import InferenceProtocol

/// Decodes `message`'s encoding and checks that the same value comes back, re-encoding to the
/// same bytes.
private func assertRoundTrips<M: ProtoMessage>(
    _ message: M, file: StaticString = #filePath, line: UInt = #line
) throws {
    let bytes = message.encodedBytes()
    let decoded = try M(decodingBytes: bytes)
    XCTAssertEqual(decoded, message, "\(M.protoMessageName) did not round-trip", file: file, line: line)
    XCTAssertEqual(decoded.encodedBytes(), bytes, "\(M.protoMessageName) re-encoded differently", file: file, line: line)
}

private func hexBytes(_ hex: String) -> [UInt8] {
    let digits = Array(hex.filter { !$0.isWhitespace })
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
}

/// Reflection messages with every field set.
private enum FullReflection {
    static let extensionRequest = ExtensionRequest(containingType: "google.protobuf.MethodOptions", extensionNumber: 72295728)

    static var request: ServerReflectionRequest {
        ServerReflectionRequest(host: "localhost:8001", .fileContainingExtension(extensionRequest))
    }

    static var fileDescriptorResponse: FileDescriptorResponse {
        // Two "descriptors" (any bytes will do for the codec), one of them empty.
        FileDescriptorResponse(fileDescriptorProto: [ByteBuffer(bytes: [0x0A, 0x03, 0x61, 0x2E, 0x62, 0xFF]), ByteBuffer()])
    }

    static var extensionNumberResponse: ExtensionNumberResponse {
        var value = ExtensionNumberResponse()
        value.baseTypeName = "google.protobuf.MethodOptions"
        value.extensionNumber = [1000, 72295728, -1]
        return value
    }

    static var listServiceResponse: ListServiceResponse {
        ListServiceResponse(service: [
            ServiceResponse(name: "inference.GRPCInferenceService"),
            ServiceResponse(name: "grpc.health.v1.Health"),
        ])
    }

    static let errorResponse = ErrorResponse(errorCode: 5, errorMessage: "symbol not found: foo.Bar")

    static var responses: [ServerReflectionResponse] {
        let choices: [ServerReflectionResponse.MessageResponse] = [
            .fileDescriptorResponse(fileDescriptorResponse),
            .allExtensionNumbersResponse(extensionNumberResponse),
            .listServicesResponse(listServiceResponse),
            .errorResponse(errorResponse),
        ]
        return choices.map { ServerReflectionResponse(validHost: "localhost:8001", originalRequest: request, $0) }
    }
}

final class HealthReflectionMessagesTests: XCTestCase {
    // MARK: Health

    func testHealthCheckResponseServingIsTwoBytes() throws {
        let response = HealthCheckResponse(status: .serving)
        XCTAssertEqual(response.encodedBytes(), [0x08, 0x01])
        XCTAssertEqual(try HealthCheckResponse(decodingBytes: [0x08, 0x01]).status, .serving)
    }

    func testHealthMessagesRoundTrip() throws {
        try assertRoundTrips(HealthCheckRequest(service: "inference.GRPCInferenceService"))
        for status in HealthCheckResponse.ServingStatus.allCases.dropFirst() {
            try assertRoundTrips(HealthCheckResponse(status: status))
        }
        try assertRoundTrips(HealthCheckResponse(status: .unrecognized(42)))
        try assertRoundTrips(HealthListRequest())
        var list = HealthListResponse()
        list.statuses = ["": .init(status: .serving), "inference.GRPCInferenceService": .init(status: .notServing)]
        try assertRoundTrips(list)
    }

    func testHealthCheckRequestBytes() {
        XCTAssertEqual(HealthCheckRequest(service: "ab").encodedBytes(), [0x0A, 0x02, 0x61, 0x62])
        // The whole server: an empty request.
        XCTAssertEqual(HealthCheckRequest().encodedBytes(), [])
    }

    func testServingStatusNumbersMatchTheSchema() {
        XCTAssertEqual(HealthCheckResponse.ServingStatus.allCases.map(\.rawValue), [0, 1, 2, 3])
        XCTAssertEqual(HealthCheckResponse.ServingStatus(rawValue: 3), .serviceUnknown)
        XCTAssertEqual(HealthCheckResponse.ServingStatus(rawValue: 9), .unrecognized(9))
        // UNKNOWN is the default and is not written.
        XCTAssertEqual(HealthCheckResponse(status: .unknown).encodedBytes(), [])
    }

    func testHealthListResponseEntryBytes() {
        var list = HealthListResponse()
        list.statuses = ["a": .init(status: .serving)]
        // statuses = 1 { key = 1 "a", value = 2 { status = 1 SERVING } }
        XCTAssertEqual(list.encodedBytes(), [0x0A, 0x07, 0x0A, 0x01, 0x61, 0x12, 0x02, 0x08, 0x01])
    }

    // MARK: Reflection

    func testListServicesRequestBytes() throws {
        let request = ServerReflectionRequest(.listServices("*"))
        // list_services = 7, length-delimited: tag (7 << 3) | 2 = 0x3A, length 1, "*".
        XCTAssertEqual(request.encodedBytes(), [0x3A, 0x01, 0x2A])
        XCTAssertEqual(try ServerReflectionRequest(decodingBytes: [0x3A, 0x01, 0x2A]), request)
    }

    func testListServicesWithEmptyStringIsStillWritten() throws {
        // grpcurl sends list_services = "": the oneof member's presence is the question.
        let request = ServerReflectionRequest(.listServices(""))
        XCTAssertEqual(request.encodedBytes(), [0x3A, 0x00])
        XCTAssertEqual(try ServerReflectionRequest(decodingBytes: [0x3A, 0x00]).messageRequest, .listServices(""))
    }

    func testEveryReflectionMessageRoundTripsWithEveryFieldSet() throws {
        try assertRoundTrips(FullReflection.extensionRequest)
        for choice: ServerReflectionRequest.MessageRequest in [
            .fileByFilename("inference/grpc_service.proto"),
            .fileContainingSymbol("inference.GRPCInferenceService.ModelInfer"),
            .fileContainingExtension(FullReflection.extensionRequest),
            .allExtensionNumbersOfType("google.protobuf.MethodOptions"),
            .listServices("*"),
        ] {
            try assertRoundTrips(ServerReflectionRequest(host: "localhost", choice))
        }
        try assertRoundTrips(FullReflection.fileDescriptorResponse)
        try assertRoundTrips(FullReflection.extensionNumberResponse)
        try assertRoundTrips(ServiceResponse(name: "grpc.reflection.v1.ServerReflection"))
        try assertRoundTrips(FullReflection.listServiceResponse)
        try assertRoundTrips(FullReflection.errorResponse)
        for response in FullReflection.responses {
            try assertRoundTrips(response)
        }
    }

    func testFileDescriptorsDecodeAsSlicesOfTheIncomingBuffer() throws {
        let bytes = FullReflection.fileDescriptorResponse.encodedBytes()
        let decoded = try FileDescriptorResponse(decodingBytes: bytes)
        XCTAssertEqual(decoded.fileDescriptorProto.map { Array($0.readableBytesView) }, [[0x0A, 0x03, 0x61, 0x2E, 0x62, 0xFF], []])
    }

    func testExtensionNumbersAreWrittenPackedAndReadEitherWay() throws {
        var response = ExtensionNumberResponse()
        response.extensionNumber = [1, 2]
        XCTAssertEqual(response.encodedBytes(), [0x12, 0x02, 0x01, 0x02])
        XCTAssertEqual(try ExtensionNumberResponse(decodingBytes: [0x10, 0x01, 0x10, 0x02]).extensionNumber, [1, 2])
    }

    func testReflectionNamesAreTheV1Names() {
        XCTAssertEqual(ServerReflectionRequest.protoMessageName, "grpc.reflection.v1.ServerReflectionRequest")
        XCTAssertEqual(ServerReflectionResponse.protoMessageName, "grpc.reflection.v1.ServerReflectionResponse")
        XCTAssertEqual(HealthCheckResponse.protoMessageName, "grpc.health.v1.HealthCheckResponse")
    }

    // MARK: Against an independent encoder

    // What Debian's protoc 3.21 makes of the text format of `FullReflection.responses[i]`, with
    // `protoc --encode=grpc.reflection.v1alpha.ServerReflectionResponse -I Protos
    // Protos/grpc/reflection/v1alpha/reflection.proto`: the v1alpha schema, which the same
    // Swift types serve. (The v1 schema gives the same bytes.)

    func testDecodesAndReproducesProtocEncodingOfV1alphaResponses() throws {
        let fixtures = [
            Self.protocFileDescriptorResponseHex, Self.protocExtensionNumbersResponseHex,
            Self.protocListServicesResponseHex, Self.protocErrorResponseHex,
        ]
        for (response, hex) in zip(FullReflection.responses, fixtures) {
            let bytes = hexBytes(hex)
            XCTAssertEqual(try ServerReflectionResponse(decodingBytes: bytes), response)
            XCTAssertEqual(response.encodedBytes(), bytes)
        }
    }

    static let protocFileDescriptorResponseHex = """
        0a0e6c6f63616c686f73743a3830303112360a0e6c6f63616c686f73743a383030312a240a1d676f6f676c652e70726f
        746f6275662e4d6574686f644f7074696f6e7310b0cabc22220a0a060a03612e62ff0a00
        """

    static let protocExtensionNumbersResponseHex = """
        0a0e6c6f63616c686f73743a3830303112360a0e6c6f63616c686f73743a383030312a240a1d676f6f676c652e70726f
        746f6275662e4d6574686f644f7074696f6e7310b0cabc222a310a1d676f6f676c652e70726f746f6275662e4d657468
        6f644f7074696f6e731210e807b0cabc22ffffffffffffffffff01
        """

    static let protocListServicesResponseHex = """
        0a0e6c6f63616c686f73743a3830303112360a0e6c6f63616c686f73743a383030312a240a1d676f6f676c652e70726f
        746f6275662e4d6574686f644f7074696f6e7310b0cabc22323b0a200a1e696e666572656e63652e47525043496e6665
        72656e6365536572766963650a170a15677270632e6865616c74682e76312e4865616c7468
        """

    static let protocErrorResponseHex = """
        0a0e6c6f63616c686f73743a3830303112360a0e6c6f63616c686f73743a383030312a240a1d676f6f676c652e70726f
        746f6275662e4d6574686f644f7074696f6e7310b0cabc223a1d0805121973796d626f6c206e6f7420666f756e643a20
        666f6f2e426172
        """
}
