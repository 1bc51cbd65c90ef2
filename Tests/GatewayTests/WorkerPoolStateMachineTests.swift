@testable import Gateway
import H2Transport
import NIOCore
import XCTest

/// Table-style tests of the pool shard's rules, without workers or sockets.
final class WorkerPoolStateMachineTests: XCTestCase {
    typealias Machine = WorkerPoolStateMachine<String>
    let t0 = NIODeadline.uptimeNanoseconds(1_000_000)

    func makeMachine(slots: Int = 2, inFlight: Int = 1, queued: Int = 2, connected: [Int] = [0, 1]) -> Machine {
        var machine = Machine(configuration: .init(model: "m", maxInFlightPerWorker: inFlight, maxQueued: queued), slots: slots)
        for slot in connected {
            XCTAssertEqual(machine.workerConnected(worker(slot), name: "m-\(slot) (pid \(100 + slot))", now: t0), [])
        }
        return machine
    }

    func worker(_ slot: Int, generation: Int = 1) -> Machine.WorkerID { .init(slot: slot, generation: generation) }

    func dispatched(_ action: Machine.SubmitAction, file: StaticString = #filePath, line: UInt = #line) -> Machine.Dispatch? {
        guard case .dispatch(let dispatch) = action else {
            XCTFail("expected a dispatch, got \(action)", file: file, line: line)
            return nil
        }
        return dispatch
    }

    // MARK: Submission

    func testSubmitGoesToTheLeastLoadedWorkerThenQueuesThenRefuses() {
        var machine = makeMachine()
        XCTAssertEqual(dispatched(machine.submit("a", now: t0)), .init(id: 1, slot: 0))
        XCTAssertEqual(dispatched(machine.submit("b", now: t0)), .init(id: 2, slot: 1))
        guard case .queued(id: 3) = machine.submit("c", now: t0) else { return XCTFail("c should queue") }
        guard case .queued(id: 4) = machine.submit("d", now: t0) else { return XCTFail("d should queue") }
        guard case .refuse(let status) = machine.submit("e", now: t0) else { return XCTFail("e should be refused") }
        XCTAssertEqual(status.code, .resourceExhausted)
        XCTAssertEqual(status.message, "model 'm' is over capacity: 2 requests are already queued")
        XCTAssertEqual(machine.outstanding, 4)
        XCTAssertEqual(machine.queued, 2)
    }

    func testSubmitWithoutAWorkerOrWhileStoppingIsUnavailable() {
        var machine = makeMachine(connected: [])
        guard case .refuse(let status) = machine.submit("a", now: t0) else { return XCTFail() }
        XCTAssertEqual(status.code, .unavailable)
        XCTAssertEqual(status.message, "no worker of model 'm' is ready; try again shortly")

        var stopping = makeMachine()
        XCTAssertTrue(stopping.stop().isEmpty)
        guard case .refuse(let stopped) = stopping.submit("a", now: t0) else { return XCTFail() }
        XCTAssertEqual(stopped.code, .unavailable)
        XCTAssertEqual(stopped.message, "model 'm' is unloading")
    }

    func testQueuedRequestsGoToAWorkerThatConnects() {
        var machine = makeMachine(connected: [0])
        _ = machine.submit("a", now: t0)
        _ = machine.submit("b", now: t0)
        _ = machine.submit("c", now: t0)
        XCTAssertEqual(machine.workerConnected(worker(1), name: "m-1 (pid 101)", now: t0), [.init(id: 2, slot: 1)])
        XCTAssertEqual(machine.queued, 1)
    }

    // MARK: Replies

    func testAFinalReplyFreesTheWorkerForTheHeadOfTheQueueWithItsQueueTime() {
        var machine = makeMachine(connected: [0])
        _ = machine.submit("a", now: t0)
        _ = machine.submit("b", now: t0)
        let later = t0 + .microseconds(250)
        guard case .deliver(let payload, finished: true, queueNanoseconds: 0, next: let next) = machine.received(.final, for: 1, fromSlot: 0, now: later)
        else { return XCTFail() }
        XCTAssertEqual(payload, "a")
        XCTAssertEqual(next, .init(id: 2, slot: 0))
        guard case .deliver("b", finished: true, queueNanoseconds: 250_000, next: nil) = machine.received(.final, for: 2, fromSlot: 0, now: later)
        else { return XCTFail() }
        XCTAssertEqual(machine.outstanding, 0)
    }

