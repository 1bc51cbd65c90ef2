import Foundation
import H2Transport
import InferenceProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// How one model variant is deployed on workers.
public struct ModelDeployment: Sendable, Hashable {
    /// The model's name, as clients ask for it.
    public var model: String
    /// The version these workers serve (`switchyard worker --model-version`). Default "1".
    public var version: String = "1"
    /// Worker processes to keep running. Default 2.
    public var workers: Int = 2
    /// Requests in flight on one worker before others queue. Default 64. Each of the gateway's
    /// event loops has its own connection to every worker and an equal share of this limit
    /// (at least 1), so that a call never waits for a lock or another thread.
    public var maxInFlightPerWorker: Int = 64
    /// Requests waiting for a worker before RESOURCE_EXHAUSTED. Default 1024, shared out among
    /// the event loops like `maxInFlightPerWorker`.
    public var maxQueuedRequests: Int = 1024
    /// False for models whose requests must never run twice (stateful or with side effects):
    /// their requests in flight on a worker that dies fail instead of being sent elsewhere.
    public var idempotent: Bool = true
    /// Extra arguments for `switchyard worker` (e.g. `--max-batch-size 8`), or for the command
    /// of a `.command` backend (appended to it).
    public var workerArguments: [String] = []
    /// What runs the workers: the built-in `switchyard worker` (the default) or a program of the
    /// user's own. A reload that changes it replaces the variant's pool, like any other change.
    public var backend: WorkerBackend = .builtin

    public init(model: String, version: String = "1", workers: Int = 2) {
        self.model = model
        self.version = version
        self.workers = workers
    }
}

/// How workers are started: the program and a place for their sockets.
public struct WorkerLauncher: Sendable {
    /// The `switchyard` binary (or any program that speaks the worker protocol and takes the
    /// same arguments).
    public var executable: String
    /// Directory for worker sockets.
    public var socketDirectory: String
    /// How long a new worker has to send HELLO. Default 20 s.
    public var startTimeout: TimeAmount = .seconds(20)
    /// Health ping period and how long a PONG may take before the worker counts as stalled.
    public var pingInterval: TimeAmount = .seconds(2)
    public var pingTimeout: TimeAmount = .seconds(3)
    /// Restart back-off: first delay, doubled per consecutive failure up to the maximum.
    public var restartDelay: TimeAmount = .milliseconds(200)
    public var maxRestartDelay: TimeAmount = .seconds(30)
    /// The level of the lines workers write (forwarded to the gateway's log); nil: the pool's.
    public var outputLogLevel: Logger.Level?

    public init(executable: String, socketDirectory: String) {
        self.executable = executable
        self.socketDirectory = socketDirectory
    }

    /// This process's own binary, with sockets in a fresh directory under /tmp.
    public static func currentExecutable() throws -> WorkerLauncher {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let directory = NSTemporaryDirectory() + "switchyard-\(getpid())"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return WorkerLauncher(executable: executable, socketDirectory: directory)
    }
}

/// Why an inference request of a variant failed, as Triton's `nv_inference_request_failure`
/// labels it (`reason`).
enum InferenceFailureReason: Int, CaseIterable, Sendable {
    /// The gateway refused it before a worker saw it: queue full, no ready worker, drained.
    case rejected
    /// The client cancelled it or its deadline passed.
    case canceled
    /// The worker answered with an error (or died with it).
    case backend
    /// Anything else.
    case other

    /// Triton's label value.
    var label: String {
        switch self {
        case .rejected: "REJECTED"
        case .canceled: "CANCELED"
        case .backend: "BACKEND"
        case .other: "OTHER"
        }
    }

    /// The reason for a request that ended with `status` after it was sent to a worker.
    init(afterDispatch status: GRPCStatus) {
        switch status.code {
        case .cancelled, .deadlineExceeded: self = .canceled
        case .resourceExhausted: self = .rejected
        default: self = .backend
        }
    }
}

