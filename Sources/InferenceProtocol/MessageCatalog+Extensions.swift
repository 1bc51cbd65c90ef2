import ProtoWire

extension MessageCatalog {
    /// Model configuration, health and reflection messages.
    static var catalogExtensions: [any ProtoMessage.Type] { [] }
}
