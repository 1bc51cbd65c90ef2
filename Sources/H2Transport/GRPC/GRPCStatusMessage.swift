/// The percent-encoding of the `grpc-message` trailer (PROTOCOL-HTTP2.md, "Status-Message":
/// the text "physically encoded as UTF-8 followed by percent-encoding").
///
/// Encoding escapes every UTF-8 byte outside 0x20–0x7E, and "%" itself, as `%XX` with
/// upper-case hex digits. Decoding never fails: the spec says "implementations MUST NOT error
/// or throw away the message", so a broken `%` sequence is kept literally and bytes that are
/// not UTF-8 become U+FFFD.
public enum GRPCStatusMessage {
    /// The wire form of `message`; the same string when nothing needs escaping.
    public static func encode(_ message: String) -> String {
        let utf8 = message.utf8
        guard utf8.contains(where: needsEscaping) else { return message }
        var output = [UInt8]()
        output.reserveCapacity(utf8.count + 16)
        for byte in utf8 {
            if needsEscaping(byte) {
                output.append(UInt8(ascii: "%"))
                output.append(hexDigits[Int(byte >> 4)])
                output.append(hexDigits[Int(byte & 0x0F)])
            } else {
                output.append(byte)
            }
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// The text of a received `grpc-message` value. `%XX` (either case of hex digit) becomes
    /// the byte XX; a `%` not followed by two hex digits stays as it is.
    public static func decode(_ value: some StringProtocol) -> String {
        let utf8 = value.utf8
        guard utf8.contains(UInt8(ascii: "%")) else { return String(value) }
        var output = [UInt8]()
        output.reserveCapacity(utf8.count)
        var index = utf8.startIndex
        while index != utf8.endIndex {
            let byte = utf8[index]
            if byte == UInt8(ascii: "%") {
                let first = utf8.index(after: index)
                if first != utf8.endIndex, let high = hexValue(utf8[first]) {
                    let second = utf8.index(after: first)
                    if second != utf8.endIndex, let low = hexValue(utf8[second]) {
                        output.append(high << 4 | low)
                        index = utf8.index(after: second)
                        continue
                    }
                }
            }
            output.append(byte)
            index = utf8.index(after: index)
        }
        return String(decoding: output, as: UTF8.self)
    }

    private static let hexDigits = Array("0123456789ABCDEF".utf8)

    private static func needsEscaping(_ byte: UInt8) -> Bool {
        byte < 0x20 || byte > 0x7E || byte == UInt8(ascii: "%")
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        default: return nil
        }
    }
}