    func testPartialRepliesKeepTheRequestRunning() {
        var machine = makeMachine()
        _ = machine.submit("a", now: t0)
        for _ in 0..<3 {
            guard case .deliver("a", finished: false, _, next: nil) = machine.received(.partial, for: 1, fromSlot: 0, now: t0) else { return XCTFail() }
        }
        XCTAssertEqual(machine.inFlight(slot: 0), 1)
        guard case .deliver("a", finished: true, _, _) = machine.received(.final, for: 1, fromSlot: 0, now: t0) else { return XCTFail() }
        XCTAssertEqual(machine.inFlight(slot: 0), 0)
    }

    func testRepliesFromTheWrongWorkerOrForUnknownRequestsAreDropped() {
        var machine = makeMachine()
        _ = machine.submit("a", now: t0)  // on slot 0
        guard case .drop = machine.received(.final, for: 1, fromSlot: 1, now: t0) else { return XCTFail("wrong worker") }
        guard case .drop = machine.received(.final, for: 99, fromSlot: 0, now: t0) else { return XCTFail("unknown id") }
        guard case .deliver = machine.received(.final, for: 1, fromSlot: 0, now: t0) else { return XCTFail() }
        guard case .drop = machine.received(.final, for: 1, fromSlot: 0, now: t0) else { return XCTFail("a second final") }
    }

    // MARK: Cancellation

    func testCancelWhileQueuedRemovesItFromTheQueue() {
        var machine = makeMachine(connected: [0])
        _ = machine.submit("a", now: t0)
        _ = machine.submit("b", now: t0)
        _ = machine.submit("c", now: t0)
        guard case .dequeued("b") = machine.cancel(2, now: t0) else { return XCTFail() }
        XCTAssertEqual(machine.queued, 1)
        guard case .deliver(_, finished: true, _, next: let next) = machine.received(.final, for: 1, fromSlot: 0, now: t0) else { return XCTFail() }
        XCTAssertEqual(next, .init(id: 3, slot: 0), "the cancelled request is skipped")
    }

    func testCancelWhileRunningTellsTheWorkerAndDispatchesTheNext() {
        var machine = makeMachine(connected: [0])
        _ = machine.submit("a", now: t0)
        _ = machine.submit("b", now: t0)
        guard case .cancelRunning("a", slot: 0, next: let next) = machine.cancel(1, now: t0) else { return XCTFail() }
        XCTAssertEqual(next, .init(id: 2, slot: 0))
        guard case .none = machine.cancel(1, now: t0) else { return XCTFail("a second cancel does nothing") }
    }

    func testRepliesAfterCancelAreDropped() {
        var machine = makeMachine()
        _ = machine.submit("a", now: t0)
        _ = machine.cancel(1, now: t0)
        guard case .drop = machine.received(.partial, for: 1, fromSlot: 0, now: t0) else { return XCTFail() }
        guard case .drop = machine.received(.final, for: 1, fromSlot: 0, now: t0) else { return XCTFail() }
        XCTAssertEqual(machine.inFlight(slot: 0), 0)
    }

    // MARK: Worker deaths

    func testOrphansOfADeadWorkerGoToAnotherWorker() {
        var machine = makeMachine(inFlight: 2)
        _ = machine.submit("a", now: t0)  // slot 0
        _ = machine.submit("b", now: t0)  // slot 1
        _ = machine.submit("c", now: t0)  // slot 0
        XCTAssertEqual(machine.workerLost(worker(0), now: t0), [.dispatch(.init(id: 1, slot: 1)), .requeued(id: 3)])
        XCTAssertEqual(machine.inFlight(slot: 1), 2)
        XCTAssertEqual(machine.queued, 1)
        // Replies from the dead worker's connection no longer count.
        guard case .drop = machine.received(.final, for: 3, fromSlot: 0, now: t0) else { return XCTFail() }
    }

