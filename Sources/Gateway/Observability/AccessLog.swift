import H2Transport
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// How the access log is written.
public struct AccessLogConfiguration: Sendable {
    /// Where lines go: "stdout", "stderr" or a file path (appended to). Default "stdout".
    public var destination: String = "stdout"
    /// The fraction of successful calls logged, 0 ... 1; calls that end with any other status
    /// are always logged. Default 1.
    public var sampleRate: Double = 1
    /// Lines waiting for the writer before new ones are dropped (and counted). Default 16384.
    public var capacity: Int = 16_384

    public init(destination: String = "stdout", sampleRate: Double = 1) {
        self.destination = destination
        self.sampleRate = sampleRate
    }
}

/// Formats one access-log line per finished call into a buffer of its loop, and hands the
/// buffer to the writer thread when it holds 32 KiB or 100 ms after its first line, whichever
/// comes first: one lock and one wake-up of the writer per batch, not per call, also when calls
/// come one at a time. Confined to its loop.
final class AccessLogBatcher {
    /// A batch goes to the writer at this size…
    static let batchBytes = 32 * 1024
    /// …or this long after its first line.
    static let flushInterval = TimeAmount.milliseconds(100)

    private let eventLoop: EventLoop
    private let writer: LogLineWriter
    /// Successful calls are logged when a draw below this threshold comes up (out of 2^32).
    private let sampleThreshold: UInt64
    private var random: UInt64
    private var buffer: [UInt8] = []
    private var lines = 0
    private var flushScheduled = false
    private var clock = AccessLogClock()
    /// Successful calls not logged because of sampling.
    private(set) var sampledOut: UInt64 = 0

    init(eventLoop: EventLoop, writer: LogLineWriter, sampleRate: Double) {
        self.eventLoop = eventLoop
        self.writer = writer
        self.sampleThreshold = UInt64((min(1, max(0, sampleRate)) * 4_294_967_296).rounded())
        var system = SystemRandomNumberGenerator()
        self.random = system.next() | 1
        buffer.reserveCapacity(16 * 1024)
    }

    /// Writes the line of a finished call (or counts it as sampled out).
    func record(_ call: GRPCServerCall, status: GRPCStatus, nanoseconds: UInt64) {
        if status.code == .ok, sampleThreshold < 4_294_967_296 {
            random ^= random << 13
            random ^= random >> 7
            random ^= random << 17
            if random & 0xFFFF_FFFF >= sampleThreshold {
                sampledOut &+= 1
                return
            }
        }
        appendLine(call, status: status, nanoseconds: nanoseconds)
        lines += 1
        if buffer.count >= Self.batchBytes {
            flush()
        } else if !flushScheduled {
            flushScheduled = true
            eventLoop.assumeIsolated().scheduleTask(in: Self.flushInterval) {
                self.flushScheduled = false
                self.flush()
            }
        }
    }

    /// Hands what the buffer holds to the writer (at once; the timer finds it empty later).
    func flush() {
        guard lines > 0 else { return }
        writer.write(batch: String(decoding: buffer, as: UTF8.self), lines: lines)
        buffer.removeAll(keepingCapacity: true)
        lines = 0
    }

