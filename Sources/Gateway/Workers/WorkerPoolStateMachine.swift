import H2Transport
import NIOCore

/// The rules of one pool shard — the requests one event loop sends to the workers of one model
/// variant — as a value type with no I/O, no locks and no clock reads (time comes in with the
/// events). `WorkerPoolShard` drives it and does the I/O.
///
/// What it guarantees, by construction:
/// - a request is in exactly one place: queued, or running on one worker process; it is sent to
///   a worker only from the queue or on submission, so it runs at most once per worker process,
///   and at most once at a time;
/// - every request gets exactly one last word (`deliver(finished: true)`, a failure, or the
///   caller's own cancel), after which replies for it are dropped;
/// - a worker has at most `maxInFlightPerWorker` of the shard's requests; at most `maxQueued`
///   new requests wait (requests re-queued from a dead worker are never refused);
/// - a request in flight on a worker that dies goes to another worker, unless the model is not
///   idempotent, it already sent part of its responses, it was on two workers that died (a
///   poison request), or the pool is stopping: then it fails with a message saying which;
/// - a drained variant (an operator's `POST /models/NAME/drain`) takes no new request, and a
///   worker taken out for a restart (`drainWorker`) gets no new request while the ones it runs
///   finish; new requests queue for its replacement when no other worker has room.
struct WorkerPoolStateMachine<Payload> {
    /// The limits and names the rules need.
    struct Configuration {
        /// The model's name, for messages.
        var model: String
        /// Requests in flight on one worker (this shard's share).
        var maxInFlightPerWorker: Int
        /// Requests waiting for a worker (this shard's share).
        var maxQueued: Int

        init(model: String, maxInFlightPerWorker: Int, maxQueued: Int) {
            self.model = model
            self.maxInFlightPerWorker = max(1, maxInFlightPerWorker)
            self.maxQueued = max(0, maxQueued)
        }
    }

    /// One worker process: its slot in the pool and which process of that slot (a restarted
    /// worker is a new process with a new generation).
    struct WorkerID: Hashable, Sendable {
        var slot: Int
        var generation: Int
    }

    /// Send request `id` to the worker in `slot`.
    struct Dispatch: Hashable {
        var id: UInt64
        var slot: Int
    }

    enum SubmitAction {
        /// Send it now.
        case dispatch(Dispatch)
        /// It waits for a worker.
        case queued(id: UInt64)
        /// Refused at once; nothing was kept.
        case refuse(GRPCStatus)
    }

    /// What a worker said about a request.
    enum ReplyKind {
        /// A response that is not the last (decoupled models).
        case partial
        /// The last word: a final response, a stream end, or an error status.
        case final
    }

    enum ReplyAction {
        /// Hand the reply to the request's owner. When `finished`, the request is gone from the
        /// shard and `next` (a queued request) may be sent to the worker that freed up.
        case deliver(Payload, finished: Bool, queueNanoseconds: Int64, next: Dispatch?)
        /// Not for a request running on that worker (cancelled, finished, or re-dispatched).
        case drop
    }

    enum CancelAction {
        /// Unknown or already finished.
        case none
        /// It was queued and is gone.
        case dequeued(Payload)
        /// It was running: tell the worker (CANCEL); `next` may take the freed place.
        case cancelRunning(Payload, slot: Int, next: Dispatch?)
    }

    enum LostAction {
        /// Send request `id` to the worker in `slot`.
        case dispatch(Dispatch)
        /// It waits at the head of the queue for a worker.
        case requeued(id: UInt64)
        /// It ended with this status and is gone from the shard.
        case fail(id: UInt64, GRPCStatus, Payload)
    }

    private struct Worker {
        var id: WorkerID
        /// For messages: "simple-0 (pid 123)".
        var name: String
        var inFlight = 0
        /// Taken out for a restart: finishes what it runs, gets nothing new.
        var draining = false
    }

    private enum Phase {
        case queued
        case running(WorkerID)
    }

    private struct Request {
        var payload: Payload
        var phase: Phase
        var submittedAt: NIODeadline
        var dispatchedAt: NIODeadline?
        var deliveredResponse = false
        /// The worker processes that died while running it, oldest first.
        var workersThatDied: [String] = []
    }

    let configuration: Configuration
    /// False when requests must never run twice (set from the deployment and the model's
    /// configuration once a worker has described it).
    var isIdempotent = true
    private var workers: [Worker?]
    private var requests: [UInt64: Request] = [:]
    private var queue = CircularBuffer<UInt64>()
    private var nextID: UInt64 = 1
    private(set) var isStopping = false
    /// Why new requests are refused while an operator has drained the variant; nil when not
    /// drained. A plain field read per submission.
    private(set) var drainedMessage: String?
    /// Slots whose worker is being replaced on purpose: requests queue for the replacement
    /// instead of being refused while no other worker is connected.
    private var replacing: Set<Int> = []

    init(configuration: Configuration, slots: Int) {
        self.configuration = configuration
        self.workers = Array(repeating: nil, count: max(1, slots))
    }

    // MARK: Reading

