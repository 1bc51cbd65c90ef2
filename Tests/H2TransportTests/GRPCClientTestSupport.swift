import Foundation
import H2Transport
import Logging
import NIOCore
import NIOPosix
import XCTest

/// What the test server's handlers saw, for assertions from the test.
final class GRPCTestServerRecord: Sendable {
    /// Statuses passed to `callCancelled`, by method path.
    let cancellations = LockedBox<[String: [GRPCStatus]]>([:])
    /// Calls of the slow method that have started.
    let slowCallsStarted = LockedBox(0)
    /// Messages the streaming method has sent so far.
    let streamedMessages = LockedBox(0)

    func cancelled(_ path: String) -> [GRPCStatus] {
        cancellations.withLock { $0[path] ?? [] }
    }
}

/// The methods of the in-process test server.
enum GRPCTestMethods {
    /// Echoes the request; response headers carry the request metadata plus what the server
    /// saw (`x-request-encoding`, `x-user-agent`, `x-timeout`, `x-peer-cn`); the trailers carry
    /// the request metadata with `t-` before each name.
    static let unary = "/switchyard.test.Echo/Unary"
    /// Request: UInt32 count, UInt32 size. Answers with `count` messages of `size` bytes, each
    /// starting with its UInt32 index, sending only while the stream is writable.
    static let serverStream = "/switchyard.test.Echo/ServerStream"
    /// Echoes every message as it arrives; OK with the request metadata as trailers at the end.
    static let bidi = "/switchyard.test.Echo/Bidi"
    /// Never answers: waits to be cancelled (deadline, client cancel).
    static let slow = "/switchyard.test.Echo/Slow"
    /// Ends with the status in request metadata `x-code` and `x-message-bin` (UTF-8) and the
    /// request metadata (other than those) as trailers.
    static let fail = "/switchyard.test.Echo/Fail"
    /// Answers like `unary` after `x-delay-ms` milliseconds.
    static let delayed = "/switchyard.test.Echo/Delayed"

    static func registry(record: GRPCTestServerRecord) -> GRPCServiceRegistry {
        let registry = GRPCServiceRegistry()
        registry.register(unary) { call in UnaryEcho(call: call, record: record, delay: nil) }
        registry.register(delayed) { call in
            UnaryEcho(call: call, record: record, delay: call.head.metadata.firstString(named: "x-delay-ms").flatMap(Int64.init))
        }
        registry.register(serverStream) { call in ServerStream(call: call, record: record) }
        registry.register(bidi) { call in BidiEcho(call: call, record: record) }
        registry.register(slow) { call in Slow(call: call, record: record) }
        registry.register(fail) { call in Fail(call: call, record: record) }
        return registry
    }

    private static func recordCancel(_ record: GRPCTestServerRecord, _ call: GRPCServerCall, _ status: GRPCStatus) {
        record.cancellations.withLock { $0[call.head.path, default: []].append(status) }
    }

    private final class UnaryEcho: GRPCServerCallHandler {
        let call: GRPCServerCall
        let record: GRPCTestServerRecord
        let delay: Int64?
        var request: ByteBuffer?
        var timer: Scheduled<Void>?

        init(call: GRPCServerCall, record: GRPCTestServerRecord, delay: Int64?) {
            self.call = call
            self.record = record
            self.delay = delay
        }

        func callReceived(message: ByteBuffer) { request = message }

        func callReceivedEnd() {
            if let delay {
                timer = call.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(delay)) { [self] in answer() }
            } else {
                answer()
            }
        }

        func answer() {
            var headers = call.head.metadata
            headers.add("x-request-encoding", call.head.requestEncoding?.name ?? "none")
            headers.add("x-user-agent", call.head.userAgent ?? "none")
            headers.add("x-timeout", call.head.timeout?.wireValue ?? "none")
            headers.add("x-authority", call.head.authority ?? "none")
            headers.add("x-peer-cn", call.connection.tls?.peer?.commonName ?? "none")
            call.sendHeaders(headers)
            call.sendMessage(request ?? ByteBuffer())
            var trailers = GRPCMetadata()
            for field in call.head.metadata {
                switch field.value {
                case .string(let text): trailers.add("t-" + field.name, text)
                case .binary(let bytes): trailers.add("t-" + field.name, binary: bytes)
                }
            }
            call.finish(.ok, trailers: trailers)
        }

