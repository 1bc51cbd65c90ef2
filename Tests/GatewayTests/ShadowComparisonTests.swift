@testable import Gateway
import InferenceProtocol
import NIOCore
import NIOEmbedded
import NIOPosix
import ProtoWire
import XCTest

/// The comparison of a primary's answer with its shadow's: the comparator's rules, the pairing's
/// state machine, and the per-loop bounds (pending cap, wait for the second answer).
final class ShadowComparisonTests: XCTestCase {
    // MARK: Building answers

    /// One output: typed contents or raw little-endian bytes.
    private struct Output {
        var name: String
        var datatype: String
        var shape: [Int64]
        var contents: InferTensorContents?
        var raw: [UInt8]?
    }

    private func response(_ outputs: [Output], version: String = "1") -> ByteBuffer {
        var response = ModelInferResponse()
        response.modelName = "m"
        response.modelVersion = version
        for output in outputs {
            var tensor = ModelInferResponse.InferOutputTensor()
            tensor.name = output.name
            tensor.datatype = output.datatype
            tensor.shape = TensorShape(output.shape)
            tensor.contents = output.contents
            response.outputs.append(tensor)
            if let raw = output.raw { response.rawOutputContents.append(ByteBuffer(bytes: raw)) }
        }
        return response.encoded()
    }

    private func int32(_ name: String, _ values: [Int32], raw: Bool = false) -> Output {
        if raw { return Output(name: name, datatype: "INT32", shape: [1, Int64(values.count)], raw: values.flatMap(littleEndian)) }
        var contents = InferTensorContents()
        contents.intContents = values
        return Output(name: name, datatype: "INT32", shape: [1, Int64(values.count)], contents: contents)
    }

    private func fp32(_ name: String, _ values: [Float], raw: Bool = false) -> Output {
        if raw { return Output(name: name, datatype: "FP32", shape: [Int64(values.count)], raw: values.flatMap { littleEndian($0.bitPattern) }) }
        var contents = InferTensorContents()
        contents.fp32Contents = values
        return Output(name: name, datatype: "FP32", shape: [Int64(values.count)], contents: contents)
    }

    private func bytes(_ name: String, _ values: [String], raw: Bool = false) -> Output {
        if raw {
            let data = values.flatMap { littleEndian(UInt32($0.utf8.count)) + Array($0.utf8) }
            return Output(name: name, datatype: "BYTES", shape: [Int64(values.count)], raw: data)
        }
        var contents = InferTensorContents()
        contents.bytesContents = values.map { ByteBuffer(string: $0) }
        return Output(name: name, datatype: "BYTES", shape: [Int64(values.count)], contents: contents)
    }

