import Foundation
import Gateway
import H2Transport
import NIOCore
import Yams

extension ServeSettings {
    /// The settings of the YAML file at `path` over the defaults. Throws every mistake in the
    /// file at once, each with its line and column; read once at start, never per call.
    public static func load(path: String) throws(ConfigFileError) -> ServeSettings {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigFileError([ConfigDiagnostic(file: path, line: 1, column: 1, message: "cannot read the file", hint: "check the path and its permissions")])
        }
        return try parse(yaml: String(decoding: data, as: UTF8.self), file: path)
    }

    /// The settings of `yaml` over the defaults; `file` names it in the messages.
    public static func parse(yaml: String, file: String) throws(ConfigFileError) -> ServeSettings {
        var reader = ConfigReader(file: file)
        let root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            throw ConfigFileError([reader.diagnostic(for: error)])
        } catch {
            throw ConfigFileError([ConfigDiagnostic(file: file, line: 1, column: 1, message: "not YAML: \(error)")])
        }
        var settings = ServeSettings()
        if let root { reader.read(root, into: &settings) }
        guard reader.diagnostics.isEmpty else {
            throw ConfigFileError(reader.diagnostics.sorted { ($0.line, $0.column) < ($1.line, $1.column) })
        }
        return settings
    }
}

/// Walks the YAML nodes into `ServeSettings`, collecting every mistake instead of stopping at
/// the first.
struct ConfigReader {
    let file: String
    var diagnostics: [ConfigDiagnostic] = []
    /// `models.NAME.rate_limit`, collected while reading models; they go into the policy.
    var modelRateLimits: [String: AuthPolicy.RateLimit] = [:]

    init(file: String) { self.file = file }

    // MARK: The file's sections

    mutating func read(_ root: Node, into settings: inout ServeSettings) {
        guard
            let top = mapping(
                root, "the configuration", keys: ["listeners", "models", "routes", "auth", "principals", "logging", "metrics", "limits", "http2"])
        else { return }
        if let node = top["listeners"] { readListeners(node, into: &settings) }
        var versions: [String: [String]] = [:]
        var routeNodes: [String: Node] = [:]
        if let node = top["models"] { readModels(node, into: &settings, versions: &versions, routeNodes: &routeNodes) }
        if let node = top["routes"], let routes = mapping(node, "routes", keys: nil) {
            for (name, nameNode, route) in routes.entries {
                if routeNodes[name] != nil {
                    error(nameNode, "model '\(name)' has a route under models and another under routes", hint: "keep one of them")
                } else if versions[name] == nil {
                    let known = versions.keys.sorted()
                    let hint = nearest(name, in: known).map { "did you mean '\($0)'?" }
                        ?? (settings.models == nil ? "routes need the models they route under 'models'" : "configured models: \(known.joined(separator: ", "))")
                    error(nameNode, "a route for unknown model '\(name)'", hint: hint)
                } else {
                    routeNodes[name] = route
                }
            }
        }
        for name in routeNodes.keys.sorted() {
            if let route = readRoute(routeNodes[name]!, model: name, versions: versions[name] ?? []) { settings.routes.append(route) }
        }
        if top["auth"] != nil || top["principals"] != nil { readAuth(top["auth"], principals: top["principals"], into: &settings) }
        if !modelRateLimits.isEmpty {
            var policy = settings.auth ?? AuthPolicy()
            policy.modelRateLimits = modelRateLimits
            settings.auth = policy
        }
        if let node = top["logging"] { readLogging(node, into: &settings) }
        if let node = top["metrics"], let metrics = mapping(node, "metrics", keys: ["latency_buckets"]) {
            if let buckets = metrics["latency_buckets"] {
                let values = sequence(buckets, "latency_buckets").compactMap { number($0, "a bucket bound in seconds", minimum: 0, exclusive: true) }
                if !values.isEmpty { settings.latencyBuckets = values }
            }
        }
        if let node = top["limits"] { readLimits(node, into: &settings) }
        if let node = top["http2"] { readHTTP2(node, into: &settings) }
    }

