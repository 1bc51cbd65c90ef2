import ProtoWire

/// Every top-level message Switchyard can decode, by its fully-qualified protobuf name: what
/// `switchyard proto decode --type NAME` accepts, and what tools that take a type name look up.
public enum MessageCatalog {
    /// The message types, keyed by `protoMessageName`.
    public static let messageTypes: [String: any ProtoMessage.Type] = {
        let types: [any ProtoMessage.Type] = [
            // inference.GRPCInferenceService
            ServerLiveRequest.self, ServerLiveResponse.self,
            ServerReadyRequest.self, ServerReadyResponse.self,
            ModelReadyRequest.self, ModelReadyResponse.self,
            ServerMetadataRequest.self, ServerMetadataResponse.self,
            ModelMetadataRequest.self, ModelMetadataResponse.self,
            ModelInferRequest.self, ModelInferResponse.self, ModelStreamInferResponse.self,
            ModelConfigRequest.self, ModelConfigResponse.self,
            ModelStatisticsRequest.self, ModelStatisticsResponse.self,
            RepositoryIndexRequest.self, RepositoryIndexResponse.self,
            RepositoryModelLoadRequest.self, RepositoryModelLoadResponse.self,
            RepositoryModelUnloadRequest.self, RepositoryModelUnloadResponse.self,
            SystemSharedMemoryStatusRequest.self, SystemSharedMemoryStatusResponse.self,
            SystemSharedMemoryRegisterRequest.self, SystemSharedMemoryRegisterResponse.self,
            SystemSharedMemoryUnregisterRequest.self, SystemSharedMemoryUnregisterResponse.self,
            CudaSharedMemoryStatusRequest.self, CudaSharedMemoryStatusResponse.self,
            CudaSharedMemoryRegisterRequest.self, CudaSharedMemoryRegisterResponse.self,
            CudaSharedMemoryUnregisterRequest.self, CudaSharedMemoryUnregisterResponse.self,
            TraceSettingRequest.self, TraceSettingResponse.self,
            LogSettingsRequest.self, LogSettingsResponse.self,
            InferParameter.self, InferTensorContents.self,
            // switchyard.worker
            WorkerProtocol.Hello.self, WorkerProtocol.InferRequest.self, WorkerProtocol.InferResponse.self,
            WorkerProtocol.Status.self, WorkerProtocol.Cancel.self, WorkerProtocol.Ping.self,
            WorkerProtocol.Pong.self,
        ] + catalogExtensions
        return Dictionary(uniqueKeysWithValues: types.map { ($0.protoMessageName, $0) })
    }()

    /// The type for a name, or nil.
    public static func messageType(named name: String) -> (any ProtoMessage.Type)? {
        messageTypes[name]
    }
}
