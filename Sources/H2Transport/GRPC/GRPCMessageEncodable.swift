import NIOCore

/// A message the gRPC layer can serialize straight into the buffer it frames and sends, so a
/// response needs no buffer of its own and no copy into the frame (`GRPCServerCall.sendMessage`).
///
/// `ByteBuffer` conforms (its bytes are the message). A protobuf type conforms through a small
/// wrapper in the module that knows its codec (see `ProtoResponse` in the Gateway).
public protocol GRPCMessageEncodable {
    /// Appends the serialized message to `buffer`.
    func writeMessage(into buffer: inout ByteBuffer)
    /// About how many bytes `writeMessage` writes, to size the buffer once (a guess is fine).
    var estimatedMessageSize: Int { get }
    /// The message's bytes when it already is a buffer (then the framer can compress it or
    /// copy it as is); nil for messages that serialize themselves.
    var messageBytes: ByteBuffer? { get }
}

extension GRPCMessageEncodable {
    public var messageBytes: ByteBuffer? { nil }
}

extension ByteBuffer: GRPCMessageEncodable {
    @inlinable
    public func writeMessage(into buffer: inout ByteBuffer) {
        buffer.writeImmutableBuffer(self)
    }

    @inlinable
    public var estimatedMessageSize: Int { readableBytes }

    @inlinable
    public var messageBytes: ByteBuffer? { self }
}