    func testALostEventForAnOlderProcessOfTheSlotChangesNothing() {
        var machine = makeMachine()
        _ = machine.submit("a", now: t0)
        XCTAssertEqual(machine.workerLost(worker(0, generation: 0), now: t0), [])
        XCTAssertEqual(machine.inFlight(slot: 0), 1)
    }

    func testWithOneWorkerOrphansWaitForTheReplacementAheadOfNewRequests() {
        var machine = makeMachine(slots: 1, inFlight: 1, queued: 4, connected: [0])
        _ = machine.submit("a", now: t0)
        _ = machine.submit("b", now: t0)
        XCTAssertEqual(machine.workerLost(worker(0), now: t0), [.requeued(id: 1)])
        XCTAssertEqual(machine.workerConnected(worker(0, generation: 2), name: "m-0 (pid 200)", now: t0), [.init(id: 1, slot: 0)])
    }

    func testAPoisonRequestFailsAfterTwoWorkersDied() {
        var machine = makeMachine()
        _ = machine.submit("poison", now: t0)
        XCTAssertEqual(machine.workerLost(worker(0), now: t0), [.dispatch(.init(id: 1, slot: 1))])
        let actions = machine.workerLost(worker(1), now: t0)
        XCTAssertEqual(actions.count, 1)
        guard case .fail(id: 1, let status, _) = actions[0] else { return XCTFail("\(actions)") }
        XCTAssertEqual(status.code, .internalError)
        XCTAssertEqual(
            status.message,
            "poison request: it was in flight on two workers of model 'm' that both died (m-0 (pid 100), m-1 (pid 101)); it will not be dispatched again")
        XCTAssertEqual(machine.outstanding, 0)
        // The replacements get nothing of it.
        XCTAssertEqual(machine.workerConnected(worker(0, generation: 2), name: "m-0 (pid 200)", now: t0), [])
    }

    func testNonIdempotentOrphansFail() {
        var machine = makeMachine()
        machine.isIdempotent = false
        _ = machine.submit("a", now: t0)
        guard case .fail(id: 1, let status, _)? = machine.workerLost(worker(0), now: t0).first else { return XCTFail() }
        XCTAssertEqual(status.code, .unavailable)
        XCTAssertEqual(status.message, "worker m-0 of model 'm' died while running this request; the model is marked non-idempotent, so it was not retried")
    }

    func testAStreamThatSentPartOfItsResponsesIsNotResent() {
        var machine = makeMachine()
        _ = machine.submit("a", now: t0)
        _ = machine.received(.partial, for: 1, fromSlot: 0, now: t0)
        guard case .fail(id: 1, let status, _)? = machine.workerLost(worker(0), now: t0).first else { return XCTFail() }
        XCTAssertEqual(status.message, "worker m-0 of model 'm' died after sending part of the responses; the stream cannot be resumed")
    }

    func testStopFailsTheQueueAndOrphansButLetsRunningRequestsFinish() {
        var machine = makeMachine(connected: [0])
        _ = machine.submit("a", now: t0)
        _ = machine.submit("b", now: t0)
        let abandoned = machine.stop()
        XCTAssertEqual(abandoned.map(\.payload), ["b"])
        guard case .deliver("a", finished: true, _, next: nil) = machine.received(.final, for: 1, fromSlot: 0, now: t0) else { return XCTFail() }

        var dying = makeMachine()
        _ = dying.submit("a", now: t0)
        _ = dying.stop()
        guard case .fail(id: 1, let status, _)? = dying.workerLost(worker(0), now: t0).first else { return XCTFail() }
        XCTAssertEqual(status.message, "worker m-0 of model 'm' stopped while running this request, and the model is unloading")
    }

