import NIOCore

/// A mistake in a protobuf text-format document, with its line and column (1-based).
public struct ProtoTextFormatError: Error, Equatable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public var message: String

    public var description: String { "\(line):\(column): \(message)" }
}

/// Protobuf text format (what `protoc --encode` reads, and Triton's `config.pbtxt`) translated
/// into the wire format with a `ProtoSchema`, so that a message's hand-written decoder reads it:
/// `field: value`, `field { ... }` or `field: { ... }` (also `< ... >`), `field: [a, b]` for
/// repeated fields, enum values by name, strings in single or double quotes with C escapes and
/// adjacent strings joined, `#` comments, and fields separated by spaces, commas or semicolons.
/// Map fields are repeated `{ key: ... value: ... }` entries, as text format writes them.
public enum ProtoTextFormat {
    /// The wire bytes of the message `typeName` written as `text`.
    public static func encode(_ text: String, as typeName: String, schema: ProtoSchema) throws(ProtoTextFormatError) -> [UInt8] {
        var parser = Parser(bytes: Array(text.utf8), schema: schema)
        var writer = ProtoWriter(capacity: 256)
        try parser.message(typeName, into: &writer, closing: nil)
        return Array(buffer: writer.buffer)
    }

    struct Parser {
        let bytes: [UInt8]
        let schema: ProtoSchema
        var position = 0
        var line = 1
        var lineStart = 0

        init(bytes: [UInt8], schema: ProtoSchema) {
            self.bytes = bytes
            self.schema = schema
        }

        func fail(_ message: String, at place: (line: Int, column: Int)? = nil) -> ProtoTextFormatError {
            ProtoTextFormatError(line: place?.line ?? line, column: place?.column ?? position - lineStart + 1, message: message)
        }

        mutating func skipSpace() {
            while position < bytes.count {
                switch bytes[position] {
                case UInt8(ascii: "\n"):
                    position += 1
                    line += 1
                    lineStart = position
                case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                    position += 1
                case UInt8(ascii: "#"):
                    while position < bytes.count, bytes[position] != UInt8(ascii: "\n") { position += 1 }
                default:
                    return
                }
            }
        }

        mutating func peek() -> UInt8? {
            skipSpace()
            return position < bytes.count ? bytes[position] : nil
        }

        mutating func take(_ byte: UInt8) -> Bool {
            guard peek() == byte else { return false }
            position += 1
            return true
        }