        func callCancelled(_ status: GRPCStatus) {
            timer?.cancel()
            recordCancel(record, call, status)
        }
    }

    private final class ServerStream: GRPCServerCallHandler {
        let call: GRPCServerCall
        let record: GRPCTestServerRecord
        var remaining = 0
        var size = 0
        var next = 0

        init(call: GRPCServerCall, record: GRPCTestServerRecord) {
            self.call = call
            self.record = record
            call.onWritabilityChanged = { [weak self] writable in
                if writable { self?.pump() }
            }
        }

        func callReceived(message: ByteBuffer) {
            var message = message
            remaining = Int(message.readInteger(as: UInt32.self) ?? 0)
            size = max(4, Int(message.readInteger(as: UInt32.self) ?? 4))
        }

        func callReceivedEnd() {
            call.sendHeaders()
            pump()
        }

        func pump() {
            while remaining > 0 && call.isWritable && !call.isFinished {
                var message = ByteBuffer()
                message.writeInteger(UInt32(next))
                message.writeRepeatingByte(UInt8(truncatingIfNeeded: next), count: size - 4)
                call.sendMessage(message)
                next += 1
                remaining -= 1
                record.streamedMessages.withLock { $0 += 1 }
            }
            if remaining == 0 && !call.isFinished {
                call.finish(.ok)
            }
        }

        func callCancelled(_ status: GRPCStatus) { recordCancel(record, call, status) }
    }

    private final class BidiEcho: GRPCServerCallHandler {
        let call: GRPCServerCall
        let record: GRPCTestServerRecord

        init(call: GRPCServerCall, record: GRPCTestServerRecord) {
            self.call = call
            self.record = record
            call.sendHeaders(call.head.metadata)
            call.onWritabilityChanged = { [weak call] writable in
                if writable { call?.resumeReceiving() } else { call?.pauseReceiving() }
            }
        }

        func callReceived(message: ByteBuffer) {
            call.sendMessage(message)
            if !call.isWritable { call.pauseReceiving() }
        }

        func callReceivedEnd() { call.finish(.ok, trailers: call.head.metadata) }

        func callCancelled(_ status: GRPCStatus) { recordCancel(record, call, status) }
    }

    private final class Slow: GRPCServerCallHandler {
        let call: GRPCServerCall
        let record: GRPCTestServerRecord

        init(call: GRPCServerCall, record: GRPCTestServerRecord) {
            self.call = call
            self.record = record
            call.sendHeaders()
            record.slowCallsStarted.withLock { $0 += 1 }
        }

        func callReceived(message: ByteBuffer) {}

        func callCancelled(_ status: GRPCStatus) { recordCancel(record, call, status) }
    }

    private final class Fail: GRPCServerCallHandler {
        let call: GRPCServerCall
        let record: GRPCTestServerRecord

        init(call: GRPCServerCall, record: GRPCTestServerRecord) {
            self.call = call
            self.record = record
        }

        func callReceived(message: ByteBuffer) {}

        func callReceivedEnd() {
            let metadata = call.head.metadata
            let code = metadata.firstString(named: "x-code").flatMap(Int.init).flatMap(GRPCStatus.Code.init(rawValue:)) ?? .unknown
            var trailers = metadata
            trailers.removeAll(named: "x-code")
            trailers.removeAll(named: "x-message-bin")
            let message = metadata.firstBinary(named: "x-message-bin").map { String(decoding: $0, as: UTF8.self) } ?? ""
            call.finish(GRPCStatus(code: code, message: message), trailers: trailers)
        }

        func callCancelled(_ status: GRPCStatus) { recordCancel(record, call, status) }
    }
}