    func testADrainRunsTheQueueToTheEndAndRefusesNewRequestsUntilItRunsOutOfTime() {
        var machine = makeMachine(connected: [0])
        _ = machine.submit("a", now: t0)
        _ = machine.submit("b", now: t0)
        _ = machine.submit("c", now: t0)
        machine.beginStopping()
        XCTAssertEqual(machine.outstanding, 3)
        guard case .refuse(let status) = machine.submit("late", now: t0) else { return XCTFail("a draining shard took a new request") }
        XCTAssertEqual(status.code, .unavailable)
        // The queued requests still go to the worker as it frees up, in order.
        guard case .deliver("a", finished: true, _, next: let next?) = machine.received(.final, for: 1, fromSlot: 0, now: t0) else { return XCTFail() }
        XCTAssertEqual(next.id, 2)
        XCTAssertEqual(machine.outstanding, 2)
        // Out of time: what is still queued is handed back to be failed; what runs goes on.
        XCTAssertEqual(machine.abandonQueued().map(\.payload), ["c"])
        XCTAssertEqual(machine.outstanding, 1)
        guard case .deliver("b", finished: true, _, next: nil) = machine.received(.final, for: 2, fromSlot: 0, now: t0) else { return XCTFail() }
        XCTAssertEqual(machine.outstanding, 0)
    }

    // MARK: Operators

    func testADrainedVariantRefusesNewRequestsWithTheReasonButFinishesWhatItHas() {
        var machine = makeMachine(connected: [0])
        _ = machine.submit("a", now: t0)
        _ = machine.submit("b", now: t0)
        machine.setDrained("model 'm' is drained by an operator and takes no new requests; try again later")
        guard case .refuse(let status) = machine.submit("c", now: t0) else { return XCTFail("c should be refused") }
        XCTAssertEqual(status.code, .unavailable)
        XCTAssertEqual(status.message, "model 'm' is drained by an operator and takes no new requests; try again later")
        guard case .deliver("a", finished: true, _, next: .init(id: 2, slot: 0)?) = machine.received(.final, for: 1, fromSlot: 0, now: t0)
        else { return XCTFail("the queued request should still go to the worker") }
        machine.setDrained(nil)
        guard case .queued = machine.submit("d", now: t0) else { return XCTFail("undrained: d should be taken") }
    }

    /// (connected slots, slot drained for a restart) → where new requests go.
    func testAWorkerTakenOutForARestartGetsNothingNewWhileItsRequestsFinish() {
        var machine = makeMachine(inFlight: 2)
        XCTAssertEqual(dispatched(machine.submit("a", now: t0)), .init(id: 1, slot: 0))
        XCTAssertTrue(machine.drainWorker(worker(0)))
        XCTAssertFalse(machine.drainWorker(worker(0, generation: 9)), "not the connected process")
        XCTAssertEqual(dispatched(machine.submit("b", now: t0)), .init(id: 2, slot: 1))
        XCTAssertEqual(dispatched(machine.submit("c", now: t0)), .init(id: 3, slot: 1))
        guard case .queued(id: 4) = machine.submit("d", now: t0) else { return XCTFail("slot 1 is full and slot 0 drains: d queues") }
        XCTAssertEqual(machine.inFlight(of: worker(0)), 1)
        // Its answer frees nothing for the queue: the drained worker takes no new request.
        guard case .deliver("a", finished: true, _, next: nil) = machine.received(.final, for: 1, fromSlot: 0, now: t0) else { return XCTFail() }
        XCTAssertEqual(machine.inFlight(of: worker(0)), 0)
        XCTAssertEqual(machine.workerLost(worker(0), now: t0), [])
        XCTAssertEqual(machine.workerConnected(worker(0, generation: 2), name: "m-0 (pid 200)", now: t0), [.init(id: 4, slot: 0)])
    }

    func testWithItsOnlyWorkerBeingReplacedRequestsQueueForTheReplacement() {
        var machine = makeMachine(slots: 1, connected: [0])
        XCTAssertTrue(machine.drainWorker(worker(0)))
        guard case .queued(id: 1) = machine.submit("a", now: t0) else { return XCTFail("a should wait for the replacement") }
        XCTAssertEqual(machine.workerLost(worker(0), now: t0), [])
        guard case .queued(id: 2) = machine.submit("b", now: t0) else { return XCTFail("b should wait for the replacement") }
        XCTAssertEqual(
            machine.workerConnected(worker(0, generation: 2), name: "m-0 (pid 200)", now: t0), [.init(id: 1, slot: 0)],
            "one in flight per worker here; b follows when a is answered")
        _ = machine.workerLost(worker(0, generation: 2), now: t0)
        guard case .refuse(let status) = machine.submit("c", now: t0) else { return XCTFail("no replacement is expected any more") }
        XCTAssertEqual(status.code, .unavailable)

        var abandoned = makeMachine(slots: 1, connected: [0])
        XCTAssertTrue(abandoned.drainWorker(worker(0)))
        _ = abandoned.workerLost(worker(0), now: t0)
        abandoned.replacementAbandoned(slot: 0)
        guard case .refuse = abandoned.submit("a", now: t0) else { return XCTFail("the replacement was given up: refuse") }
    }

