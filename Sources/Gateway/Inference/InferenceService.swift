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

    let context: InferenceCallContext
    let version: String

    /// - Parameters:
    ///   - router: the routing seam every inference request passes through.
    ///   - maxStreamRequestsInFlight: requests of one ModelStreamInfer stream in the gateway at
    ///     once before the stream is no longer read.
    ///   - maxStreamBufferedBytes: unread response bytes one stream may leave before it is ended.
    ///   - tracing: traces of ModelInfer and ModelStreamInfer requests; nil (the default) for none.
    public init(
        repository: ModelRepository, router: any InferenceRouter, version: String, maxMessageSize: Int,
        maxStreamRequestsInFlight: Int, maxStreamBufferedBytes: Int, tracing: InferenceTracing? = nil
    ) {
        self.context = InferenceCallContext(
            repository: repository, router: router, limits: ProtoLimits(maxMessageSize: maxMessageSize),
            maxStreamRequestsInFlight: max(1, maxStreamRequestsInFlight), maxStreamBufferedBytes: max(64 * 1024, maxStreamBufferedBytes),
            tracing: tracing)
        self.version = version
    }

    public func register(on registry: GRPCServiceRegistry) {
        let repository = context.repository
        let version = self.version
        func path(_ method: String) -> String { Self.servicePath + method }

        registry.registerImmediateUnary(path("ServerLive"), request: ServerLiveRequest.self, response: ServerLiveResponse.self) { _, _ in
            var response = ServerLiveResponse()
            response.live = true
            return response
        }
        registry.registerImmediateUnary(path("ServerReady"), request: ServerReadyRequest.self, response: ServerReadyResponse.self) { _, _ in
            var response = ServerReadyResponse()
            response.ready = repository.catalog.models.values.allSatisfy { model in model.pools.values.allSatisfy(\.isReady) }
            return response
        }
        registry.registerImmediateUnary(path("ServerMetadata"), request: ServerMetadataRequest.self, response: ServerMetadataResponse.self) { _, _ in
            var response = ServerMetadataResponse()
            response.name = "switchyard"
            response.version = version
            response.extensions = Self.extensions
            return response
        }
        registry.registerImmediateUnary(path("ModelReady"), request: ModelReadyRequest.self, response: ModelReadyResponse.self) { request, call in
            let variant = try Self.variant(repository.catalog, request.name, request.version, for: call)
            var response = ModelReadyResponse()
            response.ready = variant.pool?.isReady ?? false
            return response
        }
        registry.registerImmediateUnary(path("ModelMetadata"), request: ModelMetadataRequest.self, response: ModelMetadataResponse.self) {
            request, call in
            let variant = try Self.variant(repository.catalog, request.name, request.version, for: call)
            var response = Self.metadata(of: try Self.config(of: variant))
            response.versions = variant.model.versions
            return response
        }
        registry.registerImmediateUnary(path("ModelConfig"), request: ModelConfigRequest.self, response: ModelConfigResponse.self) { request, call in
            var response = ModelConfigResponse()
            response.config = try Self.config(of: Self.variant(repository.catalog, request.name, request.version, for: call))
            return response
        }
        registry.registerUnary(path("ModelStatistics"), request: ModelStatisticsRequest.self, response: ModelStatisticsResponse.self) {
            request, call in
            let catalog = repository.catalog
            let principal = call.principal as? Principal
            let promise = call.eventLoop.makePromise(of: ModelStatisticsResponse.self)
            promise.completeWithTask {
                var selected: [(name: String, version: String, pool: WorkerPool?)] = []
                if request.name.isEmpty {
                    // Only the models the caller may use.
                    for model in catalog.models.values.sorted(by: { $0.name < $1.name }) {
                        for version in model.versions where principal?.mayUse(model: model.name, version: version) != false {
                            selected.append((model.name, version, model.pools[version]))
                        }
                    }
                } else if request.version.isEmpty {
                    guard let model = catalog.models[request.name] else {
                        throw RPCError(code: .notFound, message: "unknown model '\(request.name)'")
                    }
                    if let principal, !principal.mayUseSomeVersion(of: model.name) { throw principal.deniedModel(model.name, version: nil) }
                    for version in model.versions where principal?.mayUse(model: model.name, version: version) != false {
                        selected.append((model.name, version, model.pools[version]))
                    }
                } else {
                    let variant = try Self.variant(catalog, request.name, request.version, principal: principal)
                    selected.append((variant.model.name, variant.version, variant.pool))
                }
                var response = ModelStatisticsResponse()
                for (name, version, pool) in selected {
                    let stats = await pool?.statistics() ?? VariantStatistics()
                    response.modelStats.append(Self.statistics(stats, name: name, version: version))
                }
                return response
            }
            return promise.futureResult
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
        let context = self.context
        registry.register(path("ModelInfer"), type: .unary) { call in
            ModelInferCallHandler(call: call, context: context)
        }
        registry.register(path("ModelStreamInfer")) { call in
            ModelStreamInferCallHandler(call: call, context: context)
        }
    }

    // MARK: Lookups

    /// A model at a version ("" for its default), as the catalog has it.
    struct Variant {
        var model: ModelCatalog.Model
        var version: String
        var pool: WorkerPool? { model.pools[version] }
    }

    /// The variant a metadata request names, when the call's principal (if any) may use it.
    static func variant(_ catalog: ModelCatalog, _ name: String, _ version: String, for call: GRPCServerCall) throws(RPCError) -> Variant {
        try variant(catalog, name, version, principal: call.principal as? Principal)
    }

    static func variant(_ catalog: ModelCatalog, _ name: String, _ version: String, principal: Principal? = nil) throws(RPCError) -> Variant {
        guard let model = catalog.models[name] else {
            throw RPCError(code: .notFound, message: "unknown model '\(name)'; RepositoryIndex lists the known ones")
        }
        var chosen = version.isEmpty ? model.defaultVersion : version
        if version.isEmpty, let principal, !principal.mayUse(model: model.name, version: chosen),
            let allowed = model.versions.last(where: { model.pools[$0] != nil && principal.mayUse(model: model.name, version: $0) })
        {
            chosen = allowed  // the newest version this caller may use stands for the model
        }
        if let principal, !principal.mayUse(model: model.name, version: chosen) {
            throw principal.deniedModel(model.name, version: principal.mayUseSomeVersion(of: model.name) ? chosen : nil)
        }
        guard model.versions.contains(chosen) else {
            throw RPCError(code: .notFound, message: VersionRouter.unknownVersionMessage(chosen, of: model))
        }
        return Variant(model: model, version: chosen)
    }

    static func config(of variant: Variant) throws(RPCError) -> ModelConfig {
        guard let pool = variant.pool else {
            throw RPCError(code: .unavailable, message: "model '\(variant.model.name)' is not loaded")
        }
        guard let config = pool.modelDescriptor?.config else {
            throw RPCError(code: .unavailable, message: "model '\(variant.model.name)' has no ready worker to describe it; try again shortly")
        }
        return config
    }

    static func statistics(_ stats: VariantStatistics, name: String, version: String) -> ModelStatistics {
        var model = ModelStatistics()
        model.name = name
        model.version = version
        model.lastInference = stats.lastInferenceUnixMillis
        model.inferenceCount = stats.inferenceCount
        model.executionCount = stats.executionCount
        var inference = InferStatistics()
        inference.success = StatisticDuration(count: stats.successCount, ns: stats.successNanos)
        inference.fail = StatisticDuration(count: stats.failCount, ns: stats.failNanos)
        // Every successful request queued (perhaps for no time) and was computed once; the split
        // of compute time comes from the workers' timing reports.
        inference.queue = StatisticDuration(count: stats.successCount, ns: stats.queueNanos)
        inference.computeInput = StatisticDuration(count: stats.successCount, ns: stats.computeInputNanos)
        inference.computeInfer = StatisticDuration(count: stats.successCount, ns: stats.computeInferNanos)
        inference.computeOutput = StatisticDuration(count: stats.successCount, ns: stats.computeOutputNanos)
        model.inferenceStats = inference
        return model
    }

    static func metadata(of config: ModelConfig) -> ModelMetadataResponse {
        var response = ModelMetadataResponse()
        response.name = config.name
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