    mutating func readListeners(_ node: Node, into settings: inout ServeSettings) {
        guard let listeners = mapping(node, "listeners", keys: ["plaintext", "tls", "admin"]) else { return }
        if let plaintext = listeners["plaintext"] {
            if isNone(plaintext) {
                settings.plaintextListener = nil
            } else if let fields = mapping(plaintext, "listeners.plaintext", keys: ["address"]), let address = fields["address"] {
                settings.plaintextListener = self.address(address, default: settings.plaintextListener)
            }
        }
        if let tls = listeners["tls"] {
            if isNone(tls) {
                settings.tlsListener = nil
            } else if let fields = mapping(tls, "listeners.tls", keys: ["address", "certificate", "private_key", "client_ca", "client_auth"]) {
                if let address = fields["address"] { settings.tlsListener = self.address(address, default: settings.tlsListener) }
                if let node = fields["certificate"] { settings.tlsCertificate = string(node, "a PEM certificate file") }
                if let node = fields["private_key"] { settings.tlsPrivateKey = string(node, "a PEM private key file") }
                if let node = fields["client_ca"] { settings.tlsClientCA = string(node, "a PEM CA bundle file") }
                if let node = fields["client_auth"], let mode = choice(node, "client_auth", ["none", "optional", "required"]) {
                    settings.clientAuth = mode == "none" ? .none : mode == "required" ? .required : .optional
                }
                if (settings.tlsCertificate == nil) != (settings.tlsPrivateKey == nil) {
                    error(tls, "listeners.tls has a certificate without a private_key or the other way round", hint: "give both, or neither for the dev certificates")
                }
            }
        }
        if let admin = listeners["admin"] {
            if isNone(admin) {
                settings.adminListener = nil
            } else if let fields = mapping(admin, "listeners.admin", keys: ["address", "token_file"]) {
                if let address = fields["address"] { settings.adminListener = self.address(address, default: settings.adminListener) }
                if let node = fields["token_file"] { settings.adminTokenFile = string(node, "a token file path") }
            }
        }
    }

    mutating func readModels(_ node: Node, into settings: inout ServeSettings, versions: inout [String: [String]], routeNodes: inout [String: Node]) {
        guard let models = mapping(node, "models", keys: nil) else { return }
        var deployments: [ModelDeployment] = []
        for (name, nameNode, model) in models.entries {
            guard !name.isEmpty, !name.contains(where: { $0 == "/" || $0.isWhitespace }) else {
                error(nameNode, "'\(name)' is not a model name", hint: "a model name has no spaces or '/'")
                continue
            }
            guard let fields = mapping(model, "model '\(name)'", keys: ["versions", "route", "rate_limit"]) else { continue }
            if let node = fields["rate_limit"], let limit = rateLimit(node, "the rate limit of model '\(name)'") { modelRateLimits[name] = limit }
            var seen: [String] = []
            let versionNodes = fields["versions"].map { sequence($0, "versions") } ?? []
            for versionNode in versionNodes {
                guard let deployment = readVersion(versionNode, model: name) else { continue }
                if seen.contains(deployment.version) {
                    error(versionNode, "model '\(name)' configures version '\(deployment.version)' twice", hint: "each version appears once under versions")
                    continue
                }
                seen.append(deployment.version)
                deployments.append(deployment)
            }
            if fields["versions"] == nil {
                error(nameNode, "model '\(name)' has no versions", hint: "add versions: [{version: \"1\"}]")
            }
            versions[name] = seen
            if let route = fields["route"] { routeNodes[name] = route }
        }
        settings.models = deployments
    }

