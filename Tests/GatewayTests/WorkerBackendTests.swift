import Foundation
import InferenceProtocol
import XCTest

@testable import Gateway

final class WorkerBackendTests: XCTestCase {
    private let launcher = WorkerLauncher(executable: "/opt/switchyard", socketDirectory: "/tmp/s")

    func testTheBuiltinWorkerGetsItsFlagsAndTheGatewaysEnvironment() throws {
        var deployment = ModelDeployment(model: "simple", version: "2")
        deployment.workerArguments = ["--max-batch-size", "4"]
        let program = WorkerProgram(deployment: deployment, launcher: launcher, socketPath: "/tmp/s/simple-v2-0.sock", workerID: "simple-v2-0", parentPID: 77)
        XCTAssertEqual(try program.resolveExecutable(), "/opt/switchyard")
        XCTAssertEqual(
            program.arguments,
            [
                "worker", "--socket", "/tmp/s/simple-v2-0.sock", "--model", "simple", "--worker-id", "simple-v2-0", "--parent-pid", "77",
                "--model-version", "2", "--max-batch-size", "4",
            ])
        XCTAssertNil(program.environment)
        XCTAssertNil(program.workingDirectory)
    }

    func testACommandWorkerGetsItsCommandAsGivenAndTheProtocolInVariablesThatNoSettingOverrides() throws {
        var deployment = ModelDeployment(model: "iris", version: "2")
        deployment.workerArguments = ["--threads", "1"]
        deployment.backend = .command(
            ExternalWorkerCommand(
                arguments: ["sh", "worker.sh", "--model", "m.onnx"],
                environment: ["OMP_NUM_THREADS": "1", "SWITCHYARD_MODEL": "spoofed", "SWITCHYARD_MAX_BATCH_SIZE": "16"],
                workingDirectory: "/srv/models"))
        let program = WorkerProgram(deployment: deployment, launcher: launcher, socketPath: "/tmp/s/iris-v2-0.sock", workerID: "iris-v2-0", parentPID: 77)
        XCTAssertEqual(program.program, "sh")
        XCTAssertEqual(program.arguments, ["worker.sh", "--model", "m.onnx", "--threads", "1"])
        XCTAssertEqual(program.workingDirectory, "/srv/models")
        let environment = try XCTUnwrap(program.environment)
        XCTAssertEqual(environment["SWITCHYARD_WORKER_SOCKET"], "/tmp/s/iris-v2-0.sock")
        XCTAssertEqual(environment["SWITCHYARD_WORKER_ID"], "iris-v2-0")
        XCTAssertEqual(environment["SWITCHYARD_MODEL"], "iris")
        XCTAssertEqual(environment["SWITCHYARD_MODEL_VERSION"], "2")
        XCTAssertEqual(environment["SWITCHYARD_PARENT_PID"], "77")
        XCTAssertEqual(environment["SWITCHYARD_PROTOCOL_VERSION"], "1")
        XCTAssertEqual(environment["SWITCHYARD_MAX_BATCH_SIZE"], "16")
        XCTAssertEqual(environment["OMP_NUM_THREADS"], "1")
        XCTAssertEqual(environment["PATH"], ProcessInfo.processInfo.environment["PATH"], "the gateway's own environment is inherited")
        let resolved = try program.resolveExecutable()
        XCTAssertTrue(resolved.hasPrefix("/") && resolved.hasSuffix("/sh"), resolved)
    }

    func testAProgramThatCannotBeFoundFailsTheStartWithItsName() {
        var deployment = ModelDeployment(model: "iris")
        deployment.backend = .command(ExternalWorkerCommand(arguments: ["./nope.sh"], workingDirectory: "/nonexistent-dir"))
        let program = WorkerProgram(deployment: deployment, launcher: launcher, socketPath: "/tmp/s/x.sock", workerID: "iris-0")
        XCTAssertThrowsError(try program.resolveExecutable()) { error in
            XCTAssertEqual("\(error)", "cannot start the worker command: '/nonexistent-dir/nope.sh' does not exist")
        }
        let bare = ExternalWorkerCommand(arguments: ["sh"], environment: ["PATH": "/nonexistent-dir"])
        XCTAssertEqual(bare.resolveExecutable(searchPath: bare.searchPath).failureText, "'sh' is not on PATH")
        XCTAssertEqual(ExternalWorkerCommand(arguments: []).resolveExecutable(searchPath: nil).failureText, "the command is empty")
    }

    func testAHelloMustListTheModelAtItsVersionWithAConfig() {
        let deployment = ModelDeployment(model: "iris", version: "2")
        var model = WorkerProtocol.ModelDescriptor()
        model.name = "iris"
        model.versions = ["2"]
        model.config = ModelConfig()
        var hello = WorkerProtocol.Hello()
        hello.models = [model]
        XCTAssertNil(WorkerSlot.helloProblem(hello, deployment: deployment))

        var other = hello
        other.models[0].name = "model"
        XCTAssertEqual(
            WorkerSlot.helloProblem(other, deployment: deployment), "it serves 'model', not 'iris' (SWITCHYARD_MODEL / --model)")
        var wrongVersion = hello
        wrongVersion.models[0].versions = ["1"]
        XCTAssertEqual(
            WorkerSlot.helloProblem(wrongVersion, deployment: deployment),
            "it serves 'iris' at versions [\"1\"], not '2' (SWITCHYARD_MODEL_VERSION / --model-version)")
        var noConfig = hello
        noConfig.models[0].config = nil
        XCTAssertEqual(
            WorkerSlot.helloProblem(noConfig, deployment: deployment),
            "its ModelDescriptor of 'iris' has no config (field 5): the gateway needs the inputs and outputs")
        XCTAssertEqual(
            WorkerSlot.helloProblem(WorkerProtocol.Hello(), deployment: deployment), "it serves no model, not 'iris' (SWITCHYARD_MODEL / --model)")
    }

    func testTheDiagnosticFlagIsAddedToBuiltinWorkersOnly() {
        var configuration = GatewayConfiguration()
        var external = ModelDeployment(model: "iris")
        external.backend = .command(ExternalWorkerCommand(arguments: ["/bin/sh"]))
        configuration.models = [ModelDeployment(model: "simple"), external]
        configuration.enableDiagnosticModels = true
        XCTAssertEqual(configuration.effectiveModels.map(\.workerArguments), [[GatewayConfiguration.diagnosticModelsWorkerFlag], []])
    }

    func testTheEffectiveConfigurationShowsTheCommandAndOnlyTheNamesOfItsVariables() throws {
        var configuration = GatewayConfiguration()
        var external = ModelDeployment(model: "iris")
        external.backend = .command(ExternalWorkerCommand(arguments: ["python3", "w.py"], environment: ["TOKEN": "secret"], workingDirectory: "/srv"))
        configuration.models = [ModelDeployment(model: "simple"), external]
        let text = configuration.effectiveJSON(launcher: nil)
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let models = try XCTUnwrap(object["models"] as? [[String: Any]])
        XCTAssertEqual(models[0]["backend"] as? String, "builtin")
        let backend = try XCTUnwrap(models[1]["backend"] as? [String: Any])
        XCTAssertEqual(backend["command"] as? [String], ["python3", "w.py"])
        XCTAssertEqual(backend["environment"] as? [String], ["TOKEN"])
        XCTAssertEqual(backend["working_directory"] as? String, "/srv")
        XCTAssertFalse(text.contains("secret"))
    }
}

extension Result where Failure == ExternalWorkerCommand.ResolutionError {
    fileprivate var failureText: String? {
        if case .failure(let error) = self { return error.description }
        return nil
    }
}
