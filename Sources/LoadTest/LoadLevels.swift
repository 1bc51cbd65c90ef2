import Foundation
import H2Transport

/// perf_analyzer's `start:end:step` ranges (`--concurrency-range 1:16:2` → 1, 3, 5 … 15;
/// `4` alone is one level; `1:8` steps by 1).
public enum LoadLevels {
    /// The levels of `text`, or nil when it is not a range of positive numbers with end ≥ start
    /// and step > 0, or spells more than 10 000 levels.
    public static func parse(_ text: String) -> [Double]? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map { Double($0.trimmingCharacters(in: .whitespaces)) }
        guard (1...3).contains(parts.count), parts.allSatisfy({ $0 != nil && $0!.isFinite }) else { return nil }
        let start = parts[0]!
        let end = parts.count > 1 ? parts[1]! : start
        let step = parts.count > 2 ? parts[2]! : 1
        guard start > 0, end >= start, step > 0, (end - start) / step <= 10_000 else { return nil }
        var levels: [Double] = []
        var index = 0.0
        while true {
            let value = start + index * step
            if value > end + 1e-9 { break }
            levels.append(value)
            index += 1
        }
        return levels
    }
}

/// `-H 'name: value'` metadata lines.
public enum MetadataLine {
    /// The metadata of `lines` (names lowercased; `-bin` values base64-decoded by the transport
    /// are not supported here: give text values).
    ///
    /// - Throws: `LoadTestError` for a line without `:`, an invalid name, a reserved one
    ///   (`grpc-*`, pseudo-headers) or a value with characters HTTP/2 refuses.
    public static func parse(_ lines: [String]) throws -> GRPCMetadata {
        var metadata = GRPCMetadata()
        for line in lines {
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else {
                throw LoadTestError("-H '\(line)': expected 'name: value'")
            }
            let name = line[..<colon].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            guard GRPCMetadata.isValidName(name), !GRPCMetadata.isReservedName(name), !GRPCMetadata.isBinaryName(name) else {
                throw LoadTestError("-H '\(line)': '\(name)' cannot be sent as custom metadata")
            }
            guard GRPCMetadata.isValidASCIIValue(value) else {
                throw LoadTestError("-H '\(line)': the value must be printable ASCII")
            }
            metadata.add(name, value)
        }
        return metadata
    }
}