/// Upper bounds of latency histogram buckets, in nanoseconds, ascending; a bucket above the
/// last (+Inf) is implied. Shared by every variant's statistics.
struct LatencyBuckets: Sendable, Hashable {
    let upperBoundsNanos: [UInt64]

    /// 100 µs to 10 s, roughly 1-2.5-5 per decade: fits calls of a fast local model as well as
    /// a slow batch.
    static let `default` = LatencyBuckets(seconds: [
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
    ])

    /// Bounds in seconds (sorted, duplicates dropped, non-positive ones ignored).
    init(seconds: [Double]) {
        upperBoundsNanos = Array(Set(seconds.filter { $0 > 0 }.map { UInt64(($0 * 1e9).rounded()) })).sorted()
    }

    /// The bucket `nanoseconds` falls in: the first bound at or above it, or `count` for +Inf.
    @inline(__always)
    func index(of nanoseconds: UInt64) -> Int {
        var low = 0
        var high = upperBoundsNanos.count
        while low < high {
            let middle = (low + high) >> 1
            if upperBoundsNanos[middle] >= nanoseconds { high = middle } else { low = middle + 1 }
        }
        return low
    }

    /// Buckets including +Inf.
    var bucketCount: Int { upperBoundsNanos.count + 1 }
}

/// Counts per bucket (not cumulative) and the sum, in nanoseconds.
struct LatencyHistogram: Sendable {
    var counts: [UInt64]
    var sumNanos: UInt64 = 0

    init(buckets: LatencyBuckets) {
        counts = Array(repeating: 0, count: buckets.bucketCount)
    }

    @inline(__always)
    mutating func record(_ nanoseconds: UInt64, buckets: LatencyBuckets) {
        counts[buckets.index(of: nanoseconds)] &+= 1
        sumNanos &+= nanoseconds
    }

    var count: UInt64 { counts.reduce(0, &+) }

    static func + (a: LatencyHistogram, b: LatencyHistogram) -> LatencyHistogram {
        var sum = a
        if sum.counts.count < b.counts.count { sum.counts += Array(repeating: 0, count: b.counts.count - sum.counts.count) }
        for (index, value) in b.counts.enumerated() { sum.counts[index] &+= value }
        sum.sumNanos &+= b.sumNanos
        return sum
    }
}

/// The counters behind ModelStatistics and the `nv_inference_*` metrics for one variant (one
/// shard's, or summed), nanosecond totals.
struct VariantStatistics: Sendable {
    var successCount: UInt64 = 0
    var successNanos: UInt64 = 0
    var failCount: UInt64 = 0
    var failNanos: UInt64 = 0
    /// Failures by `InferenceFailureReason.rawValue`.
    var failuresByReason: (UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0)
    var queueNanos: UInt64 = 0
    var computeInputNanos: UInt64 = 0
    var computeInferNanos: UInt64 = 0
    var computeOutputNanos: UInt64 = 0
    var inferenceCount: UInt64 = 0
    var executionCount: UInt64 = 0
    /// When the last request finished, on the uptime clock; nil before any.
    var lastInference: NIODeadline?
    /// Requests of a worker that died, sent to another worker (or queued for one).
    var redispatched: UInt64 = 0
    /// Requests failed as poison: in flight on two workers that both died.
    var poisoned: UInt64 = 0
    /// Other requests failed because their worker died (non-idempotent models).
    var failedOnWorkerExit: UInt64 = 0
    /// Shadow copies not sent because this (shadow) variant's workers were all busy.
    var shadowShed: UInt64 = 0
    /// The buckets of the histograms below.
    let buckets: LatencyBuckets
    /// Successful requests' whole time in the gateway (receipt to answer).
    var requestDuration: LatencyHistogram
    /// Their time waiting: in the gateway's queue and in the worker's.
    var queueDuration: LatencyHistogram
    /// Their time executing on the worker (compute input + infer + output).
    var computeDuration: LatencyHistogram

    init(buckets: LatencyBuckets = .default) {
        self.buckets = buckets
        requestDuration = LatencyHistogram(buckets: buckets)
        queueDuration = LatencyHistogram(buckets: buckets)
        computeDuration = LatencyHistogram(buckets: buckets)
    }

