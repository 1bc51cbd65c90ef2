import ArgumentParser
import ConfigFile
import Foundation

/// `switchyard check-config FILE`: the configuration file's mistakes, all of them, or "ok".
struct CheckConfigCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Check a configuration file (docs/configuration.md) without serving it.",
        discussion: """
            Prints every mistake as FILE:LINE:COLUMN: error: MESSAGE; HINT and exits with 1, or \
            prints FILE: ok (N models, M routes) and exits with 0. `serve --config FILE` refuses \
            a file with the same messages.
            """
    )

    @Argument(help: "The YAML configuration file.")
    var file: String

    func run() throws {
        do {
            let settings = try ServeSettings.load(path: file)
            let models = Set((settings.models ?? []).map(\.model)).count
            print("\(file): ok (\(models) models, \(settings.routes.count) routes)")
        } catch {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode(1)
        }
    }
}
