import H2Transport
import InferenceProtocol
import NIOConcurrencyHelpers
import NIOCore

/// `grpc.health.v1.Health`: Check, Watch and List over a table of service statuses that the
/// gateway updates as models and workers come and go. The empty service name is the server
/// as a whole. Thread-safe.
public final class HealthService: Sendable {
    public typealias Status = HealthCheckResponse.ServingStatus

    private struct Watcher: Sendable {
        let call: NIOLoopBound<GRPCServerCall>
        let id: Int
    }

    private struct State: Sendable {
        var statuses: [String: Status] = [:]
        var watchers: [String: [Watcher]] = [:]
        var nextWatcherID = 0
    }

    private let state = NIOLockedValueBox(State())

    public init() {}

    /// Sets a service's status; watchers of it get the new status if it changed.
    public func setStatus(_ status: Status, for service: String) {
        let watchers: [Watcher] = state.withLockedValue { state in
            guard state.statuses[service] != status else { return [] }
            state.statuses[service] = status
            return state.watchers[service] ?? []
        }
        for watcher in watchers { Self.send(status, to: watcher.call) }
    }

    /// The status of `service`, or nil when it is unknown.
    public func status(of service: String) -> Status? {
        state.withLockedValue { $0.statuses[service] }
    }

    /// Marks every known service NOT_SERVING (on shutdown), so load balancers drain us.
    public func markAllNotServing() {
        let names = state.withLockedValue { Array($0.statuses.keys) }
        for name in names { setStatus(.notServing, for: name) }
    }

    /// Serves Check, Watch and List on `registry`.
    public func register(on registry: GRPCServiceRegistry) {
        registry.registerImmediateUnary(
            "/grpc.health.v1.Health/Check", request: HealthCheckRequest.self, response: HealthCheckResponse.self
        ) { [self] request, _ in
            guard let status = self.status(of: request.service) else {
                throw RPCError(code: .notFound, message: "unknown service '\(request.service)'; `Health/List` lists the known ones")
            }
            var response = HealthCheckResponse()
            response.status = status
            return response
        }
        registry.registerImmediateUnary(
            "/grpc.health.v1.Health/List", request: HealthListRequest.self, response: HealthListResponse.self
        ) { [self] _, _ in
            var response = HealthListResponse()
            for (name, status) in self.state.withLockedValue({ $0.statuses }) {
                var entry = HealthCheckResponse()
                entry.status = status
                response.statuses[name] = entry
            }
            return response
        }
        registry.register("/grpc.health.v1.Health/Watch", type: .serverStreaming) { [self] call in
            let watcherID = NIOLockedValueBox<Int?>(nil)
            return ServerStreamingCallHandler<HealthCheckRequest>(
                call: call,
                start: { request, call in
                    // Register and read the current status under one lock, so no change is lost.
                    let current: Status = self.state.withLockedValue { state in
                        let id = state.nextWatcherID
                        state.nextWatcherID += 1
                        state.watchers[request.service, default: []].append(
                            Watcher(call: NIOLoopBound(call, eventLoop: call.eventLoop), id: id))
                        watcherID.withLockedValue { $0 = id }
                        return state.statuses[request.service] ?? .serviceUnknown
                    }
                    Self.send(current, to: NIOLoopBound(call, eventLoop: call.eventLoop))
                },
                onCancel: { _ in
                    guard let id = watcherID.withLockedValue({ $0 }) else { return }
                    self.state.withLockedValue { state in
                        for (service, list) in state.watchers {
                            state.watchers[service] = list.filter { $0.id != id }
                        }
                    }
                })
        }
    }

    private static func send(_ status: Status, to call: NIOLoopBound<GRPCServerCall>) {
        var response = HealthCheckResponse()
        response.status = status
        let bytes = response.encoded()
        if call.eventLoop.inEventLoop {
            call.value.sendMessage(bytes)
        } else {
            call.eventLoop.execute { call.value.sendMessage(bytes) }
        }
    }
}