/// An in-process `GRPCServer` on 127.0.0.1 serving `GRPCTestMethods`.
struct GRPCTestServer {
    let server: GRPCServer
    let record: GRPCTestServerRecord
    let port: Int

    static func start(
        group: EventLoopGroup,
        tls: TLSContext? = nil,
        configure: (inout GRPCServer.Configuration) -> Void = { _ in }
    ) async throws -> GRPCTestServer {
        let record = GRPCTestServerRecord()
        var configuration = GRPCServer.Configuration(listeners: [.init(host: "127.0.0.1", port: 0, tls: tls)])
        configure(&configuration)
        let server = GRPCServer(
            configuration: configuration,
            registry: GRPCTestMethods.registry(record: record),
            group: group,
            logger: clientTestLogger
        )
        try await server.start()
        let port = try XCTUnwrap(server.boundAddresses.first?.port)
        return GRPCTestServer(server: server, record: record, port: port)
    }
}

let clientTestLogger = Logger(label: "switchyard.test") { _ in SwiftLogNoOpLogHandler() }

extension ByteBuffer {
    /// `count` bytes of a repeating pattern that compresses well but not to nothing.
    static func pattern(_ count: Int, seed: UInt8 = 0) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: count) { space in
            // One period of 251 bytes, then doubling copies: fast even in debug builds.
            let bytes = space.bindMemory(to: UInt8.self)
            let period = min(251, count)
            for index in 0..<period { bytes[index] = UInt8(truncatingIfNeeded: index) &+ seed }
            var filled = period
            while filled < count {
                let chunk = min(filled, count - filled)
                UnsafeMutableRawBufferPointer(rebasing: space[filled..<(filled + chunk)])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: space[0..<chunk]))
                filled += chunk
            }
            return count
        }
        return buffer
    }
}

/// A grpcio server process (Tests/interop/grpcio_echo_server.py) on a free loopback port.
final class GrpcioEchoServer {
    let process: Process
    let port: Int
    private let stdin: Pipe
    private let stderrPath: String

    static var repositoryRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    }

    init() throws {
        let root = Self.repositoryRoot
        let python = root.appendingPathComponent(".venv/bin/python").path
        guard FileManager.default.isExecutableFile(atPath: python) else {
            throw XCTSkip("no Python virtualenv at \(python): run scripts/bootstrap.sh --python (scripts/test.sh does) to test against grpcio")
        }
        let script = root.appendingPathComponent("Tests/interop/grpcio_echo_server.py").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["-u", script, "0"]
        let stdin = Pipe()
        let stdout = Pipe()
        stderrPath = NSTemporaryDirectory() + "grpcio-echo-\(UUID().uuidString).log"
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        try process.run()
        self.process = process
        self.stdin = stdin

        // The server prints "READY <port>" once it listens.
        let line = LockedBox<String?>(nil)
        let reader = Thread {
            var collected = Data()
            while true {
                let chunk = stdout.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                collected.append(chunk)
                if let newline = collected.firstIndex(of: UInt8(ascii: "\n")) {
                    line.withLock { $0 = String(decoding: collected[..<newline], as: UTF8.self) }
                    break
                }
            }
            line.withLock { $0 = $0 ?? "" }
        }
        reader.start()
        let deadline = Date().addingTimeInterval(20)
        while line.current == nil && Date() < deadline { usleep(10_000) }
        let ready = line.current ?? ""
        guard ready.hasPrefix("READY "), let port = Int(ready.dropFirst(6)) else {
            process.terminate()
            process.waitUntilExit()
            let errors = (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? ""
            throw GRPCStatus(code: .unavailable, message: "grpcio server did not start (said '\(ready)'): \(errors)")
        }
        self.port = port
    }

    /// Stops the server: closing its stdin ends it; SIGTERM if it lingers.
    func stop() {
        try? stdin.fileHandleForWriting.close()
        let deadline = Date().addingTimeInterval(3)
        while process.isRunning && Date() < deadline { usleep(10_000) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        try? FileManager.default.removeItem(atPath: stderrPath)
    }
}
