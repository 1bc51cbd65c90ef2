import ArgumentParser
import Foundation
import ONNXModel

/// `switchyard model check|run FILE.onnx`: what the native ONNX runtime makes of a model, without
/// serving it: its inputs and outputs, or why it cannot load it; and its outputs for given inputs,
/// to compare with another runtime.
struct ModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Check an ONNX model against the native runtime, or run it once on inputs given as JSON.",
        subcommands: [Check.self, Run.self, Bench.self]
    )

    static func load(_ path: String) throws -> ONNXModel {
        guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read \(path)") }
        do {
            return try ONNXModel(bytes: [UInt8](data))
        } catch {
            FileHandle.standardError.write(Data("\(path): \(error)\n".utf8))
            throw ExitCode(1)
        }
    }

    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load the model: print its opset, inputs and outputs, or what the runtime does not support (exit 1).")

        @Argument(help: "The .onnx file.")
        var file: String

        func run() throws {
            let model = try ModelCommand.load(file)
            print("\(file): ok (opset \(model.opset))")
            for (role, values) in [("input", model.inputs), ("output", model.outputs)] {
                for value in values {
                    print("  \(role) \(value.name): \(value.elementType.name) [\(value.shape.map { $0.map(String.init) ?? "-1" }.joined(separator: ", "))]")
                }
            }
        }
    }

    struct Bench: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Time the native runtime on the model alone: random inputs of a batch size, one thread, µs per run.",
            discussion: "Dynamic dimensions other than the first take 1. Compare with onnxruntime's session.run on the same batch.")

        @Argument(help: "The .onnx file.")
        var file: String

        @Option(name: .customLong("batch"), help: "The first dimension of every input (when it is dynamic).")
        var batch = 1

        @Option(name: .customLong("seconds"), help: "How long to run, after 100 warm-up runs.")
        var seconds = 3.0

        func run() throws {
            let model = try ModelCommand.load(file)
            var generator = SystemRandomNumberGenerator()
            var inputs: [String: NDArray] = [:]
            for input in model.inputs {
                let shape = input.shape.enumerated().map { $0.offset == 0 ? ($0.element ?? batch) : ($0.element ?? 1) }
                let count = shape.reduce(1, *)
                inputs[input.name] =
                    input.elementType == .int64 || input.elementType == .int32
                    ? NDArray(shape: shape, int64s: (0..<count).map { _ in Int64.random(in: 0..<4, using: &generator) })
                    : NDArray(shape: shape, floats: (0..<count).map { _ in Float.random(in: 0..<1, using: &generator) })
            }
            for _ in 0..<100 { _ = try model.run(inputs) }
            let clock = ContinuousClock()
            let start = clock.now
            var runs = 0
            while clock.now - start < .seconds(seconds) {
                _ = try model.run(inputs)
                runs += 1
            }
            let elapsed = clock.now - start
            let micros = Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12
            print(String(format: "%@: batch %d, %d runs, %.1f µs per run, %.0f inferences/s", file, batch, runs, micros / Double(runs), Double(runs * batch) / (micros / 1e6)))
        }
    }

    struct Run: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Run the model once: inputs as JSON on standard input, outputs as JSON on standard output.",
            discussion: """
                Input: {"NAME": {"shape": [2, 4], "data": [0.1, ...]}, ...}, data flattened in row-major \
                order. Output: the same form for every graph output, with "datatype" FP32 or INT64.
                """)

        @Argument(help: "The .onnx file.")
        var file: String

        func run() throws {
            let model = try ModelCommand.load(file)
            let input = FileHandle.standardInput.readDataToEndOfFile()
            guard let json = try JSONSerialization.jsonObject(with: input) as? [String: [String: Any]] else {
                throw ValidationError("standard input must be a JSON object of {\"shape\": [...], \"data\": [...]} by input name")
            }
            var inputs: [String: NDArray] = [:]
            for (name, tensor) in json {
                guard let shape = tensor["shape"] as? [Int], let data = tensor["data"] as? [NSNumber], shape.reduce(1, *) == data.count else {
                    throw ValidationError("input '\(name)' needs \"shape\" and as many \"data\" numbers as the shape holds")
                }
                let type = model.inputs.first { $0.name == name }?.elementType
                inputs[name] =
                    type == .int64 || type == .int32
                    ? NDArray(shape: shape, int64s: data.map(\.int64Value)) : NDArray(shape: shape, floats: data.map(\.floatValue))
            }
            let outputs: [String: NDArray]
            do {
                outputs = try model.run(inputs)
            } catch {
                FileHandle.standardError.write(Data("\(error)\n".utf8))
                throw ExitCode(1)
            }
            var result: [String: Any] = [:]
            for (name, array) in outputs {
                switch array.storage {
                case .float(let values): result[name] = ["shape": array.shape, "datatype": "FP32", "data": values.map(Double.init)]
                case .int64(let values): result[name] = ["shape": array.shape, "datatype": "INT64", "data": values]
                }
            }
            FileHandle.standardOutput.write(try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys]))
            print()
        }
    }
}
