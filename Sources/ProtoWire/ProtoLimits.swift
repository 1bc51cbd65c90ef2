/// Bounds that a decoder enforces so that no input can cost unbounded memory or stack.
///
/// The defaults follow common protobuf practice: 64 MiB per message and 100 levels of nesting.
public struct ProtoLimits: Sendable, Hashable {
    /// The largest encoded message accepted, in bytes. Default 64 MiB.
    public var maxMessageSize: Int
    /// The deepest nesting of embedded messages and groups accepted. Default 100.
    public var maxDepth: Int

    public init(maxMessageSize: Int = 64 * 1024 * 1024, maxDepth: Int = 100) {
        self.maxMessageSize = maxMessageSize
        self.maxDepth = maxDepth
    }

    /// 64 MiB, depth 100.
    public static let `default` = ProtoLimits()
}
