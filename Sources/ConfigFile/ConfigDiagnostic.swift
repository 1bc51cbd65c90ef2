/// One mistake in a configuration file, where it is and what to do about it. Its description
/// is one line, as compilers write them: `FILE:LINE:COLUMN: error: MESSAGE; HINT`.
public struct ConfigDiagnostic: Sendable, Hashable, CustomStringConvertible {
    /// The file as it was named to the loader.
    public var file: String
    /// 1-based line and column of the node at fault.
    public var line: Int
    public var column: Int
    /// What is wrong.
    public var message: String
    /// What to do about it (the nearest valid key, the allowed values ...); nil when the
    /// message says it all.
    public var hint: String?

    public init(file: String, line: Int, column: Int, message: String, hint: String? = nil) {
        self.file = file
        self.line = line
        self.column = column
        self.message = message
        self.hint = hint
    }

    public var description: String {
        "\(file):\(line):\(column): error: \(message)" + (hint.map { "; \($0)" } ?? "")
    }
}

/// A configuration file that cannot be used: every mistake found in it, in file order.
public struct ConfigFileError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [ConfigDiagnostic]

    public init(_ diagnostics: [ConfigDiagnostic]) { self.diagnostics = diagnostics }

    /// One line per mistake.
    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

/// The closest of `candidates` to `word` by edit distance, when it is close enough to be the
/// word that was meant (at most a third of its letters differ, and at least one).
func nearest(_ word: String, in candidates: [String]) -> String? {
    let scored = candidates.map { (candidate: $0, distance: editDistance(word, $0)) }
    guard let best = scored.min(by: { $0.distance < $1.distance }) else { return nil }
    return best.distance <= max(2, word.count / 3) ? best.candidate : nil
}

/// Levenshtein distance over characters.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a)
    let b = Array(b)
    if a.isEmpty { return b.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in stride(from: 1, through: b.count, by: 1) {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}
