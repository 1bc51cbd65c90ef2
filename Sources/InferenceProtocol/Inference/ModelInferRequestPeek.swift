import NIOCore
import ProtoWire

/// The header of an encoded `inference.ModelInferRequest`: what the router needs to choose a
/// destination, read without decoding any tensor.
///
/// Fields 1 to 4 (model name, version, id, request parameters) are decoded fully and exactly as
/// `ModelInferRequest` decodes them. Inputs, requested outputs and raw input contents
/// (fields 5, 6, 7) are stepped over by their length prefix: their framing (tag, wire type,
/// length within bounds) is checked as a full decode checks it, but nothing inside them is
/// read, so the cost does not grow with tensor size and a fault inside a tensor is left for the
/// worker to report. Unknown fields are skipped. The request's bytes are forwarded as they
/// arrived; this value holds no slice of them.
public struct ModelInferRequestPeek: Sendable, Hashable {
    /// `model_name` (field 1).
    public var modelName: String = ""
    /// `model_version` (field 2); empty lets the server choose.
    public var modelVersion: String = ""
    /// `id` (field 3).
    public var id: String = ""
    /// `parameters` (field 4).
    public var parameters = [String: InferParameter]()
    /// How many `inputs` (field 5) the request holds.
    public var inputCount: Int = 0
    /// How many `raw_input_contents` (field 7) entries the request holds.
    public var rawInputContentsCount: Int = 0

    /// Reads the header of the encoded request in `buffer`.
    ///
    /// - Throws: `ProtoDecodingError`, with the same code and field path that
    ///   `ModelInferRequest(decoding:limits:)` gives, when the request's own framing or fields
    ///   1 to 4 are malformed, or the buffer exceeds `limits.maxMessageSize`.
    public init(peeking buffer: ByteBuffer, limits: ProtoLimits = .default) throws {
        var reader = try ProtoReader(buffer: buffer, limits: limits)
        while let tag = try reader.nextTag() {
            do {
                switch tag.fieldNumber {
                case 1: modelName = try reader.readString(tag)
                case 2: modelVersion = try reader.readString(tag)
                case 3: id = try reader.readString(tag)
                case 4: try reader.readMapEntry(tag, into: &parameters)
                case 5:
                    try reader.skipEmbeddedMessage(tag)
                    inputCount += 1
                case 6:
                    try reader.skipEmbeddedMessage(tag)
                case 7:
                    // A bytes field: the checks of `readBytes`, without making the slice.
                    try reader.expect(tag, .lengthDelimited, "bytes")
                    try reader.skipField(tag)
                    rawInputContentsCount += 1
                default:
                    try reader.skipField(tag)
                }
            } catch var error as ProtoDecodingError {
                error.path.insert(
                    .init(message: ModelInferRequest.protoMessageName, fieldNumber: tag.fieldNumber), at: 0)
                throw error
            }
        }
    }
}

extension ProtoReader {
    /// Skips an embedded message field without reading inside it, after the checks that
    /// `merge(_:into:)` makes before it reads inside: the wire type must be length-delimited,
    /// the length must lie within the message, and one more level must fit the depth limit.
    fileprivate mutating func skipEmbeddedMessage(_ tag: ProtoTag) throws {
        try expect(tag, .lengthDelimited, "message")
        try skipField(tag)
        guard depth + 1 <= limits.maxDepth else {
            throw ProtoDecodingError(.nestingTooDeep, "messages nested deeper than \(limits.maxDepth) levels")
        }
    }
}
