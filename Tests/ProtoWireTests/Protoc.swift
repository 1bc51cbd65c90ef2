import Foundation
import XCTest

/// Runs Debian's `protoc` (package protobuf-compiler) as an independent protobuf implementation.
enum Protoc {
    /// The repository root, found from this file's path.
    static let repositoryRoot: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static var executable: String? {
        for candidate in ["/usr/bin/protoc", "/usr/local/bin/protoc"] where FileManager.default.isExecutableFile(atPath: candidate) {
            return candidate
        }
        return nil
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// `protoc --encode=TYPE` of a text-format message.
    static func encode(_ type: String, text: String, protoFile: String, includePath: URL) throws -> [UInt8] {
        try run(["--encode=\(type)", "-I", includePath.path, protoFile], input: Array(text.utf8))
    }

    /// `protoc --decode=TYPE` of binary bytes, giving text format.
    static func decode(_ type: String, bytes: [UInt8], protoFile: String, includePath: URL) throws -> String {
        String(decoding: try run(["--decode=\(type)", "-I", includePath.path, protoFile], input: bytes), as: UTF8.self)
    }

    static func run(_ arguments: [String], input: [UInt8]) throws -> [UInt8] {
        guard let executable else {
            throw Failure(description: "protoc not found: install Debian's protobuf-compiler (.ci/run does)")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        // Write and read concurrently so that neither pipe fills and blocks the other side.
        let writer = Thread {
            stdin.fileHandleForWriting.write(Data(input))
            try? stdin.fileHandleForWriting.close()
        }
        writer.start()
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        let errors = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw Failure(description: "protoc \(arguments.joined(separator: " ")) failed: \(String(decoding: errors, as: UTF8.self))")
        }
        return Array(output)
    }
}

/// A small deterministic generator (SplitMix64), so a failing property test can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
