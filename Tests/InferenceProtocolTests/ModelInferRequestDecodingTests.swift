import InferenceProtocol
import NIOCore
import ProtoWire
import XCTest

/// The fast paths of `ModelInferRequest` decoding: datatypes read as known names, inputs and
/// raw contents appended in place, raw contents as slices of the input.
final class ModelInferRequestDecodingTests: XCTestCase {
    private func request(datatypes: [String], rawContents: Int = 0) -> ModelInferRequest {
        var request = ModelInferRequest()
        request.modelName = "simple"
        for (index, datatype) in datatypes.enumerated() {
            var input = ModelInferRequest.InferInputTensor()
            input.name = "INPUT\(index)"
            input.datatype = datatype
            input.shape = [1, Int64(index)]
            request.inputs.append(input)
        }
        for index in 0..<rawContents {
            request.rawInputContents.append(ByteBuffer(bytes: Array(repeating: UInt8(index), count: index)))
        }
        return request
    }

    func testEveryDatatypeAndNearMissesDecodeToTheirExactSpelling() throws {
        let known = TensorDatatype.allCases.map(\.rawValue)
        let nearMisses = [
            "", "I", "INT", "INT3", "INT322", "int32", "INT33", "FP", "FP3", "FP322", "BYTE", "BYTESS",
            "UINT", "UINT6", "UINT640", "BF1", "BOOL\u{0}", "BOO", "IN\u{0}32", "ÉNT32", "INT3é", "FP32 ",
        ]
        for datatype in known + nearMisses {
            let decoded = try ModelInferRequest(decoding: request(datatypes: [datatype]).encoded())
            XCTAssertEqual(decoded.inputs.first?.datatype, datatype)
            XCTAssertEqual(decoded.inputs.first?.datatype.utf8.count, datatype.utf8.count)
        }
    }

    func testAnInvalidUTF8DatatypeIsRejected() throws {
        var writer = ProtoWriter()
        // inputs (5) holding datatype (2) = 0xFF 'N' 'T' '3' '2'.
        writer.writeTag(5, .lengthDelimited)
        writer.writeVarint(7)
        writer.buffer.writeBytes([0x12, 0x05, 0xFF, 0x4E, 0x54, 0x33, 0x32])
        assertDecodingError(.invalidUTF8, path: [5, 2], try ModelInferRequest(decoding: writer.buffer))
    }

    func testManyInputsAndRawContentsDecodeInOrder() throws {
        for count in [0, 1, 3, 4, 5, 9, 33] {
            let original = request(datatypes: Array(repeating: "FP32", count: count), rawContents: count)
            let buffer = original.encoded()
            let decoded = try ModelInferRequest(decoding: buffer)
            XCTAssertEqual(decoded, original)
            let base = buffer.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
            for raw in decoded.rawInputContents where raw.readableBytes > 0 {
                let start = raw.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) }
                XCTAssertTrue(start > base && start < base + UInt(buffer.readableBytes), "raw contents were copied")
            }
        }
    }

    func testAFailingInputAddsNothingAndNamesItsPath() throws {
        var writer = ProtoWriter(buffer: request(datatypes: ["INT32"]).encoded())
        // A second input whose shape (3) arrives as fixed64.
        writer.writeTag(5, .lengthDelimited)
        writer.writeVarint(9)
        writer.writeTag(3, .fixed64)
        writer.buffer.writeBytes([1, 0, 0, 0, 0, 0, 0, 0])
        assertDecodingError(.wrongWireType, path: [5, 3], try ModelInferRequest(decoding: writer.buffer))
    }

    func testRepeatedMessageFieldsCanBeDecodedIntoAnExistingRequest() throws {
        var request = request(datatypes: ["INT32", "BYTES"], rawContents: 2)
        var reader = try ProtoReader(buffer: request.encoded())
        let copy = request
        try request.merge(from: &reader)
        XCTAssertEqual(request.inputs, copy.inputs + copy.inputs)
        XCTAssertEqual(request.rawInputContents, copy.rawInputContents + copy.rawInputContents)
        XCTAssertEqual(copy.inputs.count, 2, "the copy taken before the merge is unchanged")
    }

    private func assertDecodingError<T>(
        _ code: ProtoDecodingError.Code, path: [Int], _ body: @autoclosure () throws -> T,
        file: StaticString = #filePath, line: UInt = #line
    ) {
        do {
            _ = try body()
            XCTFail("expected \(code), decoding succeeded", file: file, line: line)
        } catch let error as ProtoDecodingError {
            XCTAssertEqual(error.code, code, "\(error)", file: file, line: line)
            XCTAssertEqual(error.path.map(\.fieldNumber), path, "\(error)", file: file, line: line)
        } catch {
            XCTFail("expected ProtoDecodingError.\(code), got \(error)", file: file, line: line)
        }
    }
}
