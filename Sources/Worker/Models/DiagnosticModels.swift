import InferenceProtocol
import Logging
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Models that misbehave on purpose, to test how the gateway copes with workers that crash or
/// stall. Served only when the worker is started with `--enable-diagnostic-models`
/// (`WorkerConfiguration.enableDiagnosticModels`); never part of the default model list.
///
/// Each takes INT32 `IN` (dims [1], no batching) and an optional UINT32 `SLEEP_MS` (dims [1]) and
/// answers `OUT = IN` after `SLEEP_MS` milliseconds. Requests run concurrently. One value of `IN`
/// is a fault:
/// - `diagnostic_crash`: `IN == 42` kills the worker process at once (SIGKILL on itself);
/// - `diagnostic_stall`: `IN == 7` blocks the worker's event loop for good, so the process
///   stays alive but answers no request, ping or cancel (a stalled worker);
/// - `diagnostic_stateful`: `IN == 42` kills the worker, like `diagnostic_crash`; its
///   configuration carries parameter `switchyard.idempotent: "false"`, so the gateway never
///   runs one of its requests twice.
public enum DiagnosticModels {
    /// Every diagnostic model's name.
    public static let names = ["diagnostic_crash", "diagnostic_stall", "diagnostic_stateful"]

    /// The `IN` value that kills the worker (`diagnostic_crash`, `diagnostic_stateful`).
    public static let crashInput: Int32 = 42
    /// The `IN` value that stalls the worker (`diagnostic_stall`).
    public static let stallInput: Int32 = 7

    /// What a diagnostic model does on its fault input.
    public enum Fault: Sendable, Hashable {
        /// The worker process dies at once.
        case crash
        /// The worker's event loop blocks for good.
        case stall
    }

    /// The diagnostic model called `name`, or nil when there is none.
    ///
    /// - Parameter onFault: what happens on the fault input; by default the real thing
    ///   (`perform`). Tests pass a recorder. The model answers normally if it returns.
    public static func model(
        named name: String, onFault: @escaping @Sendable (Fault) -> Void = { perform($0) }
    ) -> ServedModel? {
        let faults: [Int32: Fault]
        switch name {
        case "diagnostic_crash", "diagnostic_stateful": faults = [crashInput: .crash]
        case "diagnostic_stall": faults = [stallInput: .stall]
        default: return nil
        }
        var config = ModelConfig()
        config.name = name
        config.backend = "switchyard"
        config.maxBatchSize = 0
        config.versionPolicy = ModelVersionPolicy(.latest(.init(numVersions: 1)))
        config.input = [ModelInput(name: "IN", dataType: .int32, dims: [1])]
        var sleep = ModelInput(name: "SLEEP_MS", dataType: .uint32, dims: [1])
        sleep.optional = true
        config.input.append(sleep)
        config.output = [ModelOutput(name: "OUT", dataType: .int32, dims: [1])]
        if name == "diagnostic_stateful" {
            config.parameters["switchyard.idempotent"] = ModelParameter(stringValue: "false")
        }
        var instances = ModelInstanceGroup()
        instances.name = name
        instances.kind = .cpu
        instances.count = 1
        config.instanceGroup = [instances]
        return ServedModel(config: config, backend: .concurrent(DiagnosticModel(name: name, faults: faults, onFault: onFault)))
    }

    /// Does `fault` to this process: SIGKILL on itself, or blocks the calling thread (the
    /// worker's one event loop) for good.
    public static func perform(_ fault: Fault) {
        switch fault {
        case .crash:
            // SIGKILL rather than abort(): no core dump, no handlers, the same as an OOM kill.
            kill(getpid(), SIGKILL)
        case .stall:
            while true { sleep(3600) }
        }
    }
}

/// A diagnostic model: `OUT = IN` after `SLEEP_MS`, unless `IN` is its fault input.
struct DiagnosticModel: ConcurrentModel {
    let name: String
    let faults: [Int32: DiagnosticModels.Fault]
    let onFault: @Sendable (DiagnosticModels.Fault) -> Void

    func answer(_ inputs: [String: Tensor]) throws(InferenceError) -> ConcurrentAnswer {
        guard let value = inputs["IN"]?.int32Values?.first else {
            throw InferenceError(.internal, "model '\(name)' is missing input 'IN' after validation")
        }
        if let fault = faults[value] {
            let what = fault == .crash ? "killing this worker (SIGKILL)" : "blocking this worker's event loop for good"
            // The worker's log handler writes each line at once, so this one is out before the fault.
            Logger(label: "switchyard.worker").warning("model '\(name)' received its fault input IN=\(value): \(what)")
            onFault(fault)
        }
        let sleep = inputs["SLEEP_MS"]?.uint32Values?.first ?? 0
        return ConcurrentAnswer(delay: .milliseconds(Int64(sleep)), outputs: ["OUT": .int32([value], shape: [1])])
    }
}

/// A test aid (`switchyard worker --diagnostic-output-offset N`): `base` with `offset` added to
/// every INT32 and UINT32 output element (two's-complement wrap-around; BYTES outputs are left
/// as they are), so that two versions of a built-in model answer differently, as a shadow
/// variant under test might. Never for serving real traffic.
struct OutputOffsetModel: BatchedModel {
    let base: any BatchedModel
    let offset: Int32

    func validate(_ inputs: [String: Tensor]) throws(InferenceError) {
        try base.validate(inputs)
    }

    func execute(_ inputs: [String: Tensor]) throws(InferenceError) -> [String: Tensor] {
        try base.execute(inputs).mapValues { tensor in
            switch tensor.elements {
            case .int32(let values): return .int32(values.map { $0 &+ offset }, shape: tensor.shape)
            case .uint32(let values): return .uint32(values.map { $0 &+ UInt32(bitPattern: offset) }, shape: tensor.shape)
            case .bytes, .fp32, .int64: return tensor
            }
        }
    }
}
