import InferenceProtocol
import NIOCore
import ProtoWire
import XCTest

/// `WorkerProtocol.InferRequest.frameHead`: a head written before the client's request bytes,
/// as two buffers, is the frame the copying encoder writes.
final class WorkerFrameHeadTests: XCTestCase {
    private struct Case {
        var modelName: String
        var modelVersion: String
        var deadline: Int64
        var requestBytes: Int
    }

    private let cases = [
        Case(modelName: "simple", modelVersion: "", deadline: 0, requestBytes: 40),
        Case(modelName: "simple", modelVersion: "7", deadline: 1_700_000_000_123_456_789, requestBytes: 1),
        // A request of 128 bytes or more takes a two-byte length; a negative deadline a ten-byte varint.
        Case(modelName: "repeat_int32", modelVersion: "12", deadline: -5, requestBytes: 300),
        Case(modelName: String(repeating: "m", count: 200), modelVersion: "v", deadline: 1, requestBytes: 70_000),
        Case(modelName: "", modelVersion: "", deadline: 0, requestBytes: 0),
    ]

    private func request(bytes count: Int) -> ByteBuffer {
        ByteBuffer(bytes: (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) })
    }

    func testHeadThenRequestBytesDecodeToTheSameMessageAsTheCopyingEncoder() throws {
        for (index, item) in cases.enumerated() {
            var message = WorkerProtocol.InferRequest()
            message.modelName = item.modelName
            message.modelVersion = item.modelVersion
            message.deadlineUnixNanos = item.deadline
            message.request = request(bytes: item.requestBytes)
            let requestID = UInt64(index) << 40 | 0xAB

            var head = WorkerProtocol.InferRequest.frameHead(
                requestID: requestID, modelName: item.modelName, modelVersion: item.modelVersion,
                deadlineUnixNanos: item.deadline, requestByteCount: item.requestBytes)
            XCTAssertLessThan(head.readableBytes, 13 + item.modelName.utf8.count + 40, "case \(index): the head holds no request bytes")
            var body = message.request
            head.writeBuffer(&body)

            var copied = ByteBuffer()
            WorkerFrame(kind: .inferRequest, requestID: requestID, message: message).write(to: &copied)
            XCTAssertEqual(head, copied, "case \(index): head + body are the copying encoder's bytes")

            let frame = try XCTUnwrap(try WorkerFrame.read(from: &head), "case \(index)")
            XCTAssertEqual(head.readableBytes, 0, "case \(index): exactly one frame")
            XCTAssertEqual(frame.kind, .inferRequest)
            XCTAssertEqual(frame.requestID, requestID)
            XCTAssertEqual(try WorkerProtocol.InferRequest(decoding: frame.payload), message, "case \(index)")
        }
    }

    func testTheHeadIsReadAsAFrameOnlyOnceTheRequestBytesFollow() throws {
        var head = WorkerProtocol.InferRequest.frameHead(
            requestID: 9, modelName: "simple", modelVersion: "1", deadlineUnixNanos: 0, requestByteCount: 64)
        XCTAssertNil(try WorkerFrame.read(from: &head), "the length counts the 64 request bytes still to come")
        var body = request(bytes: 64)
        head.writeBuffer(&body)
        XCTAssertNotNil(try WorkerFrame.read(from: &head))
    }

    func testFlowControlKindsHaveTheirNumbersAndNames() {
        XCTAssertEqual(WorkerFrame.Kind.pause.rawValue, 9)
        XCTAssertEqual(WorkerFrame.Kind.resume.rawValue, 10)
        XCTAssertEqual(WorkerFrame.Kind.pause.description, "PAUSE")
        XCTAssertEqual(WorkerFrame.Kind.resume.description, "RESUME")
        XCTAssertEqual(WorkerFrame.Kind(rawValue: 11).description, "UNKNOWN(11)")
    }
}