    /// Records one successful request. `queueNanoseconds` is the time it waited in the
    /// gateway's queue; `timing`, when the worker reported it, splits the rest (and says whether
    /// this request stands for its batch's execution); without it the whole rest counts as
    /// compute_infer and the request as one execution.
    mutating func recordSuccess(
        nanoseconds: UInt64, queueNanoseconds: UInt64 = 0, batchSize: UInt64, timing: WorkerProtocol.Timing? = nil, now: NIODeadline
    ) {
        let gatewayQueue = min(queueNanoseconds, nanoseconds)
        successCount += 1
        successNanos += nanoseconds
        inferenceCount += batchSize
        let queued: UInt64
        let compute: UInt64
        if let timing {
            queued = gatewayQueue &+ timing.queueNs
            compute = timing.computeInputNs &+ timing.computeInferNs &+ timing.computeOutputNs
            computeInputNanos += timing.computeInputNs
            computeInferNanos += timing.computeInferNs
            computeOutputNanos += timing.computeOutputNs
            if timing.countsExecution { executionCount += 1 }
        } else {
            queued = gatewayQueue
            compute = nanoseconds - gatewayQueue
            computeInferNanos += compute
            executionCount += 1
        }
        queueNanos += queued
        requestDuration.record(nanoseconds, buckets: buckets)
        queueDuration.record(queued, buckets: buckets)
        computeDuration.record(compute, buckets: buckets)
        lastInference = now
    }

    /// Records one failed request.
    mutating func recordFailure(_ reason: InferenceFailureReason, nanoseconds: UInt64, now: NIODeadline) {
        failCount += 1
        failNanos += nanoseconds
        switch reason {
        case .rejected: failuresByReason.0 += 1
        case .canceled: failuresByReason.1 += 1
        case .backend: failuresByReason.2 += 1
        case .other: failuresByReason.3 += 1
        }
        lastInference = now
    }

    /// Failures with `reason`.
    func failures(_ reason: InferenceFailureReason) -> UInt64 {
        switch reason {
        case .rejected: failuresByReason.0
        case .canceled: failuresByReason.1
        case .backend: failuresByReason.2
        case .other: failuresByReason.3
        }
    }

    /// The sum of two shards' counters.
    static func + (a: VariantStatistics, b: VariantStatistics) -> VariantStatistics {
        var sum = a
        sum.successCount += b.successCount
        sum.successNanos += b.successNanos
        sum.failCount += b.failCount
        sum.failNanos += b.failNanos
        sum.failuresByReason.0 += b.failuresByReason.0
        sum.failuresByReason.1 += b.failuresByReason.1
        sum.failuresByReason.2 += b.failuresByReason.2
        sum.failuresByReason.3 += b.failuresByReason.3
        sum.queueNanos += b.queueNanos
        sum.computeInputNanos += b.computeInputNanos
        sum.computeInferNanos += b.computeInferNanos
        sum.computeOutputNanos += b.computeOutputNanos
        sum.inferenceCount += b.inferenceCount
        sum.executionCount += b.executionCount
        sum.redispatched += b.redispatched
        sum.poisoned += b.poisoned
        sum.failedOnWorkerExit += b.failedOnWorkerExit
        sum.shadowShed += b.shadowShed
        sum.requestDuration = sum.requestDuration + b.requestDuration
        sum.queueDuration = sum.queueDuration + b.queueDuration
        sum.computeDuration = sum.computeDuration + b.computeDuration
        switch (a.lastInference, b.lastInference) {
        case (let x?, let y?): sum.lastInference = max(x, y)
        case (nil, let y): sum.lastInference = y
        case (let x, nil): sum.lastInference = x
        }
        return sum
    }

    /// `lastInference` as milliseconds since the Unix epoch (0 for never).
    var lastInferenceUnixMillis: UInt64 {
        guard let lastInference else { return 0 }
        let age = NIODeadline.now() - lastInference
        return UInt64(max(0, (WorkerProtocol.unixTimeNanoseconds() - age.nanoseconds) / 1_000_000))
    }
}

