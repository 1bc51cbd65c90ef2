import Foundation
import InferenceProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// The models the gateway knows, each with its worker pool while loaded, and per-model
/// statistics. Thread-safe.
public final class ModelRepository: Sendable {
    /// Counters behind ModelStatistics; nanosecond totals.
    struct Statistics: Sendable {
        var successCount: UInt64 = 0
        var successNanos: UInt64 = 0
        var failCount: UInt64 = 0
        var failNanos: UInt64 = 0
        var queueNanos: UInt64 = 0
        var computeInputNanos: UInt64 = 0
        var computeInferNanos: UInt64 = 0
        var computeOutputNanos: UInt64 = 0
        var inferenceCount: UInt64 = 0
        var executionCount: UInt64 = 0
        var lastInferenceMillis: UInt64 = 0
    }

    private struct Entry: Sendable {
        var deployment: ModelDeployment
        var pool: WorkerPool?
        var statistics = Statistics()
        var unloadReason = ""
    }

    private let entries: NIOLockedValueBox<[String: Entry]>
    private let launcher: WorkerLauncher
    private let group: EventLoopGroup
    private let logger: Logger

    public init(deployments: [ModelDeployment], launcher: WorkerLauncher, group: EventLoopGroup, logger: Logger) {
        self.entries = NIOLockedValueBox(Dictionary(uniqueKeysWithValues: deployments.map { ($0.model, Entry(deployment: $0)) }))
        self.launcher = launcher
        self.group = group
        self.logger = logger
    }

    /// Every model name known, loaded or not, sorted.
    public var modelNames: [String] { entries.withLockedValue { $0.keys.sorted() } }

    /// The pool of a loaded model.
    public func pool(for model: String) -> WorkerPool? {
        entries.withLockedValue { $0[model]?.pool }
    }

    /// True when the model is known (loaded or not).
    public func knows(_ model: String) -> Bool {
        entries.withLockedValue { $0[model] != nil }
    }

    /// Starts the workers of `model`; returns when one is ready (or they failed).
    public func load(_ model: String) async throws {
        let pool: WorkerPool? = try entries.withLockedValue { entries in
            guard var entry = entries[model] else { throw ModelRepositoryError.unknownModel(model) }
            guard entry.pool == nil else { return nil }
            let pool = WorkerPool(deployment: entry.deployment, launcher: launcher, group: group, logger: logger)
            entry.pool = pool
            entry.unloadReason = ""
            entries[model] = entry
            return pool
        }
        guard let pool else { return }
        await pool.start()
        guard pool.isReady else {
            throw ModelRepositoryError.failedToLoad(model, "no worker became ready; see the worker log lines above")
        }
    }

    /// Loads every known model.
    public func loadAll() async {
        await withTaskGroup(of: Void.self) { group in
            for name in modelNames {
                group.addTask {
                    do {
                        try await self.load(name)
                    } catch {
                        self.logger.error("model failed to load", metadata: ["model": "\(name)", "error": "\(error)"])
                    }
                }
            }
        }
    }

    /// Stops taking requests for `model`, waits for those in flight, stops its workers.
    public func unload(_ model: String) async throws {
        let pool: WorkerPool? = try entries.withLockedValue { entries in
            guard var entry = entries[model] else { throw ModelRepositoryError.unknownModel(model) }
            let pool = entry.pool
            entry.pool = nil
            entry.unloadReason = "unloaded"
            entries[model] = entry
            return pool
        }
        await pool?.drainAndStop()
    }

    /// Unloads everything (shutdown).
    public func unloadAll() async {
        await withTaskGroup(of: Void.self) { group in
            for name in modelNames {
                group.addTask { try? await self.unload(name) }
            }
        }
    }

    /// The repository index: every model with its state.
    public func index(readyOnly: Bool) -> RepositoryIndexResponse {
        var response = RepositoryIndexResponse()
        for (name, entry) in entries.withLockedValue({ $0 }).sorted(by: { $0.key < $1.key }) {
            var model = RepositoryIndexResponse.ModelIndex()
            model.name = name
            model.version = "1"
            if let pool = entry.pool {
                model.state = pool.isReady ? "READY" : "UNAVAILABLE"
                if !pool.isReady { model.reason = "no worker is ready" }
            } else {
                model.state = "UNAVAILABLE"
                model.reason = entry.unloadReason.isEmpty ? "not loaded" : entry.unloadReason
            }
            if readyOnly && model.state != "READY" { continue }
            model.version = "1"
            response.models.append(model)
        }
        return response
    }

    /// Records one request. `queueNanoseconds` is the time it waited in the gateway's queue;
    /// `timing`, when the worker reported it, splits the rest (and says whether this request
    /// stands for its batch's execution); without it the whole rest counts as compute_infer and
    /// the request as one execution.
    func record(
        model: String, success: Bool, nanoseconds: UInt64, queueNanoseconds: UInt64 = 0, batchSize: UInt64,
        timing: WorkerProtocol.Timing? = nil
    ) {
        entries.withLockedValue { entries in
            guard var entry = entries[model] else { return }
            if success {
                let gatewayQueue = min(queueNanoseconds, nanoseconds)
                entry.statistics.successCount += 1
                entry.statistics.successNanos += nanoseconds
                entry.statistics.inferenceCount += batchSize
                if let timing {
                    entry.statistics.queueNanos += gatewayQueue + timing.queueNs
                    entry.statistics.computeInputNanos += timing.computeInputNs
                    entry.statistics.computeInferNanos += timing.computeInferNs
                    entry.statistics.computeOutputNanos += timing.computeOutputNs
                    if timing.countsExecution { entry.statistics.executionCount += 1 }
                } else {
                    entry.statistics.queueNanos += gatewayQueue
                    entry.statistics.computeInferNanos += nanoseconds - gatewayQueue
                    entry.statistics.executionCount += 1
                }
            } else {
                entry.statistics.failCount += 1
                entry.statistics.failNanos += nanoseconds
            }
            entry.statistics.lastInferenceMillis = UInt64(Date().timeIntervalSince1970 * 1000)
            entries[model] = entry
        }
    }

    func statistics(for model: String) -> Statistics? {
        entries.withLockedValue { $0[model]?.statistics }
    }
}

/// Why a repository operation failed.
public enum ModelRepositoryError: Error, Sendable, CustomStringConvertible {
    case unknownModel(String)
    case failedToLoad(String, String)

    public var description: String {
        switch self {
        case .unknownModel(let name): return "unknown model '\(name)'"
        case .failedToLoad(let name, let reason): return "model '\(name)' failed to load: \(reason)"
        }
    }
}
