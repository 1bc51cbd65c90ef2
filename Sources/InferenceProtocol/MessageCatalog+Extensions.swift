import ProtoWire

extension MessageCatalog {
    /// Model configuration, health and reflection messages.
    static var catalogExtensions: [any ProtoMessage.Type] {
        [
            ModelConfig.self,
            HealthCheckRequest.self, HealthCheckResponse.self, HealthListRequest.self, HealthListResponse.self,
            ServerReflectionRequest.self, ServerReflectionResponse.self,
        ]
    }
}
