// swift-tools-version:6.0
// libFuzzer targets over Switchyard's hand-written protobuf decoders. A package of its own, as
// swift-protobuf's FuzzTesting is, so the main package never builds with sanitizer flags.
// Build and run: see README.md here (`./run.sh all 60`).
import PackageDescription

let package = Package(
    name: "FuzzTesting",
    platforms: [.macOS(.v14)],
    dependencies: [
        // The main package, by path; its identity is its folder's name, so name it explicitly.
        .package(name: "switchyard", path: ".."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        // The checks every target shares: round-trip stability, input buffers, traps.
        .target(
            name: "FuzzCommon",
            dependencies: [
                .product(name: "ProtoWire", package: "switchyard"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "FuzzModelInferRequest",
            dependencies: [
                "FuzzCommon",
                .product(name: "ProtoWire", package: "switchyard"),
                .product(name: "InferenceProtocol", package: "switchyard"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "FuzzModelInferRequestScan",
            dependencies: [
                "FuzzCommon",
                .product(name: "ProtoWire", package: "switchyard"),
                .product(name: "InferenceProtocol", package: "switchyard"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "FuzzWorkerFrame",
            dependencies: [
                "FuzzCommon",
                .product(name: "ProtoWire", package: "switchyard"),
                .product(name: "InferenceProtocol", package: "switchyard"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "FuzzGatewayRequests",
            dependencies: [
                "FuzzCommon",
                .product(name: "ProtoWire", package: "switchyard"),
                .product(name: "InferenceProtocol", package: "switchyard"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
