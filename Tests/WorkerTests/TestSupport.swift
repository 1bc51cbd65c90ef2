import InferenceProtocol
import NIOCore
import ProtoWire
import Worker
import XCTest

/// Builders of requests and readers of responses shared by the worker tests.
enum Requests {
    /// An input tensor with typed contents (or none).
    static func input(
        _ name: String, _ datatype: String, shape: TensorShape, contents: InferTensorContents? = nil
    ) -> ModelInferRequest.InferInputTensor {
        var tensor = ModelInferRequest.InferInputTensor()
        tensor.name = name
        tensor.datatype = datatype
        tensor.shape = shape
        tensor.contents = contents
        return tensor
    }

    static func intContents(_ values: [Int32]) -> InferTensorContents {
        var contents = InferTensorContents()
        contents.intContents = values
        return contents
    }

    static func uintContents(_ values: [UInt32]) -> InferTensorContents {
        var contents = InferTensorContents()
        contents.uintContents = values
        return contents
    }

    static func bytesContents(_ values: [String]) -> InferTensorContents {
        var contents = InferTensorContents()
        contents.bytesContents = values.map { ByteBuffer(string: $0) }
        return contents
    }

    /// Little-endian INT32 raw contents.
    static func raw(_ values: [Int32]) -> ByteBuffer {
        var buffer = ByteBuffer()
        for value in values { buffer.writeInteger(value, endianness: .little) }
        return buffer
    }

    /// Little-endian UINT32 raw contents.
    static func raw(_ values: [UInt32]) -> ByteBuffer {
        var buffer = ByteBuffer()
        for value in values { buffer.writeInteger(value, endianness: .little) }
        return buffer
    }

    /// BYTES raw contents: each element a 4-byte little-endian length and its bytes.
    static func raw(_ values: [String]) -> ByteBuffer {
        var buffer = ByteBuffer()
        for value in values {
            buffer.writeInteger(UInt32(value.utf8.count), endianness: .little)
            buffer.writeString(value)
        }
        return buffer
    }

    /// A `simple` request over `rows` rows of 16 values each.
    static func simple(_ input0: [Int32], _ input1: [Int32], raw: Bool, id: String = "") -> ModelInferRequest {
        let shape: TensorShape = [Int64(input0.count / 16), 16]
        var request = ModelInferRequest()
        request.modelName = "simple"
        request.id = id
        if raw {
            request.inputs = [input("INPUT0", "INT32", shape: shape), input("INPUT1", "INT32", shape: shape)]
            request.rawInputContents = [Requests.raw(input0), Requests.raw(input1)]
        } else {
            request.inputs = [
                input("INPUT0", "INT32", shape: shape, contents: intContents(input0)),
                input("INPUT1", "INT32", shape: shape, contents: intContents(input1)),
            ]
        }
        return request
    }

    /// A `simple_string` request over one row of 16 decimal strings.
    static func simpleString(_ input0: [String], _ input1: [String], raw: Bool) -> ModelInferRequest {
        let shape: TensorShape = [Int64(input0.count / 16), 16]
        var request = ModelInferRequest()
        request.modelName = "simple_string"
        if raw {
            request.inputs = [input("INPUT0", "BYTES", shape: shape), input("INPUT1", "BYTES", shape: shape)]
            request.rawInputContents = [Requests.raw(input0), Requests.raw(input1)]
        } else {
            request.inputs = [
                input("INPUT0", "BYTES", shape: shape, contents: bytesContents(input0)),
                input("INPUT1", "BYTES", shape: shape, contents: bytesContents(input1)),
            ]
        }
        return request
    }

    /// A `repeat_int32` request.
    static func repeatInt32(_ values: [Int32], delays: [UInt32], wait: UInt32 = 0, raw: Bool = true) -> ModelInferRequest {
        var request = ModelInferRequest()
        request.modelName = "repeat_int32"
        if raw {
            request.inputs = [
                input("IN", "INT32", shape: [Int64(values.count)]),
                input("DELAY", "UINT32", shape: [Int64(delays.count)]),
                input("WAIT", "UINT32", shape: [1]),
            ]
            request.rawInputContents = [Requests.raw(values), Requests.raw(delays), Requests.raw([wait])]
        } else {
            request.inputs = [
                input("IN", "INT32", shape: [Int64(values.count)], contents: intContents(values)),
                input("DELAY", "UINT32", shape: [Int64(delays.count)], contents: uintContents(delays)),
                input("WAIT", "UINT32", shape: [1], contents: uintContents([wait])),
            ]
        }
        return request
    }

    /// The INFER_REQUEST payload for `request`, addressed to its model.
    static func frame(_ request: ModelInferRequest, version: String = "") -> WorkerProtocol.InferRequest {
        var message = WorkerProtocol.InferRequest()
        message.modelName = request.modelName
        message.modelVersion = version
        message.request = request.encoded()
        return message
    }
}

extension ModelInferResponse {
    /// The raw contents of output `name`, or nil when the response has no such output.
    func raw(_ name: String) -> ByteBuffer? {
        guard let index = outputs.firstIndex(where: { $0.name == name }), index < rawOutputContents.count else { return nil }
        return rawOutputContents[index]
    }

    func int32s(_ name: String) -> [Int32]? {
        guard var buffer = raw(name) else { return nil }
        var values: [Int32] = []
        while let value = buffer.readInteger(endianness: .little, as: Int32.self) { values.append(value) }
        return values
    }

    func uint32s(_ name: String) -> [UInt32]? {
        guard var buffer = raw(name) else { return nil }
        var values: [UInt32] = []
        while let value = buffer.readInteger(endianness: .little, as: UInt32.self) { values.append(value) }
        return values
    }

    func strings(_ name: String) -> [String]? {
        guard var buffer = raw(name) else { return nil }
        var values: [String] = []
        while let length = buffer.readInteger(endianness: .little, as: UInt32.self) {
            guard let value = buffer.readString(length: Int(length)) else { return nil }
            values.append(value)
        }
        return values
    }

    func shape(_ name: String) -> TensorShape? {
        outputs.first(where: { $0.name == name })?.shape
    }
}

extension WorkerFrame {
    /// The frame's INFER_RESPONSE payload.
    func inferResponse(file: StaticString = #filePath, line: UInt = #line) throws -> WorkerProtocol.InferResponse {
        XCTAssertEqual(kind, .inferResponse, "frame kind", file: file, line: line)
        return try decodePayload(as: WorkerProtocol.InferResponse.self)
    }

    /// The `ModelInferResponse` inside an INFER_RESPONSE frame that carries no error.
    func modelResponse(file: StaticString = #filePath, line: UInt = #line) throws -> ModelInferResponse {
        let response = try inferResponse(file: file, line: line)
        XCTAssertNil(response.status, "unexpected status \(String(describing: response.status))", file: file, line: line)
        return try ModelInferResponse(decoding: response.response)
    }
}

/// Asserts that `body` throws an `InferenceError` with `code` whose message contains every one
/// of `fragments`.
func assertInferenceError<T>(
    _ code: InferenceError.Code, containing fragments: [String], file: StaticString = #filePath, line: UInt = #line,
    _ body: () throws -> T
) {
    do {
        _ = try body()
        XCTFail("expected \(code) containing \(fragments)", file: file, line: line)
    } catch let error as InferenceError {
        XCTAssertEqual(error.code, code, error.message, file: file, line: line)
        for fragment in fragments {
            XCTAssertTrue(error.message.contains(fragment), "'\(error.message)' does not contain '\(fragment)'", file: file, line: line)
        }
    } catch {
        XCTFail("unexpected error \(error)", file: file, line: line)
    }
}
