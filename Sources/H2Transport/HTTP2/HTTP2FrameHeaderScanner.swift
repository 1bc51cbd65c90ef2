/// Finds every frame header in the bytes a peer sends, however they are split into reads.
///
/// The connection counts abusive frames from these headers. nghttp2's own begin-frame callback
/// is not enough for that: nghttp2 skips some frames without telling the application — frames
/// of unknown types, DATA on a stream it has reset — so a flood of those would go uncounted.
/// Frames are length-prefixed, so following the headers needs no other state. A value type on
/// one connection's event loop.
struct HTTP2FrameHeaderScanner {
    /// The 9-byte header that starts every frame (RFC 9113 §4.1).
    struct FrameHeader: Equatable {
        var length: Int
        var type: UInt8
        var flags: UInt8
        var streamID: Int32
    }

    /// Bytes of the client connection preface still to skip.
    private var prefaceLeft: Int
    /// Payload bytes of the current frame still to skip.
    private var payloadLeft = 0
    /// The bytes of a header split across reads.
    private var partial: [UInt8] = []

    /// A server's scanner first skips the 24-byte client preface; a client's starts at a frame.
    init(skippingClientPreface: Bool) {
        self.prefaceLeft = skippingClientPreface ? 24 : 0
        partial.reserveCapacity(9)
    }

    /// Calls `body` with each frame header completed by `bytes`, in order.
    mutating func scan(_ bytes: UnsafeRawBufferPointer, _ body: (FrameHeader) throws -> Void) rethrows {
        var index = 0
        let count = bytes.count
        if prefaceLeft > 0 {
            let skipped = min(prefaceLeft, count)
            prefaceLeft -= skipped
            index += skipped
        }
        while index < count {
            if payloadLeft > 0 {
                let skipped = min(payloadLeft, count - index)
                payloadLeft -= skipped
                index += skipped
                continue
            }
            let header: FrameHeader
            if partial.isEmpty && count - index >= 9 {
                header = Self.parse(UnsafeRawBufferPointer(rebasing: bytes[index..<(index + 9)]))
                index += 9
            } else {
                let taken = min(9 - partial.count, count - index)
                partial.append(contentsOf: bytes[index..<(index + taken)])
                index += taken
                guard partial.count == 9 else { return }
                header = partial.withUnsafeBytes { Self.parse($0) }
                partial.removeAll(keepingCapacity: true)
            }
            payloadLeft = header.length
            try body(header)
        }
    }

    private static func parse(_ bytes: UnsafeRawBufferPointer) -> FrameHeader {
        let length = Int(bytes[0]) << 16 | Int(bytes[1]) << 8 | Int(bytes[2])
        let streamID = (UInt32(bytes[5]) << 24 | UInt32(bytes[6]) << 16 | UInt32(bytes[7]) << 8 | UInt32(bytes[8])) & 0x7FFF_FFFF
        return FrameHeader(length: length, type: bytes[3], flags: bytes[4], streamID: Int32(streamID))
    }
}
