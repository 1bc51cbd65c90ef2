// The gateway's validation of a ModelInferRequest before and after issue 8: full decode plus
// the decoded-request validator, against the one-pass scan plus the scan validator, on the
// same bytes. See Benchmarks/README.md and ValidationFixture.

import Benchmark
import ValidationFixtures

let benchmarks: @Sendable () -> Void = {
    let fixtures = ValidationFixture.all()
    for fixture in fixtures {
        fixture.verify()
    }

    for fixture in fixtures {
        // As ProtoCodec: small requests run 1000 operations per measured iteration.
        let config = Benchmark.Configuration(
            metrics: [.throughput, .wallClock, .mallocCountTotal, .mallocBytesCount],
            timeUnits: .nanoseconds,
            units: [.throughput: .count, .mallocCountTotal: .count, .mallocBytesCount: .count],
            warmupIterations: 10,
            scalingFactor: fixture.buffer.readableBytes < 64 * 1024 ? .kilo : .one,
            maxDuration: .seconds(3),
            maxIterations: 1_000_000
        )

        Benchmark("Validate \(fixture.label) decode+validate", configuration: config) { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try fixture.decodeAndValidate())
            }
        }

        Benchmark("Validate \(fixture.label) scan+validate", configuration: config) { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(try fixture.scanAndValidate())
            }
        }
    }
}
