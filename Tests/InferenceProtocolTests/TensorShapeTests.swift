import InferenceProtocol
import NIOCore
import ProtoWire
import XCTest

/// `TensorShape`: dimensions stored inline up to `inlineCapacity`, in an array beyond, and in
/// every case the behaviour and the wire bytes of the `[Int64]` it replaced.
final class TensorShapeTests: XCTestCase {
    /// Shapes of 0 to 9 dimensions, across the inline/spilled boundary, with large and negative
    /// values (negative int64 takes 10 bytes as a varint).
    private let shapes: [[Int64]] = (0...9).map { count in
        (0..<count).map { index in
            switch index % 4 {
            case 0: return Int64(index + 1)
            case 1: return -1
            case 2: return Int64.max - Int64(index)
            default: return Int64.min + Int64(index)
            }
        }
    }

    func testBehavesLikeTheArrayOfItsDimensions() {
        for dimensions in shapes {
            let shape = TensorShape(dimensions)
            XCTAssertEqual(shape.count, dimensions.count)
            XCTAssertEqual(shape.isEmpty, dimensions.isEmpty)
            XCTAssertEqual(Array(shape), dimensions)
            XCTAssertEqual(shape.dimensions, dimensions)
            XCTAssertEqual(shape.first, dimensions.first)
            XCTAssertEqual(shape.last, dimensions.last)
            XCTAssertEqual(Array(shape.dropFirst()), Array(dimensions.dropFirst()))
            XCTAssertEqual(shape.description, dimensions.description)
            XCTAssertEqual("\(shape)", "\(dimensions)")
            XCTAssertEqual(TensorShape(dimensions.lazy.map { $0 }), shape, "init from any sequence")
            for index in dimensions.indices { XCTAssertEqual(shape[index], dimensions[index]) }
        }
    }

    func testAppendsAcrossTheInlineCapacityAndComparesByElements() {
        var shape = TensorShape()
        var dimensions: [Int64] = []
        for value in Int64(1)...12 {
            shape.append(value)
            dimensions.append(value)
            XCTAssertEqual(Array(shape), dimensions)
            XCTAssertEqual(shape, TensorShape(dimensions))
            XCTAssertEqual(shape.hashValue, TensorShape(dimensions).hashValue)
        }
        XCTAssertNotEqual(TensorShape([1, 16]), TensorShape([1, 16, 1]))
        XCTAssertNotEqual(TensorShape([1, 16]), TensorShape([16, 1]))
        XCTAssertEqual(TensorShape([1, 16]), [1, 16])
        XCTAssertEqual(Set<TensorShape>([[1, 16], [1, 16], [2, 16]]).count, 2)
    }

    func testMutatesInPlaceAndShrinksBackInline() {
        var shape: TensorShape = [1, 2, 3, 4, 5, 6]
        let copy = shape
        shape[0] = 7
        shape[5] = 8
        XCTAssertEqual(Array(shape), [7, 2, 3, 4, 5, 8])
        XCTAssertEqual(Array(copy), [1, 2, 3, 4, 5, 6], "a copy keeps its own dimensions")
        shape.removeLast(3)
        XCTAssertEqual(Array(shape), [7, 2, 3])
        shape.append(9)
        shape.append(10)
        XCTAssertEqual(Array(shape), [7, 2, 3, 9, 10])
        shape.insert(0, at: 0)
        XCTAssertEqual(Array(shape), [0, 7, 2, 3, 9, 10])
        shape.removeFirst()
        XCTAssertEqual(Array(shape), [7, 2, 3, 9, 10])
        shape.replaceSubrange(1..<4, with: [1])
        XCTAssertEqual(Array(shape), [7, 1, 10])
        shape[1] = 5
        XCTAssertEqual(shape, [7, 5, 10])
        XCTAssertEqual(shape.reduce(1, *), 350)
        shape.removeAll()
        XCTAssertEqual(shape, [])
        XCTAssertEqual(shape, TensorShape())
    }

    func testEncodesExactlyAsAnArrayOfInt64AndDecodesBothEncodings() throws {
        for dimensions in shapes {
            var input = ModelInferRequest.InferInputTensor()
            input.name = "INPUT0"
            input.shape = TensorShape(dimensions)
            var expected = ProtoWriter()
            expected.writeString(field: 1, "INPUT0")
            expected.writePacked(ProtoInt64.self, field: 3, dimensions)
            XCTAssertEqual(input.encoded(), expected.buffer, "\(dimensions)")
            XCTAssertEqual(Array(try ModelInferRequest.InferInputTensor(decoding: input.encoded()).shape), dimensions)

            var output = ModelInferResponse.InferOutputTensor()
            output.shape = TensorShape(dimensions)
            XCTAssertEqual(Array(try ModelInferResponse.InferOutputTensor(decoding: output.encoded()).shape), dimensions)

            // Unpacked, one tag per dimension, as a proto2 encoder may send it.
            var unpacked = ProtoWriter()
            unpacked.writeUnpacked(ProtoInt64.self, field: 3, dimensions)
            XCTAssertEqual(Array(try ModelInferRequest.InferInputTensor(decoding: unpacked.buffer).shape), dimensions)
        }
    }

    func testPackedAndUnpackedRunsAppendToOneShape() throws {
        var writer = ProtoWriter()
        writer.writePacked(ProtoInt64.self, field: 3, [1, 2, 3] as [Int64])
        writer.write(ProtoInt64.self, field: 3, 4)
        writer.writePacked(ProtoInt64.self, field: 3, [5, 6] as [Int64])
        let decoded = try ModelInferRequest.InferInputTensor(decoding: writer.buffer)
        XCTAssertEqual(Array(decoded.shape), [1, 2, 3, 4, 5, 6])
    }

    func testATruncatedPackedShapeFails() throws {
        var writer = ProtoWriter()
        writer.writePacked(ProtoInt64.self, field: 3, [1, -1] as [Int64])
        let bytes = Array(writer.buffer.readableBytesView)
        // Every shorter prefix that cuts into the packed run fails with a decoding error.
        for length in 1..<bytes.count {
            XCTAssertThrowsError(try ModelInferRequest.InferInputTensor(decodingBytes: bytes[0..<length])) { error in
                XCTAssert(error is ProtoDecodingError, "\(length): \(error)")
            }
        }
    }
}
