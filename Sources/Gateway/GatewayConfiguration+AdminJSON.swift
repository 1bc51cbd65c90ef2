import Foundation
import H2Transport
import NIOCore

extension GatewayConfiguration {
    /// What `GET /config` shows for a secret that is set.
    public static let maskedSecret = "***"

    /// A backend as `GET /config` shows it: "builtin", or the command with its working
    /// directory and the names (not the values, which may be secrets) of its variables.
    static func backendJSON(_ backend: WorkerBackend) -> Any {
        switch backend {
        case .builtin: return "builtin"
        case .command(let command):
            return [
                "command": command.arguments,
                "environment": command.environment.keys.sorted(),
                "working_directory": command.workingDirectory.map { $0 as Any } ?? NSNull(),
            ] as [String: Any]
        }
    }

    /// The effective configuration as one JSON object (`GET /config`; docs/observability.md
    /// lists the fields). Secrets are masked: the admin token shows as "***", and of the TLS key
    /// only its file's path appears, never its contents. `launcher`: how workers are started;
    /// `models` and `routes`: those in use now (a reload or an operator may have changed them).
    public func effectiveJSON(launcher: WorkerLauncher?, models: [ModelDeployment]? = nil, routes: [ModelRoute]? = nil) -> String {
        func milliseconds(_ amount: TimeAmount?) -> Any { amount.map { Int($0.nanoseconds / 1_000_000) as Any } ?? NSNull() }
        func address(_ address: Address?) -> Any { address.map { $0.description as Any } ?? NSNull() }
        var tls: Any = NSNull()
        if tlsListener != nil {
            tls = [
                "certificate_chain": tlsFiles.certificateChain,
                "private_key": tlsFiles.privateKey,
                "client_ca_bundle": tlsFiles.clientCABundle.map { $0 as Any } ?? NSNull(),
                "client_auth": "\(clientCertificateVerification)",
            ] as [String: Any]
        }
        let models = (models ?? self.models).map { deployment -> [String: Any] in
            [
                "model": deployment.model,
                "version": deployment.version,
                "workers": deployment.workers,
                "max_inflight_per_worker": deployment.maxInFlightPerWorker,
                "max_queued_requests": deployment.maxQueuedRequests,
                "idempotent": deployment.idempotent,
                "worker_arguments": deployment.workerArguments,
                "backend": Self.backendJSON(deployment.backend),
            ]
        }
        var workers: [String: Any] = ["diagnostic_models": enableDiagnosticModels]
        if let launcher {
            workers["executable"] = launcher.executable
            workers["socket_directory"] = launcher.socketDirectory
            workers["start_timeout_ms"] = milliseconds(launcher.startTimeout)
            workers["ping_interval_ms"] = milliseconds(launcher.pingInterval)
            workers["ping_timeout_ms"] = milliseconds(launcher.pingTimeout)
        }
        let object: [String: Any] = [
            "listeners": ["plaintext": address(plaintextListener), "tls": address(tlsListener), "admin": address(adminListener)],
            "tls": tls,
            "admin": ["address": address(adminListener), "token": adminToken == nil ? NSNull() : Self.maskedSecret as Any],
            "models": models,
            "workers": workers,
            "limits": [
                "max_receive_message_size": maxReceiveMessageSize,
                "max_stream_requests_in_flight": maxStreamRequestsInFlight,
                "max_stream_buffered_bytes": maxStreamBufferedBytes,
                "max_concurrent_streams": http2.maxConcurrentStreams,
                "initial_window_size": http2.initialWindowSize,
                "connection_window_size": http2.connectionWindowSize,
                "max_frame_size": http2.maxFrameSize,
                "max_header_list_size": http2.maxHeaderListSize,
            ],
            "timeouts": [
                "handshake_timeout_ms": milliseconds(handshakeTimeout),
                "keepalive_interval_ms": milliseconds(http2.keepaliveInterval),
                "keepalive_timeout_ms": milliseconds(http2.keepaliveTimeout),
                "min_client_ping_interval_ms": milliseconds(http2.minimumPingInterval),
                "idle_timeout_ms": milliseconds(http2.idleTimeout),
                "max_connection_age_ms": milliseconds(http2.maxConnectionAge),
                "drain_timeout_ms": milliseconds(http2.drainTimeout),
                "shutdown_delay_ms": milliseconds(shutdownDelay),
            ],
            "log": ["format": logFormat, "level": logLevel],
            "threads": threads.map { $0 as Any } ?? NSNull(),
            "echo_service": enableEchoService,
            "routes": (routes ?? self.routes).map(Self.routeJSON),
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// A route as `GET /config` and `GET /routes` show it.
    static func routeJSON(_ route: ModelRoute) -> [String: Any] {
        [
            "model": route.model,
            "variants": route.variants.map { ["version": $0.version, "weight": $0.weight] as [String: Any] },
            "sticky_key": route.stickyKey.map { $0 as Any } ?? NSNull(),
            "allow_override": route.allowOverride,
            "shadow": route.shadow.map {
                [
                    "version": $0.version, "fraction": $0.fraction, "absolute_tolerance": $0.absoluteTolerance,
                    "relative_tolerance": $0.relativeTolerance,
                ] as [String: Any] as Any
            } ?? NSNull(),
        ]
    }
}
