import Foundation
import InferenceProtocol
import ProtoWire

/// A Triton model repository on disk (`--model-repository DIR`): `DIR/NAME/config.pbtxt`
/// (optional for ONNX models: the graph says the rest) and `DIR/NAME/VERSION/model.onnx`, read
/// into the deployments of the versions its version policy selects, each served by the built-in
/// worker's native ONNX runtime.
public enum ModelRepositoryDirectory {
    /// What a repository could not be read for: every mistake, each with its file.
    public struct ScanError: Error, CustomStringConvertible {
        public var mistakes: [String]
        public var description: String { mistakes.joined(separator: "\n") }

        public init(mistakes: [String]) { self.mistakes = mistakes }
    }

    /// The schema of `inference.ModelConfig` and everything it uses, for `config.pbtxt`.
    public static let schema: ProtoSchema = {
        var schema = ProtoSchema()
        for file in EmbeddedDescriptors.files {
            if let bytes = Data(base64Encoded: file) { try? schema.add(fileDescriptor: Array(bytes)) }
        }
        return schema
    }()

    /// Reads a `config.pbtxt`.
    public static func parseConfig(_ text: String, file: String) throws(ScanError) -> ModelConfig {
        let bytes: [UInt8]
        do {
            bytes = try ProtoTextFormat.encode(text, as: "inference.ModelConfig", schema: schema)
        } catch {
            throw ScanError(mistakes: ["\(file):\(error.line):\(error.column): \(error.message)"])
        }
        do {
            return try ModelConfig(decodingBytes: bytes)
        } catch {
            throw ScanError(mistakes: ["\(file): \(error)"])
        }
    }

    /// The deployments of every model in `directory` (sorted by name, then version), or every
    /// mistake found. `only`: just these models (explicit model control).
    public static func scan(_ directory: String, only: Set<String>? = nil) throws(ScanError) -> [ModelDeployment] {
        let files = FileManager.default
        var isDirectory: ObjCBool = false
        guard files.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ScanError(mistakes: ["\(directory): the model repository is not a directory"])
        }
        let names = ((try? files.contentsOfDirectory(atPath: directory)) ?? []).filter { name in
            var isModel: ObjCBool = false
            return !name.hasPrefix(".") && files.fileExists(atPath: directory + "/" + name, isDirectory: &isModel) && isModel.boolValue
        }.sorted()
        var deployments: [ModelDeployment] = []
        var mistakes: [String] = []
        if let only {
            for missing in only.subtracting(names).sorted() { mistakes.append("\(directory)/\(missing): no such model in the repository") }
        }
        for name in names where only?.contains(name) ?? true {
            do {
                deployments += try model(name, in: directory + "/" + name)
            } catch {
                mistakes += error.mistakes
            }
        }
        guard mistakes.isEmpty else { throw ScanError(mistakes: mistakes) }
        return deployments
    }

    /// The deployments of the versions one model directory's policy selects.
    static func model(_ name: String, in path: String) throws(ScanError) -> [ModelDeployment] {
        let files = FileManager.default
        var config = ModelConfig()
        let configPath = path + "/config.pbtxt"
        if let data = files.contents(atPath: configPath) {
            config = try parseConfig(String(decoding: data, as: UTF8.self), file: configPath)
            if !config.name.isEmpty, config.name != name {
                throw ScanError(mistakes: ["\(configPath): the name '\(config.name)' differs from the model's directory '\(name)'"])
            }
        }
        let platforms = ["", "onnxruntime_onnx"], backends = ["", "onnxruntime", "switchyard_onnx"]
        guard platforms.contains(config.platform), backends.contains(config.backend) else {
            let what = config.platform.isEmpty ? "backend '\(config.backend)'" : "platform '\(config.platform)'"
            throw ScanError(mistakes: ["\(configPath): \(what) is not served here; Switchyard serves ONNX models (platform onnxruntime_onnx)"])
        }
        let filename = config.defaultModelFilename.isEmpty ? "model.onnx" : config.defaultModelFilename
        let versions = ((try? files.contentsOfDirectory(atPath: path)) ?? []).compactMap(Int64.init).sorted()
        let available = versions.filter { files.fileExists(atPath: "\(path)/\($0)/\(filename)") }
        let missing = versions.filter { !available.contains($0) }
        guard missing.isEmpty else {
            throw ScanError(mistakes: missing.map { "\(path)/\($0): version \($0) has no \(filename)" })
        }
        guard !available.isEmpty else {
            throw ScanError(mistakes: ["\(path): no version directory (such as \(path)/1/\(filename))"])
        }
        let selected: [Int64]
        switch config.versionPolicy?.policyChoice {
        case .all?: selected = available
        case .specific(let specific)?:
            let absent = specific.versions.filter { !available.contains($0) }
            guard absent.isEmpty else {
                throw ScanError(mistakes: ["\(configPath): version_policy names version(s) \(absent.map(String.init).joined(separator: ", ")), which the repository does not have"])
            }
            selected = specific.versions.sorted()
        case .latest(let latest)?: selected = Array(available.suffix(Int(max(1, latest.numVersions))))
        case nil: selected = Array(available.suffix(1))  // Triton's default: the latest version
        }
        let instances = config.instanceGroup.reduce(0) { $0 + Int(max(1, $1.count)) }
        return selected.map { version in
            var deployment = ModelDeployment(model: name, version: String(version), workers: max(1, instances))
            deployment.workerArguments = ["--onnx-model", "\(path)/\(version)/\(filename)"]
            if config.maxBatchSize > 0 { deployment.workerArguments += ["--max-batch-size", "\(config.maxBatchSize)"] }
            if case .dynamicBatching(let batching)? = config.schedulingChoice, batching.maxQueueDelayMicroseconds > 0 {
                deployment.workerArguments += ["--max-queue-delay-us", "\(batching.maxQueueDelayMicroseconds)"]
            }
            return deployment
        }
    }
}
