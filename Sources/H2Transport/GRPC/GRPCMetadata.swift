/// Header fields as nghttp2 delivers and takes them: name and value, in wire order.
public typealias GRPCHeaderFields = [(name: String, value: String)]

/// Custom metadata of a gRPC call: an ordered list of name/value fields, as they travel in
/// request headers, response headers and trailers.
///
/// Names are lower-case (they are lower-cased when added). A name ending in `-bin` carries
/// binary bytes, which travel base64-encoded; all other values are ASCII text. Order is kept,
/// and so are duplicate names, each as its own field.
///
/// The wire form (`init(headerFields:)`, `appendHeaderFields(to:)`) leaves out names that the
/// gRPC protocol or HTTP/2 reserve (pseudo-headers, `te`, `content-type`, `grpc-timeout`, …),
/// so user metadata can never forge or duplicate a protocol header.
public struct GRPCMetadata: Sendable, Hashable {
    /// A metadata value: text for ordinary names, bytes for `-bin` names.
    public enum Value: Sendable, Hashable, CustomStringConvertible {
        /// An ASCII value (printable characters and space, 0x20–0x7E, on the wire).
        case string(String)
        /// A binary value, carried base64-encoded under a `-bin` name.
        case binary([UInt8])

        /// The text, or for bytes their unpadded base64 form.
        public var description: String {
            switch self {
            case .string(let text): return text
            case .binary(let bytes): return Base64.encode(bytes, padded: false)
            }
        }
    }

    /// One metadata field.
    public struct Field: Sendable, Hashable {
        /// Lower-case field name.
        public var name: String
        /// The field's value.
        public var value: Value
    }

    /// The fields, in order.
    public private(set) var fields: [Field] = []

    /// Empty metadata.
    public init() {}

    /// Metadata with the given text fields, in order (names are lower-cased).
    public init(_ pairs: KeyValuePairs<String, String>) {
        for (name, value) in pairs { add(name, value) }
    }

    /// Whether there are no fields.
    public var isEmpty: Bool { fields.isEmpty }

    /// The number of fields.
    public var count: Int { fields.count }

    /// Adds a text field. A `-bin` name stores the text's UTF-8 bytes as a binary value.
    public mutating func add(_ name: String, _ value: String) {
        let name = name.lowercased()
        if Self.isBinaryName(name) {
            fields.append(Field(name: name, value: .binary(Array(value.utf8))))
        } else {
            fields.append(Field(name: name, value: .string(value)))
        }
    }

    /// Adds a binary field. `name` must end in `-bin` (binary values can travel only under such
    /// names): another name is a programming error, caught by an assertion in debug builds and
    /// left out of the wire form in release builds.
    public mutating func add(_ name: String, binary: [UInt8]) {
        let name = name.lowercased()
        assert(Self.isBinaryName(name), "binary metadata needs a name ending in -bin, not '\(name)'")
        fields.append(Field(name: name, value: .binary(binary)))
    }

    /// Appends all fields of `other`, in order.
    public mutating func add(contentsOf other: GRPCMetadata) {
        fields.append(contentsOf: other.fields)
    }

    /// Removes every field named `name` (compared lower-case).
    public mutating func removeAll(named name: String) {
        let name = name.lowercased()
        fields.removeAll { $0.name == name }
    }

    /// All values of fields named `name` (compared lower-case), in order.
    public func values(named name: String) -> [Value] {
        let name = name.lowercased()
        return fields.lazy.filter { $0.name == name }.map(\.value)
    }

    /// The first text value named `name`, if there is one.
    public func firstString(named name: String) -> String? {
        for value in values(named: name) {
            if case .string(let text) = value { return text }
        }
        return nil
    }

    /// The first binary value named `name`, if there is one.
    public func firstBinary(named name: String) -> [UInt8]? {
        for value in values(named: name) {
            if case .binary(let bytes) = value { return bytes }
        }
        return nil
    }
}

extension GRPCMetadata: Sequence {
    /// Iterates the fields in order.
    public func makeIterator() -> IndexingIterator<[Field]> {
        fields.makeIterator()
    }
}

// MARK: - Wire form

extension GRPCMetadata {
    /// Extracts the custom metadata from received header fields (request headers, or a
    /// client's response headers and trailers).
    ///
    /// Reserved names are skipped (see `isReservedName`). A `-bin` value is split on "," and
    /// each part base64-decoded, padded or not (PROTOCOL-HTTP2.md: implementations "MUST accept
    /// padded and un-padded values" and "must split Binary-Headers on "," before decoding").
    /// Text values are kept as received, even outside the ASCII-Value range, which the spec
    /// allows ("may throw the value away or accept the value").
    ///
    /// - Throws: INTERNAL naming the field when a binary value is not valid base64, as grpc-go
    ///   answers "malformed binary metadata".
    public init(headerFields: some Sequence<(name: String, value: String)>) throws(GRPCStatus) {
        for (rawName, value) in headerFields {
            try appendReceived(name: rawName, value: value)
        }
    }

