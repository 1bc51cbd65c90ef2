import NIOCore
import ProtoWire

/// Prints a decoded message in a compact, text-format-like layout for people: default-valued
/// fields are left out, bytes are shown as their size and a hex preview, as protoc's
/// `--decode` output leaves out defaults.
enum MessagePrinter {
    static func render(_ message: any ProtoMessage) -> String {
        var out = ""
        renderFields(of: message, indent: 0, into: &out)
        return out
    }

    private static func renderFields(of value: Any, indent: Int, into out: inout String) {
        for child in Mirror(reflecting: value).children {
            guard let label = child.label, label != "unknownFields" || !((child.value as? UnknownFields)?.isEmpty ?? true) else {
                continue
            }
            renderField(label, child.value, indent: indent, into: &out)
        }
    }

    private static func renderField(_ label: String, _ value: Any, indent: Int, into out: inout String) {
        let pad = String(repeating: "  ", count: indent)
        let mirror = Mirror(reflecting: value)
        if let scalar = scalarText(value) {
            if !isDefault(value) { out += "\(pad)\(label): \(scalar)\n" }
            return
        }
        switch mirror.displayStyle {
        case .optional:
            if let some = mirror.children.first?.value { renderField(label, some, indent: indent, into: &out) }
        case .collection:
            for element in mirror.children { renderField(label, element.value, indent: indent, into: &out) }
        case .dictionary:
            let entries = mirror.children.compactMap { entry -> (String, Any)? in
                let pair = Array(Mirror(reflecting: entry.value).children)
                guard pair.count == 2 else { return nil }
                return ("\(pair[0].value)", pair[1].value)
            }.sorted { $0.0 < $1.0 }
            for (key, entryValue) in entries {
                out += "\(pad)\(label) {\n\(pad)  key: \(quoted(key))\n"
                renderField("value", entryValue, indent: indent + 1, into: &out)
                out += "\(pad)}\n"
            }
        case .enum:
            if let payload = mirror.children.first {
                renderField(payload.label ?? label, payload.value, indent: indent, into: &out)
            } else {
                out += "\(pad)\(label): \(value)\n"
            }
        default:
            out += "\(pad)\(label) {\n"
            renderFields(of: value, indent: indent + 1, into: &out)
            out += "\(pad)}\n"
        }
    }

    private static func scalarText(_ value: Any) -> String? {
        switch value {
        case let string as String: return quoted(string)
        case let buffer as ByteBuffer:
            let preview = buffer.readableBytesView.prefix(16).map { byte in
                let hex = String(byte, radix: 16)
                return byte < 16 ? "0" + hex : hex
            }.joined()
            return "<\(buffer.readableBytes) bytes\(buffer.readableBytes > 0 ? ": " + preview : "")\(buffer.readableBytes > 16 ? "…" : "")>"
        case let fields as UnknownFields: return "<\(fields.bytes?.readableBytes ?? 0) bytes of unknown fields>"
        case is Bool, is Int32, is Int64, is UInt32, is UInt64, is Int, is Float, is Double: return "\(value)"
        default: return nil
        }
    }

    private static func isDefault(_ value: Any) -> Bool {
        switch value {
        case let string as String: return string.isEmpty
        case let buffer as ByteBuffer: return buffer.readableBytes == 0
        case let bool as Bool: return !bool
        case let number as Int32: return number == 0
        case let number as Int64: return number == 0
        case let number as UInt32: return number == 0
        case let number as UInt64: return number == 0
        case let number as Int: return number == 0
        case let number as Float: return number.bitPattern == 0
        case let number as Double: return number.bitPattern == 0
        default: return false
        }
    }

    private static func quoted(_ string: String) -> String {
        var out = "\""
        for scalar in string.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case _ where scalar.value < 0x20: out += "\\x" + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
