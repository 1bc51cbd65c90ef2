import H2Transport
import InferenceProtocol
import Logging
import NIOConcurrencyHelpers
import NIOCore
import ProtoWire

/// `inference.GRPCInferenceService`: the Open Inference Protocol v2 with Triton's extensions,
/// over the model repository and its worker pools.
public struct InferenceService: Sendable {
    static let servicePath = "/inference.GRPCInferenceService/"
    /// Extensions reported by ServerMetadata.
    static let extensions = ["classification", "model_repository", "model_repository(unload_dependents)", "statistics"]

    let repository: ModelRepository
    let version: String
    let limits: ProtoLimits

    public init(repository: ModelRepository, version: String, maxMessageSize: Int) {
        self.repository = repository
        self.version = version
        self.limits = ProtoLimits(maxMessageSize: maxMessageSize)
    }

    public func register(on registry: GRPCServiceRegistry) {
        let repository = self.repository
        let version = self.version
        func path(_ method: String) -> String { Self.servicePath + method }

        registry.registerImmediateUnary(path("ServerLive"), request: ServerLiveRequest.self, response: ServerLiveResponse.self) { _, _ in
            var response = ServerLiveResponse()
            response.live = true
            return response
        }
        registry.registerImmediateUnary(path("ServerReady"), request: ServerReadyRequest.self, response: ServerReadyResponse.self) { _, _ in
            var response = ServerReadyResponse()
            response.ready = repository.modelNames.allSatisfy { repository.pool(for: $0)?.isReady ?? true }
            return response
        }
        registry.registerImmediateUnary(path("ServerMetadata"), request: ServerMetadataRequest.self, response: ServerMetadataResponse.self) { _, _ in
            var response = ServerMetadataResponse()
            response.name = "switchyard"
            response.version = version
            response.extensions = Self.extensions
            return response
        }
        registry.registerImmediateUnary(path("ModelReady"), request: ModelReadyRequest.self, response: ModelReadyResponse.self) { request, _ in
            _ = try Self.descriptor(repository, request.name, request.version, requireReady: false)
            var response = ModelReadyResponse()
            response.ready = repository.pool(for: request.name)?.isReady ?? false
            return response
        }
        registry.registerImmediateUnary(path("ModelMetadata"), request: ModelMetadataRequest.self, response: ModelMetadataResponse.self) { request, _ in
            let config = try Self.config(repository, request.name, request.version)
            return Self.metadata(of: config)
        }
        registry.registerImmediateUnary(path("ModelConfig"), request: ModelConfigRequest.self, response: ModelConfigResponse.self) { request, _ in
            var response = ModelConfigResponse()
            response.config = try Self.config(repository, request.name, request.version)
            return response
        }
        registry.registerImmediateUnary(path("ModelStatistics"), request: ModelStatisticsRequest.self, response: ModelStatisticsResponse.self) { request, _ in
            var response = ModelStatisticsResponse()
            let names = request.name.isEmpty ? repository.modelNames : [request.name]
            for name in names {
                guard let stats = repository.statistics(for: name) else {
                    throw RPCError(code: .notFound, message: "unknown model '\(name)'")
                }
                var model = ModelStatistics()
                model.name = name
                model.version = "1"
                model.lastInference = stats.lastInferenceMillis
                model.inferenceCount = stats.inferenceCount
                model.executionCount = stats.executionCount
                var inference = InferStatistics()
                inference.success = StatisticDuration(count: stats.successCount, ns: stats.successNanos)
                inference.fail = StatisticDuration(count: stats.failCount, ns: stats.failNanos)
                // Every successful request queued (perhaps for no time) and was computed once;
                // the split of compute time comes from the workers' timing reports.
                inference.queue = StatisticDuration(count: stats.successCount, ns: stats.queueNanos)
                inference.computeInput = StatisticDuration(count: stats.successCount, ns: stats.computeInputNanos)
                inference.computeInfer = StatisticDuration(count: stats.successCount, ns: stats.computeInferNanos)
                inference.computeOutput = StatisticDuration(count: stats.successCount, ns: stats.computeOutputNanos)
                model.inferenceStats = inference
                response.modelStats.append(model)
            }
            return response
        }
        registry.registerImmediateUnary(path("RepositoryIndex"), request: RepositoryIndexRequest.self, response: RepositoryIndexResponse.self) { request, _ in
            repository.index(readyOnly: request.ready)
        }
        registry.registerUnary(path("RepositoryModelLoad"), request: RepositoryModelLoadRequest.self, response: RepositoryModelLoadResponse.self) {
            request, call in
            let promise = call.eventLoop.makePromise(of: RepositoryModelLoadResponse.self)
            promise.completeWithTask {
                do {
                    try await repository.load(request.modelName)
                } catch ModelRepositoryError.unknownModel(let name) {
                    throw RPCError(code: .notFound, message: "unknown model '\(name)'; RepositoryIndex lists the known ones")
                } catch {
                    throw RPCError(code: .internalError, message: "\(error)")
                }
                return RepositoryModelLoadResponse()
            }
            return promise.futureResult
        }
        registry.registerUnary(
            path("RepositoryModelUnload"), request: RepositoryModelUnloadRequest.self, response: RepositoryModelUnloadResponse.self
        ) { request, call in
            let promise = call.eventLoop.makePromise(of: RepositoryModelUnloadResponse.self)
            promise.completeWithTask {
                do {
                    try await repository.unload(request.modelName)
                } catch {
                    throw RPCError(code: .notFound, message: "\(error)")
                }
                return RepositoryModelUnloadResponse()
            }
            return promise.futureResult
        }
        let limits = self.limits
        registry.register(path("ModelInfer")) { call in
            ModelInferCallHandler(call: call, repository: repository, limits: limits)
        }
        registry.register(path("ModelStreamInfer")) { call in
            ModelStreamInferCallHandler(call: call, repository: repository, limits: limits)
        }
    }

