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
        var key: [[Int64]]
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

    /// Adds a job of `rows` rows.
    mutating func enqueue(_ job: Job, rows: Int, key: [[Int64]], now: NIODeadline) -> Action {
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
        var chosen: [Int] = []
        var rows = 0
        for (index, entry) in entries.enumerated() where entry.key == head.key {
            guard rows + entry.rows <= maxBatchSize else { break }
            chosen.append(index)
            rows += entry.rows
            if rows == maxBatchSize { break }
        }
        let due = head.enqueuedAt + maxQueueDelay
        guard rows >= maxBatchSize || now >= due else { return .wakeUp(at: due) }
        let jobs = chosen.map { entries[$0].job }
        for index in chosen.reversed() { entries.remove(at: index) }
        isExecuting = true
        return .execute(jobs)
    }
}
