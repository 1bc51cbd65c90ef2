import InferenceProtocol
import NIOCore
import XCTest

@testable import Worker

/// The dynamic batcher's rules, without a clock or an event loop.
final class BatchQueueTests: XCTestCase {
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    private let key: [TensorShape] = [[16], [16]]

    private func executed(_ action: BatchQueue<String>.Action) -> [String]? {
        if case .execute(let jobs) = action { return jobs }
        return nil
    }

    private func wakeUp(_ action: BatchQueue<String>.Action) -> NIODeadline? {
        if case .wakeUp(let deadline) = action { return deadline }
        return nil
    }

    func testALoneRequestWaitsForTheDelayThenRunsAlone() {
        var queue = BatchQueue<String>(maxBatchSize: 8, maxQueueDelay: .microseconds(100))
        XCTAssertEqual(wakeUp(queue.enqueue("a", rows: 1, key: key, now: start)), start + .microseconds(100))
        XCTAssertEqual(wakeUp(queue.timerFired(now: start + .microseconds(50))), start + .microseconds(100))
        XCTAssertEqual(executed(queue.timerFired(now: start + .microseconds(100))), ["a"])
        XCTAssertTrue(queue.isExecuting)
        XCTAssertEqual(queue.waitingCount, 0)
    }

    func testABatchRunsAsSoonAsMaxBatchSizeRowsWait() {
        var queue = BatchQueue<String>(maxBatchSize: 4, maxQueueDelay: .seconds(1))
        XCTAssertNotNil(wakeUp(queue.enqueue("a", rows: 1, key: key, now: start)))
        XCTAssertNotNil(wakeUp(queue.enqueue("b", rows: 2, key: key, now: start)))
        XCTAssertEqual(executed(queue.enqueue("c", rows: 1, key: key, now: start)), ["a", "b", "c"])
    }

    func testRequestsArrivingDuringABatchFormTheNextOne() {
        var queue = BatchQueue<String>(maxBatchSize: 2, maxQueueDelay: .seconds(1))
        _ = queue.enqueue("a", rows: 1, key: key, now: start)
        XCTAssertEqual(executed(queue.enqueue("b", rows: 1, key: key, now: start)), ["a", "b"])
        guard case .none = queue.enqueue("c", rows: 1, key: key, now: start) else { return XCTFail("one batch at a time") }
        guard case .none = queue.enqueue("d", rows: 1, key: key, now: start) else { return XCTFail("one batch at a time") }
        _ = queue.enqueue("e", rows: 1, key: key, now: start)
        XCTAssertEqual(executed(queue.batchFinished(now: start)), ["c", "d"])
        XCTAssertEqual(wakeUp(queue.batchFinished(now: start)), start + .seconds(1))
        XCTAssertEqual(executed(queue.timerFired(now: start + .seconds(1))), ["e"])
    }

    func testABatchNeverExceedsMaxBatchSizeAndKeepsOrder() {
        var queue = BatchQueue<String>(maxBatchSize: 4, maxQueueDelay: .zero)
        _ = queue.enqueue("a", rows: 3, key: key, now: start)
        // Zero delay: "a" runs at once, alone.
        XCTAssertFalse(queue.waitingCount > 0)
        _ = queue.enqueue("b", rows: 3, key: key, now: start)
        _ = queue.enqueue("c", rows: 2, key: key, now: start)
        _ = queue.enqueue("d", rows: 1, key: key, now: start)
        XCTAssertEqual(executed(queue.batchFinished(now: start)), ["b"])
        XCTAssertEqual(executed(queue.batchFinished(now: start)), ["c", "d"])
    }

    func testOnlyRequestsWithTheSameInnerShapeShareABatch() {
        var queue = BatchQueue<String>(maxBatchSize: 8, maxQueueDelay: .microseconds(10))
        _ = queue.enqueue("short", rows: 1, key: [[3]], now: start)
        _ = queue.enqueue("long", rows: 1, key: [[5]], now: start)
        _ = queue.enqueue("short2", rows: 1, key: [[3]], now: start)
        XCTAssertEqual(executed(queue.timerFired(now: start + .microseconds(10))), ["short", "short2"])
        XCTAssertEqual(executed(queue.batchFinished(now: start + .microseconds(10))), ["long"])

        // A run from the head, then more of its shape past others: one batch, in order, and
        // the others keep theirs.
        var mixed = BatchQueue<String>(maxBatchSize: 8, maxQueueDelay: .microseconds(10))
        for (job, inner) in [("a", 3), ("b", 3), ("x", 5), ("c", 3), ("y", 5), ("d", 3)] {
            _ = mixed.enqueue(job, rows: 1, key: [[Int64(inner)]], now: start)
        }
        XCTAssertEqual(executed(mixed.timerFired(now: start + .microseconds(10))), ["a", "b", "c", "d"])
        XCTAssertEqual(executed(mixed.batchFinished(now: start + .microseconds(10))), ["x", "y"])
        XCTAssertEqual(mixed.waitingCount, 0)
    }

    func testRemovingTheHeadMovesTheWakeUpToTheNextRequest() {
        var queue = BatchQueue<String>(maxBatchSize: 8, maxQueueDelay: .microseconds(100))
        _ = queue.enqueue("a", rows: 1, key: key, now: start)
        _ = queue.enqueue("b", rows: 1, key: key, now: start + .microseconds(40))
        let (removed, action) = queue.remove(where: { $0 == "a" }, now: start + .microseconds(50))
        XCTAssertEqual(removed, ["a"])
        XCTAssertEqual(wakeUp(action), start + .microseconds(140))
        let (_, empty) = queue.remove(where: { _ in true }, now: start + .microseconds(60))
        guard case .none = empty else { return XCTFail("nothing left to run") }
    }
}
