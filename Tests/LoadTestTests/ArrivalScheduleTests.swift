import XCTest

@testable import LoadTest

final class ArrivalScheduleTests: XCTestCase {
    func testConstantScheduleKeepsItsExactMeanRateWithFractionalGaps() {
        var schedule = ArrivalSchedule(rate: 3, distribution: .constant)
        var total: UInt64 = 0
        for _ in 0..<3000 { total += schedule.nextGap() }
        // 3000 calls at 3/s take 1000 s, to the nanosecond (the fraction is carried).
        XCTAssertEqual(Double(total), 1e12, accuracy: 3)
    }

    func testConstantScheduleGapsAreEqual() {
        var schedule = ArrivalSchedule(rate: 1000, distribution: .constant)
        for _ in 0..<100 { XCTAssertEqual(schedule.nextGap(), 1_000_000) }
    }

    func testPoissonScheduleHasTheRequestedMeanRate() {
        var schedule = ArrivalSchedule(rate: 500, distribution: .poisson, seed: 7)
        let count = 200_000
        var gaps: [Double] = []
        gaps.reserveCapacity(count)
        for _ in 0..<count { gaps.append(Double(schedule.nextGap())) }
        let mean = gaps.reduce(0, +) / Double(count)
        // Mean gap 2 ms: the standard error over 200 000 exponential gaps is 0.22 %.
        XCTAssertEqual(mean, 2_000_000, accuracy: 2_000_000 * 0.01)
        // Exponential gaps: standard deviation equals the mean (coefficient of variation 1),
        // which tells Poisson arrivals from evenly spaced ones.
        let variance = gaps.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(count)
        XCTAssertEqual(variance.squareRoot() / mean, 1, accuracy: 0.02)
        // And about 1 - 1/e of the gaps are shorter than the mean.
        let shorter = Double(gaps.filter { $0 < mean }.count) / Double(count)
        XCTAssertEqual(shorter, 1 - 1 / 2.718281828, accuracy: 0.01)
    }

    func testPoissonScheduleRepeatsForTheSameSeedAndDiffersForAnother() {
        var a = ArrivalSchedule(rate: 100, distribution: .poisson, seed: 1)
        var b = ArrivalSchedule(rate: 100, distribution: .poisson, seed: 1)
        var c = ArrivalSchedule(rate: 100, distribution: .poisson, seed: 2)
        let first = (0..<50).map { _ in a.nextGap() }
        XCTAssertEqual(first, (0..<50).map { _ in b.nextGap() })
        XCTAssertNotEqual(first, (0..<50).map { _ in c.nextGap() })
    }

    func testRateSplitOverConnectionsAddsUpToTheRequestedRate() {
        let plans = LoadDriver.plans(for: .rate(900, .constant), connections: 4, budget: 10, start: 1_000, end: 2_000_000_000, maxInFlight: 5, seed: 1)
        XCTAssertEqual(plans.count, 4)
        XCTAssertEqual(plans.map { $0.schedule!.rate }.reduce(0, +), 900, accuracy: 1e-9)
        // Constant arrivals are interleaved: connection i starts i/900 s later.
        XCTAssertEqual(plans.map(\.startTime), [1_000, 1_000 + 1_111_111, 1_000 + 2_222_222, 1_000 + 3_333_333])
        XCTAssertEqual(plans.map { $0.budget! }, [3, 3, 2, 2])
        XCTAssertEqual(plans.map(\.maxInFlight), [5, 5, 5, 5])
    }

    func testConcurrencySplitOverConnections() {
        let plans = LoadDriver.plans(for: .concurrency(10), connections: 3, budget: nil, start: 0, end: .max, maxInFlight: 1, seed: 1)
        XCTAssertEqual(plans.map(\.concurrency), [4, 3, 3])
        XCTAssertTrue(plans.allSatisfy { $0.schedule == nil && $0.budget == nil })
    }
}
