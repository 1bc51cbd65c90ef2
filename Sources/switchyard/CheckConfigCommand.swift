import ArgumentParser
import ConfigFile
import Foundation
import Gateway
import NIOPosix

/// `switchyard check-config FILE`: the configuration file's mistakes, all of them, or "ok".
struct CheckConfigCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Check a configuration file (docs/configuration.md) without serving it.",
        discussion: """
            Prints every mistake as FILE:LINE:COLUMN: error: MESSAGE; HINT and exits with 1, or \
            prints FILE: ok (N models, M routes) and exits with 0. `serve --config FILE` refuses \
            a file with the same messages. The JWKS file of auth.jwt is read and checked too.
            """
    )

    @Argument(help: "The YAML configuration file.")
    var file: String

    func run() async throws {
        do {
            let settings = try ServeSettings.load(path: file)
            if let jwt = settings.auth?.jwt {
                let threadPool = NIOThreadPool(numberOfThreads: 1)
                threadPool.start()
                do {
                    try await JWTVerifier(settings: jwt).loadKeys(threadPool: threadPool)
                    try? await threadPool.shutdownGracefully()
                } catch {
                    try? await threadPool.shutdownGracefully()
                    FileHandle.standardError.write(Data("\(file): error: auth.jwt: \(error.description)\n".utf8))
                    throw ExitCode(1)
                }
            }
            let models = Set((settings.models ?? []).map(\.model)).count
            print("\(file): ok (\(models) models, \(settings.routes.count) routes)")
        } catch let error as ConfigFileError {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode(1)
        }
    }
}
