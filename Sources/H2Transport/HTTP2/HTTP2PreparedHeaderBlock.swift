import CNGHTTP2

/// A header block that nearly every call sends (the default response headers, the OK
/// trailers), laid out once for the life of the process as nghttp2 name/value entries that
/// point at permanent memory, flagged NO_COPY: submitting it copies no strings at all.
///
/// A block is recognised by the storage of its `fields` array: the gRPC state machine hands
/// out this very array (`fields`), so one pointer comparison tells it apart from any other
/// list of the same content, which goes the ordinary way.
final class HTTP2PreparedHeaderBlock: @unchecked Sendable {
    /// The fields, as the gRPC layer passes them around.
    let fields: GRPCHeaderFields
    /// `count` entries; never freed (the instances are static).
    private let nameValues: UnsafeMutablePointer<nghttp2_nv>
    private let count: Int
    private let identity: UnsafeRawPointer?

    init(_ fields: GRPCHeaderFields) {
        precondition(!fields.isEmpty, "a prepared header block needs fields")
        self.fields = fields
        self.count = fields.count
        let byteCount = fields.reduce(0) { $0 + $1.name.utf8.count + $1.value.utf8.count }
        let bytes = UnsafeMutablePointer<UInt8>.allocate(capacity: max(byteCount, 1))
        nameValues = UnsafeMutablePointer<nghttp2_nv>.allocate(capacity: fields.count)
        var offset = 0
        for (index, field) in fields.enumerated() {
            let name = bytes + offset
            for byte in field.name.utf8 {
                bytes[offset] = byte
                offset += 1
            }
            let value = bytes + offset
            for byte in field.value.utf8 {
                bytes[offset] = byte
                offset += 1
            }
            (nameValues + index).initialize(
                to: nghttp2_nv(
                    name: name, value: value, namelen: field.name.utf8.count, valuelen: field.value.utf8.count,
                    flags: UInt8(NGHTTP2_NV_FLAG_NO_COPY_NAME.rawValue | NGHTTP2_NV_FLAG_NO_COPY_VALUE.rawValue)))
        }
        identity = fields.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) }
    }

    /// Whether `pairs` is this block's own `fields` array (not merely equal to it).
    func isIdentical(to pairs: GRPCHeaderFields) -> Bool {
        pairs.withUnsafeBufferPointer { UnsafeRawPointer($0.baseAddress) } == identity
    }

    /// Calls `body` with the prepared entries.
    func withNameValues<T>(_ body: (UnsafePointer<nghttp2_nv>, Int) -> T) -> T {
        body(nameValues, count)
    }

    /// The blocks prepared: the gRPC server's default response headers and OK trailers.
    static let all: [HTTP2PreparedHeaderBlock] = [
        GRPCServerStreamStateMachine.preparedResponseHeaders, GRPCServerStreamStateMachine.preparedOKTrailers,
    ]

    /// The prepared block whose array `pairs` is, if any.
    static func matching(_ pairs: GRPCHeaderFields) -> HTTP2PreparedHeaderBlock? {
        guard !pairs.isEmpty else { return nil }
        for block in all where block.isIdentical(to: pairs) { return block }
        return nil
    }
}
