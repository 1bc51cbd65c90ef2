import InferenceProtocol
import NIOCore
import ProtoWire
import XCTest

/// Frames written without copying their payloads: `InferRequest.frameHead` (a head, then the
/// client's request bytes as a second buffer), `WorkerFrame.encoded` (the payload written in
/// place after the header) and `InferResponse.write` (the response message encoded in place),
/// each against the copying encoder.
final class WorkerFrameEncodingTests: XCTestCase {
    private struct Case {
        var modelName: String
        var modelVersion: String
        var deadline: Int64
        var requestBytes: Int
        var trace = WorkerProtocol.TraceContext()
        var clientRequestID = ""
    }

    private let cases = [
        Case(modelName: "simple", modelVersion: "", deadline: 0, requestBytes: 40),
        Case(modelName: "simple", modelVersion: "7", deadline: 1_700_000_000_123_456_789, requestBytes: 1),
        // A request of 128 bytes or more takes a two-byte length; a negative deadline a ten-byte varint.
        Case(modelName: "repeat_int32", modelVersion: "12", deadline: -5, requestBytes: 300),
        Case(modelName: String(repeating: "m", count: 200), modelVersion: "v", deadline: 1, requestBytes: 70_000),
        Case(modelName: "", modelVersion: "", deadline: 0, requestBytes: 0),
        // Trace context and request id go before the request bytes too.
        Case(
            modelName: "simple", modelVersion: "1", deadline: 9, requestBytes: 40,
            trace: .init(traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", tracestate: "congo=t61rcWkgMzE"),
            clientRequestID: "req-42"),
        Case(modelName: "simple", modelVersion: "", deadline: 0, requestBytes: 3_000, clientRequestID: String(repeating: "r", count: 300)),
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
            message.trace = item.trace
            message.clientRequestID = item.clientRequestID
            message.request = request(bytes: item.requestBytes)
            let requestID = UInt64(index) << 40 | 0xAB

            var head = WorkerProtocol.InferRequest.frameHead(
                requestID: requestID, modelName: item.modelName, modelVersion: item.modelVersion,
                deadlineUnixNanos: item.deadline, trace: item.trace, clientRequestID: item.clientRequestID,
                requestByteCount: item.requestBytes)
            let strings = item.modelName.utf8.count + item.trace.traceparent.utf8.count + item.trace.tracestate.utf8.count
                + item.clientRequestID.utf8.count
            XCTAssertLessThan(head.readableBytes, 13 + strings + 40, "case \(index): the head holds no request bytes")
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

    func testAFrameEncodedInPlaceIsTheFrameTheCopyingEncoderWrites() throws {
        var pong = WorkerProtocol.Pong()
        pong.nonce = 3
        pong.inFlight = 1_000
        for capacity in [0, 4, 128] {
            let inPlace = WorkerFrame.encoded(kind: .pong, requestID: 77, payloadCapacity: capacity) { pong.encode(to: &$0) }
            var copied = ByteBuffer()
            WorkerFrame(kind: .pong, requestID: 77, message: pong).write(to: &copied)
            XCTAssertEqual(inPlace, copied, "payload capacity \(capacity)")
        }
        let empty = WorkerFrame.encoded(kind: .streamEnd, requestID: 5, payloadCapacity: 0) { _ in }
        XCTAssertEqual(Array(empty.readableBytesView), [0, 0, 0, 9, 4, 0, 0, 0, 0, 0, 0, 0, 5])
    }

    func testAResponseEncodedInPlaceDecodesAsTheCopyingEncodersMessage() throws {
        var response = ModelInferResponse()
        response.modelName = "simple"
        response.modelVersion = "1"
        response.rawOutputContents = [ByteBuffer(bytes: [UInt8](repeating: 9, count: 300))]  // a body over 127 bytes
        var timing = WorkerProtocol.Timing()
        timing.queueNs = 12
        timing.countsExecution = true
        for (final, withTiming) in [(true, true), (false, false)] {
            var writer = ProtoWriter()
            var asked = false
            WorkerProtocol.InferResponse.write(response: response, final: final, to: &writer) {
                asked = true
                return withTiming ? timing : nil
            }
            XCTAssertTrue(asked)
            var expected = WorkerProtocol.InferResponse()
            expected.response = response.encoded()
            expected.final = final
            expected.timing = withTiming ? timing : nil
            XCTAssertEqual(try WorkerProtocol.InferResponse(decoding: writer.buffer), expected, "final \(final)")
        }
    }

    func testFlowControlKindsHaveTheirNumbersAndNames() {
        XCTAssertEqual(WorkerFrame.Kind.pause.rawValue, 9)
        XCTAssertEqual(WorkerFrame.Kind.resume.rawValue, 10)
        XCTAssertEqual(WorkerFrame.Kind.pause.description, "PAUSE")
        XCTAssertEqual(WorkerFrame.Kind.resume.description, "RESUME")
        XCTAssertEqual(WorkerFrame.Kind(rawValue: 11).description, "UNKNOWN(11)")
    }
}

/// The trace context and request id fields of INFER_REQUEST (5, 6, 7): optional, ignored by a
/// reader that does not know them, and the trace id a worker logs.
final class InferRequestTraceFieldsTests: XCTestCase {
    func testAReaderThatKnowsOnlyTheFirstFieldsSkipsTheNewOnes() throws {
        var message = WorkerProtocol.InferRequest()
        message.modelName = "simple"
        message.trace = .init(traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", tracestate: "a=b")
        message.clientRequestID = "abc"
        message.request = ByteBuffer(bytes: [1, 2, 3])

        /// Fields 1 to 4 only, as a worker written before fields 5 to 7 existed.
        struct OldInferRequest: ProtoMessage {
            static let protoMessageName = "switchyard.worker.InferRequest"
            var modelName = ""
            var request = ByteBuffer()
            init() {}
            mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
                switch tag.fieldNumber {
                case 1: modelName = try reader.readString(tag)
                case 3: request = try reader.readBytes(tag)
                default: try reader.skipField(tag)
                }
            }
            func encode(to writer: inout ProtoWriter) {}
        }
        let old = try OldInferRequest(decoding: message.encoded())
        XCTAssertEqual(old.modelName, "simple")
        XCTAssertEqual(old.request, ByteBuffer(bytes: [1, 2, 3]))
    }

    func testAbsentFieldsDecodeEmpty() throws {
        var message = WorkerProtocol.InferRequest()
        message.modelName = "simple"
        let decoded = try WorkerProtocol.InferRequest(decoding: message.encoded())
        XCTAssertEqual(decoded.trace, WorkerProtocol.TraceContext())
        XCTAssertEqual(decoded.clientRequestID, "")
    }

    func testTheTraceIDIsTheSecondFieldOfAWellFormedTraceparent() {
        let id = WorkerProtocol.TraceContext(traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").traceID
        XCTAssertEqual(id, "0af7651916cd43dd8448eb211c80319c")
        for bad in ["", "00-0af7651916cd43dd8448eb211c80319c", "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01", "00-0af7651916cd43dd8448eb211c8031zz-b7ad6b7169203331-01"]
        {
            XCTAssertNil(WorkerProtocol.TraceContext(traceparent: bad).traceID, bad)
        }
    }
}
