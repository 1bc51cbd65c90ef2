import H2Transport
import NIOCore

/// The counters of one serving event loop: gRPC calls by method and code, handling time,
/// messages, connections, TLS handshakes and GOAWAYs. Plain integers, changed only on the loop;
/// a scrape copies them there (`GatewayMetrics.snapshot`).
struct LoopCounters: Sendable {
    /// Per method (index `GRPCMethodDescriptor.index`; the last slot counts unknown methods).
    struct Method: Sendable {
        var started: UInt64 = 0
        /// Calls ended, by `GRPCStatus.Code.rawValue` (0 ... 16).
        var handled: [UInt64] = Array(repeating: 0, count: 17)
        var received: UInt64 = 0
        var sent: UInt64 = 0
        var handling: LatencyHistogram

        init(buckets: LatencyBuckets) {
            handling = LatencyHistogram(buckets: buckets)
        }

        var inFlight: UInt64 { started &- handled.reduce(0, &+) }

        static func + (a: Method, b: Method) -> Method {
            var sum = a
            sum.started &+= b.started
            for code in 0..<17 { sum.handled[code] &+= b.handled[code] }
            sum.received &+= b.received
            sum.sent &+= b.sent
            sum.handling = sum.handling + b.handling
            return sum
        }
    }

    let buckets: LatencyBuckets
    /// By method index; `unknown` for paths that name no method.
    var methods: [Method] = []
    var unknown: Method
    /// [plaintext, TLS]
    var connectionsOpened: [UInt64] = [0, 0]
    var connectionsClosed: [UInt64] = [0, 0]
    /// [full, resumed]
    var tlsHandshakes: [UInt64] = [0, 0]
    var tlsFailures: [UInt64] = Array(repeating: 0, count: TLSHandshakeFailureReason.allCases.count)
    var goAways: [UInt64] = Array(repeating: 0, count: HTTP2GoAwayReason.allCases.count)
    /// Access-log lines left out by sampling.
    var accessLogSampledOut: UInt64 = 0

    init(buckets: LatencyBuckets) {
        self.buckets = buckets
        self.unknown = Method(buckets: buckets)
    }

    static func + (a: LoopCounters, b: LoopCounters) -> LoopCounters {
        var sum = a
        if sum.methods.count < b.methods.count {
            sum.methods += Array(repeating: Method(buckets: a.buckets), count: b.methods.count - sum.methods.count)
        }
        for (index, method) in b.methods.enumerated() { sum.methods[index] = sum.methods[index] + method }
        sum.unknown = sum.unknown + b.unknown
        for index in 0..<2 {
            sum.connectionsOpened[index] &+= b.connectionsOpened[index]
            sum.connectionsClosed[index] &+= b.connectionsClosed[index]
            sum.tlsHandshakes[index] &+= b.tlsHandshakes[index]
        }
        for index in sum.tlsFailures.indices { sum.tlsFailures[index] &+= b.tlsFailures[index] }
        for index in sum.goAways.indices { sum.goAways[index] &+= b.goAways[index] }
        sum.accessLogSampledOut &+= b.accessLogSampledOut
        return sum
    }
}

/// The gateway's `GRPCServerObserver` for one serving event loop: counts into `LoopCounters`,
/// gives calls without a client `x-request-id` one of their own, and writes the access log.
/// Confined to its loop; every method is called there.
final class GatewayLoopObserver: GRPCServerObserver {
    let eventLoop: EventLoop
    private(set) var counters: LoopCounters
    private var requestIDs: RequestIDGenerator
    private let accessLog: AccessLogBatcher?

    init(eventLoop: EventLoop, buckets: LatencyBuckets, accessLog: AccessLogBatcher?) {
        self.eventLoop = eventLoop
        self.counters = LoopCounters(buckets: buckets)
        self.requestIDs = RequestIDGenerator()
        self.accessLog = accessLog
    }

    /// Hands the access-log lines of this loop to the writer (on shutdown).
    func flushAccessLog() {
        accessLog?.flush()
    }

    /// The counters now (called on the loop).
    func snapshot() -> LoopCounters {
        var copy = counters
        copy.accessLogSampledOut = accessLog?.sampledOut ?? 0
        return copy
    }

    // MARK: Connections

    func connectionOpened(secure: Bool) { counters.connectionsOpened[secure ? 1 : 0] &+= 1 }
    func connectionClosed(secure: Bool) { counters.connectionsClosed[secure ? 1 : 0] &+= 1 }
    func tlsHandshakeSucceeded(resumed: Bool) { counters.tlsHandshakes[resumed ? 1 : 0] &+= 1 }
    func tlsHandshakeFailed(_ reason: TLSHandshakeFailureReason) { counters.tlsFailures[reason.rawValue] &+= 1 }
    func goAwaySent(_ reason: HTTP2GoAwayReason) { counters.goAways[reason.rawValue] &+= 1 }

    // MARK: Calls

    /// Runs `body` on the counters of the call's method, growing the table for a method
    /// registered after the loop started.
    @inline(__always)
    private func withMethod(_ call: GRPCServerCall, _ body: (inout LoopCounters.Method) -> Void) {
        guard let index = call.method?.index else {
            body(&counters.unknown)
            return
        }
        if index >= counters.methods.count {
            counters.methods += Array(repeating: LoopCounters.Method(buckets: counters.buckets), count: index + 1 - counters.methods.count)
        }
        body(&counters.methods[index])
    }

    func callStarted(_ call: GRPCServerCall) {
        if call.requestID.isEmpty { call.requestID = requestIDs.next() }
        withMethod(call) { $0.started &+= 1 }
    }

    func callReceivedMessage(_ call: GRPCServerCall) {
        withMethod(call) { $0.received &+= 1 }
    }

    func callSentMessage(_ call: GRPCServerCall) {
        withMethod(call) { $0.sent &+= 1 }
    }

    func callFinished(_ call: GRPCServerCall, status: GRPCStatus) {
        let now = NIODeadline.now()
        let nanoseconds = UInt64(max(0, (now - call.startedAt).nanoseconds))
        let buckets = counters.buckets
        let code = Int(status.code.rawValue)
        withMethod(call) { method in
            method.handled[code < 17 ? code : 2] &+= 1
            method.handling.record(nanoseconds, buckets: buckets)
        }
        accessLog?.record(call, status: status, nanoseconds: nanoseconds)
    }
}

/// Request ids for calls that come without one: 15 characters of a 30-symbol alphabet (about
/// 73 bits), which Swift keeps inline in the `String` (no allocation). Not a secret: a
/// xorshift generator seeded once per loop from the system's random source.
struct RequestIDGenerator {
    private var state: (UInt64, UInt64)

    init() {
        var system = SystemRandomNumberGenerator()
        state = (system.next() | 1, system.next() | 1)
    }

    /// Lower-case letters and digits without the look-alikes 0, 1, l, o, i, u.
    private static let alphabet: [UInt8] = Array("23456789abcdefghjkmnpqrstvwxyz".utf8)

    mutating func next() -> String {
        var bits = nextWord()
        var more = nextWord()
        return String(unsafeUninitializedCapacity: 15) { buffer in
            for index in 0..<15 {
                if index == 12 { bits = more; more = 0 }
                buffer[index] = Self.alphabet[Int(bits % 30)]
                bits /= 30
            }
            return 15
        }
    }

    /// xorshift128+.
    private mutating func nextWord() -> UInt64 {
        var s1 = state.0
        let s0 = state.1
        state.0 = s0
        s1 ^= s1 << 23
        state.1 = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26)
        return state.1 &+ s0
    }
}