    private func littleEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.littleEndian) { Array($0) }
    }

    private func compare(_ a: [Output], _ b: [Output], tolerance: ShadowTolerance = .default) -> ShadowComparison {
        ShadowComparison.compare(primary: response(a, version: "1"), shadow: response(b, version: "2"), tolerance: tolerance)
    }

    // MARK: The comparator

    func testEqualIntegerOutputsMatchAndTheVersionsNeedNotAgree() {
        let result = compare([int32("OUT", [1, 2, 3])], [int32("OUT", [1, 2, 3])])
        XCTAssertNil(result.difference)
        XCTAssertEqual(result.comparedElements, 3)
        XCTAssertEqual(result.mismatchedElements, 0)
        XCTAssertEqual(result.maxAbsoluteDifference, 0)
    }

    func testIntegersCompareExactlyWhateverTheTolerance() {
        let result = compare([int32("OUT", [1, 2, 3])], [int32("OUT", [1, 3, 3])], tolerance: .init(absolute: 10, relative: 1))
        XCTAssertEqual(result.difference, "1 of 3 elements differ ('OUT': 1 elements)")
        XCTAssertEqual(result.mismatchedElements, 1)
        XCTAssertEqual(result.maxAbsoluteDifference, 1)
    }

    func testRawAndTypedContentsOfTheSameValuesMatch() {
        XCTAssertTrue(compare([int32("OUT", [7, -8], raw: true)], [int32("OUT", [7, -8])]).matches)
        XCTAssertTrue(compare([fp32("F", [0.5, -1.25])], [fp32("F", [0.5, -1.25], raw: true)]).matches)
        XCTAssertTrue(compare([bytes("S", ["a", "bc"], raw: true)], [bytes("S", ["a", "bc"])]).matches)
        let differ = compare([int32("OUT", [7, -8], raw: true)], [int32("OUT", [7, -9])])
        XCTAssertEqual(differ.mismatchedElements, 1)
    }

    func testFloatsWithinTheAbsoluteToleranceMatchAndBeyondItDiffer() {
        let tolerance = ShadowTolerance(absolute: 0.01, relative: 0)
        let within = compare([fp32("F", [1.0, 2.0])], [fp32("F", [1.005, 2.0])], tolerance: tolerance)
        XCTAssertTrue(within.matches)
        XCTAssertEqual(within.maxAbsoluteDifference ?? 0, 0.005, accuracy: 1e-6)
        let beyond = compare([fp32("F", [1.0, 2.0])], [fp32("F", [1.02, 2.0])], tolerance: tolerance)
        XCTAssertFalse(beyond.matches)
        XCTAssertEqual(beyond.mismatchedElements, 1)
        XCTAssertEqual(beyond.maxAbsoluteDifference ?? 0, 0.02, accuracy: 1e-6)
    }

    func testTheRelativeToleranceScalesWithTheShadowsValue() {
        let tolerance = ShadowTolerance(absolute: 0, relative: 0.01)
        // |1000 - 1005| = 5 <= 0.01 * 1005; |1 - 1.05| = 0.05 > 0.01 * 1.05.
        XCTAssertTrue(compare([fp32("F", [1000])], [fp32("F", [1005])], tolerance: tolerance).matches)
        XCTAssertFalse(compare([fp32("F", [1])], [fp32("F", [1.05])], tolerance: tolerance).matches)
    }

    func testTheDefaultTolerancesAreNumpysIsCloseWithAnAbsoluteOfOneMillionth() {
        XCTAssertEqual(ShadowTolerance.default, ShadowTolerance(absolute: 1e-6, relative: 1e-5))
        XCTAssertTrue(compare([fp32("F", [0])], [fp32("F", [5e-7])]).matches)
        XCTAssertFalse(compare([fp32("F", [0])], [fp32("F", [2e-6])]).matches)
    }

    func testNaNEqualsNaNButNotANumber() {
        XCTAssertTrue(compare([fp32("F", [.nan, 1])], [fp32("F", [.nan, 1])]).matches)
        let result = compare([fp32("F", [.nan, 1])], [fp32("F", [0, 1])])
        XCTAssertEqual(result.mismatchedElements, 1)
        XCTAssertEqual(result.maxAbsoluteDifference, 0, "a NaN difference is counted, not measured")
        XCTAssertTrue(compare([fp32("F", [.infinity])], [fp32("F", [.infinity])]).matches)
    }

    func testFP16AndBF16AreDecodedFromRawContents() {
        // FP16 0x3C00 = 1.0, 0x3C01 = 1.0009765625; BF16 0x3F80 = 1.0, 0x3F81 = 1.0078125.
        func half(_ datatype: String, _ bits: [UInt16]) -> Output {
            Output(name: "H", datatype: datatype, shape: [Int64(bits.count)], raw: bits.flatMap(littleEndian))
        }
        let tight = ShadowTolerance(absolute: 1e-4, relative: 0)
        XCTAssertTrue(compare([half("FP16", [0x3C00])], [half("FP16", [0x3C00])], tolerance: tight).matches)
        let fp16 = compare([half("FP16", [0x3C00])], [half("FP16", [0x3C01])], tolerance: tight)
        XCTAssertEqual(fp16.maxAbsoluteDifference ?? 0, 0.0009765625, accuracy: 1e-12)
        XCTAssertFalse(fp16.matches)
        let bf16 = compare([half("BF16", [0x3F80])], [half("BF16", [0x3F81])], tolerance: ShadowTolerance(absolute: 0.01, relative: 0))
        XCTAssertTrue(bf16.matches)
        XCTAssertEqual(bf16.maxAbsoluteDifference ?? 0, 0.0078125, accuracy: 1e-12)
        XCTAssertEqual(OutputTensor.halfToDouble(0xC000), -2)
        XCTAssertEqual(OutputTensor.halfToDouble(0x0001), 0x1p-24)
    }

    func testBytesCompareExactlyAndHaveNoNumericDifference() {
        let result = compare([bytes("S", ["1", "2"])], [bytes("S", ["1", "3"])])
        XCTAssertEqual(result.mismatchedElements, 1)
        XCTAssertEqual(result.comparedElements, 2)
        XCTAssertNil(result.maxAbsoluteDifference)
    }

    func testShapeDatatypeAndMissingOutputsDifferWithTheReason() {
        XCTAssertEqual(
            compare([int32("OUT", [1, 2])], [int32("OUT", [1, 2, 3])]).difference, "output 'OUT': shape [1, 2] vs [1, 3]")
        XCTAssertEqual(compare([int32("OUT", [1])], [fp32("OUT", [1])]).difference, "output 'OUT': datatype INT32 vs FP32")
        XCTAssertEqual(
            compare([int32("A", [1]), int32("B", [1])], [int32("A", [1])]).difference, "output 'B' is missing from the shadow's answer")
        XCTAssertEqual(compare([int32("A", [1])], [int32("A", [1]), int32("C", [1])]).difference, "output 'C' is missing from the primary's answer")
        let garbage = ShadowComparison.compare(primary: response([int32("A", [1])]), shadow: ByteBuffer(bytes: [0xFF, 0xFF]), tolerance: .default)
        XCTAssertEqual(garbage.difference?.hasPrefix("the shadow's answer is not a valid inference.ModelInferResponse"), true)
        XCTAssertEqual(garbage.comparedElements, 0)
    }

    func testOutputsAreMatchedByNameNotByPosition() {
        XCTAssertTrue(compare([int32("A", [1]), int32("B", [2])], [int32("B", [2]), int32("A", [1])]).matches)
    }

    // MARK: The pairing's state machine

    func testEitherAnswerMayComeFirstAndBothAreCompared() {
        let p = ByteBuffer(string: "p")
        let s = ByteBuffer(string: "s")
        var primaryFirst = ShadowPairState()
        guard case .startWaiting = primaryFirst.primaryAnswered(p) else { return XCTFail("the first answer waits") }
        guard case .compare(let a, let b) = primaryFirst.shadowAnswered(s) else { return XCTFail("both answers are compared") }
        XCTAssertEqual([a, b], [p, s])
        guard case .none = primaryFirst.timedOut() else { return XCTFail("a finished pairing ignores its timer") }

        var shadowFirst = ShadowPairState()
        guard case .startWaiting = shadowFirst.shadowAnswered(s) else { return XCTFail("the first answer waits") }
        guard case .compare(let c, let d) = shadowFirst.primaryAnswered(p) else { return XCTFail("both answers are compared") }
        XCTAssertEqual([c, d], [p, s])
        XCTAssertTrue(shadowFirst.isFinished)
    }

    func testAFailureOfEitherSideEndsThePairingWithThatResult() {
        var cases: [(String, (inout ShadowPairState) -> ShadowPairState.Action, ShadowComparisonResult)] = []
        cases.append(("primary fails first", { $0.primaryFailed() }, .primaryFailed))
        cases.append(("shadow fails first", { $0.shadowFailed() }, .shadowFailed))
        cases.append(("shadow fails after the primary answered", { _ = $0.primaryAnswered(ByteBuffer()); return $0.shadowFailed() }, .shadowFailed))
        cases.append(("primary fails after the shadow answered", { _ = $0.shadowAnswered(ByteBuffer()); return $0.primaryFailed() }, .primaryFailed))
        cases.append(("the shadow does not answer in time", { _ = $0.primaryAnswered(ByteBuffer()); return $0.timedOut() }, .shadowTimeout))
        cases.append(("the primary does not answer in time", { _ = $0.shadowAnswered(ByteBuffer()); return $0.timedOut() }, .primaryFailed))
        for (name, events, expected) in cases {
            var state = ShadowPairState()
            guard case .record(let result) = events(&state) else {
                XCTFail("\(name): no result")
                continue
            }
            XCTAssertEqual(result, expected, name)
            XCTAssertTrue(state.isFinished, name)
            guard case .none = state.primaryAnswered(ByteBuffer()) else { return XCTFail("\(name): a late answer is ignored") }
            guard case .none = state.shadowFailed() else { return XCTFail("\(name): a late failure is ignored") }
        }
    }

    // MARK: The loop's pairings

    private let pair = ShadowPairKey(model: "simple", version: "1", shadowVersion: "2")

    private func withComparisons(
        maxPending: Int = 256, inlineLimit: Int = 64 * 1024, _ body: (EmbeddedEventLoop, ShadowComparisons) throws -> Void
    ) throws {
        let loop = EmbeddedEventLoop()
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        defer { try? pool.syncShutdownGracefully() }
        let comparisons = ShadowComparisons(
            eventLoop: loop, threadPool: pool, maxPending: maxPending, answerWait: .seconds(10), inlineLimit: inlineLimit)
        try body(loop, comparisons)
    }

    func testAPairedCallRecordsItsResultBothLatenciesAndTheLargestDifference() throws {
        try withComparisons { _, comparisons in
            let matching = try XCTUnwrap(comparisons.startPairing(pair, tolerance: .default))
            matching.primaryAnswered(response([int32("OUT", [1, 2])]), nanoseconds: 1_000_000)
            XCTAssertEqual(comparisons.pending, 1)
            matching.shadowAnswered(response([int32("OUT", [1, 2])]), nanoseconds: 2_000_000)
            let differing = try XCTUnwrap(comparisons.startPairing(pair, tolerance: .default))
            differing.shadowAnswered(response([int32("OUT", [1, 5])]), nanoseconds: 3_000_000)
            differing.primaryAnswered(response([int32("OUT", [1, 2])]), nanoseconds: 1_000_000)
            XCTAssertEqual(comparisons.pending, 0)
            let statistics = try XCTUnwrap(comparisons.statistics[pair])
            XCTAssertEqual(statistics.count(.match), 1)
            XCTAssertEqual(statistics.count(.differ), 1)
            XCTAssertEqual(statistics.comparedElements, 4)
            XCTAssertEqual(statistics.mismatchedElements, 1)
            XCTAssertEqual(statistics.primaryDuration.count, 2)
            XCTAssertEqual(statistics.shadowDuration.count, 2)
            XCTAssertEqual(statistics.shadowDuration.sumNanos, 5_000_000)
            // 0 (le 1e-9) and 3 (le 10).
            XCTAssertEqual(statistics.maxAbsoluteDifference.counts[0], 1)
            XCTAssertEqual(statistics.maxAbsoluteDifference.counts[DifferenceHistogram.upperBounds.firstIndex(of: 10)!], 1)
            XCTAssertEqual(statistics.maxAbsoluteDifference.sum, 3)
        }
    }

    func testBeyondTheLoopsPendingCapACallIsSkippedAndKeepsNothing() throws {
        try withComparisons(maxPending: 2) { _, comparisons in
            let first = try XCTUnwrap(comparisons.startPairing(pair, tolerance: .default))
            let second = try XCTUnwrap(comparisons.startPairing(pair, tolerance: .default))
            XCTAssertNil(comparisons.startPairing(pair, tolerance: .default))
            XCTAssertEqual(comparisons.statistics[pair]?.count(.skipped), 1)
            XCTAssertEqual(comparisons.pending, 2)
            first.primaryFailed()
            second.shadowFailed()
            XCTAssertEqual(comparisons.pending, 0)
            XCTAssertNotNil(comparisons.startPairing(pair, tolerance: .default), "a finished pairing frees its place")
            XCTAssertEqual(comparisons.statistics[pair]?.count(.primaryFailed), 1)
            XCTAssertEqual(comparisons.statistics[pair]?.count(.shadowFailed), 1)
        }
    }

    func testAShadowThatDoesNotAnswerReleasesThePrimarysAnswerAfterTheWait() throws {
        try withComparisons { loop, comparisons in
            let pairing = try XCTUnwrap(comparisons.startPairing(pair, tolerance: .default))
            pairing.primaryAnswered(response([int32("OUT", [1])]), nanoseconds: 1)
            loop.advanceTime(by: .seconds(9))
            XCTAssertEqual(comparisons.pending, 1)
            loop.advanceTime(by: .seconds(1))
            XCTAssertEqual(comparisons.pending, 0)
            XCTAssertEqual(comparisons.statistics[pair]?.count(.shadowTimeout), 1)
            pairing.shadowAnswered(response([int32("OUT", [1])]), nanoseconds: 1)
            XCTAssertEqual(comparisons.statistics[pair]?.count(.match), 0, "a late shadow answer is not compared")
            XCTAssertEqual(comparisons.statistics[pair]?.shadowDuration.count, 0)
        }
    }

    func testAComparedPairCancelsItsTimer() throws {
        try withComparisons { loop, comparisons in
            let pairing = try XCTUnwrap(comparisons.startPairing(pair, tolerance: .default))
            pairing.primaryAnswered(response([int32("OUT", [1])]), nanoseconds: 1)
            pairing.shadowAnswered(response([int32("OUT", [1])]), nanoseconds: 1)
            loop.advanceTime(by: .seconds(20))
            XCTAssertEqual(comparisons.statistics[pair]?.count(.match), 1)
            XCTAssertEqual(comparisons.statistics[pair]?.count(.shadowTimeout), 0)
            XCTAssertEqual(comparisons.pending, 0)
        }
    }

    func testLargeAnswersAreComparedOnTheThreadPoolAndRecordedOnTheLoop() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { try? group.syncShutdownGracefully() }
        let pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        defer { try? pool.syncShutdownGracefully() }
        let loop = group.next()
        let values = (0..<100).map { Int32($0) }
        let primary = response([int32("OUT", values)])
        let shadow = response([int32("OUT", values.map { $0 + 1 })])
        let key = pair
        let box = try loop.submit {
            NIOLoopBound(ShadowComparisons(eventLoop: loop, threadPool: pool, inlineLimit: 16), eventLoop: loop)
        }.wait()
        try loop.submit {
            let pairing = box.value.startPairing(key, tolerance: .default)!
            pairing.primaryAnswered(primary, nanoseconds: 1)
            pairing.shadowAnswered(shadow, nanoseconds: 1)
            XCTAssertEqual(box.value.pending, 1, "the comparison runs off the loop")
        }.wait()
        let deadline = Date().addingTimeInterval(5)
        while try loop.submit({ box.value.pending }).wait() > 0, Date() < deadline { usleep(1000) }
        let statistics = try loop.submit { box.value.statistics[key] }.wait()
        XCTAssertEqual(statistics?.count(.differ), 1)
        XCTAssertEqual(statistics?.mismatchedElements, 100)
    }

    func testTheMetricsNameEveryResultForEachPair() throws {
        var statistics = ShadowPairStatistics(buckets: .default)
        statistics.results[ShadowComparisonResult.differ.rawValue] = 3
        statistics.maxAbsoluteDifference.record(1)
        statistics.primaryDuration.record(1_000_000, buckets: .default)
        let metrics = try GatewayMetrics(configuration: MetricsConfiguration(), group: EmbeddedEventLoop())
        var out = PrometheusText()
        metrics.renderShadowComparisons([pair: statistics], into: &out)
        let text = out.text
        XCTAssertTrue(text.contains(#"switchyard_shadow_comparisons_total{model="simple",version="1",shadow_version="2",result="differ"} 3"#), text)
        XCTAssertTrue(text.contains(#"switchyard_shadow_comparisons_total{model="simple",version="1",shadow_version="2",result="match"} 0"#))
        XCTAssertTrue(text.contains(#"switchyard_shadow_max_abs_difference_bucket{model="simple",version="1",shadow_version="2",le="1"} 1"#))
        XCTAssertTrue(text.contains(#"switchyard_shadow_max_abs_difference_count{model="simple",version="1",shadow_version="2"} 1"#))
        XCTAssertTrue(text.contains(#"switchyard_shadow_request_duration_seconds_count{model="simple",version="1",shadow_version="2",side="primary"} 1"#))
        XCTAssertTrue(text.contains(#"switchyard_shadow_request_duration_seconds_count{model="simple",version="1",shadow_version="2",side="shadow"} 0"#))
        XCTAssertTrue(text.contains(#"switchyard_shadow_mismatched_elements_total{model="simple",version="1",shadow_version="2"} 0"#))
    }
}
