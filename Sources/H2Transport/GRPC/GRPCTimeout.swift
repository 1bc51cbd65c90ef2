/// A `grpc-timeout` value: 1 to 8 ASCII digits and a unit (PROTOCOL-HTTP2.md: "TimeoutValue →
/// positive integer as ASCII string of at most 8 digits", units H, M, S, m, u, n).
///
/// Parsing is strict: no sign, no spaces, no more than 8 digits, a known unit; each failure
/// says which rule was broken. Formatting from a `Duration` picks the shortest exact form, and
/// when none fits in 8 digits, the finest unit that does, rounded up (a deadline may be sent a
/// little late, never early).
public struct GRPCTimeout: Sendable, Hashable, CustomStringConvertible {
    /// A timeout unit and its letter on the wire.
    public enum Unit: Character, Sendable, Hashable, CaseIterable {
        case hours = "H"
        case minutes = "M"
        case seconds = "S"
        case milliseconds = "m"
        case microseconds = "u"
        case nanoseconds = "n"

        /// The unit as a duration.
        public var duration: Duration {
            switch self {
            case .hours: return .seconds(3600)
            case .minutes: return .seconds(60)
            case .seconds: return .seconds(1)
            case .milliseconds: return .milliseconds(1)
            case .microseconds: return .microseconds(1)
            case .nanoseconds: return .nanoseconds(1)
            }
        }
    }

    /// The largest amount: eight nines.
    public static let maxAmount = 99_999_999

    /// The number, 0...`maxAmount`.
    public let amount: Int
    /// The unit of `amount`.
    public let unit: Unit

    /// A timeout of `amount` `unit`s; nil when `amount` is outside 0...`maxAmount`.
    public init?(amount: Int, unit: Unit) {
        guard (0...Self.maxAmount).contains(amount) else { return nil }
        self.amount = amount
        self.unit = unit
    }

    /// The timeout as a duration (exact: the largest, 99999999H, is about 11,400 years).
    public var duration: Duration {
        unit.duration * amount
    }

    /// The `grpc-timeout` header value, e.g. `100m`.
    public var wireValue: String { "\(amount)\(unit.rawValue)" }

    /// Same as `wireValue`.
    public var description: String { wireValue }
}

// MARK: - Parsing

extension GRPCTimeout {
    /// Why a `grpc-timeout` value was refused.
    public struct ParseError: Error, Sendable, Hashable, CustomStringConvertible {
        /// The broken rule.
        public enum Reason: Sendable, Hashable {
            /// The value is empty.
            case empty
            /// No digits before the unit.
            case missingAmount
            /// More than 8 digits (the count is attached).
            case tooManyDigits(Int)
            /// A byte other than a digit before the unit.
            case notADigit
            /// The last character is not one of H, M, S, m, u, n.
            case unknownUnit
        }

        /// The broken rule.
        public let reason: Reason
        /// The value as received.
        public let value: String

        public var description: String {
            switch reason {
            case .empty:
                return "grpc-timeout is empty"
            case .missingAmount:
                return "grpc-timeout '\(value)' has no digits before its unit"
            case .tooManyDigits(let count):
                return "grpc-timeout '\(value)' has \(count) digits; at most 8 are allowed"
            case .notADigit:
                return "grpc-timeout '\(value)' has a character other than a digit before its unit"
            case .unknownUnit:
                return "grpc-timeout '\(value)' does not end in a unit (H, M, S, m, u or n)"
            }
        }
    }

    /// Parses a `grpc-timeout` header value such as `1S` or `250m`.
    ///
    /// Zero (`0n`) is accepted: it is a deadline that has already passed. Leading zeros are
    /// accepted within the 8 digits.
    public init(parsing value: some StringProtocol) throws(ParseError) {
        let utf8 = Substring(value).utf8
        guard let last = utf8.last else { throw ParseError(reason: .empty, value: String(value)) }
        guard let unit = Unit(rawValue: Character(Unicode.Scalar(last))) else {
            throw ParseError(reason: .unknownUnit, value: String(value))
        }
        let digits = utf8.dropLast()
        guard !digits.isEmpty else { throw ParseError(reason: .missingAmount, value: String(value)) }
        guard digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            throw ParseError(reason: .notADigit, value: String(value))
        }
        guard digits.count <= 8 else { throw ParseError(reason: .tooManyDigits(digits.count), value: String(value)) }
        self.amount = digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        self.unit = unit
    }
}

