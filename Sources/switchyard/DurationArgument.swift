import ArgumentParser
import NIOCore

/// A duration on the command line: a number and a unit, `ms`, `s`, `m` or `h` (`250ms`, `20s`,
/// `5m`, `2h`), as grpc-go, Envoy and Go's time.ParseDuration spell them. Options that can be
/// turned off also take `off`.
struct DurationArgument: ExpressibleByArgument, Sendable, Equatable, CustomStringConvertible {
    /// nil for `off`.
    var amount: TimeAmount?
    private var text: String

    init?(argument: String) {
        let text = argument.trimmingCharacters(in: .whitespaces).lowercased()
        if text == "off" {
            self.amount = nil
            self.text = text
            return
        }
        let digits = text.prefix { $0.isNumber }
        let unit = text.dropFirst(digits.count)
        guard !digits.isEmpty, digits.count <= 12, let value = Int64(digits) else { return nil }
        switch unit {
        case "ms": amount = .milliseconds(value)
        case "s": amount = .seconds(value)
        case "m": amount = .minutes(value)
        case "h": amount = .hours(value)
        default: return nil
        }
        self.text = text
    }

    init(_ amount: TimeAmount?, _ text: String) {
        self.amount = amount
        self.text = text
    }

    var description: String { text }

    static var defaultCompletionKind: CompletionKind { .default }

    /// The duration, refusing `off` and zero for options that need one.
    func required(_ option: String) throws -> TimeAmount {
        guard let amount, amount > .zero else {
            throw ValidationError("\(option) needs a positive duration such as 500ms, 20s, 5m or 2h, not '\(text)'")
        }
        return amount
    }

    /// The duration or nil for `off`; zero is refused (say `off`).
    func optional(_ option: String) throws -> TimeAmount? {
        guard let amount else { return nil }
        guard amount > .zero else {
            throw ValidationError("\(option) needs a positive duration such as 20s, 5m or 2h, or 'off', not '\(text)'")
        }
        return amount
    }
}
