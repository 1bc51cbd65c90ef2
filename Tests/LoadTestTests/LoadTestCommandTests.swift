import ArgumentParser
import Foundation
import LoadTest
import XCTest

@testable import switchyard

/// `switchyard loadtest`'s flags: perf_analyzer's names mean what they mean there.
final class LoadTestCommandTests: XCTestCase {
    private func configuration(_ arguments: [String]) throws -> LoadTestConfiguration {
        try LoadTestCommand.parse(arguments).makeConfiguration()
    }

    func testDefaults() throws {
        let c = try configuration([])
        XCTAssertEqual(c.host, "localhost")
        XCTAssertEqual(c.port, 8001)
        XCTAssertEqual(c.method, .infer(model: "simple", version: ""))
        XCTAssertEqual(c.load, .concurrency([1]))
        XCTAssertEqual(c.duration, .seconds(5))
        XCTAssertNil(c.tls)
        XCTAssertNil(c.inputs)
        XCTAssertEqual(c.connections, 1)
        XCTAssertEqual(c.path, "/inference.GRPCInferenceService/ModelInfer")
    }

    func testPerfAnalyzerFlags() throws {
        let c = try configuration([
            "-m", "simple_string", "-x", "3", "-u", "127.0.0.1:9001", "-i", "grpc", "--concurrency-range", "2:8:2",
            "--shape", "INPUT0:1,16", "--input-data", "zero", "--streaming", "-b", "4", "--measurement-interval", "1500",
            "-H", "authorization: Bearer tok", "--latency-threshold", "25", "--percentile", "90", "-f", "out.csv",
        ])
        XCTAssertEqual(c.method, .infer(model: "simple_string", version: "3"))
        XCTAssertEqual(c.host, "127.0.0.1")
        XCTAssertEqual(c.port, 9001)
        XCTAssertEqual(c.load, .concurrency([2, 4, 6, 8]))
        XCTAssertEqual(c.shapes, ["INPUT0": [1, 16]])
        XCTAssertEqual(c.inputData, .zero)
        XCTAssertTrue(c.streaming)
        XCTAssertEqual(c.path, "/inference.GRPCInferenceService/ModelStreamInfer")
        XCTAssertEqual(c.batchSize, 4)
        XCTAssertEqual(c.duration, .milliseconds(1500))
        XCTAssertEqual(c.metadata.firstString(named: "authorization"), "Bearer tok")
        XCTAssertEqual(c.latencyThreshold, 25)
        XCTAssertEqual(c.thresholdPercentile, 90)
    }

    func testOpenLoopAndTLSFlags() throws {
        let c = try configuration([
            "-u", "localhost:8443", "--request-rate-range", "100:300:100", "--request-distribution", "poisson",
            "--ssl-grpc-use-ssl", "--ssl-grpc-root-certifications-file", "ca.pem",
            "--ssl-grpc-private-key-file", "client-key.pem", "--ssl-grpc-certificate-chain-file", "client.pem",
        ])
        XCTAssertEqual(c.load, .requestRate([100, 200, 300], .poisson))
        XCTAssertEqual(c.tls?.trustRootsPath, "ca.pem")
        XCTAssertEqual(c.tls?.privateKeyPath, "client-key.pem")
        XCTAssertEqual(c.tls?.certificateChainPath, "client.pem")
        XCTAssertEqual(c.tls?.serverName, "localhost")
        XCTAssertEqual(c.transport, "mtls")
    }

    func testOwnFlags() throws {
        let c = try configuration([
            "--connections", "4", "--threads", "2", "--duration", "3s", "--requests", "500", "--warmup", "1s",
            "--max-error-rate", "0.01", "--max-latency", "p99=20ms", "--max-latency", "p50=5ms",
            "--input", "INPUT0:INT32:1,16", "--call-timeout", "2s", "--max-in-flight", "64", "--seed", "7",
        ])
        XCTAssertEqual(c.connections, 4)
        XCTAssertEqual(c.threads, 2)
        XCTAssertEqual(c.duration, .seconds(3))
        XCTAssertEqual(c.requests, 500)
        XCTAssertEqual(c.warmup, .seconds(1))
        XCTAssertEqual(c.thresholds.maxErrorRate, 0.01)
        XCTAssertEqual(c.thresholds.latency.map(\.description), ["p99=20ms", "p50=5ms"])
        XCTAssertEqual(c.inputs, [InputTensorSpec(name: "INPUT0", datatype: "INT32", shape: [1, 16])])
        XCTAssertEqual(c.callTimeout, .seconds(2))
        XCTAssertEqual(c.maxInFlightPerConnection, 64)
        XCTAssertEqual(c.seed, 7)
    }

