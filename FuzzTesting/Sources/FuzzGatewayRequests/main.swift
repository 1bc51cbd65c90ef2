import FuzzCommon
import InferenceProtocol
import NIOCore
import ProtoWire

/// One input: a selector byte, then the body of one request message that a client can send the
/// gateway (every RPC of inference.GRPCInferenceService, grpc.health.v1.Health and server
/// reflection), decoded under the small limits a gateway would set for them. `ModelConfig`,
/// which a ModelConfigResponse carries, is fuzzed here as well: it is the largest codec.
///
/// Checks that decoding never traps and that every message that decodes survives a round trip.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMe(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    var input = FuzzCheck.buffer(start, count)
    guard let selector = input.readInteger(as: UInt8.self) else { return 0 }
    let limits = ProtoLimits(maxMessageSize: 1 << 20, maxDepth: 100)
    // Append only: the selector byte of every corpus file depends on this order.
    let types: [any ProtoMessage.Type] = [
        ModelInferRequest.self,  // 0: ModelInfer and each ModelStreamInfer message
        HealthCheckRequest.self,  // 1
        ServerReflectionRequest.self,  // 2 (v1 and v1alpha share the wire format)
        ModelConfigRequest.self,  // 3
        ModelMetadataRequest.self,  // 4
        RepositoryModelLoadRequest.self,  // 5
        RepositoryModelUnloadRequest.self,  // 6
        RepositoryIndexRequest.self,  // 7
        ModelReadyRequest.self,  // 8
        ModelStatisticsRequest.self,  // 9
        ServerLiveRequest.self,  // 10
        ServerReadyRequest.self,  // 11
        ServerMetadataRequest.self,  // 12
        SystemSharedMemoryStatusRequest.self,  // 13
        SystemSharedMemoryRegisterRequest.self,  // 14
        SystemSharedMemoryUnregisterRequest.self,  // 15
        CudaSharedMemoryStatusRequest.self,  // 16
        CudaSharedMemoryRegisterRequest.self,  // 17
        CudaSharedMemoryUnregisterRequest.self,  // 18
        TraceSettingRequest.self,  // 19
        LogSettingsRequest.self,  // 20
        HealthListRequest.self,  // 21
        ModelConfig.self,  // 22
    ]
    FuzzCheck.decodeAndRoundTrip(messageOfType: types[Int(selector) % types.count], input, limits: limits)
    return 0
}
