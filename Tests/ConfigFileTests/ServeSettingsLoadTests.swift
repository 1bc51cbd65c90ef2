import ConfigFile
import Gateway
import XCTest

final class ServeSettingsLoadTests: XCTestCase {
    private let canary = """
        listeners:
          plaintext: {address: "127.0.0.1:9001"}
          tls: none
          admin:
            address: 127.0.0.1:9002
            token_file: admin.token
        models:
          simple:
            versions:
              - {version: "1", workers: 3, max_inflight_per_worker: 8, max_queued_requests: 16}
              - version: 2
                idempotent: false
                worker_arguments: [--max-batch-size, "8"]
            route:
              variants:
                - {version: "1", weight: 90}
                - {version: "2", weight: 10}
              sticky_key: x-user-id
              allow_override: true
              shadow: {version: "2", fraction: 0.25}
          simple_string:
            versions: [{version: "1"}]
        logging: {level: "info,access=off", format: json, access_log: stderr, access_log_sample_rate: 0.5}
        metrics: {latency_buckets: [0.001, 0.1, 1]}
        limits: {max_receive_message_size: 1048576, drain_timeout: 5s, shutdown_delay: 0s, handshake_timeout: 500ms}
        http2: {max_concurrent_streams: 50, idle_timeout: off, keepalive_interval: 1m}
        """

    func testAValidFileGivesExactlyItsDeploymentsAndRoutes() throws {
        let settings = try ServeSettings.parse(yaml: canary, file: "canary.yaml")
        var one = ModelDeployment(model: "simple", version: "1", workers: 3)
        one.maxInFlightPerWorker = 8
        one.maxQueuedRequests = 16
        var two = ModelDeployment(model: "simple", version: "2", workers: 2)
        two.idempotent = false
        two.workerArguments = ["--max-batch-size", "8"]
        XCTAssertEqual(settings.models, [one, two, ModelDeployment(model: "simple_string", version: "1")])
        XCTAssertEqual(
            settings.routes,
            [
                ModelRoute(
                    model: "simple", variants: [.init(version: "1", weight: 90), .init(version: "2", weight: 10)], stickyKey: "x-user-id",
                    allowOverride: true, shadow: .init(version: "2", fraction: 0.25))
            ])
        XCTAssertEqual(settings.plaintextListener, .init(host: "127.0.0.1", port: 9001))
        XCTAssertNil(settings.tlsListener)
        XCTAssertEqual(settings.adminListener, .init(host: "127.0.0.1", port: 9002))
        XCTAssertEqual(settings.adminTokenFile, "admin.token")
        XCTAssertEqual(settings.logLevel, "info,access=off")
        XCTAssertEqual(settings.logFormat, "json")
        XCTAssertEqual(settings.accessLog, "stderr")
        XCTAssertEqual(settings.accessLogSampleRate, 0.5)
        XCTAssertEqual(settings.latencyBuckets, [0.001, 0.1, 1])
        XCTAssertEqual(settings.maxReceiveMessageSize, 1_048_576)
        XCTAssertEqual(settings.http2.drainTimeout, .seconds(5))
        XCTAssertEqual(settings.shutdownDelay, .zero)
        XCTAssertEqual(settings.handshakeTimeout, .milliseconds(500))
        XCTAssertEqual(settings.http2.maxConcurrentStreams, 50)
        XCTAssertNil(settings.http2.idleTimeout)
        XCTAssertEqual(settings.http2.keepaliveInterval, .minutes(1))
    }

    func testAShadowTakesItsComparisonTolerancesOrTheDefaults() throws {
        let yaml = """
            models:
              simple:
                versions: [{version: "1"}, {version: "2"}]
                route:
                  variants: [{version: "1", weight: 100}]
                  shadow: {version: "2", fraction: 1, absolute_tolerance: 0.5, relative_tolerance: 1e-3}
              simple_string:
                versions: [{version: "1"}, {version: "2"}]
                route:
                  variants: [{version: "1", weight: 100}]
                  shadow: {version: "2", fraction: 0.1}
            """
        let settings = try ServeSettings.parse(yaml: yaml, file: "shadow.yaml")
        let shadows = Dictionary(uniqueKeysWithValues: settings.routes.map { ($0.model, $0.shadow) })
        XCTAssertEqual(shadows["simple"], .init(version: "2", fraction: 1, absoluteTolerance: 0.5, relativeTolerance: 0.001))
        XCTAssertEqual(shadows["simple_string"], .init(version: "2", fraction: 0.1, absoluteTolerance: 1e-6, relativeTolerance: 1e-5))
    }

