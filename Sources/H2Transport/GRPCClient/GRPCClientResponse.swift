import NIOCore

/// The answer to a unary call that ended OK: the response headers' metadata, the one response
/// message, and the trailers. A call that ends otherwise throws an `RPCError` instead.
public struct GRPCClientResponse: Sendable {
    /// Custom metadata of the response headers.
    public var headers: GRPCMetadata
    /// The response message, decompressed, without its 5-byte prefix.
    public var message: ByteBuffer
    /// Custom metadata of the trailers (without `grpc-status` and `grpc-message`).
    public var trailers: GRPCMetadata

    /// A response from its parts.
    public init(headers: GRPCMetadata, message: ByteBuffer, trailers: GRPCMetadata) {
        self.headers = headers
        self.message = message
        self.trailers = trailers
    }
}