/// The workers of one model variant (a model at one version): spawned and supervised on the
/// control loop, and sent requests by one `WorkerPoolShard` per serving event loop.
///
/// Dispatch goes to the ready worker with the fewest requests in flight. A worker that dies or
/// stalls costs no request: what it had not answered goes to another worker, unless the model
/// is not idempotent, or the request was already on a worker that died (a poison request,
/// failed with a message saying so, so one bad input cannot take the pool down). Queues are
/// bounded; a full queue or a pool without a ready worker answers at once.
public final class WorkerPool: Sendable {
    public let deployment: ModelDeployment
    let launcher: WorkerLauncher
    let logger: Logger
    let slots: [WorkerSlot]
    /// One shard per serving event loop, found by the loop's identity.
    private let shards: [ObjectIdentifier: NIOLoopBoundBox<WorkerPoolShard>]
    let shardList: [NIOLoopBoundBox<WorkerPoolShard>]

    /// The model as the last ready worker described it, for readers on any thread.
    private let published = NIOLockedValueBox<DescribedModel?>(nil)

    /// A pool with one shard per loop of `group` (the loops that serve calls); its workers are
    /// supervised on `control` and started with the help of `threadPool`. `drainedMessage`:
    /// the pool starts drained by an operator (see `setDrained`); `replacement`: the how-manieth
    /// pool a reload made for this variant (its workers' names and sockets say so). Making one
    /// spawns nothing: workers start with `start()`.
    init(
        deployment: ModelDeployment, launcher: WorkerLauncher, group: EventLoopGroup, control: EventLoop, threadPool: NIOThreadPool,
        drainedMessage: String? = nil, replacement: Int = 0, latencyBuckets: LatencyBuckets = .default, logger: Logger
    ) {
        self.deployment = deployment
        self.launcher = launcher
        var logger = logger
        logger[metadataKey: "model"] = "\(deployment.model)"
        if deployment.version != "1" { logger[metadataKey: "version"] = "\(deployment.version)" }
        self.logger = logger
        self.slots = (0..<max(1, deployment.workers)).map { index in
            WorkerSlot(
                index: index, deployment: deployment, replacement: replacement, launcher: launcher, control: control, threadPool: threadPool,
                logger: logger)
        }
        let loops = Array(group.makeIterator())
        var shards: [ObjectIdentifier: NIOLoopBoundBox<WorkerPoolShard>] = [:]
        var list: [NIOLoopBoundBox<WorkerPoolShard>] = []
        for loop in loops {
            // Created here, used only on `loop`.
            let shard = NIOLoopBoundBox.makeBoxSendingValue(
                WorkerPoolShard(
                    eventLoop: loop, deployment: deployment, shardCount: loops.count, drainedMessage: drainedMessage,
                    latencyBuckets: latencyBuckets, logger: logger), eventLoop: loop)
            shards[ObjectIdentifier(loop)] = shard
            list.append(shard)
        }
        self.shards = shards
        self.shardList = list
        for slot in slots { slot.setPool(self) }
    }

    /// A pool with the default latency buckets, for Benchmarks/ (which route to pools that are
    /// never started); the gateway's own pools come from `ModelRepository`.
    public convenience init(
        deployment: ModelDeployment, launcher: WorkerLauncher, group: EventLoopGroup, control: EventLoop, threadPool: NIOThreadPool,
        logger: Logger
    ) {
        self.init(deployment: deployment, launcher: launcher, group: group, control: control, threadPool: threadPool, drainedMessage: nil, logger: logger)
    }

    /// The shard of the loop the caller runs on; nil for a loop that is not a serving loop.
    /// Must be called on `loop`.
    func shard(on loop: EventLoop) -> WorkerPoolShard? {
        shards[ObjectIdentifier(loop)]?.value
    }

