import FuzzCommon
import InferenceProtocol
import NIOCore
import ProtoWire

/// One input: bytes arriving on a worker socket, in either direction.
///
/// Reads frames with `WorkerFrame.read(from:)` until it wants more bytes or reports a framing
/// error, as a connection's decoder does. Each frame must write back to the same bytes and read
/// back to the same frame; its payload is decoded as its kind's message (decode errors are
/// expected and ignored) and every payload that decodes must survive a round trip. The tensors
/// nested in INFER_REQUEST and INFER_RESPONSE are decoded too, as a worker and the gateway do.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMe(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    var input = FuzzCheck.buffer(start, count)
    let limits = ProtoLimits.default

    while true {
        let before = input
        let frame: WorkerFrame
        do {
            guard let next = try WorkerFrame.read(from: &input) else {
                FuzzCheck.require(input.readerIndex == before.readerIndex, "read(from:) returned nil but consumed bytes")
                break
            }
            frame = next
        } catch is WorkerFrame.FramingError {
            break
        } catch {
            FuzzCheck.fail("read(from:) threw something other than FramingError: \(error)")
        }

        let consumed = before.readableBytes - input.readableBytes
        FuzzCheck.require(
            consumed == WorkerFrame.headerSize + frame.payload.readableBytes,
            "frame consumed \(consumed) bytes for a \(frame.payload.readableBytes)-byte payload")
        var written = ByteBuffer()
        frame.write(to: &written)
        FuzzCheck.require(
            written == before.getSlice(at: before.readerIndex, length: consumed),
            "frame writes back as \(FuzzCheck.hex(written)), not as the bytes it was read from")
        var rereadBuffer = written
        FuzzCheck.require(
            (try? WorkerFrame.read(from: &rereadBuffer)) == frame && rereadBuffer.readableBytes == 0,
            "a written frame does not read back as itself")

        switch frame.kind {
        case .hello:
            FuzzCheck.decodeAndRoundTrip(WorkerProtocol.Hello.self, frame.payload, limits: limits)
        case .inferRequest:
            if let request = FuzzCheck.decodeAndRoundTrip(WorkerProtocol.InferRequest.self, frame.payload, limits: limits) {
                FuzzCheck.decodeAndRoundTrip(ModelInferRequest.self, request.request, limits: limits)
            }
        case .inferResponse:
            if let response = FuzzCheck.decodeAndRoundTrip(WorkerProtocol.InferResponse.self, frame.payload, limits: limits) {
                FuzzCheck.decodeAndRoundTrip(ModelInferResponse.self, response.response, limits: limits)
            }
        case .cancel:
            FuzzCheck.decodeAndRoundTrip(WorkerProtocol.Cancel.self, frame.payload, limits: limits)
        case .ping:
            FuzzCheck.decodeAndRoundTrip(WorkerProtocol.Ping.self, frame.payload, limits: limits)
        case .pong:
            FuzzCheck.decodeAndRoundTrip(WorkerProtocol.Pong.self, frame.payload, limits: limits)
        case .error:
            FuzzCheck.decodeAndRoundTrip(WorkerProtocol.Status.self, frame.payload, limits: limits)
        default:
            // STREAM_END has an empty payload and unknown kinds are ignored, by the protocol.
            break
        }
    }
    return 0
}