    mutating func readVersion(_ node: Node, model: String) -> ModelDeployment? {
        let keys = [
            "version", "workers", "max_inflight_per_worker", "max_queued_requests", "idempotent", "max_batch_size",
            "max_queue_delay_microseconds", "worker_arguments", "backend", "model_file",
        ]
        guard let fields = mapping(node, "a version of '\(model)'", keys: keys) else { return nil }
        guard let versionNode = fields["version"] else {
            error(node, "a version of '\(model)' has no 'version'", hint: "add version: \"1\"")
            return nil
        }
        guard let version = versionName(versionNode) else { return nil }
        var deployment = ModelDeployment(model: model, version: version)
        if let node = fields["workers"], let value = integer(node, "a number of workers", minimum: 1) { deployment.workers = value }
        if let node = fields["max_inflight_per_worker"], let value = integer(node, "a number of requests in flight per worker", minimum: 1) {
            deployment.maxInFlightPerWorker = value
        }
        if let node = fields["max_queued_requests"], let value = integer(node, "a number of queued requests", minimum: 0) {
            deployment.maxQueuedRequests = value
        }
        if let node = fields["idempotent"], let value = boolean(node, "idempotent") { deployment.idempotent = value }
        if let node = fields["worker_arguments"] {
            deployment.workerArguments = sequence(node, "worker_arguments").compactMap { string($0, "a worker argument") }
        }
        if let node = fields["backend"], let backend = readBackend(node, model: model, version: version) { deployment.backend = backend }
        // An ONNX model run by the worker's native runtime; relative to the configuration file.
        if let node = fields["model_file"], let path = string(node, "the path of an .onnx file") {
            if case .command = deployment.backend {
                error(node, "model_file is for the built-in worker's ONNX runtime; a command backend loads its own model", hint: "pass the file in its command")
            }
            let resolved = path.hasPrefix("/") ? path : URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent(path).standardized.path
            if !path.hasSuffix(".onnx") {
                error(node, "model_file '\(path)' is not an .onnx file", hint: "the native backend runs ONNX models: model_file: models/iris/1/model.onnx")
            } else if !FileManager.default.fileExists(atPath: resolved) {
                error(node, "model_file '\(path)' does not exist (looked for \(resolved))", hint: "a relative path is relative to the configuration file")
            } else {
                deployment.workerArguments += ["--onnx-model", resolved]
            }
        }
        // Dynamic batching, under Triton's names; the built-in worker's batcher takes them as
        // flags, a command worker as environment variables.
        if let node = fields["max_batch_size"], let value = integer(node, "a batch size", minimum: 1, maximum: Int(Int32.max)) {
            deployment.setWorkerSetting(flag: "--max-batch-size", variable: ExternalWorkerCommand.Variable.maxBatchSize, "\(value)")
        }
        if let node = fields["max_queue_delay_microseconds"], let value = integer(node, "a delay in microseconds", minimum: 0) {
            deployment.setWorkerSetting(
                flag: "--max-queue-delay-us", variable: ExternalWorkerCommand.Variable.maxQueueDelayMicroseconds, "\(value)")
        }
        return deployment
    }

    /// `backend`: `builtin`, or `{command: [PROGRAM, ARG…], environment: {NAME: VALUE}}`. The
    /// command runs in the configuration file's directory, so relative paths in it resolve there;
    /// its program must exist now (on PATH, or relative to that directory).
    mutating func readBackend(_ node: Node, model: String, version: String) -> WorkerBackend? {
        let example = "backend: {command: [python3, workers/python/worker.py, --model, model.onnx]}"
        if let scalar = node.scalar {
            guard scalar.string == "builtin" else {
                error(
                    node, "expected builtin or a mapping with a command for the backend of '\(model)' version \(version), got \(describe(node))",
                    hint: example)
                return nil
            }
            return .builtin
        }
        guard let fields = mapping(node, "the backend of '\(model)' version \(version)", keys: ["command", "environment"]) else { return nil }
        guard let commandNode = fields["command"] else {
            error(node, "the backend of '\(model)' version \(version) has no 'command'", hint: example)
            return nil
        }
        var valid = true
        var arguments: [String] = []
        if commandNode.sequence == nil {
            error(
                commandNode, "expected a list for the command of '\(model)' version \(version), got \(describe(commandNode))",
                hint: "one item per argument, the program first: [python3, worker.py]")
            valid = false
        } else {
            for item in sequence(commandNode, "the command") {
                guard item.scalar != nil, let argument = string(item, "an argument") else {
                    valid = false
                    continue
                }
                arguments.append(argument)
            }
            if valid && arguments.isEmpty {
                error(commandNode, "the command of '\(model)' version \(version) is empty", hint: "name the program first: [python3, worker.py]")
                valid = false
            }
        }
        var environment: [String: String] = [:]
        if let environmentNode = fields["environment"], let variables = mapping(environmentNode, "the environment of the backend", keys: nil) {
            let reserved: Set = [
                ExternalWorkerCommand.Variable.socket, ExternalWorkerCommand.Variable.workerID, ExternalWorkerCommand.Variable.model,
                ExternalWorkerCommand.Variable.modelVersion, ExternalWorkerCommand.Variable.parentPID, ExternalWorkerCommand.Variable.protocolVersion,
            ]
            for (name, nameNode, valueNode) in variables.entries {
                if name.isEmpty || name.contains("=") || name.contains("\0") {
                    error(nameNode, "'\(name)' is not an environment variable name", hint: "a name has no '=' in it, such as OMP_NUM_THREADS")
                    valid = false
                } else if reserved.contains(name) {
                    error(
                        nameNode, "\(name) is set by the gateway for each worker",
                        hint: "docs/worker-protocol.md lists the variables it sets; leave this one out")
                    valid = false
                } else if valueNode.scalar == nil {
                    error(valueNode, "expected a text value for \(name), got \(describe(valueNode))", hint: "quote it: \(name): \"1\"")
                    valid = false
                } else if let value = string(valueNode, "a value") {
                    environment[name] = value
                }
            }
        }
        guard valid else { return nil }
        let command = ExternalWorkerCommand(arguments: arguments, environment: environment, workingDirectory: directory)
        if case .failure(let problem) = command.resolveExecutable(searchPath: command.searchPath) {
            let place = arguments[0].contains("/") ? "relative paths resolve against \(directory)" : "give its path, or set PATH in environment"
            error(
                sequence(commandNode, "the command")[0],
                "the worker program of '\(model)' version \(version) cannot be started: \(problem.description)", hint: place)
            return nil
        }
        return .command(command)
    }