    /// Random sequences of every event: the invariants hold after each step, and no request is
    /// dispatched twice to the same worker process or answered twice.
    func testInvariantsHoldUnderRandomEvents() {
        var generator = SplitMix64(seed: 42)
        for _ in 0..<200 {
            var machine = Machine(configuration: .init(model: "m", maxInFlightPerWorker: 2, maxQueued: 3), slots: 3)
            var generations = [1, 1, 1]
            var connected = [false, false, false]
            var live: Set<UInt64> = []
            var finished: Set<UInt64> = []
            var sentTo: [UInt64: Set<Machine.WorkerID>] = [:]
            var running: [UInt64: Machine.WorkerID] = [:]
            func record(_ dispatch: Machine.Dispatch) {
                let worker = Machine.WorkerID(slot: dispatch.slot, generation: generations[dispatch.slot])
                XCTAssertTrue(sentTo[dispatch.id, default: []].insert(worker).inserted, "request \(dispatch.id) sent twice to \(worker)")
                XCTAssertNil(running[dispatch.id], "request \(dispatch.id) dispatched while running")
                running[dispatch.id] = worker
            }
            func end(_ id: UInt64) {
                XCTAssertTrue(live.remove(id) != nil, "request \(id) ended twice or was unknown")
                finished.insert(id)
                running[id] = nil
            }
            for step in 0..<300 {
                let now = t0 + .microseconds(Int64(step))
                switch generator.next() % 6 {
                case 0, 1:
                    switch machine.submit("r", now: now) {
                    case .dispatch(let dispatch):
                        live.insert(dispatch.id)
                        record(dispatch)
                    case .queued(let id): live.insert(id)
                    case .refuse: break
                    }
                case 2:
                    guard let (id, worker) = running.randomElement(using: &generator) else { continue }
                    let kind: Machine.ReplyKind = generator.next() % 3 == 0 ? .partial : .final
                    guard case .deliver(_, let done, _, let next) = machine.received(kind, for: id, fromSlot: worker.slot, now: now) else {
                        XCTFail("a running request's reply was dropped")
                        continue
                    }
                    if done { end(id) }
                    if let next { record(next) }
                case 3:
                    guard let id = live.randomElement(using: &generator) else { continue }
                    switch machine.cancel(id, now: now) {
                    case .none: XCTFail("a live request is unknown")
                    case .dequeued: end(id)
                    case .cancelRunning(_, _, let next):
                        end(id)
                        if let next { record(next) }
                    }
                case 4:
                    let slot = Int(generator.next() % 3)
                    guard connected[slot] else { continue }
                    connected[slot] = false
                    let lost = Machine.WorkerID(slot: slot, generation: generations[slot])
                    for (id, worker) in running where worker == lost { running[id] = nil }
                    for action in machine.workerLost(lost, now: now) {
                        switch action {
                        case .dispatch(let dispatch): record(dispatch)
                        case .requeued: break
                        case .fail(let id, _, _): end(id)
                        }
                    }
                default:
                    let slot = Int(generator.next() % 3)
                    guard !connected[slot] else { continue }
                    connected[slot] = true
                    generations[slot] += 1
                    let dispatches = machine.workerConnected(.init(slot: slot, generation: generations[slot]), name: "m-\(slot)", now: now)
                    dispatches.forEach(record)
                }
                XCTAssertEqual(machine.outstanding, live.count)
                for slot in 0..<3 {
                    XCTAssertLessThanOrEqual(machine.inFlight(slot: slot), 2)
                    XCTAssertEqual(machine.inFlight(slot: slot), running.values.filter { $0.slot == slot }.count)
                }
                XCTAssertEqual(machine.queued, live.count - running.count)
                XCTAssertTrue(finished.isDisjoint(with: live))
            }
        }
    }
}