    /// Starts every worker; returns when each serving loop is connected to at least one ready
    /// worker, or all workers failed to start, or the start timeout passed.
    public func start() async {
        defer { startReturned.withLockedValue { $0 = true } }
        for slot in slots { slot.start() }
        let deadline = NIODeadline.now() + launcher.startTimeout + .seconds(1)
        while NIODeadline.now() < deadline {
            if slots.allSatisfy({ $0.hasFailedToStart }) { return }
            if slots.contains(where: { $0.isReady }), await allShards({ $0.hasWorker }) { break }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    private func allShards(_ condition: @escaping @Sendable (WorkerPoolShard) -> Bool) async -> Bool {
        for shard in shardList {
            let loop = shard.eventLoop
            guard (try? await loop.submit({ condition(shard.value) }).get()) == true else { return false }
        }
        return true
    }

    /// True while at least one worker is ready, once `start` has returned: before that a worker
    /// may have said HELLO while some serving loops have no connection to it yet, and a call on
    /// such a loop would be refused.
    public var isReady: Bool { startReturned.withLockedValue { $0 } && slots.contains { $0.isReady } }
    private let startReturned = NIOLockedValueBox(false)

    /// What the workers said about the model in HELLO (config, max batch size, decoupled);
    /// kept after the workers are gone.
    public var modelDescriptor: WorkerProtocol.ModelDescriptor? { published.withLockedValue { $0?.descriptor } }

    /// The same, shared by reference.
    var describedModel: DescribedModel? { published.withLockedValue { $0 } }

    /// The worker processes' ids (pids), for tests and the admin API.
    public var workerPIDs: [Int32] { slots.compactMap { $0.pid } }

    /// Requests in flight on workers plus those queued, over every loop.
    public func outstanding() async -> Int {
        var total = 0
        for shard in shardList { total += (try? await shard.eventLoop.submit { shard.value.outstanding }.get()) ?? 0 }
        return total
    }

    /// The ModelStatistics counters summed over every loop.
    func statistics() async -> VariantStatistics {
        var total: VariantStatistics?
        for shard in shardList {
            guard let statistics = try? await shard.eventLoop.submit({ shard.value.statistics }).get() else { continue }
            total = total.map { $0 + statistics } ?? statistics
        }
        return total ?? VariantStatistics()
    }

    // MARK: Supervisor events

    func workerReady(
        slot: Int, worker: WorkerPoolStateMachine<PoolRequest>.WorkerID, name: String, pid: Int32, hello: WorkerProtocol.Hello,
        socketPath: String
    ) {
        if let model = hello.models.first(where: { $0.name == deployment.model }) {
            published.withLockedValue { $0 = DescribedModel(model) }
        }
        let timeout = launcher.startTimeout
        for shard in shardList {
            shard.eventLoop.execute {
                shard.value.attach(worker: worker, name: name, socketPath: socketPath, pid: pid, connectTimeout: timeout)
            }
        }
    }

    func workerGone(worker: WorkerPoolStateMachine<PoolRequest>.WorkerID) {
        for shard in shardList {
            shard.eventLoop.execute { shard.value.detach(worker: worker) }
        }
    }

    // MARK: Stopping

    /// Stops taking requests, waits for those queued and in flight (at most `timeout`; what is
    /// still queued then fails with UNAVAILABLE), then stops the workers and waits until every
    /// process has exited.
    public func drainAndStop(timeout: TimeAmount = .seconds(30)) async {
        let drained = shardList.map { shard in shard.eventLoop.flatSubmit { shard.value.drain() } }
        let loop = shardList[0].eventLoop
        let all = EventLoopFuture.andAllComplete(drained, on: loop)
        let finished = loop.makePromise(of: Void.self)
        let timer = loop.scheduleTask(in: timeout) { finished.succeed() }
        all.whenComplete { _ in
            timer.cancel()
            finished.succeed()
        }
        try? await finished.futureResult.get()
        for shard in shardList { try? await shard.eventLoop.submit { shard.value.abandonQueued() }.get() }
        await withTaskGroup(of: Void.self) { group in
            for slot in slots { group.addTask { await slot.stop() } }
        }
        for shard in shardList { shard.eventLoop.execute { shard.value.closeConnections() } }
    }
}
