import Foundation
import H2Transport
import NIOCore
import NIOHTTP1

extension AdminHTTPServer {
    /// The route table for `actions`: adding an endpoint is one entry here (and its action).
    static func routes(_ actions: Actions) -> [AdminRoute] {
        var routes: [AdminRoute] = [
            AdminRoute(.GET, "/healthz", requiresToken: false) { _ in .text("ok") },
            AdminRoute(.GET, "/readyz", requiresToken: false) { _ in readiness(actions) },
            AdminRoute(.POST, "/tls/reload") { request in reloadTLS(actions.reloadTLS, requestedBy: request.remote) },
        ]
        if let workers = actions.workers {
            routes.append(AdminRoute(.GET, "/workers") { _ in .json(await workers().map(workerJSON)) })
        }
        if let setDrained = actions.setDrained {
            for (suffix, drained) in [("drain", true), ("undrain", false)] {
                routes.append(AdminRoute(.POST, "/models/{model}/\(suffix)") { request in
                    await drain(drained, request: request, setDrained)
                })
                routes.append(AdminRoute(.POST, "/models/{model}/versions/{version}/\(suffix)") { request in
                    await drain(drained, request: request, setDrained)
                })
            }
        }
        if let restartWorker = actions.restartWorker {
            routes.append(AdminRoute(.POST, "/workers/{pid}/restart") { request in await restart(request, restartWorker) })
        }
        if let configuration = actions.configuration {
            routes.append(AdminRoute(.GET, "/config") { _ in
                AdminResponse(status: .ok, contentType: "application/json", body: configuration() + "\n")
            })
        }
        if let reload = actions.reloadConfiguration {
            routes.append(AdminRoute(.POST, "/config/reload") { request in
                do {
                    let applied = try await reload(request.remote)
                    let names: ([ModelVariantKey]) -> [String] = { $0.map(\.description) }
                    return .json(
                        [
                            "reloaded": true, "routes": applied.routes.map(GatewayConfiguration.routeJSON),
                            "variants": [
                                "added": names(applied.variants.added), "replaced": names(applied.variants.replaced),
                                "removed": names(applied.variants.removed), "unchanged": names(applied.variants.unchanged),
                            ],
                            "restart_required": applied.needsRestart,
                        ] as [String: Any])
                } catch {
                    let busy = (error as? ConfigurationReloadError)?.anotherInProgress ?? false
                    return .text(
                        "configuration reload refused; the configuration in use stays:\n\(error)",
                        status: busy ? .conflict : .unprocessableEntity)
                }
            })
        }
        if let routesNow = actions.routes {
            routes.append(AdminRoute(.GET, "/routes") { _ in .json(routesNow().map(GatewayConfiguration.routeJSON)) })
        }
        if let setRouteWeights = actions.setRouteWeights {
            routes.append(AdminRoute(.POST, "/routes/{model}") { request in await setRoute(request, setRouteWeights) })
        }
        if let metrics = actions.metrics {
            routes.append(AdminRoute(.GET, "/metrics") { _ in
                AdminResponse(status: .ok, contentType: "text/plain; version=0.0.4; charset=utf-8", body: await metrics())
            })
        }
        return routes
    }

    private static func readiness(_ actions: Actions) -> AdminResponse {
        if actions.isShuttingDown() { return .text("not ready: shutting down", status: .serviceUnavailable) }
        let waiting = actions.modelsNotReady()
        if waiting.isEmpty { return .text("ready") }
        return .text("not ready: no live worker yet for \(waiting.joined(separator: ", "))", status: .serviceUnavailable)
    }

    private static func reloadTLS(_ reload: (@Sendable (String) throws -> [PeerIdentity])?, requestedBy remote: String) -> AdminResponse {
        guard let reload else {
            return .text("this gateway has no TLS listener (--tls-address none); there is nothing to reload", status: .serviceUnavailable)
        }
        do {
            let identities = try reload(remote)
            let formatter = ISO8601DateFormatter()
            let certificates = identities.map { identity -> [String: Any] in
                [
                    "common_name": identity.commonName ?? "",
                    "dns_names": identity.dnsNames,
                    "sha256_fingerprint": identity.sha256Fingerprint,
                    "not_after": formatter.string(from: identity.notAfter),
                ]
            }
            return .json(["certificates": certificates])
        } catch {
            return .text("TLS reload failed; the previous certificate stays in use: \(error)", status: .internalServerError)
        }
    }

