import XCTest

@testable import LoadTest

/// The open loop measures each call from its intended start, so that a stall is reported as the
/// delay it caused to every call scheduled during it (coordinated omission, Gil Tene).
final class CoordinatedOmissionTests: XCTestCase {
    private let millisecond: UInt64 = 1_000_000
    private let second: UInt64 = 1_000_000_000

    /// One simulated connection with at most one call in flight, at 100 calls/s for 4 s. The
    /// server answers in 1 ms, but a call that arrives between 1 s and 2 s is answered at 2 s.
    /// Returns the latencies measured from intended starts and from actual sends.
    private func simulate(maxInFlight: Int) -> (corrected: LatencyRecorder, naive: LatencyRecorder, calls: Int) {
        var pacer = OpenLoopPacer(
            schedule: ArrivalSchedule(rate: 100, distribution: .constant),
            startTime: 0, endTime: 4 * second, maxInFlight: maxInFlight)
        var corrected = LatencyRecorder()
        var naive = LatencyRecorder()
        var now: UInt64 = 0
        var calls = 0
        while pacer.hasMoreCalls {
            guard let intended = pacer.startNext(now: now) else {
                // Nothing due: the driver's timer fires at the next intended start.
                now = max(now, pacer.nextIntendedTime)
                continue
            }
            let sent = now
            let answered = (1 * second..<2 * second).contains(sent) ? 2 * second : sent + millisecond
            corrected.record(nanoseconds: answered - intended, statusCode: 0)
            naive.record(nanoseconds: answered - sent, statusCode: 0)
            calls += 1
            // One call in flight: the next can start only when this one has ended.
            now = answered
            pacer.callEnded()
        }
        return (corrected, naive, calls)
    }

    func testAStallIsChargedToEveryCallScheduledDuringIt() {
        let (corrected, naive, calls) = simulate(maxInFlight: 1)
        // Every scheduled call is made: none is skipped because of the stall.
        XCTAssertEqual(calls, 400)
        XCTAssertEqual(corrected.total.totalCount, 400)

        // Measured from the actual send, the stall is one slow call among 400: p99 looks fine.
        XCTAssertLessThan(naive.total.valueAtPercentile(99), 2_000)  // µs
        XCTAssertGreaterThan(naive.total.max, 990_000)

        // Measured from the intended start, the ~100 calls scheduled during the stall waited
        // from their due time up to the end of the stall: a quarter of the calls are slow.
        XCTAssertGreaterThan(corrected.total.valueAtPercentile(90), 500_000)
        XCTAssertGreaterThan(corrected.total.valueAtPercentile(99), 900_000)
        let slow = corrected.total.count(within: 500_000...corrected.total.max)
        XCTAssertEqual(slow, 56)  // due at 1.00 s + j·10 ms, answered at 2 s + j ms: over 500 ms for j ≤ 55
        // Outside the stall, calls still see 1 ms.
        XCTAssertLessThan(corrected.total.valueAtPercentile(50), 2_000)
    }

    func testCallsDueDuringAStallKeepTheirIntendedTimes() {
        var pacer = OpenLoopPacer(
            schedule: ArrivalSchedule(rate: 1000, distribution: .constant), startTime: 0, endTime: second, maxInFlight: 2)
        XCTAssertEqual(pacer.startNext(now: 0), 0)
        XCTAssertEqual(pacer.startNext(now: 0), nil)  // the next is due at 1 ms
        // The loop was stalled for 10 ms: the overdue calls come out with their own due times,
        // up to the in-flight limit.
        XCTAssertEqual(pacer.startNext(now: 10 * millisecond), 1 * millisecond)
        XCTAssertEqual(pacer.startNext(now: 10 * millisecond), nil)
        XCTAssertTrue(pacer.isWaitingForInFlightLimit(now: 10 * millisecond))
        pacer.callEnded()
        XCTAssertEqual(pacer.startNext(now: 10 * millisecond), 2 * millisecond)
    }

    func testNoCallIsDueAtOrAfterTheEnd() {
        var pacer = OpenLoopPacer(
            schedule: ArrivalSchedule(rate: 10, distribution: .constant), startTime: 0, endTime: second, maxInFlight: 100)
        var starts: [UInt64] = []
        while let start = pacer.startNext(now: 5 * second) { starts.append(start) }
        XCTAssertEqual(starts.count, 10)
        XCTAssertEqual(starts.last, 900 * millisecond)
        XCTAssertFalse(pacer.hasMoreCalls)
    }
}
