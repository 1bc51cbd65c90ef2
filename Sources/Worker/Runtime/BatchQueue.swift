import InferenceProtocol
import NIOCore

/// The dynamic batcher's rules for one model, as a value type with no I/O: which waiting
/// requests form the next batch, and when.
///
/// The model has one instance, so one batch runs at a time; requests that arrive meanwhile wait
/// and form the next. A batch is formed, when the instance is free, as soon as the requests at
/// the head of the queue that can share a batch add up to `maxBatchSize` rows, or when the
/// oldest waiting request has waited `maxQueueDelay`. Requests share a batch only when their
/// inputs agree in every dimension after the first (their `key`); the head of the queue always
/// goes first, and requests keep their order.
struct BatchQueue<Job> {
    /// What the owner must do next.
    enum Action {
        /// Nothing until the next event.
        case none
        /// Run these jobs as one batch now; call `batchFinished` when it is done.
        case execute([Job])
        /// Call `timerFired` at this time (replacing any earlier request for a wake-up).
        case wakeUp(at: NIODeadline)
    }

    private struct Entry {
        var job: Job
        var rows: Int
        var key: [TensorShape]
        var enqueuedAt: NIODeadline
    }

    let maxBatchSize: Int
    let maxQueueDelay: TimeAmount
    private var entries: [Entry] = []
    /// True while a batch runs.
    private(set) var isExecuting = false

    init(maxBatchSize: Int, maxQueueDelay: TimeAmount) {
        self.maxBatchSize = max(1, maxBatchSize)
        self.maxQueueDelay = maxQueueDelay
    }

    /// Jobs waiting for a batch.
    var waitingCount: Int { entries.count }

    /// True when no batch runs and no job waits: a job enqueued now is the head of the next
    /// batch and decides alone whether it runs at once.
    var isIdle: Bool { !isExecuting && entries.isEmpty }

    /// Adds a job of `rows` rows.
    mutating func enqueue(_ job: Job, rows: Int, key: [TensorShape], now: NIODeadline) -> Action {
        entries.append(Entry(job: job, rows: rows, key: key, enqueuedAt: now))
        return nextAction(now: now)
    }

    /// The wake-up time asked for has come.
    mutating func timerFired(now: NIODeadline) -> Action {
        nextAction(now: now)
    }

    /// The running batch has finished.
    mutating func batchFinished(now: NIODeadline) -> Action {
        isExecuting = false
        return nextAction(now: now)
    }

    /// Takes out the waiting jobs that match (cancelled, say) and returns them with what to do
    /// next.
    mutating func remove(where shouldRemove: (Job) -> Bool, now: NIODeadline) -> (removed: [Job], action: Action) {
        var removed: [Job] = []
        entries.removeAll { entry in
            guard shouldRemove(entry.job) else { return false }
            removed.append(entry.job)
            return true
        }
        return (removed, nextAction(now: now))
    }

    private mutating func nextAction(now: NIODeadline) -> Action {
        guard !isExecuting, let head = entries.first else { return .none }
        // The batch is a run of entries from the head (`prefix` of them), then any later ones
        // that share its key past an entry that does not (`scattered`, usually none, so the
        // common case allocates nothing but the batch itself).
        var prefix = 0
        var scattered: [Int] = []
        var rows = 0
        for index in entries.indices where entries[index].key == head.key {
            let entryRows = entries[index].rows
            guard rows + entryRows <= maxBatchSize else { break }
            if index == prefix && scattered.isEmpty { prefix += 1 } else { scattered.append(index) }
            rows += entryRows
            if rows == maxBatchSize { break }
        }
        let due = head.enqueuedAt + maxQueueDelay
        guard rows >= maxBatchSize || now >= due else { return .wakeUp(at: due) }
        var jobs = entries[..<prefix].map(\.job)
        for index in scattered { jobs.append(entries[index].job) }
        for index in scattered.reversed() { entries.remove(at: index) }
        entries.removeFirst(prefix)
        isExecuting = true
        return .execute(jobs)
    }
}
