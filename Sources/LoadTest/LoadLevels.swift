import Foundation

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