    /// Requests queued or running.
    var outstanding: Int { requests.count }
    /// Requests waiting for a worker.
    var queued: Int { queue.count }
    /// Requests running on the worker in `slot` (0 when it is not connected).
    func inFlight(slot: Int) -> Int { workers[slot]?.inFlight ?? 0 }
    /// True while at least one worker is connected.
    var hasWorker: Bool { workers.contains { $0 != nil } }
    /// The worker process connected in `slot`, if any.
    func worker(in slot: Int) -> WorkerID? { workers[slot]?.id }
    /// The payload of a request still in the shard.
    func payload(of id: UInt64) -> Payload? { requests[id]?.payload }
    /// The slot of the worker running `id`, if it is running.
    func runningSlot(of id: UInt64) -> Int? {
        guard case .running(let worker)? = requests[id]?.phase else { return nil }
        return worker.slot
    }

    // MARK: Events

    /// A new request.
    mutating func submit(_ payload: Payload, now: NIODeadline) -> SubmitAction {
        guard !isStopping else {
            return .refuse(GRPCStatus(code: .unavailable, message: "model '\(configuration.model)' is unloading"))
        }
        if let drainedMessage { return .refuse(GRPCStatus(code: .unavailable, message: drainedMessage)) }
        guard hasWorker || !replacing.isEmpty else {
            return .refuse(GRPCStatus(code: .unavailable, message: "no worker of model '\(configuration.model)' is ready; try again shortly"))
        }
        let id = nextID
        nextID &+= 1
        if let slot = leastLoadedSlot() {
            requests[id] = Request(payload: payload, phase: .running(workers[slot]!.id), submittedAt: now, dispatchedAt: now)
            workers[slot]!.inFlight += 1
            return .dispatch(Dispatch(id: id, slot: slot))
        }
        guard queue.count < configuration.maxQueued else {
            return .refuse(GRPCStatus(
                code: .resourceExhausted,
                message: "model '\(configuration.model)' is over capacity: \(configuration.maxQueued) requests are already queued"))
        }
        requests[id] = Request(payload: payload, phase: .queued, submittedAt: now)
        queue.append(id)
        return .queued(id: id)
    }

    /// A worker process is connected in `slot` and takes requests; queued ones go to it.
    mutating func workerConnected(_ worker: WorkerID, name: String, now: NIODeadline) -> [Dispatch] {
        precondition(worker.slot >= 0 && worker.slot < workers.count, "slot \(worker.slot) out of range")
        if let old = workers[worker.slot], old.id == worker { return [] }
        // A replacement without a lost event for its predecessor: the predecessor is lost now.
        precondition(workers[worker.slot] == nil, "workerLost must come before a new worker in the same slot")
        workers[worker.slot] = Worker(id: worker, name: name)
        replacing.remove(worker.slot)
        var dispatches: [Dispatch] = []
        while let next = dispatchNext(now: now) { dispatches.append(next) }
        return dispatches
    }

    /// A reply from the worker in `slot` for request `id`.
    mutating func received(_ kind: ReplyKind, for id: UInt64, fromSlot slot: Int, now: NIODeadline) -> ReplyAction {
        guard var request = requests[id], case .running(let worker) = request.phase, worker.slot == slot,
            workers[slot]?.id == worker
        else { return .drop }
        switch kind {
        case .partial:
            request.deliveredResponse = true
            requests[id] = request
            return .deliver(request.payload, finished: false, queueNanoseconds: 0, next: nil)
        case .final:
            requests[id] = nil
            workers[slot]!.inFlight -= 1
            let queued = ((request.dispatchedAt ?? request.submittedAt) - request.submittedAt).nanoseconds
            return .deliver(request.payload, finished: true, queueNanoseconds: queued, next: dispatchNext(now: now))
        }
    }

    /// The owner gave up on request `id` (client cancel, deadline).
    mutating func cancel(_ id: UInt64, now: NIODeadline) -> CancelAction {
        guard let request = requests.removeValue(forKey: id) else { return .none }
        switch request.phase {
        case .queued:
            if let index = queue.firstIndex(of: id) { queue.remove(at: index) }
            return .dequeued(request.payload)
        case .running(let worker):
            guard workers[worker.slot]?.id == worker else { return .dequeued(request.payload) }
            workers[worker.slot]!.inFlight -= 1
            return .cancelRunning(request.payload, slot: worker.slot, next: dispatchNext(now: now))
        }
    }

