import ArgumentParser
import H2Transport

@main
struct Switchyard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "switchyard",
        abstract: "A gRPC inference gateway (Open Inference Protocol v2 with Triton's extensions).",
        version: "0.1.0-dev (nghttp2 \(LibraryVersions.nghttp2), \(LibraryVersions.openSSL))",
        subcommands: [ServeCommand.self, CheckConfigCommand.self, HashKeyCommand.self, CertsCommand.self, WorkerCommand.self, ProtoCommand.self, ModelCommand.self, LoadTestCommand.self]
    )
}
