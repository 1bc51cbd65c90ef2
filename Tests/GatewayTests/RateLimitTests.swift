@testable import Gateway
import Dispatch
import Foundation
import H2Transport
import XCTest

/// The limits on an injected clock: precision over 10 000 simulated seconds, bursts, and exact
/// counts with takers on several threads at once.
final class RateLimitTests: XCTestCase {
    private let second: UInt64 = 1_000_000_000

    func testOverTenThousandSimulatedSecondsTheBucketLetsThroughItsRateAndBurstExactly() {
        let bucket = RateBucket(rate: 100, burst: 20)
        var allowed = 0
        // 250 requests a second offered (one every 4 ms), 2.5 times the rate.
        var now: UInt64 = 0
        while now < 10_000 * second {
            if bucket.take(now: now) == nil { allowed += 1 }
            now += 4_000_000
        }
        // The burst at the start, then exactly one per 10 ms interval.
        XCTAssertEqual(Double(allowed), 100 * 10_000 + 20, accuracy: 2)
    }

    func testABurstGoesAtOnceThenOneRequestPerIntervalAndTheWaitIsExact() throws {
        let bucket = RateBucket(rate: 10, burst: 5)
        let start = 42 * second
        for _ in 0..<5 { XCTAssertNil(bucket.take(now: start)) }
        let wait = try XCTUnwrap(bucket.take(now: start))
        XCTAssertEqual(wait, 100_000_000, "one interval (100 ms) until the next request")
        XCTAssertNotNil(bucket.take(now: start + wait - 1))
        XCTAssertNil(bucket.take(now: start + wait))
        // Idle for long: the bucket is full again, but never more than its burst.
        let later = start + 3600 * second
        for _ in 0..<5 { XCTAssertNil(bucket.take(now: later)) }
        XCTAssertNotNil(bucket.take(now: later))
    }

    func testAGivenBackRequestCanBeTakenAgainButNeverMakesMoreThanTheBurst() {
        let bucket = RateBucket(rate: 1, burst: 2)
        XCTAssertNil(bucket.take(now: 0))
        XCTAssertNil(bucket.take(now: 0))
        XCTAssertNotNil(bucket.take(now: 0))
        bucket.giveBack(now: 0)
        XCTAssertNil(bucket.take(now: 0))
        let full = RateBucket(rate: 1, burst: 2)
        full.giveBack(now: 5 * second)
        full.giveBack(now: 5 * second)
        XCTAssertNil(full.take(now: 5 * second))
        XCTAssertNil(full.take(now: 5 * second))
        XCTAssertNotNil(full.take(now: 5 * second), "giving back to a full bucket adds nothing")
    }

    func testTakersOnManyThreadsGetExactlyTheBurstThenExactlyWhatTheRateRefilled() {
        let bucket = RateBucket(rate: 1000, burst: 500)
        let allowed = ManagedCounter()
        let second = self.second
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<10_000 where bucket.take(now: 7 * second) == nil { allowed.add() }
        }
        XCTAssertEqual(allowed.value, 500)
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<10_000 where bucket.take(now: 7 * second + second / 4) == nil { allowed.add() }
        }
        XCTAssertEqual(allowed.value, 750, "a quarter of a simulated second later: exactly 250 more (the bucket holds at most its burst)")
    }

    func testAConcurrencyLimitNeverLetsMoreThanItsMaximumIn() {
        let limit = ConcurrencyLimit(maximum: 10)
        let acquired = ManagedCounter()
        DispatchQueue.concurrentPerform(iterations: 8) { _ in
            for _ in 0..<1000 where limit.acquire() { acquired.add() }
        }
        XCTAssertEqual(acquired.value, 10)
        XCTAssertEqual(limit.inFlight, 10)
        limit.release()
        XCTAssertTrue(limit.acquire())
        XCTAssertFalse(limit.acquire())
    }

    func testARefusalCarriesRetryPushbackAndRetryAfter() {
        let error = LimitRefusal(kind: .principal, retryAfterNanos: 1_234_000_001, message: "principal 'a' is over its rate limit of 1 requests/s (burst 1)").error
        XCTAssertEqual(error.code, .resourceExhausted)
        XCTAssertEqual(error.message, "principal 'a' is over its rate limit of 1 requests/s (burst 1); retry in 1235 ms")
        XCTAssertEqual(error.trailers.firstString(named: "grpc-retry-pushback-ms"), "1235")
        XCTAssertEqual(error.trailers.firstString(named: "retry-after"), "2")
    }

    func testAllBucketsOfARequestTakeItOrNoneDoes() throws {
        var policy = AuthPolicy()
        policy.principals["a"] = .init(rateLimit: .init(requestsPerSecond: 10, burst: 10), modelRateLimits: ["m": .init(requestsPerSecond: 1, burst: 1)])
        policy.modelRateLimits["m"] = .init(requestsPerSecond: 100, burst: 100)
        let compiled = CompiledAuthPolicy(policy, generation: 1)
        let principal = try XCTUnwrap(compiled.principal(named: "a"))
        XCTAssertNil(compiled.admitRequest(of: principal, to: "m", now: 0))
        let refused = try XCTUnwrap(compiled.admitRequest(of: principal, to: "m", now: 0))
        XCTAssertEqual(refused.kind, .principalModel)
        XCTAssertEqual(principal.refusals.value(.principalModel), 1)
        // The refused request gave back what the principal's bucket took: 9 more to other models.
        for _ in 0..<9 { XCTAssertNil(compiled.admitRequest(of: principal, to: "other", now: 0)) }
        XCTAssertEqual(compiled.admitRequest(of: principal, to: "other", now: 0)?.kind, .principal)
    }
}

/// A counter for the threads of a test.
private final class ManagedCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}
