import NIOCore

/// Fields a decoder did not recognise, kept as the bytes that arrived (tags included) so that a
/// message forwarded by the gateway loses nothing a newer client put in it.
public struct UnknownFields: Sendable, Hashable {
    /// The raw fields, in arrival order; nil when there were none.
    public private(set) var bytes: ByteBuffer?

    public init() {}

    /// True when no unknown field was seen.
    @inlinable
    public var isEmpty: Bool { bytes == nil }

    @usableFromInline
    mutating func append(_ field: ByteBuffer) {
        if bytes == nil {
            bytes = field
        } else {
            var field = field
            bytes!.writeBuffer(&field)
        }
    }

    /// Writes the preserved fields back.
    @inlinable
    public func encode(to writer: inout ProtoWriter) {
        if let bytes { writer.buffer.writeImmutableBuffer(bytes) }
    }
}