        /// An identifier, number or other bare token (letters, digits, `_ . - +`).
        mutating func word() -> String? {
            skipSpace()
            let start = position
            while position < bytes.count {
                let byte = bytes[position]
                let isWord = (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                    || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
                    || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+")
                guard isWord else { break }
                position += 1
            }
            return position > start ? String(decoding: bytes[start..<position], as: UTF8.self) : nil
        }

        /// One or more adjacent quoted strings, joined, with C escapes.
        mutating func string() throws(ProtoTextFormatError) -> [UInt8] {
            var out: [UInt8] = []
            while let quote = peek(), quote == UInt8(ascii: "\"") || quote == UInt8(ascii: "'") {
                position += 1
                while true {
                    guard position < bytes.count, bytes[position] != UInt8(ascii: "\n") else { throw fail("a string is not closed") }
                    let byte = bytes[position]
                    position += 1
                    if byte == quote { break }
                    guard byte == UInt8(ascii: "\\") else {
                        out.append(byte)
                        continue
                    }
                    guard position < bytes.count else { throw fail("a string ends in an escape") }
                    let escaped = bytes[position]
                    position += 1
                    switch escaped {
                    case UInt8(ascii: "n"): out.append(0x0a)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "r"): out.append(0x0d)
                    case UInt8(ascii: "0")...UInt8(ascii: "7"):
                        var value = Int(escaped - UInt8(ascii: "0"))
                        for _ in 0..<2 where position < bytes.count && (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(bytes[position]) {
                            value = value * 8 + Int(bytes[position] - UInt8(ascii: "0"))
                            position += 1
                        }
                        out.append(UInt8(truncatingIfNeeded: value))
                    case UInt8(ascii: "x"):
                        var value = 0
                        var digits = 0
                        while digits < 2, position < bytes.count, let digit = Self.hexDigit(bytes[position]) {
                            value = value * 16 + digit
                            position += 1
                            digits += 1
                        }
                        guard digits > 0 else { throw fail("\\x without hex digits") }
                        out.append(UInt8(value))
                    default: out.append(escaped)  // \\ \' \" and anything else as itself
                    }
                }
            }
            return out
        }

        static func hexDigit(_ byte: UInt8) -> Int? {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): return Int(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): return Int(byte - UInt8(ascii: "a")) + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): return Int(byte - UInt8(ascii: "A")) + 10
            default: return nil
            }
        }

        /// The fields of message `typeName` until `closing` (or the end of the document).
        mutating func message(_ typeName: String, into writer: inout ProtoWriter, closing: UInt8?) throws(ProtoTextFormatError) {
            guard let type = schema.messages[typeName] else { throw fail("unknown message type \(typeName)") }
            while true {
                if let closing {
                    if take(closing) { return }
                    guard peek() != nil else { throw fail("'\(Character(UnicodeScalar(closing)))' expected before the end") }
                } else if peek() == nil {
                    return
                }
                let at = (line, position - lineStart + 1)
                guard let name = word() else { throw fail("a field name expected, found '\(Character(UnicodeScalar(peek() ?? 32)))'") }
                guard let field = type.fields[name] else {
                    let known = type.fields.keys.sorted()
                    throw ProtoTextFormatError(
                        line: at.0, column: at.1,
                        message: "\(type.name) has no field '\(name)'" + (Self.nearest(name, in: known).map { "; did you mean '\($0)'?" } ?? ""))
                }
                let colon = take(UInt8(ascii: ":"))
                if field.kind == .message || field.kind == .group {
                    if take(UInt8(ascii: "[")) {
                        guard field.isRepeated else { throw fail("'\(name)' is not a repeated field") }
                        if !take(UInt8(ascii: "]")) {
                            repeat { try nested(field, into: &writer) } while take(UInt8(ascii: ","))
                            guard take(UInt8(ascii: "]")) else { throw fail("']' expected after the values of '\(name)'") }
                        }
                    } else {
                        try nested(field, into: &writer)
                    }
                } else {
                    guard colon else { throw fail("':' expected after '\(name)'") }
                    if take(UInt8(ascii: "[")) {
                        guard field.isRepeated else { throw fail("'\(name)' is not a repeated field") }
                        if !take(UInt8(ascii: "]")) {
                            repeat { try scalar(field, into: &writer) } while take(UInt8(ascii: ","))
                            guard take(UInt8(ascii: "]")) else { throw fail("']' expected after the values of '\(name)'") }
                        }
                    } else {
                        try scalar(field, into: &writer)
                    }
                }
                _ = take(UInt8(ascii: ",")) || take(UInt8(ascii: ";"))
            }
        }

        mutating func nested(_ field: ProtoSchema.Field, into writer: inout ProtoWriter) throws(ProtoTextFormatError) {
            let closing: UInt8
            if take(UInt8(ascii: "{")) {
                closing = UInt8(ascii: "}")
            } else if take(UInt8(ascii: "<")) {
                closing = UInt8(ascii: ">")
            } else {
                throw fail("'{' expected after '\(field.name)'")
            }
            var inner = ProtoWriter(capacity: 64)
            try message(field.typeName, into: &inner, closing: closing)
            writer.writeBytes(field: field.number, inner.buffer)
        }

        mutating func scalar(_ field: ProtoSchema.Field, into writer: inout ProtoWriter) throws(ProtoTextFormatError) {
            switch field.kind {
            case .string, .bytes:
                guard let quote = peek(), quote == UInt8(ascii: "\"") || quote == UInt8(ascii: "'") else {
                    throw fail("'\(field.name)' takes a quoted string")
                }
                writer.writeBytes(field: field.number, try string())
                return
            default: break
            }
            skipSpace()
            let at = (line: line, column: position - lineStart + 1)
            func bad(_ message: String) -> ProtoTextFormatError { fail(message, at: at) }
            guard let text = word() else { throw bad("a value expected for '\(field.name)'") }
            switch field.kind {
            case .bool:
                switch text {
                case "true", "True", "t", "1": writer.write(ProtoBool.self, field: field.number, true)
                case "false", "False", "f", "0": writer.write(ProtoBool.self, field: field.number, false)
                default: throw bad("'\(field.name)' takes true or false, not '\(text)'")
                }
            case .enumeration:
                let values = schema.enums[field.typeName] ?? [:]
                if let number = values[text] ?? Int32(text) {
                    writer.write(ProtoInt32.self, field: field.number, number)
                } else {
                    let hint = Self.nearest(text, in: values.keys.sorted()).map { "; did you mean \($0)?" } ?? ""
                    throw bad("'\(text)' is not a value of \(field.typeName)\(hint)")
                }
            case .float, .double:
                let trimmed = text.hasSuffix("f") || text.hasSuffix("F") ? String(text.dropLast()) : text
                guard let value = Double(trimmed) ?? (["inf", "infinity"].contains(trimmed.lowercased()) ? .infinity : nil)
                        ?? (["-inf", "-infinity"].contains(trimmed.lowercased()) ? -.infinity : nil)
                else { throw bad("'\(field.name)' takes a number, not '\(text)'") }
                if field.kind == .float { writer.write(ProtoFloat.self, field: field.number, Float(value)) } else {
                    writer.write(ProtoDouble.self, field: field.number, value)
                }
            default:
                guard let value = Self.integer(text) else { throw bad("'\(field.name)' takes a whole number, not '\(text)'") }
                switch field.kind {
                case .int32, .sint32, .sfixed32:
                    guard let narrow = Int32(exactly: value) else { throw bad("\(text) does not fit '\(field.name)' (int32)") }
                    switch field.kind {
                    case .sint32: writer.write(ProtoSInt32.self, field: field.number, narrow)
                    case .sfixed32: writer.write(ProtoSFixed32.self, field: field.number, narrow)
                    default: writer.write(ProtoInt32.self, field: field.number, narrow)
                    }
                case .uint32, .fixed32:
                    guard let narrow = UInt32(exactly: value) else { throw bad("\(text) does not fit '\(field.name)' (uint32)") }
                    if field.kind == .fixed32 { writer.write(ProtoFixed32.self, field: field.number, narrow) } else {
                        writer.write(ProtoUInt32.self, field: field.number, narrow)
                    }
                case .uint64, .fixed64:
                    guard let wide = UInt64(exactly: value) else { throw bad("\(text) does not fit '\(field.name)' (uint64)") }
                    if field.kind == .fixed64 { writer.write(ProtoFixed64.self, field: field.number, wide) } else {
                        writer.write(ProtoUInt64.self, field: field.number, wide)
                    }
                case .sint64: writer.write(ProtoSInt64.self, field: field.number, Int64(value))
                case .sfixed64: writer.write(ProtoSFixed64.self, field: field.number, Int64(value))
                default: writer.write(ProtoInt64.self, field: field.number, Int64(value))
                }
            }
        }

        /// A decimal, hex (0x) or octal (leading 0) integer, signed.
        static func integer(_ text: String) -> Int64? {
            var digits = Substring(text)
            var negative = false
            if digits.hasPrefix("-") {
                negative = true
                digits = digits.dropFirst()
            } else if digits.hasPrefix("+") {
                digits = digits.dropFirst()
            }
            let magnitude: UInt64?
            if digits.hasPrefix("0x") || digits.hasPrefix("0X") {
                magnitude = UInt64(digits.dropFirst(2), radix: 16)
            } else if digits.count > 1, digits.hasPrefix("0") {
                magnitude = UInt64(digits.dropFirst(), radix: 8)
            } else {
                magnitude = UInt64(digits)
            }
            guard let magnitude else { return nil }
            if negative { return magnitude <= UInt64(Int64.max) + 1 ? Int64(truncatingIfNeeded: 0 &- magnitude) : nil }
            return magnitude <= UInt64(Int64.max) ? Int64(magnitude) : Int64(bitPattern: magnitude)
        }

        /// The closest of `candidates` to `word` by edit distance, when close enough to be a typo.
        static func nearest(_ word: String, in candidates: [String]) -> String? {
            func distance(_ a: [Character], _ b: [Character]) -> Int {
                var previous = Array(0...b.count)
                for (i, x) in a.enumerated() {
                    var current = [i + 1]
                    for (j, y) in b.enumerated() { current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1))) }
                    previous = current
                }
                return previous[b.count]
            }
            let scored = candidates.map { ($0, distance(Array(word), Array($0))) }.min { $0.1 < $1.1 }
            guard let scored, scored.1 <= max(2, word.count / 3) else { return nil }
            return scored.0
        }
    }
}
