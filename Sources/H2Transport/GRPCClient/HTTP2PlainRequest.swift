import NIOCore

/// One plain HTTP/2 request of `GRPCClientConnection.startRequestOnEventLoop`: remembers the
/// `:status`, drops the body, and reports once when the stream ends. Confined to the event loop.
final class HTTP2PlainRequest: HTTP2StreamDelegate {
    private var onEnd: ((Int?) -> Void)?
    private var status: Int?
    private var ended = false

    init(onEnd: @escaping (Int?) -> Void) {
        self.onEnd = onEnd
    }

    /// Reports the outcome, once.
    func end() {
        guard let onEnd else { return }
        self.onEnd = nil
        onEnd(ended ? status : nil)
    }

    func stream(_ stream: HTTP2Stream, receivedHeaders headers: [HTTP2HeaderField], endStream: Bool) {
        if status == nil, let value = headers.first(where: { $0.name == ":status" })?.value {
            status = Int(value)
        }
        if endStream {
            ended = true
            end()
        }
    }

    func stream(_ stream: HTTP2Stream, receivedData data: ByteBuffer) {
        stream.consume(data.readableBytes)
    }

    func streamReceivedEnd(_ stream: HTTP2Stream) {
        ended = true
        end()
    }

    func stream(_ stream: HTTP2Stream, wasReset code: HTTP2ErrorCode) {
        end()
    }

    func streamClosed(_ stream: HTTP2Stream) {
        end()
    }

    func stream(_ stream: HTTP2Stream, writabilityChanged isWritable: Bool) {}
}
