import H2Transport
import InferenceProtocol

/// What the routing seam sees of one inference request: the fields read from the request
/// message (no tensor), the call's metadata, and who is calling.
///
/// ModelInfer passes each request through the router once; ModelStreamInfer passes every
/// message of the stream.
public struct InferenceRouteRequest {
    /// `model_name` as the client sent it.
    public var modelName: String
    /// `model_version`; empty lets the router choose.
    public var modelVersion: String
    /// The request's `id` (may be empty).
    public var requestID: String
    /// The request's `parameters`.
    public var parameters: [String: InferParameter]
    /// The call's custom metadata (API keys, routing headers, sticky keys).
    public var metadata: GRPCMetadata
    /// The connection: peer address, and the verified client certificate's identity on mTLS.
    public var connection: HTTP2ConnectionInfo
    /// Who is calling, as authenticated under the policy in force; nil without a policy.
    public var principal: Principal?

    public init(
        modelName: String, modelVersion: String, requestID: String, parameters: [String: InferParameter], metadata: GRPCMetadata,
        connection: HTTP2ConnectionInfo, principal: Principal? = nil
    ) {
        self.principal = principal
        self.modelName = modelName
        self.modelVersion = modelVersion
        self.requestID = requestID
        self.parameters = parameters
        self.metadata = metadata
        self.connection = connection
    }
}

/// What to do with a request.
public enum InferenceRoute: Sendable {
    /// Refuse it with this status (NOT_FOUND, UNAUTHENTICATED, PERMISSION_DENIED,
    /// RESOURCE_EXHAUSTED, UNAVAILABLE …); trailers such as retry pushback travel with it.
    case refuse(RPCError)
    /// Send it to `pool` (the variant chosen); when `shadow` is set, also send a copy there and
    /// ignore its answer.
    case forward(WorkerPool, shadow: WorkerPool?)
}

/// The one decision point of the inference path: every ModelInfer request and every
/// ModelStreamInfer message goes through `route`. Authentication, authorization, rate limits,
/// A/B and canary weights, sticky assignment, overrides and shadowing live behind it; the
/// transport and the pools know nothing of them.
///
/// Called on the call's event loop for every request: it must not block, and should not take a
/// lock or allocate per call where a per-loop structure can avoid it.
public protocol InferenceRouter: Sendable {
    func route(_ request: InferenceRouteRequest, catalog: ModelCatalog) -> InferenceRoute
}

/// The router without a routing configuration: the version the request names, or the model's
/// default (newest loaded, not drained) version when it names none. A version an operator
/// drained is refused with UNAVAILABLE saying so.
public struct VersionRouter: InferenceRouter {
    public init() {}

    public func route(_ request: InferenceRouteRequest, catalog: ModelCatalog) -> InferenceRoute {
        guard let model = catalog.models[request.modelName] else {
            return .refuse(RPCError(code: .notFound, message: "unknown model '\(request.modelName)'; RepositoryIndex lists the known ones"))
        }
        let version = request.modelVersion.isEmpty ? model.defaultVersion : request.modelVersion
        if let principal = request.principal, !principal.mayUse(model: model.name, version: version) {
            // Not even whether the version exists is told to a caller who may not use the model.
            return .refuse(principal.deniedModel(model.name, version: principal.mayUseSomeVersion(of: model.name) ? version : nil))
        }
        guard model.versions.contains(version) else {
            return .refuse(RPCError(code: .notFound, message: Self.unknownVersionMessage(version, of: model)))
        }
        guard let pool = model.pools[version] else {
            let which = model.versions.count > 1 ? "version \(version) of model '\(model.name)'" : "model '\(model.name)'"
            return .refuse(RPCError(code: .unavailable, message: "\(which) is not loaded; RepositoryModelLoad loads it"))
        }
        // Drained by an operator: an unversioned request got the newest version that is not
        // (`defaultVersion`), so this one is drained only when every loaded version is.
        if !model.drained.isEmpty, model.drained.contains(version) {
            return .refuse(RPCError(code: .unavailable, message: model.drainedMessage(version: request.modelVersion)))
        }
        return .forward(pool, shadow: nil)
    }

    /// "unknown version '7' of model 'simple'; it has version 1" (or "versions 1, 2").
    static func unknownVersionMessage(_ version: String, of model: ModelCatalog.Model) -> String {
        let list = model.versions.joined(separator: ", ")
        return "unknown version '\(version)' of model '\(model.name)'; it has version\(model.versions.count == 1 ? "" : "s") \(list)"
    }
}
