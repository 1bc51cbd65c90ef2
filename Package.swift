// swift-tools-version:6.1
// 6.1 for package traits: swift-otel is used with its OTLP/HTTP exporter only (no gRPC exporter deps).
// Switchyard: a gRPC inference gateway. See README.md and docs/ for the architecture.
import PackageDescription

/// Release builds of the per-request hot path (the transport, the gateway's inference path, the
/// worker) skip Swift's run-time exclusivity checks, which cost about 6 % of the CPU of a small
/// gRPC call (loadtest/RESULTS.md). Debug builds, and so
/// the whole test suite, keep them: an overlapping access still fails there.
let releaseExclusivityUnchecked: [SwiftSetting] = [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))
]

let package = Package(
    name: "switchyard",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "switchyard", targets: ["switchyard"]),
        .library(name: "ProtoWire", targets: ["ProtoWire"]),
        .library(name: "InferenceProtocol", targets: ["InferenceProtocol"]),
        // For Benchmarks/ (the validation path, issue 8); not an API promise.
        .library(name: "Gateway", targets: ["Gateway"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // Tracing: the vendor-neutral API in Gateway, swift-otel's OTLP/HTTP exporter in the CLI.
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(url: "https://github.com/swift-otel/swift-otel.git", from: "1.6.0", traits: ["OTLPHTTP"]),
        // The configuration file: YAML nodes that carry their line and column, for error messages.
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        // Rate limits shared by every event loop without a lock (already in the graph through swift-nio).
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        // OAuth2 access tokens (JWTs): JWKS keys and signature verification (RS*, PS*, ES*, EdDSA).
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        // A JWKS URL's fetches (already in the graph through swift-otel's OTLP/HTTP exporter).
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        // The load-test driver's latency histograms (HdrHistogram: fixed memory, no allocation per record).
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
    ],
    targets: [
        // System libraries: Debian's libnghttp2-dev and libssl-dev, each with a shim header.
        .systemLibrary(
            name: "CNGHTTP2",
            pkgConfig: "libnghttp2",
            providers: [.apt(["libnghttp2-dev"]), .brew(["nghttp2"])]
        ),
        .systemLibrary(
            name: "COpenSSL",
            pkgConfig: "openssl",
            providers: [.apt(["libssl-dev"]), .brew(["openssl@3"])]
        ),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),

        // The protobuf wire format, by hand.
        .target(
            name: "ProtoWire",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")]
        ),
        // Messages of the public API (OIP v2 + Triton), health, reflection and the worker protocol.
        .target(
            name: "InferenceProtocol",
            dependencies: ["ProtoWire", .product(name: "NIOCore", package: "swift-nio")]
        ),
        // TLS (OpenSSL) and HTTP/2 (nghttp2) channel handlers and the gRPC layer.
        .target(
            name: "H2Transport",
            dependencies: [
                "CNGHTTP2", "COpenSSL", "CZlib",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: releaseExclusivityUnchecked
        ),
        // Services, router, auth, rate limits, worker pool, config, admin/metrics.
        .target(
            name: "Gateway",
            dependencies: [
                "H2Transport", "InferenceProtocol", "ProtoWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
            ],
            swiftSettings: releaseExclusivityUnchecked
        ),
        // The worker runtime: socket server, batching scheduler, model backends.
        .target(
            name: "Worker",
            dependencies: [
                "InferenceProtocol", "ProtoWire", "ONNXModel",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: releaseExclusivityUnchecked
        ),
        // The configuration file (`serve --config`, `check-config`): YAML to GatewayConfiguration,
        // every mistake reported with its line and column. Kept out of Gateway so that Yams is not.
        .target(
            name: "ConfigFile",
            dependencies: [
                "Gateway", "H2Transport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // ONNX models for the native backend (issue 13): onnx.proto decoded by hand, the graph
        // checked at load, float32 kernels.
        .target(
            name: "ONNXModel",
            dependencies: ["ProtoWire", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: releaseExclusivityUnchecked
        ),
        // The load-test driver's engine.
        .target(
            name: "LoadTest",
            dependencies: [
                "H2Transport", "InferenceProtocol", "ProtoWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                // Scenario files (`loadtest --scenario FILE`).
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: releaseExclusivityUnchecked
        ),
        .executableTarget(
            name: "switchyard",
            dependencies: [
                "Gateway", "ConfigFile", "Worker", "LoadTest", "H2Transport", "InferenceProtocol", "ProtoWire", "ONNXModel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "OTel", package: "swift-otel"),
            ]
        ),

        .testTarget(
            name: "ProtoWireTests",
            dependencies: ["ProtoWire", .product(name: "NIOCore", package: "swift-nio")],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "H2TransportTests",
            dependencies: [
                "H2Transport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "WorkerTests",
            dependencies: [
                "Worker", "InferenceProtocol", "ProtoWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .testTarget(
            name: "GatewayTests",
            dependencies: [
                "Gateway", "H2Transport", "InferenceProtocol", "ProtoWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "JWTKit", package: "jwt-kit"),
            ]
        ),
        .testTarget(
            name: "ONNXModelTests",
            dependencies: ["ONNXModel", "ProtoWire"]
        ),
        .testTarget(
            name: "LoadTestTests",
            dependencies: [
                // The executable too, for `loadtest`'s flag parsing.
                "LoadTest", "InferenceProtocol", "H2Transport", "switchyard",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ]
        ),
        .testTarget(
            name: "ConfigFileTests",
            dependencies: ["ConfigFile", "Gateway"]
        ),
        .testTarget(
            name: "InferenceProtocolTests",
            dependencies: [
                "InferenceProtocol", "ProtoWire",
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            exclude: ["Fixtures"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