    /// `GET /workers` fields (docs/observability.md lists them; tests rely on the names).
    static func workerJSON(_ worker: WorkerStatus) -> [String: Any] {
        [
            "pid": worker.pid.map { Int($0) as Any } ?? NSNull(),
            "worker": worker.worker,
            "model": worker.model,
            "version": worker.version,
            "state": worker.state,
            "in_flight": worker.inFlight,
            "queued": worker.queued,
            "worker_in_flight": worker.workerInFlight,
            "worker_queued": worker.workerQueued,
            "restarts": worker.restarts,
            "uptime_seconds": worker.uptimeSeconds.map { ($0 * 1000).rounded() / 1000 as Any } ?? NSNull(),
            "socket_path": worker.socketPath,
            "drained": worker.drained,
        ]
    }

    /// Model and version names as the admin paths take them.
    static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 256
            && name.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "_-.".unicodeScalars.contains($0)) }
    }

    private static func drain(
        _ drained: Bool, request: AdminRequest,
        _ setDrained: @Sendable (Bool, String, String?, String) async throws -> [ModelVariantKey]
    ) async -> AdminResponse {
        let model = request.parameters["model"] ?? ""
        let version = request.parameters["version"]
        guard isValidName(model), version.map(isValidName) ?? true else {
            return .text("model and version names are letters, digits, '_', '-' and '.' (at most 256)", status: .badRequest)
        }
        do {
            let changed = try await setDrained(drained, model, version, request.remote)
            return .json([
                "model": model,
                "drained": drained,
                "versions": changed.map(\.version),
            ])
        } catch let error as ModelRepositoryError {
            return .text("\(error)", status: .notFound)
        } catch {
            return .text("\(error)", status: .internalServerError)
        }
    }

    /// `POST /routes/NAME?variants=1:0,2:100`: blue-green switches and canary weights.
    private static func setRoute(
        _ request: AdminRequest, _ setRouteWeights: @Sendable (String, [ModelRoute.Variant], String) async throws -> ModelRoute
    ) async -> AdminResponse {
        let model = request.parameters["model"] ?? ""
        guard isValidName(model) else {
            return .text("model names are letters, digits, '_', '-' and '.' (at most 256)", status: .badRequest)
        }
        var weights: [ModelRoute.Variant] = []
        for part in (request.query["variants"] ?? "").split(separator: ",") {
            let pieces = part.split(separator: ":")
            guard pieces.count == 2, isValidName(String(pieces[0])), let weight = Int(pieces[1]) else {
                weights = []
                break
            }
            weights.append(ModelRoute.Variant(version: String(pieces[0]), weight: weight))
        }
        guard !weights.isEmpty else {
            return .text("give the weights as ?variants=VERSION:WEIGHT,VERSION:WEIGHT (for example ?variants=1:90,2:10, or 1:0,2:100 to switch)", status: .badRequest)
        }
        do {
            return .json(GatewayConfiguration.routeJSON(try await setRouteWeights(model, weights, request.remote)))
        } catch let error as ModelRepositoryError {
            if case .invalidRoute = error { return .text("\(error)", status: .badRequest) }
            return .text("\(error)", status: .notFound)
        } catch {
            return .text("\(error)", status: .internalServerError)
        }
    }

    private static func restart(
        _ request: AdminRequest, _ restartWorker: @Sendable (Int32, String) async -> WorkerRestartOutcome
    ) async -> AdminResponse {
        guard let text = request.parameters["pid"], let pid = Int32(text), pid > 0 else {
            return .text("the pid must be a positive number (GET /workers lists them)", status: .badRequest)
        }
        switch await restartWorker(pid, request.remote) {
        case .unknownPID:
            return .text("no worker has pid \(pid) (GET /workers lists them)", status: .notFound)
        case .notRestartable(let state):
            return .text("worker \(pid) is \(state), not ready; try again once it is", status: .conflict)
        case .restarted(let oldPID, let newPID, let abandoned):
            return .json(["old_pid": Int(oldPID), "new_pid": Int(newPID), "abandoned_in_flight": abandoned, "ready": true])
        case .replacementNotReady(let oldPID, let abandoned):
            return .json(
                ["old_pid": Int(oldPID), "new_pid": NSNull(), "abandoned_in_flight": abandoned, "ready": false], status: .gatewayTimeout)
        }
    }
}
