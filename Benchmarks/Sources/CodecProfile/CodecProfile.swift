// A tiny driver that runs one codec operation on one fixture in a loop, with no benchmark
// harness around it, for `valgrind --tool=callgrind` or `perf record`. See Benchmarks/README.md.
//
//   codec-profile OPERATION FIXTURE [ITERATIONS]
//   codec-profile sizes        (each fixture's encoded size, after verifying it)
//   OPERATION: decode-ours | decode-swiftprotobuf | encode-ours | encode-swiftprotobuf | peek-ours | scan-ours
//   FIXTURE:   int32x2-raw | fp32-1MiB-raw | fp32-1MiB-typed
//   codec-profile validate-decode|validate-scan FIXTURE [ITERATIONS]
//   FIXTURE:   int32x2-raw | int32-1MiB-raw | int32-1MiB-typed  (ValidationFixture)

import CodecFixtures
import Foundation
import InferenceProtocol
import NIOCore
import SwiftProtobuf
import SwiftProtobufPeer
import ValidationFixtures

/// Keeps `value` alive and opaque to the optimiser (the benchmark package's `blackHole` does the same).
@inline(never)
func consume<T>(_ value: T) {
    withExtendedLifetime(value) {}
}

@main
enum CodecProfile {
    static func main() throws {
        let arguments = CommandLine.arguments
        if arguments.count == 2, arguments[1] == "sizes" {
            for fixture in CodecFixture.all() {
                fixture.verify()
                print("\(fixture.label): \(fixture.encodedSize) bytes, verified")
            }
            return
        }
        guard arguments.count >= 3 else {
            print("usage: codec-profile OPERATION FIXTURE [ITERATIONS] | codec-profile sizes")
            exit(2)
        }
        let operation = arguments[1]
        if operation.hasPrefix("validate-") {
            guard let fixture = ValidationFixture.all().first(where: { $0.label == arguments[2] }) else {
                print("unknown fixture \(arguments[2]); one of: \(ValidationFixture.all().map(\.label))")
                exit(2)
            }
            let iterations = arguments.count > 3 ? Int(arguments[3]) ?? 1 : 1
            fixture.verify()
            switch operation {
            case "validate-decode":
                for _ in 0..<iterations { consume(try fixture.decodeAndValidate()) }
            case "validate-scan":
                for _ in 0..<iterations { consume(try fixture.scanAndValidate()) }
            default:
                print("unknown operation \(operation)")
                exit(2)
            }
            return
        }
        guard let fixture = CodecFixture.all().first(where: { $0.label == arguments[2] }) else {
            print("unknown fixture \(arguments[2]); one of: \(CodecFixture.all().map(\.label))")
            exit(2)
        }
        let iterations = arguments.count > 3 ? Int(arguments[3]) ?? 1 : 1
        fixture.verify()

        switch operation {
        case "decode-ours":
            for _ in 0..<iterations { consume(try ModelInferRequest(decoding: fixture.buffer)) }
        case "decode-swiftprotobuf":
            for _ in 0..<iterations { consume(try Inference_ModelInferRequest(serializedBytes: fixture.data)) }
        case "encode-ours":
            for _ in 0..<iterations { consume(fixture.ours.encoded()) }
        case "encode-swiftprotobuf":
            for _ in 0..<iterations {
                let bytes: Data = try fixture.theirs.serializedBytes()
                consume(bytes)
            }
        case "peek-ours":
            for _ in 0..<iterations { consume(try ModelInferRequestPeek(peeking: fixture.buffer)) }
        case "scan-ours":
            for _ in 0..<iterations { consume(try ModelInferRequestScan(decoding: fixture.buffer)) }
        default:
            print("unknown operation \(operation)")
            exit(2)
        }
    }
}
