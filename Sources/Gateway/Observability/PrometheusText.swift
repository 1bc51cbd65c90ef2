/// Prometheus text exposition format 0.0.4, written family by family: `# HELP` and `# TYPE`
/// once per family, then its samples. Label values are escaped (backslash, quote, newline).
struct PrometheusText {
    private(set) var text = ""

    init() {
        text.reserveCapacity(64 * 1024)
    }

    enum Kind: String {
        case counter, gauge, histogram
    }

    /// Starts a family.
    mutating func family(_ name: String, _ kind: Kind, _ help: String) {
        text += "# HELP \(name) \(help)\n# TYPE \(name) \(kind.rawValue)\n"
    }

    /// One sample line.
    mutating func sample(_ name: String, _ labels: KeyValuePairs<String, String> = [:], _ value: UInt64) {
        appendName(name, labels)
        text += " \(value)\n"
    }

    mutating func sample(_ name: String, _ labels: KeyValuePairs<String, String> = [:], _ value: Double) {
        appendName(name, labels)
        text += " \(Self.format(value))\n"
    }

    /// A histogram's `_bucket` (cumulative, with `le`), `_sum` (seconds) and `_count` lines
    /// from per-bucket counts in nanoseconds.
    mutating func histogram(_ name: String, _ labels: KeyValuePairs<String, String>, _ histogram: LatencyHistogram, buckets: LatencyBuckets) {
        self.histogram(
            name, labels, counts: histogram.counts, upperBounds: buckets.upperBoundsNanos.map { Double($0) / 1e9 },
            sum: Double(histogram.sumNanos) / 1e9)
    }

    /// The same from per-bucket counts (the last one +Inf) with `upperBounds` in the unit of
    /// the values.
    mutating func histogram(_ name: String, _ labels: KeyValuePairs<String, String>, counts: [UInt64], upperBounds: [Double], sum: Double) {
        let prefix = Self.labelText(labels)
        var cumulative: UInt64 = 0
        for (index, bound) in upperBounds.enumerated() {
            cumulative &+= index < counts.count ? counts[index] : 0
            text += "\(name)_bucket{\(prefix)\(prefix.isEmpty ? "" : ",")le=\"\(Self.format(bound))\"} \(cumulative)\n"
        }
        let total = counts.reduce(0, &+)
        text += "\(name)_bucket{\(prefix)\(prefix.isEmpty ? "" : ",")le=\"+Inf\"} \(total)\n"
        text += "\(name)_sum\(prefix.isEmpty ? "" : "{\(prefix)}") \(Self.format(sum))\n"
        text += "\(name)_count\(prefix.isEmpty ? "" : "{\(prefix)}") \(total)\n"
    }

    /// Appends text rendered elsewhere (swift-prometheus's registry).
    mutating func append(_ rendered: String) {
        text += rendered
    }

    private mutating func appendName(_ name: String, _ labels: KeyValuePairs<String, String>) {
        text += name
        if !labels.isEmpty { text += "{\(Self.labelText(labels))}" }
    }

    static func labelText(_ labels: KeyValuePairs<String, String>) -> String {
        labels.map { "\($0.key)=\"\(escape($0.value))\"" }.joined(separator: ",")
    }

    static func escape(_ value: String) -> String {
        guard value.utf8.contains(where: { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\n") }) else { return value }
        var out = ""
        for character in value {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }

    /// A number as Prometheus reads it: integers without a fraction, others in shortest form.
    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }
}
