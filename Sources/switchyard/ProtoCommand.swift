import ArgumentParser
import Foundation
import InferenceProtocol
import NIOCore
import ProtoWire

/// `switchyard proto`: look at protobuf bytes with Switchyard's own decoder.
struct ProtoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "proto",
        abstract: "Decode protobuf messages with Switchyard's codec.",
        subcommands: [Decode.self, List.self]
    )

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the message types `decode` accepts.")

        func run() {
            for name in MessageCatalog.messageTypes.keys.sorted() { print(name) }
        }
    }

    struct Decode: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Decode a message from standard input.",
            discussion: """
                Reads the binary protobuf encoding of one message (or, with --stream, a sequence of \
                messages each preceded by a 4-byte big-endian length) from standard input. \
                A malformed message is reported with its field path and the exit status is 65.
                """
        )

        enum Format: String, ExpressibleByArgument {
            /// The decoded Swift value, for people.
            case debug
            /// The message re-encoded by Switchyard (canonical field order).
            case binary
        }

        @Option(name: .long, help: "The fully-qualified message name, e.g. inference.ModelInferRequest.")
        var type: String

        @Option(name: .long, help: "debug: print the decoded value; binary: write it re-encoded.")
        var format: Format = .debug

        @Flag(
            name: .long,
            help: """
                Length-prefixed messages in, and for each one out: a status byte (0 decoded, 1 \
                malformed), a 4-byte big-endian length, then the output or the error message.
                """)
        var stream = false

        @Option(name: .long, help: "Largest message accepted, in bytes.")
        var maxMessageSize = ProtoLimits.default.maxMessageSize

        func validate() throws {
            guard MessageCatalog.messageType(named: type) != nil else {
                throw ValidationError("unknown message type '\(type)'; `switchyard proto list` lists the known ones")
            }
        }

        func run() throws {
            let messageType = MessageCatalog.messageType(named: type)!
            let limits = ProtoLimits(maxMessageSize: maxMessageSize)
            let input = FileHandle.standardInput
            if !stream {
                let data = input.readDataToEndOfFile()
                switch render(ByteBuffer(bytes: data), as: messageType, limits: limits) {
                case .success(let output):
                    FileHandle.standardOutput.write(output)
                case .failure(let error):
                    FileHandle.standardError.write(Data("switchyard: \(error)\n".utf8))
                    throw ExitCode(65)
                }
                return
            }
            while let header = readExactly(4, from: input) {
                let length = header.withUnsafeBytes { Int(UInt32(bigEndian: $0.loadUnaligned(as: UInt32.self))) }
                guard let body = readExactly(length, from: input) else {
                    FileHandle.standardError.write(Data("switchyard: input ended inside a message\n".utf8))
                    throw ExitCode(65)
                }
                var frame = Data()
                let result = render(ByteBuffer(bytes: body), as: messageType, limits: limits)
                let (status, payload): (UInt8, Data) =
                    switch result {
                    case .success(let output): (0, output)
                    case .failure(let error): (1, Data("\(error)".utf8))
                    }
                frame.append(status)
                withUnsafeBytes(of: UInt32(payload.count).bigEndian) { frame.append(contentsOf: $0) }
                frame.append(payload)
                FileHandle.standardOutput.write(frame)
            }
        }

        private func render(_ buffer: ByteBuffer, as messageType: any ProtoMessage.Type, limits: ProtoLimits) -> Result<Data, ProtoDecodingError> {
            do {
                let message = try messageType.init(decoding: buffer, limits: limits)
                switch format {
                case .binary: return .success(Data(message.encoded().readableBytesView))
                case .debug:
                    return .success(Data(MessagePrinter.render(message).utf8))
                }
            } catch let error as ProtoDecodingError {
                return .failure(error)
            } catch {
                return .failure(ProtoDecodingError(.invalidValue, "\(error)"))
            }
        }

        private func readExactly(_ count: Int, from handle: FileHandle) -> Data? {
            var data = Data()
            while data.count < count {
                guard let chunk = try? handle.read(upToCount: count - data.count), !chunk.isEmpty else {
                    return count == 0 ? data : nil
                }
                data.append(chunk)
            }
            return data
        }
    }
}
