/// Base64 with the standard alphabet (RFC 4648 §4), as gRPC's binary headers use it.
public enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// 0...63 for alphabet bytes, 0xFF for everything else.
    private static let reverse: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, byte) in alphabet.enumerated() { table[Int(byte)] = UInt8(index) }
        return table
    }()

    /// Encodes `bytes`; with `padded: false` the trailing "=" are left out.
    public static func encode(_ bytes: some Collection<UInt8>, padded: Bool) -> String {
        let count = bytes.count
        let capacity = (count + 2) / 3 * 4
        return String(unsafeUninitializedCapacity: capacity) { output in
            var written = 0
            var iterator = bytes.makeIterator()
            while let first = iterator.next() {
                let second = iterator.next()
                let third = second == nil ? nil : iterator.next()
                output[written] = alphabet[Int(first >> 2)]
                output[written + 1] = alphabet[Int((first & 0x03) << 4 | (second ?? 0) >> 4)]
                written += 2
                if let second {
                    output[written] = alphabet[Int((second & 0x0F) << 2 | (third ?? 0) >> 6)]
                    written += 1
                } else if padded {
                    output[written] = UInt8(ascii: "=")
                    written += 1
                }
                if let third {
                    output[written] = alphabet[Int(third & 0x3F)]
                    written += 1
                } else if padded {
                    output[written] = UInt8(ascii: "=")
                    written += 1
                }
            }
            return written
        }
    }

    /// Decodes padded or unpadded base64; nil for any other byte, misplaced padding, or a
    /// length that no encoding produces (one character left over).
    public static func decode(_ text: some Collection<UInt8>) -> [UInt8]? {
        var sextets = [UInt8]()
        sextets.reserveCapacity(text.count)
        var padding = 0
        for byte in text {
            if byte == UInt8(ascii: "=") {
                padding += 1
                continue
            }
            // Nothing may follow padding.
            guard padding == 0 else { return nil }
            let value = reverse[Int(byte)]
            guard value != 0xFF else { return nil }
            sextets.append(value)
        }
        if padding > 0 {
            // Padding completes the last quantum to exactly four characters.
            guard padding <= 2, (sextets.count + padding) % 4 == 0, sextets.count % 4 + padding == 4 else { return nil }
        }
        guard sextets.count % 4 != 1 else { return nil }

        var output = [UInt8]()
        output.reserveCapacity(sextets.count * 3 / 4)
        var index = 0
        while index + 4 <= sextets.count {
            let (a, b, c, d) = (sextets[index], sextets[index + 1], sextets[index + 2], sextets[index + 3])
            output.append(a << 2 | b >> 4)
            output.append(b << 4 | c >> 2)
            output.append(c << 6 | d)
            index += 4
        }
        switch sextets.count - index {
        case 2:
            output.append(sextets[index] << 2 | sextets[index + 1] >> 4)
        case 3:
            output.append(sextets[index] << 2 | sextets[index + 1] >> 4)
            output.append(sextets[index + 1] << 4 | sextets[index + 2] >> 2)
        default:
            break
        }
        return output
    }
}
