import NIOCore

/// One served model's share of the runtime: its batch queue and timer, or its decoupled
/// instance, and its counters.
///
/// The runtime looks a model's lane up once per request, by name, and the request keeps it, so
/// nothing later on the request's path hashes the model name again. Lives on the runtime's
/// event loop and is touched only there.
final class ModelLane {
    /// The one instance of a decoupled model: who holds it and who waits for it.
    struct DecoupledInstance {
        var holder: InferenceCall?
        var release: Scheduled<Void>?
        var waiting: [(call: InferenceCall, plan: DecoupledPlan)] = []
    }

    let model: ServedModel
    var counters = WorkerStatistics.Model()
    /// The dynamic batcher of a batched model; nil for other models.
    var batchQueue: BatchQueue<InferenceCall>?
    /// The wake-up the batch queue asked for; armed only while a batch waits to fill.
    var batchTimer: (deadline: NIODeadline, task: Scheduled<Void>)?
    /// The instance of a decoupled model; nil for other models.
    var instance: DecoupledInstance?
    /// How requests of the model are answered straight from their bytes, when the model has
    /// such a path (`simple`); nil for other models.
    let fastPath: SimpleFastPath?

    init(model: ServedModel) {
        self.model = model
        self.fastPath = SimpleFastPath(model: model)
        switch model.backend {
        case .batched:
            var delay = TimeAmount.zero
            if case .dynamicBatching(let batching)? = model.config.schedulingChoice {
                delay = .microseconds(Int64(clamping: batching.maxQueueDelayMicroseconds))
            }
            batchQueue = BatchQueue(maxBatchSize: Int(max(1, model.config.maxBatchSize)), maxQueueDelay: delay)
        case .decoupled:
            instance = DecoupledInstance()
        case .concurrent:
            break  // no queue and no instance: each request runs at once
        }
    }

    var name: String { model.name }

    /// Cancels the batch timer, if one is armed.
    func disarmBatchTimer() {
        guard let timer = batchTimer else { return }
        timer.task.cancel()
        batchTimer = nil
    }
}
