// Our hand-written ModelInferRequest codec (ProtoWire + InferenceProtocol) against the
// SwiftProtobuf-generated one, on the same encoded bytes. See Benchmarks/README.md.
//
// Every benchmark measures throughput and mallocs. Decode benchmarks read the same prepared
// bytes on every iteration (a ByteBuffer for ours, a Data for SwiftProtobuf); encode benchmarks
// write the same prepared message. Results go through `blackHole` so nothing is optimised away.

import Benchmark
import CodecFixtures
import Foundation
import InferenceProtocol
import NIOCore
import ProtoWire
import SwiftProtobuf
import SwiftProtobufPeer

let benchmarks: @Sendable () -> Void = {
    let metrics: [BenchmarkMetric] = [.throughput, .wallClock, .mallocCountTotal, .mallocBytesCount]

    /// Small messages run 1000 operations per measured iteration, so the harness's own cost per
    /// sample does not blur sub-microsecond figures; figures are reported per operation.
    func configuration(for fixture: CodecFixture) -> Benchmark.Configuration {
        .init(
            metrics: metrics,
            // Whole numbers in one unit each, so that RESULTS.md can quote them without rounding.
            timeUnits: .nanoseconds,
            units: [.throughput: .count, .mallocCountTotal: .count, .mallocBytesCount: .count],
            warmupIterations: 10,
            scalingFactor: fixture.encodedSize < 64 * 1024 ? .kilo : .one,
            maxDuration: .seconds(3),
            maxIterations: 1_000_000
        )
    }

    let fixtures = CodecFixture.all()
    for fixture in fixtures {
        fixture.verify()
    }

    for fixture in fixtures {
        let config = configuration(for: fixture)

        // MARK: Decode

        Benchmark("Decode \(fixture.label) ours", configuration: config) { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try ModelInferRequest(decoding: fixture.buffer))
            }
        }

        Benchmark("Decode \(fixture.label) SwiftProtobuf", configuration: config) { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try Inference_ModelInferRequest(serializedBytes: fixture.data))
            }
        }

        // MARK: Encode

        Benchmark("Encode \(fixture.label) ours", configuration: config) { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(fixture.ours.encoded())
            }
        }

        Benchmark("Encode \(fixture.label) SwiftProtobuf", configuration: config) { benchmark in
            for _ in benchmark.scaledIterations {
                let bytes: Data = try fixture.theirs.serializedBytes()
                blackHole(bytes)
            }
        }

        // MARK: Peek (the router's fast path; SwiftProtobuf has no counterpart)

        Benchmark("Peek \(fixture.label) ours", configuration: config) { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try ModelInferRequestPeek(peeking: fixture.buffer))
            }
        }

        // MARK: Scan (the gateway's validation pass: descriptions and element counts, no tensor)

        Benchmark("Scan \(fixture.label) ours", configuration: config) { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try ModelInferRequestScan(decoding: fixture.buffer))
            }
        }
    }
}
