import NIOCore
import ProtoWire

/// Helpers shared by the fuzz targets: the input as a `ByteBuffer`, the round-trip check, and
/// the trap that turns a broken invariant into a libFuzzer crash.
public enum FuzzCheck {
    /// The fuzzer's input, copied once into a buffer sized to it.
    public static func buffer(_ start: UnsafeRawPointer?, _ count: Int) -> ByteBuffer {
        guard let start, count > 0 else { return ByteBuffer() }
        return ByteBuffer(bytes: UnsafeRawBufferPointer(start: start, count: count))
    }

    /// Traps, so libFuzzer saves the input as a crash, unless `condition` holds.
    ///
    /// A trap here is a real bug in ProtoWire or InferenceProtocol, never a malformed input:
    /// malformed inputs must end in a thrown error.
    public static func require(
        _ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
        file: StaticString = #fileID, line: UInt = #line
    ) {
        if !condition() {
            fatalError("fuzz invariant broken: \(message())", file: file, line: line)
        }
    }

    /// Traps with `message`; for invariants that a control-flow path breaks.
    public static func fail(_ message: String, file: StaticString = #fileID, line: UInt = #line) -> Never {
        fatalError("fuzz invariant broken: \(message)", file: file, line: line)
    }

    /// Checks that `message`, decoded from some input, survives encode → decode unchanged.
    ///
    /// - The encoding must decode (with the same depth limit and no size limit: re-encoding may
    ///   legitimately grow an input, e.g. a 5-byte negative int32 becomes 10 bytes).
    /// - Encoding that value again must give the same bytes (encoding is deterministic).
    /// - The value decoded back must equal `message`. Equality is skipped when two decodes of
    ///   the same bytes differ from each other: that happens only when the value holds a NaN
    ///   (NaN != NaN), and then the byte comparison above is the check.
    ///
    /// Returns the first re-encoding, for callers that check more.
    @discardableResult
    public static func requireStableRoundTrip<M: ProtoMessage>(_ message: M, maxDepth: Int) -> ByteBuffer {
        let limits = ProtoLimits(maxMessageSize: .max, maxDepth: maxDepth)
        let first = message.encoded()
        let again: M
        do {
            again = try M(decoding: first, limits: limits)
        } catch {
            fail("\(M.protoMessageName): own encoding does not decode: \(error); encoding \(hex(first))")
        }
        let second = again.encoded()
        require(
            first == second,
            "\(M.protoMessageName): encoding is not stable: \(hex(first)) then \(hex(second))")
        if let twin = try? M(decoding: first, limits: limits), twin == again {
            require(
                message == again,
                "\(M.protoMessageName): value changed in a round trip through \(hex(first)):\n\(message)\n!=\n\(again)")
        }
        return first
    }

    /// Decodes `buffer` as `M`; when it decodes, checks its round trip. Decoding errors are
    /// expected (most inputs are malformed) and ignored.
    @discardableResult
    public static func decodeAndRoundTrip<M: ProtoMessage>(
        _ type: M.Type, _ buffer: ByteBuffer, limits: ProtoLimits = .default
    ) -> M? {
        guard let message = try? M(decoding: buffer, limits: limits) else { return nil }
        requireStableRoundTrip(message, maxDepth: limits.maxDepth)
        return message
    }

    /// `decodeAndRoundTrip` for a type chosen at run time.
    public static func decodeAndRoundTrip(
        messageOfType type: any ProtoMessage.Type, _ buffer: ByteBuffer, limits: ProtoLimits = .default
    ) {
        func open<M: ProtoMessage>(_ type: M.Type) {
            decodeAndRoundTrip(type, buffer, limits: limits)
        }
        open(type)
    }

    /// Lower-case hex of the buffer's readable bytes, cut after 512 bytes.
    public static func hex(_ buffer: ByteBuffer) -> String {
        let bytes = buffer.readableBytesView
        let digits = "0123456789abcdef".map { $0 }
        var out = ""
        out.reserveCapacity(min(bytes.count, 512) * 2 + 16)
        for byte in bytes.prefix(512) {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 15)])
        }
        if bytes.count > 512 { out += "…(\(bytes.count) bytes)" }
        return out
    }
}