    func testAnEmptyFileKeepsEveryDefault() throws {
        let settings = try ServeSettings.parse(yaml: "# nothing\n", file: "empty.yaml")
        XCTAssertNil(settings.models)
        XCTAssertEqual(settings.routes, [])
        XCTAssertEqual(settings.plaintextListener, GatewayConfiguration().plaintextListener)
        XCTAssertEqual(settings.tlsListener, GatewayConfiguration().tlsListener)
        XCTAssertEqual(settings.http2.maxConcurrentStreams, 100)
    }

    func testTheSampleAtTheRepositoryRootSplitsSimple90To10WithAStickyKey() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let settings = try ServeSettings.load(path: root.appendingPathComponent("switchyard.yaml").path)
        XCTAssertEqual(
            settings.models?.map { "\($0.model):\($0.version)" },
            ["simple:1", "simple:2", "simple_string:1", "simple_identity:1", "repeat_int32:1"])
        XCTAssertEqual(
            settings.routes,
            [ModelRoute(model: "simple", variants: [.init(version: "1", weight: 90), .init(version: "2", weight: 10)], stickyKey: "x-user-id")])
    }

    /// Each kind of mistake, alone in a file, and the exact lines it earns.
    func testEachKindOfMistakeIsReportedWithItsLineColumnAndHint() {
        let cases: [(name: String, yaml: String, errors: [String])] = [
            (
                "unknown key, with the nearest valid one",
                """
                models:
                  simple:
                    versions: [{version: "1"}]
                    route:
                      variants: [{version: "1", weight: 100}]
                      stiky_key: x-user-id
                """,
                ["bad.yaml:6:7: error: unknown key 'stiky_key' in the route of 'simple'; did you mean 'sticky_key'?"]
            ),
            (
                "unknown top-level key",
                "listners:\n  plaintext: none\n",
                ["bad.yaml:1:1: error: unknown key 'listners' in the configuration; did you mean 'listeners'?"]
            ),
            (
                "wrong type",
                """
                models:
                  simple:
                    versions:
                      - version: "1"
                        workers: two
                """,
                ["bad.yaml:5:18: error: expected a number of workers, got 'two'; write a whole number such as 1"]
            ),
            (
                "weights that do not add up to 100",
                """
                models:
                  simple:
                    versions: [{version: "1"}, {version: "2"}]
                    route:
                      variants:
                        - {version: "1", weight: 90}
                        - {version: "2", weight: 20}
                """,
                ["bad.yaml:6:9: error: the weights of the route of 'simple' add up to 110, not 100; 90 + 20 = 110; make them add up to 100"]
            ),
            (
                "a negative weight",
                """
                models:
                  simple:
                    versions: [{version: "1"}, {version: "2"}]
                    route:
                      variants:
                        - {version: "1", weight: 110}
                        - {version: "2", weight: -10}
                """,
                ["bad.yaml:7:34: error: the weight of variant '2' of 'simple' is negative (-10); weights are 0 to 100; 0 takes no traffic"]
            ),
            (
                "a variant and a shadow naming versions the model does not configure",
                """
                models:
                  simple:
                    versions: [{version: "1"}, {version: "2"}]
                    route:
                      variants: [{version: "1", weight: 90}, {version: "3", weight: 10}]
                      shadow: {version: "4", fraction: 0.1}
                """,
                [
                    "bad.yaml:5:56: error: the route of 'simple' names version '3', which the model does not configure; 'simple' configures versions '1', '2'",
                    "bad.yaml:6:25: error: the shadow of 'simple' names version '4', which the model does not configure; 'simple' configures versions '1', '2'",
                ]
            ),
            (
                "shadow tolerances that are negative or not numbers",
                """
                models:
                  simple:
                    versions: [{version: "1"}, {version: "2"}]
                    route:
                      variants: [{version: "1", weight: 100}]
                      shadow: {version: "2", fraction: 0.1, absolute_tolerance: -1, relative_tolerance: tight}
                """,
                [
                    "bad.yaml:6:65: error: expected a tolerance of 0 or more, got -1",
                    "bad.yaml:6:89: error: expected a tolerance of 0 or more, got 'tight'",
                ]
            ),
            (
                "a version configured twice",
                """
                models:
                  simple:
                    versions:
                      - version: "1"
                      - version: "1"
                        workers: 4
                """,
                ["bad.yaml:5:9: error: model 'simple' configures version '1' twice; each version appears once under versions"]
            ),
            (
                "a route for an unknown model",
                """
                models:
                  simple:
                    versions: [{version: "1"}]
                routes:
                  simpel:
                    variants: [{version: "1", weight: 100}]
                """,
                ["bad.yaml:5:3: error: a route for unknown model 'simpel'; did you mean 'simple'?"]
            ),
            (
                "bad durations and addresses",
                """
                listeners:
                  plaintext: {address: "localhost"}
                  admin: {address: "127.0.0.1:99999"}
                limits:
                  drain_timeout: 30
                http2:
                  idle_timeout: 0s
                """,
                [
                    "bad.yaml:2:24: error: expected host:port, got 'localhost'; such as 127.0.0.1:8001 or [::1]:8001, or none to turn the listener off",
                    "bad.yaml:3:20: error: expected host:port, got '127.0.0.1:99999'; such as 127.0.0.1:8001 or [::1]:8001, or none to turn the listener off",
                    "bad.yaml:5:18: error: expected a duration, got '30'; write a number and a unit, such as 500ms, 20s, 5m or 2h",
                    "bad.yaml:7:17: error: expected a positive duration, got '0s'; say 'off' to turn it off",
                ]
            ),
            (
                "a key given twice (YAML itself refuses the whole file)",
                "models:\n  simple:\n    versions: [{version: \"1\", workers: 1, workers: 2}]\n",
                ["bad.yaml:3:31: error: 'workers' given twice in one mapping; keep one"]
            ),
            (
                "a sticky key that is not a metadata name",
                """
                models:
                  simple:
                    versions: [{version: "1"}]
                    route: {variants: [{version: "1", weight: 100}], sticky_key: X-User-Id}
                """,
                [
                    "bad.yaml:4:66: error: sticky_key 'X-User-Id' is not a gRPC metadata name; use lowercase letters, digits, '-', '_' or '.', such as x-user-id"
                ]
            ),
            (
                "not YAML at all",
                "models: [simple\n",
                ["bad.yaml:2:1: error: not valid YAML: while parsing a flow sequence: did not find expected ',' or ']'"]
            ),
        ]
        for (name, yaml, expected) in cases {
            do {
                _ = try ServeSettings.parse(yaml: yaml, file: "bad.yaml")
                XCTFail("\(name): accepted")
            } catch {
                XCTAssertEqual(error.diagnostics.map(\.description), expected, name)
            }
        }
    }

    func testEveryMistakeOfAFileIsReportedNotOnlyTheFirst() {
        let yaml = """
            models:
              simple:
                versions:
                  - {version: "1", workers: 0}
                  - {version: "2", workres: 2}
                route:
                  variants: [{version: "1", weight: 50}, {version: "9", weight: 50}]
            logging: {format: jsn}
            """
        XCTAssertThrowsError(try ServeSettings.parse(yaml: yaml, file: "f.yaml")) { error in
            XCTAssertEqual(
                (error as? ConfigFileError)?.diagnostics.map(\.description),
                [
                    "f.yaml:4:33: error: expected a number of workers of at least 1, got 0",
                    "f.yaml:5:24: error: unknown key 'workres' in a version of 'simple'; did you mean 'workers'?",
                    "f.yaml:7:56: error: the route of 'simple' names version '9', which the model does not configure; 'simple' configures versions '1', '2'",
                    "f.yaml:8:19: error: expected text, json for logging.format, got 'jsn'; did you mean 'json'?",
                ])
        }
    }

    /// A reload applies models and routes while serving; every other setting that changed is
    /// named so that the operator knows a restart is due, and nothing else is.
    func testAReloadNamesExactlyTheChangedSettingsThatWaitForARestart() throws {
        let before = try ServeSettings.parse(yaml: canary, file: "canary.yaml")
        XCTAssertEqual(before.keysNeedingRestart(comparedWith: before), [])
        let modelsAndRoutesOnly = canary.replacingOccurrences(of: "workers: 3", with: "workers: 4")
            .replacingOccurrences(of: "weight: 90", with: "weight: 80").replacingOccurrences(of: "weight: 10", with: "weight: 20")
        XCTAssertEqual(try ServeSettings.parse(yaml: modelsAndRoutesOnly, file: "b.yaml").keysNeedingRestart(comparedWith: before), [])
        let restartOnly = canary.replacingOccurrences(of: "127.0.0.1:9001", with: "127.0.0.1:9011")
            .replacingOccurrences(of: "format: json", with: "format: text").replacingOccurrences(of: "max_concurrent_streams: 50", with: "max_concurrent_streams: 60")
            .replacingOccurrences(of: "handshake_timeout: 500ms", with: "handshake_timeout: 2s")
        XCTAssertEqual(
            try ServeSettings.parse(yaml: restartOnly, file: "c.yaml").keysNeedingRestart(comparedWith: before),
            ["http2", "limits.handshake_timeout", "listeners.plaintext.address", "logging.format"])
    }

    func testTheJWTSectionIsReadWithItsDefaults() throws {
        let yaml = """
            auth:
              jwt:
                jwks_url: https://login.example.com/.well-known/jwks.json
                issuer: https://login.example.com/
                audiences: switchyard
                algorithms: [RS256, EdDSA]
                clock_leeway: 2m
                rules:
                  - {principal: scorer, scope: "models.*"}
                  - {principal: team, claim: realm_access.roles, value: ml}
                  - {principal: everyone}
            principals: {scorer: {}, team: {}, everyone: {methods: [metadata]}}
            """
        let jwt = try XCTUnwrap(try ServeSettings.parse(yaml: yaml, file: "jwt.yaml").auth?.jwt)
        var expected = AuthPolicy.JWT(keys: .url("https://login.example.com/.well-known/jwks.json"), issuer: "https://login.example.com/")
        expected.audiences = ["switchyard"]
        expected.algorithms = ["RS256", "EdDSA"]
        expected.clockLeewaySeconds = 120
        expected.refreshInterval = .minutes(5)
        expected.rules = [
            .init(principal: "scorer", match: .scope("models.*")),
            .init(principal: "team", match: .claim(name: "realm_access.roles", pattern: "ml")),
            .init(principal: "everyone", match: .anyToken),
        ]
        XCTAssertEqual(jwt, expected)
        let file = try XCTUnwrap(
            try ServeSettings.parse(
                yaml: "auth: {jwt: {jwks_file: k.json, issuer: i, rules: [{principal: p}]}}\nprincipals: {p: {}}\n", file: "f.yaml"
            ).auth?.jwt)
        XCTAssertEqual(file.keys, .file("k.json"))
        XCTAssertEqual(file.refreshInterval, .seconds(10))
        XCTAssertEqual(file.clockLeewaySeconds, 60)
        XCTAssertEqual(file.algorithms, AuthPolicy.JWT.supportedAlgorithms)
        XCTAssertThrowsError(
            try ServeSettings.parse(yaml: "auth: {jwt: {jwks_file: k, jwks_url: https://x, issuer: i, rules: [{principal: p, scope: s, claim: c}]}}\nprincipals: {p: {}}\n", file: "b.yaml")
        ) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("both jwks_file and jwks_url"), text)
            XCTAssertTrue(text.contains("a token rule matches scope: PATTERN, or claim: NAME with value: PATTERN"), text)
        }
    }

    func testAuthAndPrincipalsAreReadWithEveryMistakeReportedAtItsPlace() throws {
        let digest = String(repeating: "ab", count: 32)
        let good = """
            auth:
              api_keys:
                - {principal: alice, sha256: "\(digest)"}
              client_certificates:
                - {principal: billing, uri: "spiffe://example.org/billing/*"}
              anonymous: {plaintext: false, tls: true}
            principals:
              alice: {models: ["simple:1"], methods: [inference, metadata], allow_override: true}
              billing: {}
            """
        let settings = try ServeSettings.parse(yaml: good, file: "auth.yaml")
        var expected = AuthPolicy()
        expected.apiKeys = [.init(principal: "alice", sha256: Array(repeating: 0xab, count: 32))]
        expected.certificates = [.init(principal: "billing", field: .uri, pattern: "spiffe://example.org/billing/*")]
        expected.anonymousOnPlaintext = false
        expected.anonymousOnTLS = true
        expected.principals = ["alice": .init(models: ["simple:1"], methods: [.inference, .metadata], allowOverride: true), "billing": .init()]
        XCTAssertEqual(settings.auth, expected)
        XCTAssertNil(try ServeSettings.parse(yaml: "models: {simple: {versions: [{version: \"1\"}]}}\n", file: "none.yaml").auth)

        let bad = """
            auth:
              api_keys:
                - {principal: alice, sha256: "sy_live_the_key_itself"}
                - {principal: carol, sha256: "\(digest)"}
              client_certificates:
                - {principal: alice, uri: "spiffe://a", dns: "a.example"}
            principals:
              alice: {methods: [inference, stats]}
            """
        XCTAssertThrowsError(try ServeSettings.parse(yaml: bad, file: "bad.yaml")) { error in
            let text = "\(error)"
            XCTAssertTrue(text.contains("bad.yaml:3:34: error: the sha256 of the API key of 'alice' is not 64 hex digits"), text)
            XCTAssertFalse(text.contains("sy_live_the_key_itself"), "a key pasted in place of its hash is never echoed")
            XCTAssertTrue(text.contains("bad.yaml:4:19: error: principal 'carol' has no permissions under principals"), text)
            XCTAssertTrue(text.contains("bad.yaml:6:7: error: a client certificate rule matches one of uri, dns, common_name, not uri and dns"), text)
            XCTAssertTrue(text.contains("bad.yaml:8:32: error: expected inference, metadata, repository, statistics for a method group"), text)
        }
    }

    func testDynamicBatchingKeysBecomeTheWorkersFlags() throws {
        let yaml = """
            models:
              simple:
                versions:
                  - {version: "1", max_batch_size: 16, max_queue_delay_microseconds: 250}
                  - {version: "2", max_batch_size: 0}
            """
        XCTAssertThrowsError(try ServeSettings.parse(yaml: yaml, file: "b.yaml")) { error in
            XCTAssertTrue("\(error)".contains("b.yaml:5:40: error: expected a batch size of at least 1, got 0"), "\(error)")
        }
        let settings = try ServeSettings.parse(yaml: yaml.replacingOccurrences(of: "max_batch_size: 0", with: "workers: 1"), file: "b.yaml")
        XCTAssertEqual(settings.models?.first?.workerArguments, ["--max-batch-size", "16", "--max-queue-delay-us", "250"])
        XCTAssertEqual(settings.models?.last?.workerArguments, [])
    }

    // MARK: backend

    func testABackendCommandRunsInTheFilesDirectoryWithItsEnvironmentAndTheBatchingAsVariables() throws {
        let yaml = """
            models:
              iris:
                versions:
                  - {version: "1"}
                  - version: "2"
                    backend: builtin
                  - version: "3"
                    max_batch_size: 16
                    max_queue_delay_microseconds: 100
                    worker_arguments: [--threads, "1"]
                    backend:
                      command: [sh, worker.sh, --model, models/iris/3/model.onnx]
                      environment: {OMP_NUM_THREADS: "2", EMPTY: ""}
            """
        let settings = try ServeSettings.parse(yaml: yaml, file: "/etc/switchyard/gateway.yaml")
        let models = try XCTUnwrap(settings.models)
        XCTAssertEqual(models.map(\.backend), [.builtin, .builtin, models[2].backend])
        guard case .command(let command) = models[2].backend else { return XCTFail("version 3 has a command backend") }
        XCTAssertEqual(command.arguments, ["sh", "worker.sh", "--model", "models/iris/3/model.onnx"])
        XCTAssertEqual(command.workingDirectory, "/etc/switchyard")
        XCTAssertEqual(
            command.environment,
            ["OMP_NUM_THREADS": "2", "EMPTY": "", "SWITCHYARD_MAX_BATCH_SIZE": "16", "SWITCHYARD_MAX_QUEUE_DELAY_US": "100"])
        // Batching is no flag of a command worker; worker_arguments are appended to its command.
        XCTAssertEqual(models[2].workerArguments, ["--threads", "1"])
    }

    func testARelativeConfigPathGivesAnAbsoluteWorkingDirectory() throws {
        let yaml = "models: {iris: {versions: [{version: \"1\", backend: {command: [/bin/sh, w.sh]}}]}}"
        let settings = try ServeSettings.parse(yaml: yaml, file: "conf/s.yaml")
        guard case .command(let command) = settings.models?.first?.backend else { return XCTFail("a command backend") }
        XCTAssertEqual(command.workingDirectory, FileManager.default.currentDirectoryPath + "/conf")
    }

    func testAChangedBackendMakesADifferentDeploymentSoAReloadReplacesThePool() throws {
        func deployment(_ backend: String) throws -> ModelDeployment? {
            try ServeSettings.parse(yaml: "models: {iris: {versions: [{version: \"1\", backend: \(backend)}]}}", file: "/c/s.yaml").models?.first
        }
        let builtin = try deployment("builtin")
        let one = try deployment("{command: [/bin/sh, a.sh]}")
        let other = try deployment("{command: [/bin/sh, b.sh]}")
        let withVariable = try deployment("{command: [/bin/sh, a.sh], environment: {K: V}}")
        XCTAssertEqual(builtin, ModelDeployment(model: "iris", version: "1"))
        XCTAssertNotEqual(builtin, one)
        XCTAssertNotEqual(one, other)
        XCTAssertNotEqual(one, withVariable)
        XCTAssertEqual(one, try deployment("{command: [/bin/sh, a.sh]}"))
    }

    func testBackendMistakesAreReportedWithLineColumnAndHint() {
        let yaml = """
            models:
              iris:
                versions:
                  - version: "1"
                    backend: docker
                  - version: "2"
                    backend: {cmd: [python3]}
                  - version: "3"
                    backend: {command: python3 worker.py}
                  - version: "4"
                    backend: {command: []}
                  - version: "5"
                    backend: {command: [no-such-program-anywhere, w.py], environment: {SWITCHYARD_WORKER_SOCKET: /tmp/x, "A=B": c, L: [1]}}
                  - version: "6"
                    backend: {command: [./missing-worker.sh]}
                  - version: "7"
                    backend: {environment: {K: V}}
            """
        XCTAssertThrowsError(try ServeSettings.parse(yaml: yaml, file: "/cfg/bad.yaml")) { error in
            let text = "\(error)"
            let expected = [
                "/cfg/bad.yaml:5:18: error: expected builtin or a mapping with a command for the backend of 'iris' version 1, got 'docker'",
                "/cfg/bad.yaml:7:19: error: unknown key 'cmd' in the backend of 'iris' version 2; valid keys: command, environment",
                "/cfg/bad.yaml:7:18: error: the backend of 'iris' version 2 has no 'command'",
                "/cfg/bad.yaml:9:28: error: expected a list for the command of 'iris' version 3, got 'python3 worker.py'",
                "/cfg/bad.yaml:11:28: error: the command of 'iris' version 4 is empty",
                "/cfg/bad.yaml:13:76: error: SWITCHYARD_WORKER_SOCKET is set by the gateway for each worker",
                "/cfg/bad.yaml:13:110: error: 'A=B' is not an environment variable name",
                "/cfg/bad.yaml:13:123: error: expected a text value for L, got a list",
                "/cfg/bad.yaml:15:29: error: the worker program of 'iris' version 6 cannot be started: '/cfg/missing-worker.sh' does not exist; relative paths resolve against /cfg",
                "/cfg/bad.yaml:17:18: error: the backend of 'iris' version 7 has no 'command'",
            ]
            for line in expected { XCTAssertTrue(text.contains(line), "missing \(line) in:\n\(text)") }
        }
        // A program that is not on PATH is reported where it stands once the rest is right.
        let missing = """
            models:
              iris:
                versions:
                  - {version: "1", backend: {command: [no-such-program-anywhere, w.py]}}
            """
        XCTAssertThrowsError(try ServeSettings.parse(yaml: missing, file: "m.yaml")) { error in
            XCTAssertTrue(
                "\(error)".contains(
                    "m.yaml:4:44: error: the worker program of 'iris' version 1 cannot be started: 'no-such-program-anywhere' is not on PATH; give its path, or set PATH in environment"),
                "\(error)")
        }
    }
}
