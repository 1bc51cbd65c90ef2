import ArgumentParser
import ConfigFile
import Foundation
import H2Transport
import LoadTest
import Logging
import NIOCore

/// `switchyard loadtest`: drives load at any server of the Open Inference Protocol v2 gRPC API (or
/// of gRPC health) and reports latency percentiles, throughput and errors. Flags that mean the
/// same as perf_analyzer's have its names; docs/loadtest.md lists them all.
struct LoadTestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "loadtest",
        abstract: "Load-test a KServe v2 / Triton gRPC server (or gRPC health) and report latency percentiles.",
        discussion: """
            Closed loop (--concurrency-range) or open loop (--request-rate-range, latency counted \
            from each call's intended start). Without --input, the inputs come from the model's \
            metadata, as perf_analyzer does. Exit status: 0 ok, 1 the run failed (connection, \
            metadata, files), 2 --max-error-rate exceeded, 3 a --max-latency objective broken, \
            64 usage error. See docs/loadtest.md.
            """
    )

    // MARK: perf_analyzer's names

    @Option(name: [.customShort("m"), .customLong("model-name")], help: "Model name. Default: simple.")
    var modelName: String?

    @Option(name: [.customShort("x"), .customLong("model-version")], help: "Model version; empty lets the server choose.")
    var modelVersion: String?

    @Option(name: [.customShort("u"), .customLong("url")], help: "Server HOST:PORT. Default: localhost:8001.")
    var url: String?

    @Option(name: [.customShort("i"), .customLong("protocol")], help: "Protocol: grpc (the only one).")
    var protocolName: String = "grpc"

    @Option(name: .customLong("concurrency-range"), help: "Closed loop: START[:END[:STEP]] calls in flight. Default 1.")
    var concurrencyRange: String?

    @Option(name: .customLong("request-rate-range"), help: "Open loop: START[:END[:STEP]] calls per second.")
    var requestRateRange: String?

    @Option(name: .customLong("request-distribution"), help: "Open-loop arrivals: constant or poisson. Default constant.")
    var requestDistribution: String?

    @Option(name: .customLong("shape"), help: "NAME:D1,D2 shape of an input with variable dimensions (repeatable).")
    var shape: [String] = []

    @Option(name: .customLong("input-data"), help: "random, zero, or a perf_analyzer JSON data file. Default random.")
    var inputData: String?

    @Flag(name: .customLong("streaming"), help: "Send each request on a ModelStreamInfer stream (one in flight per stream).")
    var streaming = false

    @Option(name: [.customShort("b"), .customLong("batch-size")], help: "Fills a leading variable batch dimension. Default 1.")
    var batchSize: Int?

    @Option(name: [.customShort("p"), .customLong("measurement-interval")], help: "Milliseconds each level is measured (same as --duration). Default 5000.")
    var measurementInterval: Int?

    @Option(name: .customShort("H"), help: "Metadata sent with every call, 'name: value' (repeatable), e.g. -H 'authorization: Bearer X'.")
    var header: [String] = []

    @Flag(name: .customLong("ssl-grpc-use-ssl"), help: "Use TLS.")
    var sslGrpcUseSSL = false

    @Option(name: .customLong("ssl-grpc-root-certifications-file"), help: "PEM CA bundle that verifies the server. Default: the system's.")
    var sslGrpcRootCertificationsFile: String?

    @Option(name: .customLong("ssl-grpc-private-key-file"), help: "PEM private key of the client certificate (mutual TLS).")
    var sslGrpcPrivateKeyFile: String?

    @Option(name: .customLong("ssl-grpc-certificate-chain-file"), help: "PEM client certificate chain (mutual TLS).")
    var sslGrpcCertificateChainFile: String?

    @Option(name: .customLong("latency-threshold"), help: "Milliseconds: a capacity search stops after the first level whose --percentile latency exceeds it.")
    var latencyThreshold: Double?

    @Option(name: .customLong("percentile"), help: "The percentile --latency-threshold looks at: 50, 90, 99, 99.9. Default 99.")
    var percentile: Double?

    @Option(name: .customShort("f"), help: "Write perf_analyzer-style CSV (one row per level) to this file.")
    var csvFile: String?

    // MARK: Switchyard's own

    @Option(name: .customLong("scenario"), help: "A YAML scenario file with the same settings; flags win.")
    var scenario: String?

    @Option(name: .customLong("rpc"), help: "infer (ModelInfer / ModelStreamInfer) or health (grpc.health.v1.Health/Check). Default infer.")
    var rpc: String?

    @Option(name: .customLong("health-service"), help: "Service name for --rpc health. Default: the server as a whole.")
    var healthService: String?

    @Option(name: .customLong("raw-http2"), help: "Plain HTTP/2 GETs of this path instead of gRPC (to compare with h2load against a static file server).")
    var rawHTTP2: String?

    @Option(name: .customLong("input"), help: "NAME:DATATYPE:D1,D2 input tensor (repeatable); skips ModelMetadata.")
    var input: [String] = []

    @Option(name: .customLong("connections"), help: "HTTP/2 connections the calls are spread over. Default 1.")
    var connections: Int?

    @Option(name: .customLong("threads"), help: "Event loops of the driver. Default: the number of cores.")
    var threads: Int?

    @Option(name: .customLong("duration"), help: "How long each level is measured (500ms, 20s, 5m). Default 5s.")
    var duration: DurationArgument?

    @Option(name: .customLong("requests"), help: "End each level after this many calls instead of after a duration.")
    var requests: Int?

    @Option(name: .customLong("warmup"), help: "Unmeasured load before the first level (e.g. 2s). Default none.")
    var warmup: DurationArgument?

    @Option(name: .customLong("json"), help: "Write the result as JSON to this file ('-' for standard output).")
    var jsonFile: String?

    @Option(name: .customLong("html"), help: "Write a self-contained HTML report with plots to this file.")
    var htmlFile: String?

    @Option(name: .customLong("max-error-rate"), help: "Fail (exit 2) when more than this fraction of calls (0 to 1) end with an error.")
    var maxErrorRate: Double?

    @Option(name: .customLong("max-latency"), help: "Fail (exit 3) when a percentile is over its limit: p50|p90|p99|p99.9|max=DURATION (repeatable).")
    var maxLatency: [String] = []

    @Option(name: .customLong("call-timeout"), help: "Deadline of each call (grpc-timeout), e.g. 5s. Default none.")
    var callTimeout: DurationArgument?

    @Option(name: .customLong("max-in-flight"), help: "Open loop: most calls outstanding per connection; later ones wait, still timed from their intended start. Default 10000.")
    var maxInFlight: Int?

    @Option(name: .customLong("server-name"), help: "TLS: the name the server's certificate must carry. Default: the host of -u.")
    var serverName: String?

    @Option(name: .customLong("seed"), help: "Seed of the random data and Poisson gaps. Default 42.")
    var seed: UInt64?

    @Flag(name: .customLong("quiet"), help: "No progress line and no table.")
    var quiet = false

    // MARK: Running

    func run() async throws {
        let configuration: LoadTestConfiguration
        do {
            configuration = try makeConfiguration()
        } catch let error as ValidationError {
            throw error
        } catch {
            FileHandle.standardError.write(Data("switchyard loadtest: \(error)\n".utf8))
            throw ExitCode(ExitStatus.usage)
        }
        var logger = Logger(label: "switchyard.loadtest")
        logger.logLevel = .warning
        let driver = LoadDriver(configuration: configuration, logger: logger)
        let live = !quiet && isatty(STDOUT_FILENO) == 1 && jsonFile != "-"
        let result: LoadTestResult
        do {
            result = try await driver.run { report in
                guard live else { return }
                FileHandle.standardOutput.write(Data(("\r\u{1B}[K" + ReportRendering.progressLine(report)).utf8))
            }
        } catch {
            if live { FileHandle.standardOutput.write(Data("\n".utf8)) }
            FileHandle.standardError.write(Data("switchyard loadtest: \(error)\n".utf8))
            throw ExitCode(ExitStatus.runFailed)
        }
        if live { FileHandle.standardOutput.write(Data("\r\u{1B}[K".utf8)) }
        do {
            if let jsonFile {
                let data = try ReportRendering.json(result)
                if jsonFile == "-" {
                    FileHandle.standardOutput.write(data + Data("\n".utf8))
                } else {
                    try data.write(to: URL(fileURLWithPath: jsonFile))
                }
            }
            if let htmlFile { try Data(HTMLReport.render(result).utf8).write(to: URL(fileURLWithPath: htmlFile)) }
            if let csvFile { try Data(ReportRendering.csv(result).utf8).write(to: URL(fileURLWithPath: csvFile)) }
        } catch {
            FileHandle.standardError.write(Data("switchyard loadtest: cannot write the report: \(error.localizedDescription)\n".utf8))
            throw ExitCode(ExitStatus.runFailed)
        }
        if !quiet && jsonFile != "-" { print(ReportRendering.table(result), terminator: "") }
        let status = Thresholds.exitStatus(for: result.violations)
        if status != ExitStatus.ok {
            if quiet || jsonFile == "-" {
                for violation in result.violations { FileHandle.standardError.write(Data("FAILED \(violation)\n".utf8)) }
            }
            throw ExitCode(status)
        }
    }

    /// The run's configuration: the flags, over the scenario file, over the defaults.
    ///
    /// - Throws: `ValidationError` (usage, exit 64) for anything malformed.
    func makeConfiguration() throws -> LoadTestConfiguration {
        let file: LoadTestScenario
        if let scenario {
            do {
                file = try LoadTestScenario.load(path: scenario)
            } catch {
                throw ValidationError("\(error)")
            }
        } else {
            file = LoadTestScenario()
        }
        guard protocolName.lowercased() == "grpc" else {
            throw ValidationError("-i \(protocolName): only grpc is supported (the KServe v2 gRPC API)")
        }

        let target = url ?? file.url ?? "localhost:8001"
        guard let (host, port) = Self.hostAndPort(target) else {
            throw ValidationError("-u \(target): expected HOST:PORT")
        }
        var configuration = LoadTestConfiguration(host: host)
        configuration.port = port

        switch (rpc ?? file.rpc ?? "infer").lowercased() {
        case "infer":
            configuration.method = .infer(model: modelName ?? file.model_name ?? "simple", version: modelVersion ?? file.model_version ?? "")
        case "health":
            configuration.method = .health(service: healthService ?? file.health_service ?? "")
        case let other:
            throw ValidationError("--rpc \(other): expected infer or health")
        }
        if let rawHTTP2 {
            guard rawHTTP2.hasPrefix("/") else { throw ValidationError("--raw-http2 \(rawHTTP2): expected a path such as /index.html") }
            configuration.method = .rawHTTP2(path: rawHTTP2)
        }
        configuration.streaming = streaming || (file.streaming ?? false)
        if configuration.streaming {
            guard case .infer = configuration.method else { throw ValidationError("--streaming applies to --rpc infer only") }
        }

        if !input.isEmpty {
            configuration.inputs = try input.map { text in
                guard let spec = InputTensorSpec(parsing: text) else {
                    throw ValidationError("--input \(text): expected NAME:DATATYPE:D1,D2 with a protocol datatype (INT32, FP32, BYTES, ...) and fixed dimensions")
                }
                return spec
            }
        } else if let inputs = file.inputs {
            configuration.inputs = inputs.map { InputTensorSpec(name: $0.name, datatype: $0.datatype.uppercased(), shape: $0.shape) }
        }
        var shapes = file.shape ?? [:]
        for text in shape {
            guard let colon = text.lastIndex(of: ":"), colon != text.startIndex,
                  let dims = InputTensorSpec.parseDimensions(String(text[text.index(after: colon)...])), !dims.contains(where: { $0 < 0 })
            else {
                throw ValidationError("--shape \(text): expected NAME:D1,D2 with non-negative dimensions")
            }
            shapes[String(text[..<colon])] = dims
        }
        configuration.shapes = shapes
        configuration.batchSize = batchSize ?? file.batch_size ?? 1
        guard configuration.batchSize >= 1 else { throw ValidationError("-b must be at least 1") }
        configuration.inputData = InputDataSource(argument: inputData ?? file.input_data ?? "random")

        configuration.connections = connections ?? file.connections ?? 1
        guard configuration.connections >= 1 else { throw ValidationError("--connections must be at least 1") }
        configuration.threads = threads ?? file.threads ?? System.coreCount
        guard configuration.threads >= 1 else { throw ValidationError("--threads must be at least 1") }

        let concurrencyText = concurrencyRange ?? (requestRateRange == nil ? file.concurrency_range : nil)
        let rateText = requestRateRange ?? (concurrencyRange == nil ? file.request_rate_range : nil)
        if concurrencyText != nil && rateText != nil {
            throw ValidationError("--concurrency-range and --request-rate-range exclude each other")
        }
        let distributionText = requestDistribution ?? file.request_distribution ?? "constant"
        guard let distribution = ArrivalSchedule.Distribution(rawValue: distributionText.lowercased()) else {
            throw ValidationError("--request-distribution \(distributionText): expected constant or poisson")
        }
        if let rateText {
            guard let rates = LoadLevels.parse(rateText) else {
                throw ValidationError("--request-rate-range \(rateText): expected START[:END[:STEP]] with positive numbers")
            }
            configuration.load = .requestRate(rates, distribution)
        } else {
            let text = concurrencyText ?? "1"
            guard let levels = LoadLevels.parse(text), levels.allSatisfy({ $0 == $0.rounded() }) else {
                throw ValidationError("--concurrency-range \(text): expected START[:END[:STEP]] with positive whole numbers")
            }
            configuration.load = .concurrency(levels.map { Int($0) })
        }

        if duration != nil && measurementInterval != nil {
            throw ValidationError("--duration and --measurement-interval say the same thing; give one")
        }
        if let duration {
            configuration.duration = try duration.required("--duration")
        } else if let measurementInterval {
            guard measurementInterval > 0 else { throw ValidationError("--measurement-interval must be positive (milliseconds)") }
            configuration.duration = .milliseconds(Int64(measurementInterval))
        } else if let text = file.duration {
            guard let parsed = DurationText.parse(text), let amount = parsed, amount > .zero else {
                throw ValidationError("\(scenario ?? "scenario"): duration '\(text)' is not a duration such as 10s")
            }
            configuration.duration = amount
        }
        configuration.requests = requests ?? file.requests
        if let requests = configuration.requests, requests < 1 { throw ValidationError("--requests must be at least 1") }
        if let warmup {
            configuration.warmup = try warmup.optional("--warmup") ?? .zero
        } else if let text = file.warmup {
            guard let parsed = DurationText.parse(text) else {
                throw ValidationError("\(scenario ?? "scenario"): warmup '\(text)' is not a duration such as 2s")
            }
            configuration.warmup = parsed ?? .zero
        }
        if let callTimeout, let amount = try callTimeout.optional("--call-timeout") {
            configuration.callTimeout = .nanoseconds(amount.nanoseconds)
        }
        if let maxInFlight {
            guard maxInFlight >= 1 else { throw ValidationError("--max-in-flight must be at least 1") }
            configuration.maxInFlightPerConnection = maxInFlight
        }
        if let seed { configuration.seed = seed }

        do {
            configuration.metadata = try MetadataLine.parse((file.headers ?? []) + header)
        } catch {
            throw ValidationError("\(error)")
        }

        let useTLS = sslGrpcUseSSL || (file.ssl_grpc_use_ssl ?? false)
        let roots = sslGrpcRootCertificationsFile ?? file.ssl_grpc_root_certifications_file
        let key = sslGrpcPrivateKeyFile ?? file.ssl_grpc_private_key_file
        let chain = sslGrpcCertificateChainFile ?? file.ssl_grpc_certificate_chain_file
        if !useTLS && (roots != nil || key != nil || chain != nil) {
            throw ValidationError("the --ssl-grpc-* files need --ssl-grpc-use-ssl")
        }
        if (key == nil) != (chain == nil) {
            throw ValidationError("mutual TLS needs both --ssl-grpc-private-key-file and --ssl-grpc-certificate-chain-file")
        }
        if useTLS {
            configuration.tls = .client(serverName: serverName ?? host, trustRootsPath: roots, certificateChainPath: chain, privateKeyPath: key)
        }

        configuration.latencyThreshold = latencyThreshold ?? file.latency_threshold
        configuration.thresholdPercentile = percentile ?? file.percentile ?? 99
        guard [50, 90, 99, 99.9, 100].contains(configuration.thresholdPercentile) else {
            throw ValidationError("--percentile \(configuration.thresholdPercentile): expected 50, 90, 99 or 99.9")
        }
        let errorRate = maxErrorRate ?? file.max_error_rate
        if let errorRate, !(0...1).contains(errorRate) {
            throw ValidationError("--max-error-rate \(errorRate): expected a fraction from 0 to 1")
        }
        let objectives = try ((file.max_latency ?? []) + maxLatency).map { text in
            guard let objective = LatencyObjective(parsing: text) else {
                throw ValidationError("--max-latency \(text): expected p50|p90|p99|p99.9|max=DURATION, e.g. p99=20ms")
            }
            return objective
        }
        configuration.thresholds = Thresholds(maxErrorRate: errorRate, latency: objectives)
        return configuration
    }

    /// `host:port`, `[::1]:port`; nil when the port is missing or out of range.
    static func hostAndPort(_ text: String) -> (String, Int)? {
        var text = text
        for scheme in ["grpc://", "http://", "https://"] where text.hasPrefix(scheme) { text.removeFirst(scheme.count) }
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty else { return nil }
        return (host, port)
    }
}