    /// `{"time":…,"log":"access",…}` without the newline, which the writer adds.
    private func appendLine(_ call: GRPCServerCall, status: GRPCStatus, nanoseconds: UInt64) {
        if lines > 0 { buffer.append(UInt8(ascii: "\n")) }
        buffer.append(contentsOf: #"{"time":""#.utf8)
        clock.appendNow(to: &buffer)
        buffer.append(contentsOf: #"","log":"access","request_id":"#.utf8)
        JSONBytes.appendString(call.requestID, to: &buffer)
        buffer.append(contentsOf: #","peer":"#.utf8)
        JSONBytes.appendString(call.connection.remoteAddress, to: &buffer)
        buffer.append(contentsOf: #","tls_identity":"#.utf8)
        if let identity = Self.identity(of: call.connection) {
            JSONBytes.appendString(identity, to: &buffer)
        } else {
            buffer.append(contentsOf: "null".utf8)
        }
        let annotations = call.annotations
        buffer.append(contentsOf: #","principal":"#.utf8)
        JSONBytes.appendOptionalString(annotations.principal, to: &buffer)
        buffer.append(contentsOf: #","method":"#.utf8)
        JSONBytes.appendString(call.head.path, to: &buffer)
        buffer.append(contentsOf: #","model":"#.utf8)
        JSONBytes.appendOptionalString(annotations.model, to: &buffer)
        buffer.append(contentsOf: #","version":"#.utf8)
        JSONBytes.appendOptionalString(annotations.modelVersion, to: &buffer)
        buffer.append(contentsOf: #","grpc_code":""#.utf8)
        buffer.append(contentsOf: status.code.description.utf8)
        buffer.append(contentsOf: #"","grpc_status":"#.utf8)
        JSONBytes.appendInteger(UInt64(status.code.rawValue), to: &buffer)
        if status.code != .ok {
            buffer.append(contentsOf: #","grpc_message":"#.utf8)
            JSONBytes.appendString(status.message, to: &buffer)
        }
        buffer.append(contentsOf: #","duration_us":"#.utf8)
        JSONBytes.appendInteger(nanoseconds / 1000, to: &buffer)
        buffer.append(contentsOf: #","bytes_in":"#.utf8)
        JSONBytes.appendInteger(UInt64(call.bytesReceived), to: &buffer)
        buffer.append(contentsOf: #","bytes_out":"#.utf8)
        JSONBytes.appendInteger(UInt64(call.bytesSent), to: &buffer)
        buffer.append(contentsOf: #","worker_pid":"#.utf8)
        if annotations.workerPID > 0 {
            JSONBytes.appendInteger(UInt64(annotations.workerPID), to: &buffer)
        } else {
            buffer.append(contentsOf: "null".utf8)
        }
        buffer.append(contentsOf: #","user_agent":"#.utf8)
        if let agent = call.head.userAgent {
            JSONBytes.appendString(agent, to: &buffer)
        } else {
            buffer.append(contentsOf: "null".utf8)
        }
        buffer.append(UInt8(ascii: "}"))
    }

    /// The client certificate's identity: its first URI SAN (SPIFFE ids are URIs), else its
    /// first DNS name, else its subject CN; nil without a verified client certificate.
    static func identity(of connection: HTTP2ConnectionInfo) -> String? {
        guard let peer = connection.tls?.peer else { return nil }
        return peer.uris.first ?? peer.dnsNames.first ?? peer.commonName
    }
}

/// RFC 3339 UTC time with milliseconds, the date and time part formatted once per second.
struct AccessLogClock {
    private var second: Int = -1
    private var prefix: [UInt8] = []

    mutating func appendNow(to out: inout [UInt8]) {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        if now.tv_sec != second {
            second = now.tv_sec
            var seconds = time_t(now.tv_sec)
            var parts = tm()
            gmtime_r(&seconds, &parts)
            prefix.removeAll(keepingCapacity: true)
            func digits(_ value: Int32, _ count: Int) {
                var divisor: Int32 = 1
                for _ in 1..<count { divisor *= 10 }
                while divisor > 0 {
                    prefix.append(UInt8(ascii: "0") + UInt8((value / divisor) % 10))
                    divisor /= 10
                }
            }
            digits(parts.tm_year + 1900, 4)
            prefix.append(UInt8(ascii: "-"))
            digits(parts.tm_mon + 1, 2)
            prefix.append(UInt8(ascii: "-"))
            digits(parts.tm_mday, 2)
            prefix.append(UInt8(ascii: "T"))
            digits(parts.tm_hour, 2)
            prefix.append(UInt8(ascii: ":"))
            digits(parts.tm_min, 2)
            prefix.append(UInt8(ascii: ":"))
            digits(parts.tm_sec, 2)
            prefix.append(UInt8(ascii: "."))
        }
        out.append(contentsOf: prefix)
        let millis = Int(now.tv_nsec / 1_000_000)
        out.append(UInt8(ascii: "0") + UInt8(millis / 100))
        out.append(UInt8(ascii: "0") + UInt8(millis / 10 % 10))
        out.append(UInt8(ascii: "0") + UInt8(millis % 10))
        out.append(UInt8(ascii: "Z"))
    }
}

/// JSON values appended as UTF-8 bytes.
enum JSONBytes {
    /// `text` as a JSON string: quotes, backslashes and control characters escaped.
    static func appendString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var text = text
        text.withUTF8 { bytes in
            for byte in bytes {
                switch byte {
                case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
                case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
                case UInt8(ascii: "\n"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
                case UInt8(ascii: "\r"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
                case UInt8(ascii: "\t"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
                case 0..<0x20, 0x7F:
                    let hex: [UInt8] = Array("0123456789abcdef".utf8)
                    out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                    out.append(hex[Int(byte >> 4)])
                    out.append(hex[Int(byte & 0xF)])
                default: out.append(byte)
                }
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// A string, or `null` when empty.
    static func appendOptionalString(_ text: String, to out: inout [UInt8]) {
        if text.isEmpty {
            out.append(contentsOf: "null".utf8)
        } else {
            appendString(text, to: &out)
        }
    }

    static func appendInteger(_ value: UInt64, to out: inout [UInt8]) {
        guard value > 0 else {
            out.append(UInt8(ascii: "0"))
            return
        }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var rest = value
        withUnsafeMutableBytes(of: &digits) { storage in
            while rest > 0 {
                storage[19 - count] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                count += 1
            }
            out.append(contentsOf: storage[(20 - count)...])
        }
    }
}