    /// The configuration file's directory, absolute: where a command backend runs.
    var directory: String {
        let parent = (file as NSString).deletingLastPathComponent
        let absolute = parent.hasPrefix("/") ? parent : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(parent)
        return (absolute as NSString).standardizingPath
    }

    mutating func readRoute(_ node: Node, model: String, versions: [String]) -> ModelRoute? {
        guard let fields = mapping(node, "the route of '\(model)'", keys: ["variants", "sticky_key", "allow_override", "shadow"]) else { return nil }
        var route = ModelRoute(model: model, variants: [])
        var valid = true
        // The sum is checked only when every weight could be read and none is negative.
        var weightsKnown = true
        let configured = "'\(model)' configures \(versions.isEmpty ? "no version" : "versions " + versions.map { "'\($0)'" }.joined(separator: ", "))"
        guard let variantsNode = fields["variants"] else {
            error(node, "the route of '\(model)' has no variants", hint: "add variants: [{version: \"1\", weight: 100}]")
            return nil
        }
        for variantNode in sequence(variantsNode, "variants") {
            guard let variant = mapping(variantNode, "a variant of '\(model)'", keys: ["version", "weight"]) else {
                valid = false
                weightsKnown = false
                continue
            }
            guard let versionNode = variant["version"], let version = versionName(versionNode) else {
                if variant["version"] == nil { error(variantNode, "a variant of '\(model)' has no 'version'", hint: configured) }
                valid = false
                weightsKnown = false
                continue
            }
            if !versions.contains(version) {
                error(versionNode, "the route of '\(model)' names version '\(version)', which the model does not configure", hint: configured)
                valid = false
            } else if route.variants.contains(where: { $0.version == version }) {
                error(versionNode, "the route of '\(model)' names version '\(version)' twice", hint: "give each version one variant")
                valid = false
            }
            guard let weightNode = variant["weight"] else {
                error(variantNode, "the variant '\(version)' of '\(model)' has no 'weight'", hint: "add weight: a share of 100")
                valid = false
                weightsKnown = false
                continue
            }
            guard let weight = integer(weightNode, "a weight", minimum: nil) else {
                valid = false
                weightsKnown = false
                continue
            }
            if weight < 0 {
                error(weightNode, "the weight of variant '\(version)' of '\(model)' is negative (\(weight))", hint: "weights are 0 to 100; 0 takes no traffic")
                valid = false
                weightsKnown = false
            }
            route.variants.append(ModelRoute.Variant(version: version, weight: weight))
        }
        let total = route.variants.reduce(0) { $0 + $1.weight }
        if weightsKnown, total != 100 {
            let weights = route.variants.map { "\($0.weight)" }.joined(separator: " + ")
            error(variantsNode, "the weights of the route of '\(model)' add up to \(total), not 100", hint: "\(weights) = \(total); make them add up to 100")
            valid = false
        }
        if let node = fields["sticky_key"], let key = string(node, "a metadata name") {
            if key.isEmpty || !key.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || "-_.".contains($0)) }) {
                error(node, "sticky_key '\(key)' is not a gRPC metadata name", hint: "use lowercase letters, digits, '-', '_' or '.', such as x-user-id")
                valid = false
            } else {
                route.stickyKey = key
            }
        }
        if let node = fields["allow_override"], let value = boolean(node, "allow_override") { route.allowOverride = value }
        if let node = fields["shadow"],
            let shadow = mapping(node, "the shadow of '\(model)'", keys: ["version", "fraction", "absolute_tolerance", "relative_tolerance"])
        {
            let version = shadow["version"].flatMap { versionName($0) }
            let fraction = shadow["fraction"].flatMap { number($0, "a fraction from 0 to 1", minimum: 0, maximum: 1) }
            if shadow["version"] == nil { error(node, "the shadow of '\(model)' has no 'version'", hint: configured) }
            if shadow["fraction"] == nil { error(node, "the shadow of '\(model)' has no 'fraction'", hint: "add fraction: 0.1 to copy 10 % of calls") }
            if let version, !versions.contains(version), let versionNode = shadow["version"] {
                error(versionNode, "the shadow of '\(model)' names version '\(version)', which the model does not configure", hint: configured)
                valid = false
            }
            let absolute = shadow["absolute_tolerance"].map { number($0, "a tolerance of 0 or more", minimum: 0) }
            let relative = shadow["relative_tolerance"].map { number($0, "a tolerance of 0 or more", minimum: 0) }
            if let version, let fraction, absolute != .some(nil), relative != .some(nil) {
                route.shadow = ModelRoute.Shadow(
                    version: version, fraction: fraction, absoluteTolerance: absolute.flatMap { $0 } ?? ModelRoute.Shadow.defaultAbsoluteTolerance,
                    relativeTolerance: relative.flatMap { $0 } ?? ModelRoute.Shadow.defaultRelativeTolerance)
            } else {
                valid = false
            }
        }
        return valid ? route : nil
    }

    mutating func readLogging(_ node: Node, into settings: inout ServeSettings) {
        guard let logging = mapping(node, "logging", keys: ["level", "format", "access_log", "access_log_sample_rate"]) else { return }
        if let node = logging["level"], let level = string(node, "a log level") {
            do {
                _ = try LogLevels(parsing: level)
                settings.logLevel = level
            } catch {
                self.error(node, "logging.level: \(error)", hint: "such as info, or info,transport=debug,access=off")
            }
        }
        if let node = logging["format"], let format = choice(node, "logging.format", ["text", "json"]) { settings.logFormat = format }
        if let node = logging["access_log"], let destination = string(node, "stdout, stderr, a file path or off") { settings.accessLog = destination }
        if let node = logging["access_log_sample_rate"], let rate = number(node, "a fraction from 0 to 1", minimum: 0, maximum: 1) {
            settings.accessLogSampleRate = rate
        }
    }

    mutating func readLimits(_ node: Node, into settings: inout ServeSettings) {
        let keys = ["max_receive_message_size", "max_stream_requests_in_flight", "max_stream_buffered_bytes", "handshake_timeout", "drain_timeout", "shutdown_delay"]
        guard let limits = mapping(node, "limits", keys: keys) else { return }
        if let node = limits["max_receive_message_size"], let value = integer(node, "a size in bytes", minimum: 1) { settings.maxReceiveMessageSize = value }
        if let node = limits["max_stream_requests_in_flight"], let value = integer(node, "a number of requests", minimum: 1) {
            settings.maxStreamRequestsInFlight = value
        }
        if let node = limits["max_stream_buffered_bytes"], let value = integer(node, "a size in bytes", minimum: 65_536) { settings.maxStreamBufferedBytes = value }
        if let node = limits["handshake_timeout"], let value = duration(node, offAllowed: false) { settings.handshakeTimeout = value! }
        if let node = limits["drain_timeout"], let value = duration(node, offAllowed: false) { settings.http2.drainTimeout = value! }
        if let node = limits["shutdown_delay"], let value = duration(node, offAllowed: false, zeroAllowed: true) { settings.shutdownDelay = value! }
    }

    mutating func readHTTP2(_ node: Node, into settings: inout ServeSettings) {
        let keys = [
            "max_concurrent_streams", "initial_window_size", "connection_window_size", "max_frame_size", "max_header_list_size",
            "keepalive_interval", "keepalive_timeout", "min_client_ping_interval", "idle_timeout", "max_connection_age",
        ]
        guard let http2 = mapping(node, "http2", keys: keys) else { return }
        if let node = http2["max_concurrent_streams"], let value = integer(node, "a number of streams", minimum: 1) { settings.http2.maxConcurrentStreams = value }
        if let node = http2["initial_window_size"], let value = integer(node, "a window size in bytes", minimum: 65_535, maximum: Int(Int32.max)) {
            settings.http2.initialWindowSize = value
        }
        if let node = http2["connection_window_size"], let value = integer(node, "a window size in bytes", minimum: 65_535, maximum: Int(Int32.max)) {
            settings.http2.connectionWindowSize = value
        }
        if let node = http2["max_frame_size"], let value = integer(node, "a frame size in bytes", minimum: 16_384, maximum: 16_777_215) {
            settings.http2.maxFrameSize = value
        }
        if let node = http2["max_header_list_size"], let value = integer(node, "a size in bytes", minimum: 1024) { settings.http2.maxHeaderListSize = value }
        if let node = http2["keepalive_interval"], let value = duration(node, offAllowed: true) { settings.http2.keepaliveInterval = value }
        if let node = http2["keepalive_timeout"], let value = duration(node, offAllowed: false) { settings.http2.keepaliveTimeout = value! }
        if let node = http2["min_client_ping_interval"], let value = duration(node, offAllowed: false) { settings.http2.minimumPingInterval = value! }
        if let node = http2["idle_timeout"], let value = duration(node, offAllowed: true) { settings.http2.idleTimeout = value }
        if let node = http2["max_connection_age"], let value = duration(node, offAllowed: true) { settings.http2.maxConnectionAge = value }
    }

    // MARK: Values, each checked where it stands

    mutating func error(_ node: Node, _ message: String, hint: String? = nil) {
        let mark = node.mark
        diagnostics.append(ConfigDiagnostic(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1, message: message, hint: hint))
    }

    func diagnostic(for error: YamlError) -> ConfigDiagnostic {
        switch error {
        case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _), .composer(let context, let problem, let mark, _):
            let message = [context.map { "\($0.text)" }, problem].compactMap { $0 }.joined(separator: ": ")
            return ConfigDiagnostic(file: file, line: mark.line, column: mark.column, message: "not valid YAML: \(message)")
        case .duplicatedKeysInMapping(let duplicates, let context):
            let keys = duplicates.sorted().map { "'\($0)'" }.joined(separator: ", ")
            return ConfigDiagnostic(
                file: file, line: context.mark.line, column: context.mark.column, message: "\(keys) given twice in one mapping", hint: "keep one")
        default:
            return ConfigDiagnostic(file: file, line: 1, column: 1, message: "not valid YAML: \(error)")
        }
    }

    /// A plain `null`, `~`, empty value or `none`: a listener turned off.
    func isNone(_ node: Node) -> Bool {
        guard let scalar = node.scalar, scalar.style == .plain else { return false }
        return ["", "~", "null", "none"].contains(scalar.string.lowercased())
    }

    /// A mapping's entries by key, reporting unknown keys (with the nearest of `keys`; nil
    /// allows any key) and keys given twice.
    mutating func mapping(_ node: Node, _ what: String, keys: [String]?) -> Fields? {
        guard let mapping = node.mapping else {
            error(node, "expected a mapping for \(what), got \(describe(node))", hint: keys.map { "keys: \($0.joined(separator: ", "))" })
            return nil
        }
        var fields = Fields()
        for (keyNode, value) in mapping {
            guard let key = keyNode.scalar?.string else {
                error(keyNode, "expected a key in \(what), got \(describe(keyNode))")
                continue
            }
            if let keys, !keys.contains(key) {
                let hint = nearest(key, in: keys).map { "did you mean '\($0)'?" } ?? "valid keys: \(keys.joined(separator: ", "))"
                error(keyNode, "unknown key '\(key)' in \(what)", hint: hint)
                continue
            }
            if fields[key] != nil {
                error(keyNode, "'\(key)' is given twice in \(what)", hint: "keep one")
                continue
            }
            fields.entries.append((key, keyNode, value))
        }
        return fields
    }

    mutating func sequence(_ node: Node, _ what: String) -> [Node] {
        guard let sequence = node.sequence else {
            error(node, "expected a list for \(what), got \(describe(node))", hint: "write it as [a, b] or one '- item' a line")
            return []
        }
        return Array(sequence)
    }

    mutating func string(_ node: Node, _ what: String) -> String? {
        guard let scalar = node.scalar else {
            error(node, "expected \(what), got \(describe(node))")
            return nil
        }
        return scalar.string
    }

    /// A version name: a number or a word without '/' or spaces.
    mutating func versionName(_ node: Node) -> String? {
        guard let version = string(node, "a version") else { return nil }
        guard !version.isEmpty, !version.contains(where: { $0 == "/" || $0.isWhitespace }) else {
            error(node, "'\(version)' is not a version", hint: "a version is a word without spaces or '/', such as \"1\"")
            return nil
        }
        return version
    }

    mutating func integer(_ node: Node, _ what: String, minimum: Int?, maximum: Int? = nil) -> Int? {
        guard let text = node.scalar?.string, let value = Int(text) else {
            error(node, "expected \(what), got \(describe(node))", hint: "write a whole number such as \(minimum.map { max($0, 1) } ?? 1)")
            return nil
        }
        if let minimum, value < minimum {
            error(node, "expected \(what) of at least \(minimum), got \(value)")
            return nil
        }
        if let maximum, value > maximum {
            error(node, "expected \(what) of at most \(maximum), got \(value)")
            return nil
        }
        return value
    }

    mutating func number(_ node: Node, _ what: String, minimum: Double, maximum: Double? = nil, exclusive: Bool = false) -> Double? {
        guard let text = node.scalar?.string, let value = Double(text), value.isFinite else {
            error(node, "expected \(what), got \(describe(node))")
            return nil
        }
        let tooSmall = exclusive ? value <= minimum : value < minimum
        if tooSmall || value > (maximum ?? .infinity) {
            error(node, "expected \(what), got \(text)")
            return nil
        }
        return value
    }

    mutating func boolean(_ node: Node, _ what: String) -> Bool? {
        switch node.scalar?.string {
        case "true": return true
        case "false": return false
        default:
            error(node, "expected true or false for \(what), got \(describe(node))")
            return nil
        }
    }

    mutating func choice(_ node: Node, _ what: String, _ choices: [String]) -> String? {
        guard let text = node.scalar?.string, choices.contains(text) else {
            let hint = node.scalar.flatMap { nearest($0.string, in: choices) }.map { "did you mean '\($0)'?" }
            error(node, "expected \(choices.joined(separator: ", ")) for \(what), got \(describe(node))", hint: hint)
            return nil
        }
        return text
    }

    /// A duration; `.some(nil)` for `off` where allowed, nil after reporting a mistake.
    mutating func duration(_ node: Node, offAllowed: Bool, zeroAllowed: Bool = false) -> TimeAmount?? {
        let example = offAllowed ? "such as 500ms, 20s, 5m, 2h or off" : "such as 500ms, 20s, 5m or 2h"
        guard let text = node.scalar?.string, let parsed = DurationText.parse(text) else {
            error(node, "expected a duration, got \(describe(node))", hint: "write a number and a unit, \(example)")
            return nil
        }
        guard let amount = parsed else {
            if offAllowed { return .some(nil) }
            error(node, "expected a duration, got 'off'", hint: "this one cannot be turned off; \(example)")
            return nil
        }
        if amount <= .zero && !zeroAllowed {
            error(node, "expected a positive duration, got '\(text)'", hint: offAllowed ? "say 'off' to turn it off" : example)
            return nil
        }
        return .some(amount)
    }

    /// host:port, reporting anything else.
    mutating func address(_ node: Node, default current: GatewayConfiguration.Address?) -> GatewayConfiguration.Address? {
        if isNone(node) { return nil }
        guard let text = node.scalar?.string, let address = GatewayConfiguration.Address(parsing: text) else {
            error(node, "expected host:port, got \(describe(node))", hint: "such as 127.0.0.1:8001 or [::1]:8001, or none to turn the listener off")
            return current
        }
        return address
    }

    func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let scalar): return "'\(scalar.string)'"
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case .alias: return "an alias"
        }
    }
}

extension ModelDeployment {
    /// A worker setting: a flag of `switchyard worker`, or an environment variable of a command
    /// backend (replacing one of the same name in its `environment`).
    mutating func setWorkerSetting(flag: String, variable: String, _ value: String) {
        switch backend {
        case .builtin: workerArguments += [flag, value]
        case .command(var command):
            command.environment[variable] = value
            backend = .command(command)
        }
    }
}

/// A mapping's entries in file order, with their key nodes for messages.
struct Fields {
    var entries: [(key: String, keyNode: Node, value: Node)] = []

    subscript(key: String) -> Node? { entries.first { $0.key == key }?.value }
}
