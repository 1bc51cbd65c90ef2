import Foundation
import NIOCore

/// One worker process as the admin API's `GET /workers` reports it.
public struct WorkerStatus: Sendable {
    /// The worker's process id; nil while the slot has no process (starting or between restarts).
    public var pid: Int32?
    /// "simple-0", "simple-v2-1": model, version and slot.
    public var worker: String
    public var model: String
    public var version: String
    /// What the slot is doing: one of `states`.
    public var state: String
    /// Every state a worker can be in.
    public static let states = WorkerSlot.Phase.allCases.map(\.rawValue)
    /// Requests the gateway sent to this process and has not seen answered (every event loop).
    public var inFlight: Int
    /// Requests of the worker's variant waiting in the gateway for a worker (shared by the
    /// variant's workers).
    public var queued: Int
    /// The worker's own counts from its last PONG: requests it is executing and requests
    /// waiting in its batching queue.
    public var workerInFlight: Int
    public var workerQueued: Int
    /// Processes started in this slot after the first (crashes, stalls, operator restarts).
    public var restarts: Int
    /// Seconds since the current process started; nil without one.
    public var uptimeSeconds: Double?
    /// The worker's Unix socket.
    public var socketPath: String
    /// The variant is drained by an operator (`POST /models/NAME/drain`).
    public var drained: Bool
}

/// How an operator's restart of one worker went.
public enum WorkerRestartOutcome: Sendable {
    /// No worker of this pool has that pid.
    case unknownPID
    /// The worker is not ready (starting, restarting, already being restarted, or stopping).
    case notRestartable(state: String)
    /// The old process is gone and `newPID` is ready; `abandonedInFlight` requests were still on
    /// it when the drain timeout passed (they went to other workers, or failed when the model
    /// is not idempotent).
    case restarted(oldPID: Int32, newPID: Int32, abandonedInFlight: Int)
    /// The old process is gone, but its replacement was not ready within the start timeout.
    case replacementNotReady(oldPID: Int32, abandonedInFlight: Int)
}

extension WorkerPool {
    /// Drains the variant (`message`: why new requests are refused, UNAVAILABLE) or takes it
    /// back (nil) on every serving loop; returns once each loop applies it. Requests already
    /// queued or running finish.
    func setDrained(_ message: String?) async {
        for shard in shardList {
            try? await shard.eventLoop.submit { shard.value.setDrained(message) }.get()
        }
    }

    /// Every worker of the pool with its state and counts (read from each serving loop).
    func workerStatuses(drained: Bool) async -> [WorkerStatus] {
        let snapshots = slots.map { $0.snapshot }
        let ids = snapshots.enumerated().map { WorkerPoolStateMachine<PoolRequest>.WorkerID(slot: $0.offset, generation: $0.element.generation) }
        var inFlight = Array(repeating: 0, count: slots.count)
        var queued = 0
        for shard in shardList {
            let counts = try? await shard.eventLoop.submit { (ids.map { shard.value.inFlight(of: $0) }, shard.value.queued) }.get()
            guard let (perWorker, waiting) = counts else { continue }
            for index in perWorker.indices { inFlight[index] += perWorker[index] }
            queued += waiting
        }
        return slots.indices.map { index in
            let snapshot = snapshots[index]
            return WorkerStatus(
                pid: snapshot.pid, worker: slots[index].workerID, model: deployment.model, version: deployment.version,
                state: snapshot.phase.rawValue, inFlight: inFlight[index], queued: queued, workerInFlight: Int(snapshot.workerInFlight),
                workerQueued: Int(snapshot.workerQueued), restarts: snapshot.restarts, uptimeSeconds: snapshot.uptimeSeconds,
                socketPath: slots[index].socketPath, drained: drained)
        }
    }

    /// True when one of the pool's worker processes has `pid`.
    func hasWorker(pid: Int32) -> Bool { slots.contains { $0.snapshot.pid == pid } }

    /// Replaces the worker process `pid` without losing a request: no new request goes to it,
    /// those it runs finish (for at most `drainTimeout`; what is left then goes elsewhere, as
    /// when a worker dies), it is stopped (SIGTERM, SIGKILL after `gracePeriod`) and a new
    /// process takes its slot. Requests that find no other worker with room queue for the
    /// replacement meanwhile.
    func restartWorker(pid: Int32, drainTimeout: TimeAmount, gracePeriod: TimeAmount = .seconds(5)) async -> WorkerRestartOutcome {
        guard let slot = slots.first(where: { $0.snapshot.pid == pid }) else { return .unknownPID }
        guard let worker = slot.beginOperatorRestart() else { return .notRestartable(state: slot.snapshot.phase.rawValue) }
        logger.notice("operator restart: draining worker", metadata: ["worker": "\(slot.workerID)", "pid": "\(pid)"])
        for shard in shardList {
            _ = try? await shard.eventLoop.submit { shard.value.drainWorker(worker) }.get()
        }
        let deadline = NIODeadline.now() + drainTimeout
        var remaining = await inFlight(of: worker)
        while remaining > 0 && NIODeadline.now() < deadline {
            try? await Task.sleep(for: .milliseconds(20))
            remaining = await inFlight(of: worker)
        }
        if remaining > 0 {
            logger.warning(
                "operator restart: drain timeout passed with requests still on the worker; they go elsewhere",
                metadata: ["worker": "\(slot.workerID)", "in_flight": "\(remaining)"])
        }
        await slot.finishOperatorRestart(worker, gracePeriod: gracePeriod)
        let startDeadline = NIODeadline.now() + launcher.startTimeout + .seconds(1)
        while NIODeadline.now() < startDeadline {
            let snapshot = slot.snapshot
            if snapshot.phase == .ready, let newPID = snapshot.pid, snapshot.generation > worker.generation,
                await allShardsConnected(slot: worker.slot, after: worker.generation)
            {
                return .restarted(oldPID: pid, newPID: newPID, abandonedInFlight: remaining)
            }
            try? await Task.sleep(for: .milliseconds(20))
        }
        for shard in shardList { shard.eventLoop.execute { shard.value.replacementAbandoned(slot: worker.slot) } }
        return .replacementNotReady(oldPID: pid, abandonedInFlight: remaining)
    }

    /// Requests running on `worker`, over every serving loop.
    private func inFlight(of worker: WorkerPoolStateMachine<PoolRequest>.WorkerID) async -> Int {
        var total = 0
        for shard in shardList { total += (try? await shard.eventLoop.submit { shard.value.inFlight(of: worker) }.get()) ?? 0 }
        return total
    }

    /// True when every serving loop has a connection to a process of `slot` newer than `generation`.
    private func allShardsConnected(slot: Int, after generation: Int) async -> Bool {
        for shard in shardList {
            let connected = try? await shard.eventLoop.submit { (shard.value.worker(in: slot)?.generation ?? 0) > generation }.get()
            guard connected == true else { return false }
        }
        return true
    }

    /// SIGKILL to every worker process at once (a second SIGTERM: stop now, leave no orphan).
    func killWorkersNow() {
        for slot in slots { slot.killForGood() }
    }
}
