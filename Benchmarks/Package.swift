// swift-tools-version:6.1
// Switchyard codec benchmarks: our hand-written protobuf codecs (ProtoWire, InferenceProtocol)
// against SwiftProtobuf-generated code for the same contract. Kept out of the main package so
// that building or testing Switchyard never pulls in package-benchmark or SwiftProtobuf.
// See README.md in this directory.
import PackageDescription

let package = Package(
    name: "SwitchyardBenchmarks",
    platforms: [.macOS(.v14)],
    dependencies: [
        // Named explicitly: a path dependency is otherwise known by its folder name.
        .package(name: "switchyard", path: ".."),
        // ordo-one/benchmark, formerly package-benchmark (the old URL still resolves but the
        // plugin warns that the identifier is deprecated). Only the MallocInterposer trait: it
        // gives the malloc counts. Naming the traits also drops the default RuntimeInterposer
        // trait, whose Linux/Swift 6.3 dependency (ordo-one/swift-runtime-interposer) does not
        // resolve here; we measure no ARC metrics, which are all it serves.
        .package(
            url: "https://github.com/ordo-one/benchmark",
            from: "1.38.1",
            traits: ["MallocInterposer"]
        ),
        .package(url: "https://github.com/apple/swift-protobuf.git", exact: "1.39.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        // Logger for the Routing suite's worker pools (already resolved through the main package).
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        // SwiftProtobuf code generated once from Protos/ (see README.md); the peer we compare with.
        .target(
            name: "SwiftProtobufPeer",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")]
        ),
        // The requests both codecs are measured on, and the check that they agree on them.
        .target(
            name: "CodecFixtures",
            dependencies: [
                "SwiftProtobufPeer",
                .product(name: "InferenceProtocol", package: "switchyard"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // The gateway's validation path before and after the one-pass scan (issue 8); it links
        // the old validator from Tests/GatewayTests, where it is the tests' oracle.
        .target(
            name: "ValidationFixtures",
            dependencies: [
                "CodecFixtures", "SwiftProtobufPeer",
                .product(name: "Gateway", package: "switchyard"),
                .product(name: "InferenceProtocol", package: "switchyard"),
                .product(name: "ProtoWire", package: "switchyard"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // One operation in a loop without the harness, for callgrind or perf.
        .executableTarget(
            name: "codec-profile",
            dependencies: [
                "CodecFixtures", "SwiftProtobufPeer", "ValidationFixtures",
                .product(name: "InferenceProtocol", package: "switchyard"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Sources/CodecProfile"
        ),
        // package-benchmark suites live under Benchmarks/<target name>/.
        .executableTarget(
            name: "ProtoCodec",
            dependencies: [
                "CodecFixtures", "SwiftProtobufPeer",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "ProtoWire", package: "switchyard"),
                .product(name: "InferenceProtocol", package: "switchyard"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            path: "Benchmarks/ProtoCodec",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark"),
            ]
        ),
        .executableTarget(
            name: "InferValidation",
            dependencies: [
                "ValidationFixtures",
                .product(name: "Benchmark", package: "benchmark"),
            ],
            path: "Benchmarks/InferValidation",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark"),
            ]
        ),
        // The router's decision per request (issue 10): catalog, pools (never started) and
        // requests made before the run.
        .executableTarget(
            name: "Routing",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Gateway", package: "switchyard"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/Routing",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
