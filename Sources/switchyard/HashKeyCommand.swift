import ArgumentParser
import Foundation
import H2Transport

/// `switchyard hash-key`: the SHA-256 an API key is configured by (`auth.api_keys[].sha256`).
struct HashKeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hash-key",
        abstract: "Print the SHA-256 of an API key, as auth.api_keys takes it (the key itself is never stored).",
        discussion: """
            Reads the key from standard input (one line; the newline is not part of the key), so \
            that it stays out of the shell's history: `printf %s "$KEY" | switchyard hash-key`. \
            With --generate, makes a new random key, prints it on standard error and its hash on \
            standard output.
            """
    )

    @Flag(name: .customLong("generate"), help: "Make a new random key (32 bytes, base64url): the key on standard error, its SHA-256 on standard output.")
    var generate = false

    func run() throws {
        let key: String
        if generate {
            var bytes = [UInt8](repeating: 0, count: 32)
            var generator = SystemRandomNumberGenerator()
            for index in bytes.indices { bytes[index] = generator.next() }
            key = "sy_" + Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
            FileHandle.standardError.write(Data("\(key)\n".utf8))
        } else {
            guard let line = readLine(strippingNewline: true), !line.isEmpty else {
                throw ValidationError("give the key on standard input, e.g. printf %s \"$KEY\" | switchyard hash-key")
            }
            key = line
        }
        print(Digest.sha256Hex(key))
    }
}
