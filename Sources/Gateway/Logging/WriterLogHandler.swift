import Logging

#if canImport(Glibc)
import Glibc
#endif

/// A swift-log handler that writes each event as one line through a `LogLineWriter`, in the
/// format `--log-format` names: `text` (`TextLogFormat.line`) or `json`
/// (`JSONLogFormat.line`). The thread that logs (an event loop) never waits for the output.
public struct WriterLogHandler: LogHandler {
    public enum Format: Sendable {
        case text, json
    }

    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let writer: LogLineWriter
    private let format: Format

    public init(label: String, writer: LogLineWriter, format: Format, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.writer = writer
        self.format = format
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided, uniquingKeysWith: { _, new in new }) }
        if let explicit = event.metadata { all.merge(explicit, uniquingKeysWith: { _, new in new }) }
        if let error = event.error, all["error"] == nil { all["error"] = "\(error)" }
        let message = "\(event.message)"
        switch format {
        case .text: writer.write(TextLogFormat.line(level: event.level, message: message, label: label, source: event.source, metadata: all))
        case .json: writer.write(JSONLogFormat.line(level: event.level, message: message, label: label, source: event.source, metadata: all))
        }
    }
}

/// `--log-format json`: one JSON object per line,
/// `{"time":"2026-12-03T10:31:02.123Z","level":"info","logger":"switchyard","message":"…",
/// "source":"Gateway", …metadata}`. Metadata keys become fields (nested dictionaries and arrays
/// as JSON objects and arrays); a metadata key that collides with a fixed field is prefixed with
/// `metadata.`. Every string is escaped as JSON requires, so any message parses.
public enum JSONLogFormat {
    static let fixedFields: Set<String> = ["time", "level", "logger", "message", "source"]

    /// The JSON line for one log event (without its newline).
    static func line(
        level: Logger.Level, message: String, label: String, source: String, metadata: Logger.Metadata, time: timespec = Self.now()
    ) -> String {
        var out = "{\"time\":"
        appendString(timestamp(time), to: &out)
        out += ",\"level\":"
        appendString(level.rawValue, to: &out)
        out += ",\"logger\":"
        appendString(label, to: &out)
        out += ",\"message\":"
        appendString(message, to: &out)
        out += ",\"source\":"
        appendString(source, to: &out)
        for key in metadata.keys.sorted() {
            out += ","
            appendString(fixedFields.contains(key) ? "metadata." + key : key, to: &out)
            out += ":"
            appendValue(metadata[key]!, to: &out)
        }
        out += "}"
        return out
    }

    static func now() -> timespec {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return time
    }

    /// RFC 3339 in UTC with milliseconds: "2026-12-03T10:31:02.123Z".
    static func timestamp(_ time: timespec) -> String {
        var seconds = time_t(time.tv_sec)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let millis = Int(time.tv_nsec / 1_000_000)
        let fraction = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(fraction)Z"
    }

    static func appendValue(_ value: Logger.Metadata.Value, to out: inout String) {
        switch value {
        case .string(let text): appendString(text, to: &out)
        case .stringConvertible(let convertible): appendString(convertible.description, to: &out)
        case .array(let values):
            out += "["
            for (index, element) in values.enumerated() {
                if index > 0 { out += "," }
                appendValue(element, to: &out)
            }
            out += "]"
        case .dictionary(let dictionary):
            out += "{"
            for (index, key) in dictionary.keys.sorted().enumerated() {
                if index > 0 { out += "," }
                appendString(key, to: &out)
                out += ":"
                appendValue(dictionary[key]!, to: &out)
            }
            out += "}"
        }
    }

    /// `text` as a JSON string: quotes, backslashes and control characters escaped.
    static func appendString(_ text: String, to out: inout String) {
        out += "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        out += "\""
    }
}
