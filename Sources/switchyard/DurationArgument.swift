import ArgumentParser
import ConfigFile
import Foundation
import NIOCore

/// A duration on the command line: a number and a unit, `ms`, `s`, `m` or `h` (`250ms`, `20s`,
/// `5m`, `2h`), as grpc-go, Envoy and Go's time.ParseDuration spell them. Options that can be
/// turned off also take `off`.
struct DurationArgument: ExpressibleByArgument, Sendable, Equatable, CustomStringConvertible {
    /// nil for `off`.
    var amount: TimeAmount?
    private var text: String

    init?(argument: String) {
        guard let amount = DurationText.parse(argument) else { return nil }
        self.amount = amount
        self.text = argument.trimmingCharacters(in: .whitespaces).lowercased()
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
