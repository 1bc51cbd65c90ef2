import Logging

#if canImport(Glibc)
import Glibc
#endif

/// A swift-log handler for people: one line per event in swift-log's stream format,
/// `2026-12-03T10:31:02.123Z info switchyard : model=simple worker=simple-0 [Gateway] worker started`
/// (time in UTC with milliseconds, level, label, metadata as sorted `key=value`, source module,
/// message), written through a `LogLineWriter` so that the thread that logs (an event loop)
/// never waits for the terminal or the pipe.
public struct TextLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let writer: LogLineWriter

    public init(label: String, writer: LogLineWriter, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.writer = writer
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
        writer.write(Self.line(level: event.level, message: "\(event.message)", label: label, source: event.source, metadata: all))
    }

    /// The line for one event (without its newline).
    static func line(
        level: Logger.Level, message: String, label: String, source: String, metadata: Logger.Metadata, time: timespec = JSONLogHandler.now()
    ) -> String {
        var out = JSONLogHandler.timestamp(time) + " \(level) \(label) :"
        for key in metadata.keys.sorted() { out += " \(key)=\(metadata[key]!)" }
        out += " [\(source)] \(message)"
        return out
    }
}