    // MARK: Lookups

    static func descriptor(_ repository: ModelRepository, _ name: String, _ version: String, requireReady: Bool) throws -> WorkerProtocol.ModelDescriptor? {
        guard repository.knows(name) else {
            throw RPCError(code: .notFound, message: "unknown model '\(name)'; RepositoryIndex lists the known ones")
        }
        guard version.isEmpty || version == "1" else {
            throw RPCError(code: .notFound, message: "unknown version '\(version)' of model '\(name)'; it has version 1")
        }
        guard let pool = repository.pool(for: name) else {
            if requireReady { throw RPCError(code: .unavailable, message: "model '\(name)' is not loaded") }
            return nil
        }
        return pool.modelDescriptor
    }

    static func config(_ repository: ModelRepository, _ name: String, _ version: String) throws -> ModelConfig {
        guard let descriptor = try descriptor(repository, name, version, requireReady: true), let config = descriptor.config else {
            throw RPCError(code: .unavailable, message: "model '\(name)' has no ready worker to describe it; try again shortly")
        }
        return config
    }

    static func metadata(of config: ModelConfig) -> ModelMetadataResponse {
        var response = ModelMetadataResponse()
        response.name = config.name
        response.versions = ["1"]
        response.platform = config.platform.isEmpty ? "switchyard" : config.platform
        func tensor(_ name: String, _ type: DataType, _ dims: [Int64]) -> ModelMetadataResponse.TensorMetadata {
            var tensor = ModelMetadataResponse.TensorMetadata()
            tensor.name = name
            tensor.datatype = type.protocolName ?? ""
            tensor.shape = (config.maxBatchSize > 0 ? [-1] : []) + dims
            return tensor
        }
        response.inputs = config.input.map { tensor($0.name, $0.dataType, $0.dims) }
        response.outputs = config.output.map { tensor($0.name, $0.dataType, $0.dims) }
        return response
    }
}