    /// One received header field, as `init(headerFields:)` takes each: skipped when reserved,
    /// decoded when binary. The request-head validation calls it on the header block in place
    /// (no sequence of copied pairs).
    mutating func appendReceived(name rawName: String, value: String) throws(GRPCStatus) {
        // HTTP/2 names are lower-case already (nghttp2 refuses others); lower-case only
        // when needed, since lowercased() builds a new string.
        let name = rawName.utf8.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) ? rawName.lowercased() : rawName
        if Self.isReservedName(name) { return }
        if Self.isBinaryName(name) {
            for part in value.utf8.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false) {
                guard let bytes = Base64.decode(Self.trimmingSpaces(part)) else {
                    throw GRPCStatus(
                        code: .internalError,
                        message: "malformed binary metadata in '\(name)': the value is not base64"
                    )
                }
                fields.append(Field(name: name, value: .binary(bytes)))
            }
        } else {
            fields.append(Field(name: name, value: .string(value)))
        }
    }

    /// Appends the fields in wire form: binary values as unpadded base64 ("should emit
    /// un-padded values"), text as is.
    ///
    /// A field that cannot legally be sent is left out rather than breaking the whole header
    /// block: reserved names, names outside gRPC's Header-Name grammar (`0-9 a-z _ - .`), text
    /// outside 0x20–0x7E, and binary values under names without `-bin`.
    public func appendHeaderFields(to headers: inout GRPCHeaderFields) {
        for field in fields {
            guard Self.isValidName(field.name), !Self.isReservedName(field.name) else { continue }
            switch field.value {
            case .string(let text):
                guard !Self.isBinaryName(field.name) else {
                    headers.append((field.name, Base64.encode(Array(text.utf8), padded: false)))
                    continue
                }
                guard Self.isValidASCIIValue(text) else { continue }
                headers.append((field.name, text))
            case .binary(let bytes):
                guard Self.isBinaryName(field.name) else { continue }
                headers.append((field.name, Base64.encode(bytes, padded: false)))
            }
        }
    }

    /// The fields in wire form (see `appendHeaderFields(to:)`).
    public var headerFields: GRPCHeaderFields {
        var headers = GRPCHeaderFields()
        headers.reserveCapacity(fields.count)
        appendHeaderFields(to: &headers)
        return headers
    }

    /// Whether `name` (lower-case) belongs to the protocol rather than to applications:
    /// pseudo-headers (`:path`, …); `te`, `content-type`, `content-length`, `user-agent`,
    /// `host`; HTTP/1 connection headers that HTTP/2 forbids (`connection`, `keep-alive`,
    /// `proxy-connection`, `transfer-encoding`, `upgrade`); and the `grpc-` headers that
    /// PROTOCOL-HTTP2.md defines (`grpc-timeout`, `grpc-encoding`, `grpc-accept-encoding`,
    /// `grpc-message-type`, `grpc-status`, `grpc-message`).
    ///
    /// Other `grpc-` names (`grpc-status-details-bin`, `grpc-trace-bin`,
    /// `grpc-previous-rpc-attempts`) pass: gRPC libraries use them as metadata.
    public static func isReservedName(_ name: some StringProtocol) -> Bool {
        let utf8 = name.utf8
        if utf8.first == UInt8(ascii: ":") { return true }
        // Only names as long as a reserved one can be reserved: most are settled without hashing.
        let length = utf8.count
        guard length < 64, reservedNameLengths & (1 << UInt64(length)) != 0 else { return false }
        return reservedNames.contains(String(name))
    }

    /// Bit n is set when some reserved name is n bytes long.
    private static let reservedNameLengths: UInt64 = reservedNames.reduce(0) { $0 | 1 << UInt64($1.utf8.count) }

    /// Whether `name` matches gRPC's Header-Name: `1*( %x30-39 / %x61-7A / "_" / "-" / ".")`.
    public static func isValidName(_ name: some StringProtocol) -> Bool {
        !name.utf8.isEmpty && name.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
        }
    }

    /// Whether `value` is a gRPC ASCII-Value (space and printable ASCII, 0x20–0x7E). The empty
    /// value is accepted, as HTTP/2 and every gRPC implementation accept it.
    public static func isValidASCIIValue(_ value: some StringProtocol) -> Bool {
        value.utf8.allSatisfy { $0 >= 0x20 && $0 <= 0x7E }
    }

    /// Whether `name` names a binary header (ends in `-bin`).
    public static func isBinaryName(_ name: some StringProtocol) -> Bool {
        let utf8 = name.utf8
        guard utf8.count > 4 else { return false }
        return utf8.suffix(4).elementsEqual("-bin".utf8)
    }

    private static let reservedNames: Set<String> = [
        "te", "content-type", "content-length", "user-agent", "host",
        "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade",
        "grpc-timeout", "grpc-encoding", "grpc-accept-encoding", "grpc-message-type",
        "grpc-status", "grpc-message",
    ]

    private static func trimmingSpaces(_ bytes: Substring.UTF8View.SubSequence) -> Substring.UTF8View.SubSequence {
        var bytes = bytes
        while bytes.first == UInt8(ascii: " ") || bytes.first == UInt8(ascii: "\t") { bytes = bytes.dropFirst() }
        while bytes.last == UInt8(ascii: " ") || bytes.last == UInt8(ascii: "\t") { bytes = bytes.dropLast() }
        return bytes
    }
}