// MARK: - Formatting

extension GRPCTimeout {
    /// The wire form of `duration`.
    ///
    /// - The shortest exact form when one fits in 8 digits: the largest unit that divides the
    ///   duration (`1S`, not `1000m`; `90S`; `2M`).
    /// - Otherwise the finest unit whose amount fits, rounded up (1.000000001 s is 1000000001 ns,
    ///   9 digits, so it becomes `1000001u`).
    /// - Zero and negative durations become `0n`; durations beyond 99999999 hours become
    ///   `99999999H`. Sub-nanosecond parts round up to a whole nanosecond.
    public init(rounding duration: Duration) {
        guard duration > .zero else {
            self.init(validAmount: 0, unit: .nanoseconds)
            return
        }
        let max = Int64(Self.maxAmount)
        let components = duration.components
        guard components.seconds < max * 3600 else {
            self.init(validAmount: max, unit: .hours)
            return
        }
        var seconds = components.seconds
        var nanoseconds = components.attoseconds / 1_000_000_000
        if components.attoseconds % 1_000_000_000 != 0 { nanoseconds += 1 }
        if nanoseconds == 1_000_000_000 {
            seconds += 1
            nanoseconds = 0
        }

        // Exact, largest unit first: a larger unit never needs more digits.
        if nanoseconds == 0 {
            for (unit, unitSeconds) in [(Unit.hours, Int64(3600)), (.minutes, 60), (.seconds, 1)]
            where seconds % unitSeconds == 0 && seconds / unitSeconds <= max {
                self.init(validAmount: seconds / unitSeconds, unit: unit)
                return
            }
        }
        let subSecondUnits: [(Unit, Int64)] = [(.milliseconds, 1_000_000), (.microseconds, 1_000), (.nanoseconds, 1)]
        for (unit, unitNanoseconds) in subSecondUnits where nanoseconds % unitNanoseconds == 0 {
            let perSecond = 1_000_000_000 / unitNanoseconds
            if seconds <= max / perSecond, seconds * perSecond + nanoseconds / unitNanoseconds <= max {
                self.init(validAmount: seconds * perSecond + nanoseconds / unitNanoseconds, unit: unit)
                return
            }
        }

        // Rounded up, finest unit first.
        let roundingUnits: [(Unit, Int64)] = [(.nanoseconds, 1), (.microseconds, 1_000), (.milliseconds, 1_000_000), (.seconds, 1_000_000_000)]
        for (unit, unitNanoseconds) in roundingUnits {
            let perSecond = 1_000_000_000 / unitNanoseconds
            guard seconds <= max / perSecond else { continue }
            let amount = seconds * perSecond + (nanoseconds + unitNanoseconds - 1) / unitNanoseconds
            if amount <= max {
                self.init(validAmount: amount, unit: unit)
                return
            }
        }
        // ceil((s + f) / n) == ceil((s + 1) / n) for a fraction 0 < f <= 1 and whole n.
        let wholeSeconds = seconds + (nanoseconds > 0 ? 1 : 0)
        for (unit, unitSeconds) in [(Unit.minutes, Int64(60)), (.hours, 3600)] {
            let amount = wholeSeconds / unitSeconds + (wholeSeconds % unitSeconds == 0 ? 0 : 1)
            if amount <= max {
                self.init(validAmount: amount, unit: unit)
                return
            }
        }
        self.init(validAmount: max, unit: .hours)
    }

    private init(validAmount: Int64, unit: Unit) {
        self.amount = Int(validAmount)
        self.unit = unit
    }
}
