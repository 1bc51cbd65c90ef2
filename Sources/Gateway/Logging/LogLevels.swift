import Logging

/// `--log-level`: a default level and optional levels per subsystem, as
/// `info,transport=debug,pool=warning`.
///
/// Subsystems: `transport` (connections, TLS, HTTP/2, gRPC calls), `pool` (worker supervision
/// and dispatch), `worker` (the lines workers write, forwarded), `admin` (the admin listener)
/// and `access` (the access log: a level above `info`, or `off`, turns it off).
public struct LogLevels: Sendable, Equatable {
    public static let subsystems = ["transport", "pool", "worker", "admin", "access"]

    /// The level of everything not named.
    public var defaultLevel: Logger.Level = .info
    /// Levels by subsystem; nil means off (only `access` may be off).
    public var levels: [String: Logger.Level?] = [:]

    public init(defaultLevel: Logger.Level = .info) {
        self.defaultLevel = defaultLevel
    }

    /// Parses `info`, `transport=debug` or `info,transport=debug,access=off`.
    public init(parsing text: String) throws(LogLevelsError) {
        for part in text.split(separator: ",", omittingEmptySubsequences: false).map({ $0.trimmingCharacters(in: " ") }) {
            let pieces = part.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            if pieces.count == 1 {
                guard let level = Logger.Level(rawValue: pieces[0]) else {
                    throw LogLevelsError(message: "unknown log level '\(pieces[0])'; use trace, debug, info, notice, warning, error or critical")
                }
                defaultLevel = level
                continue
            }
            let (subsystem, value) = (pieces[0], pieces[1])
            guard Self.subsystems.contains(subsystem) else {
                throw LogLevelsError(message: "unknown log subsystem '\(subsystem)'; the subsystems are \(Self.subsystems.joined(separator: ", "))")
            }
            if value == "off" {
                guard subsystem == "access" else { throw LogLevelsError(message: "only the access log can be 'off'; give \(subsystem) a level") }
                levels[subsystem] = .some(nil)
                continue
            }
            guard let level = Logger.Level(rawValue: value) else {
                throw LogLevelsError(message: "unknown log level '\(value)' for \(subsystem); use trace, debug, info, notice, warning, error or critical")
            }
            levels[subsystem] = level
        }
    }

    /// The level of `subsystem`.
    public func level(_ subsystem: String) -> Logger.Level {
        (levels[subsystem] ?? defaultLevel) ?? .critical
    }

    /// The lowest level any subsystem logs at (what a log handler must let through).
    public var lowestLevel: Logger.Level {
        levels.values.compactMap { $0 }.reduce(defaultLevel, min)
    }

    /// Whether the access log is on at these levels.
    public var accessLogEnabled: Bool {
        guard let access = levels["access"] else { return true }
        guard let level = access else { return false }
        return level <= .info
    }

    /// `base` for `subsystem`: its level, and `subsystem` in its metadata.
    public func logger(_ base: Logger, for subsystem: String) -> Logger {
        var logger = base
        logger.logLevel = levels[subsystem].map { $0 ?? .critical } ?? base.logLevel
        logger[metadataKey: "subsystem"] = "\(subsystem)"
        return logger
    }
}

public struct LogLevelsError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

extension StringProtocol {
    fileprivate func trimmingCharacters(in set: Character) -> String {
        String(drop(while: { $0 == set }).reversed().drop(while: { $0 == set }).reversed())
    }
}
