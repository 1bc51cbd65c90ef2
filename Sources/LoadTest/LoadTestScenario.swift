import Foundation
import Yams

/// A scenario file (`switchyard loadtest --scenario FILE`): the same settings as the flags, in
/// YAML, under the flags' long names with `_` for `-` (`concurrency_range: "1:16:2"`). A flag on
/// the command line wins over the file. docs/loadtest.md has an example.
///
/// Durations and ranges stay text here; the command parses them as it parses its flags, so both
/// accept the same spellings.
public struct LoadTestScenario: Decodable, Sendable, Equatable {
    /// One input tensor, with its data when the data is inline.
    public struct Input: Decodable, Sendable, Equatable {
        /// Tensor name.
        public var name: String
        /// Protocol datatype (`INT32`).
        public var datatype: String
        /// Shape as sent.
        public var shape: [Int64]
    }

    /// `host:port`, as `-u`.
    public var url: String?
    /// `infer` or `health`.
    public var rpc: String?
    /// Model name (`-m`).
    public var model_name: String?
    /// Model version (`-x`).
    public var model_version: String?
    /// ModelStreamInfer instead of ModelInfer.
    public var streaming: Bool?
    /// Health service name for `rpc: health`.
    public var health_service: String?
    /// The inputs; without them the model's metadata is asked for.
    public var inputs: [Input]?
    /// `--shape` overrides, by input name.
    public var shape: [String: [Int64]]?
    /// `random`, `zero` or a JSON file (relative to the scenario file).
    public var input_data: String?
    /// `-b`.
    public var batch_size: Int?
    /// `--connections`.
    public var connections: Int?
    /// `--threads`.
    public var threads: Int?
    /// `start:end:step` closed-loop levels.
    public var concurrency_range: String?
    /// `start:end:step` open-loop levels, calls per second.
    public var request_rate_range: String?
    /// `constant` or `poisson`.
    public var request_distribution: String?
    /// Measurement of each level (`10s`).
    public var duration: String?
    /// Calls per level instead of a duration.
    public var requests: Int?
    /// Unmeasured time before the first level (`2s`).
    public var warmup: String?
    /// Metadata lines, `name: value`.
    public var headers: [String]?
    /// TLS.
    public var ssl_grpc_use_ssl: Bool?
    /// CA bundle for the server's certificate.
    public var ssl_grpc_root_certifications_file: String?
    /// Client key (mutual TLS).
    public var ssl_grpc_private_key_file: String?
    /// Client certificate chain (mutual TLS).
    public var ssl_grpc_certificate_chain_file: String?
    /// Largest error rate (0 to 1).
    public var max_error_rate: Double?
    /// Latency objectives, `p99=20ms`.
    public var max_latency: [String]?
    /// Capacity search stop, ms.
    public var latency_threshold: Double?
    /// Percentile of the latency threshold.
    public var percentile: Double?

    /// A scenario that sets nothing.
    public init() {}

    /// Reads and decodes a scenario file. Relative data paths are resolved against its folder.
    ///
    /// - Throws: `LoadTestError` naming the file and what is wrong.
    public static func load(path: String) throws -> LoadTestScenario {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw LoadTestError("cannot read the scenario file \(path): \(error.localizedDescription)")
        }
        var scenario = try parse(yaml: text, path: path)
        if let data = scenario.input_data, !["random", "zero", "zeros"].contains(data), !data.hasPrefix("/") {
            scenario.input_data = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent(data).path
        }
        return scenario
    }

    /// Decodes scenario YAML; `path` names it in errors. Unknown keys are refused, so that a
    /// misspelt setting is not silently ignored.
    public static func parse(yaml text: String, path: String) throws -> LoadTestScenario {
        let scenario: LoadTestScenario
        do {
            if let root = try Yams.load(yaml: text) as? [String: Any] {
                let known = Set(CodingKeys.allKeys)
                if let unknown = root.keys.sorted().first(where: { !known.contains($0) }) {
                    throw LoadTestError("\(path): unknown setting '\(unknown)' (docs/loadtest.md lists them)")
                }
            }
            scenario = try YAMLDecoder().decode(LoadTestScenario.self, from: text)
        } catch let error as LoadTestError {
            throw error
        } catch let DecodingError.keyNotFound(key, context) {
            throw LoadTestError("\(path): \(Self.location(context)) needs '\(key.stringValue)'")
        } catch let DecodingError.typeMismatch(_, context) {
            throw LoadTestError("\(path): \(Self.location(context)): \(context.debugDescription)")
        } catch {
            throw LoadTestError("\(path): \(error)")
        }
        return scenario
    }

    private enum CodingKeys: String, CodingKey, CaseIterable {
        case url, rpc, model_name, model_version, streaming, health_service, inputs, shape, input_data, batch_size
        case connections, threads, concurrency_range, request_rate_range, request_distribution, duration, requests
        case warmup, headers, ssl_grpc_use_ssl, ssl_grpc_root_certifications_file, ssl_grpc_private_key_file
        case ssl_grpc_certificate_chain_file, max_error_rate, max_latency, latency_threshold, percentile

        static var allKeys: [String] { allCases.map(\.rawValue) }
    }

    private static func location(_ context: DecodingError.Context) -> String {
        let path = context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        return path.isEmpty ? "the document" : path
    }
}
