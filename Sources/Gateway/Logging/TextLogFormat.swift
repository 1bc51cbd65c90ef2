import Logging

#if canImport(Glibc)
import Glibc
#endif

/// `--log-format text`, for people: one line per event in swift-log's stream format,
/// `2026-12-03T10:31:02.123Z info switchyard : model=simple worker=simple-0 [Gateway] worker started`
/// (time in UTC with milliseconds, level, label, metadata as sorted `key=value`, source module,
/// message). `WriterLogHandler` writes it.
public enum TextLogFormat {
    /// The line for one event (without its newline).
    static func line(
        level: Logger.Level, message: String, label: String, source: String, metadata: Logger.Metadata, time: timespec = JSONLogFormat.now()
    ) -> String {
        var out = JSONLogFormat.timestamp(time) + " \(level) \(label) :"
        for key in metadata.keys.sorted() { out += " \(key)=\(metadata[key]!)" }
        out += " [\(source)] \(message)"
        return out
    }
}