    /// The worker process `worker` is gone (its connection closed, or it died). What it was
    /// running goes elsewhere or fails; the actions come in request order.
    mutating func workerLost(_ worker: WorkerID, now: NIODeadline) -> [LostAction] {
        guard let lost = workers[worker.slot], lost.id == worker else { return [] }
        workers[worker.slot] = nil
        var orphans: [UInt64] = []
        for (id, request) in requests {
            if case .running(let on) = request.phase, on == worker { orphans.append(id) }
        }
        orphans.sort()
        var actions: [LostAction] = []
        var requeued: [UInt64] = []
        let model = configuration.model
        let slotName = lost.name.split(separator: " ").first.map(String.init) ?? lost.name
        for id in orphans {
            var request = requests[id]!
            request.workersThatDied.append(lost.name)
            let failure: GRPCStatus?
            if !isIdempotent {
                failure = GRPCStatus(
                    code: .unavailable,
                    message: "worker \(slotName) of model '\(model)' died while running this request; the model is marked non-idempotent, so it was not retried")
            } else if request.deliveredResponse {
                failure = GRPCStatus(
                    code: .unavailable,
                    message: "worker \(slotName) of model '\(model)' died after sending part of the responses; the stream cannot be resumed")
            } else if request.workersThatDied.count >= 2 {
                failure = GRPCStatus(
                    code: .internalError,
                    message: "poison request: it was in flight on two workers of model '\(model)' that both died "
                        + "(\(request.workersThatDied.joined(separator: ", "))); it will not be dispatched again")
            } else if isStopping {
                failure = GRPCStatus(
                    code: .unavailable,
                    message: "worker \(slotName) of model '\(model)' stopped while running this request, and the model is unloading")
            } else {
                failure = nil
            }
            if let failure {
                requests[id] = nil
                actions.append(.fail(id: id, failure, request.payload))
            } else if let slot = leastLoadedSlot() {
                request.phase = .running(workers[slot]!.id)
                request.dispatchedAt = now
                workers[slot]!.inFlight += 1
                requests[id] = request
                actions.append(.dispatch(Dispatch(id: id, slot: slot)))
            } else {
                request.phase = .queued
                requests[id] = request
                requeued.append(id)
                actions.append(.requeued(id: id))
            }
        }
        // Re-queued requests go first, in their order: they have waited longest.
        for id in requeued.reversed() { queue.prepend(id) }
        return actions
    }

    /// No new requests from now on; those queued still go to the workers as they free up, and
    /// running ones finish (or fail when their worker goes). `outstanding` reaches 0 once all
    /// have answered (a drain: a reload retiring a pool, an unload, a shutdown).
    mutating func beginStopping() {
        isStopping = true
    }

    /// No new requests from now on. Returns the queued ones, which the owner fails: no worker
    /// will take them. Running requests finish (or fail when their worker goes).
    mutating func stop() -> [(id: UInt64, payload: Payload)] {
        isStopping = true
        return abandonQueued()
    }

    /// Removes and returns the queued requests (a drain ran out of time; the owner fails them).
    mutating func abandonQueued() -> [(id: UInt64, payload: Payload)] {
        var abandoned: [(id: UInt64, payload: Payload)] = []
        while let id = queue.popFirst() {
            if let request = requests.removeValue(forKey: id) { abandoned.append((id, request.payload)) }
        }
        return abandoned
    }

    // MARK: Operators

    /// Refuses new requests with UNAVAILABLE and `message` (an operator drained the variant),
    /// or takes them again (`nil`). Requests queued or running go on.
    mutating func setDrained(_ message: String?) {
        drainedMessage = message
    }

    /// Takes `worker` out for a restart: it gets no new request and finishes what it runs;
    /// until a new worker connects in its slot (or `replacementAbandoned`), requests that find
    /// no other worker with room queue for it instead of being refused. False when `worker` is
    /// not connected.
    mutating func drainWorker(_ worker: WorkerID) -> Bool {
        guard workers[worker.slot]?.id == worker else { return false }
        workers[worker.slot]!.draining = true
        replacing.insert(worker.slot)
        return true
    }

    /// The replacement for `slot` did not come: new requests are refused again while no worker
    /// is connected (those already queued keep waiting, like a dead worker's).
    mutating func replacementAbandoned(slot: Int) {
        replacing.remove(slot)
    }

    /// Requests running on `worker` (0 when it is not connected).
    func inFlight(of worker: WorkerID) -> Int {
        guard let connected = workers[worker.slot], connected.id == worker else { return 0 }
        return connected.inFlight
    }

    // MARK: Dispatch

    /// The connected worker with the fewest requests in flight and room for one more (the
    /// lowest slot among equals); workers taken out for a restart get nothing.
    private func leastLoadedSlot() -> Int? {
        var best: Int?
        var bestLoad = Int.max
        for slot in workers.indices {
            guard let worker = workers[slot], worker.inFlight < configuration.maxInFlightPerWorker, !worker.draining else { continue }
            if worker.inFlight < bestLoad {
                best = slot
                bestLoad = worker.inFlight
            }
        }
        return best
    }

    /// Moves the head of the queue onto a worker with room, if there is one.
    private mutating func dispatchNext(now: NIODeadline) -> Dispatch? {
        guard !queue.isEmpty, let slot = leastLoadedSlot() else { return nil }
        let id = queue.removeFirst()
        requests[id]!.phase = .running(workers[slot]!.id)
        requests[id]!.dispatchedAt = now
        workers[slot]!.inFlight += 1
        return Dispatch(id: id, slot: slot)
    }
}

extension WorkerPoolStateMachine.LostAction: Equatable where Payload: Equatable {}