    func testHealthRPC() throws {
        let c = try configuration(["--rpc", "health", "--health-service", "inference"])
        XCTAssertEqual(c.method, .health(service: "inference"))
        XCTAssertEqual(c.path, "/grpc.health.v1.Health/Check")
    }

    func testRawHTTP2Mode() throws {
        let c = try configuration(["-u", "127.0.0.1:8080", "--raw-http2", "/index.html"])
        XCTAssertEqual(c.method, .rawHTTP2(path: "/index.html"))
        XCTAssertEqual(c.path, "/index.html")
        XCTAssertThrowsError(try configuration(["--raw-http2", "index.html"]))
        XCTAssertThrowsError(try configuration(["--raw-http2", "/x", "--streaming"]))
    }

    func testUsageErrors() {
        let bad: [[String]] = [
            ["-i", "http"],
            ["--concurrency-range", "8:2"],
            ["--concurrency-range", "1.5"],
            ["--concurrency-range", "1", "--request-rate-range", "10"],
            ["--request-distribution", "uniform", "--request-rate-range", "10"],
            ["--shape", "INPUT0"],
            ["--max-latency", "p98=1ms"],
            ["--max-error-rate", "2"],
            ["--duration", "3s", "--measurement-interval", "3000"],
            ["--ssl-grpc-root-certifications-file", "ca.pem"],
            ["--ssl-grpc-use-ssl", "--ssl-grpc-private-key-file", "k.pem"],
            ["-u", "localhost"],
            ["-H", "nocolon"],
            ["--rpc", "health", "--streaming"],
            ["--input", "X:FLOAT:1"],
            ["-b", "0"],
        ]
        for arguments in bad {
            XCTAssertThrowsError(try configuration(arguments), "\(arguments)") { error in
                XCTAssertTrue(error is ValidationError, "\(arguments): \(error)")
            }
        }
    }

    func testScenarioFileAndFlagsWin() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("loadtest-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("scenario.yaml").path
        try """
            url: localhost:8443
            model_name: simple
            model_version: "1"
            inputs:
              - {name: INPUT0, datatype: int32, shape: [1, 16]}
              - {name: INPUT1, datatype: INT32, shape: [1, 16]}
            input_data: data.json
            connections: 2
            request_rate_range: "50:100:50"
            request_distribution: poisson
            duration: 2s
            warmup: 500ms
            headers: ["x-api-key: k"]
            ssl_grpc_use_ssl: true
            max_latency: [p99=30ms]
            """.write(toFile: path, atomically: true, encoding: .utf8)
        let c = try configuration(["--scenario", path, "--connections", "3", "-H", "x-extra: 1"])
        XCTAssertEqual(c.port, 8443)
        XCTAssertEqual(c.method, .infer(model: "simple", version: "1"))
        XCTAssertEqual(c.inputs?.map(\.datatype), ["INT32", "INT32"])
        XCTAssertEqual(c.inputData, .file(directory.appendingPathComponent("data.json").path))
        XCTAssertEqual(c.connections, 3)
        XCTAssertEqual(c.load, .requestRate([50, 100], .poisson))
        XCTAssertEqual(c.duration, .seconds(2))
        XCTAssertEqual(c.warmup, .milliseconds(500))
        XCTAssertEqual(c.metadata.firstString(named: "x-api-key"), "k")
        XCTAssertEqual(c.metadata.firstString(named: "x-extra"), "1")
        XCTAssertEqual(c.transport, "tls")
        XCTAssertEqual(c.thresholds.latency.map(\.description), ["p99=30ms"])
        // A flag's load shape replaces the file's.
        XCTAssertEqual(try configuration(["--scenario", path, "--concurrency-range", "4"]).load, .concurrency([4]))

        try "modle_name: simple\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try configuration(["--scenario", path])) { error in
            XCTAssertTrue("\(error)".contains("unknown setting 'modle_name'"), "\(error)")
        }
    }
}
