/// Byte-level helpers for the ASCII tokens of HTTP/2 and gRPC headers (names, content types,
/// encodings), which are compared case-insensitively without building lower-cased copies.
enum ASCIIBytes {
    /// ASCII case-insensitive equality of `value` and `expected` (given in lower case).
    static func equalsCaseInsensitive(_ value: UnsafeBufferPointer<UInt8>, _ expected: StaticString) -> Bool {
        guard value.count == expected.utf8CodeUnitCount else { return false }
        let lower = expected.utf8Start
        for index in 0..<value.count {
            let byte = value[index]
            if (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte) != lower[index] { return false }
        }
        return true
    }

    /// Runs `body` on the UTF-8 bytes of `string` (contiguous for native strings; copied
    /// otherwise).
    static func withUTF8<T>(_ string: some StringProtocol, _ body: (UnsafeBufferPointer<UInt8>) -> T) -> T {
        if let result = string.utf8.withContiguousStorageIfAvailable(body) { return result }
        return Array(string.utf8).withUnsafeBufferPointer(body)
    }
}
