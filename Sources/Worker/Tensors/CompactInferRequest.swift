import InferenceProtocol
import NIOCore
import ProtoWire

/// A `ModelInferRequest` of the plain kind that fast paths take, read without the general
/// decoder's arrays and dictionaries: at most `capacity` inputs (name, datatype, shape),
/// `capacity` raw input contents and `capacity` requested outputs (names only), all held inline.
///
/// Reading gives up (nil) on anything the fast paths leave to `PreparedRequest`: parameters of
/// the request, its inputs or outputs, typed `contents`, unknown fields, more entries than fit,
/// or bytes that do not decode. Giving up is never an answer: the caller then takes the general
/// path, which accepts or rejects the request with its precise errors.
struct CompactInferRequest {
    /// How many inputs, raw contents and requested outputs fit inline.
    static let capacity = 2

    /// One input tensor's description.
    struct Input: ProtoMessage {
        static let protoMessageName = ModelInferRequest.InferInputTensor.protoMessageName
        var name = ""
        var datatype = ""
        var shape = TensorShape()
        /// A field the fast paths do not handle was present (parameters, contents, unknown).
        var isPlain = true

        init() {}

        mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: name = try reader.readString(tag)
            case 2: datatype = try reader.readString(tag)
            case 3: try reader.readRepeated(ProtoInt64.self, tag, into: &shape)
            default:
                isPlain = false
                try reader.skipField(tag)
            }
        }

        func encode(to writer: inout ProtoWriter) {
            if !name.isEmpty { writer.writeString(field: 1, name) }
            if !datatype.isEmpty { writer.writeString(field: 2, datatype) }
            shape.withUnsafeBufferPointer { writer.writePacked(ProtoInt64.self, field: 3, $0) }
        }
    }

    /// One requested output, by name.
    struct RequestedOutput: ProtoMessage {
        static let protoMessageName = ModelInferRequest.InferRequestedOutputTensor.protoMessageName
        var name = ""
        /// False when the output carried parameters or unknown fields.
        var isPlain = true

        init() {}

        mutating func decodeField(_ tag: ProtoTag, from reader: inout ProtoReader) throws {
            switch tag.fieldNumber {
            case 1: name = try reader.readString(tag)
            default:
                isPlain = false
                try reader.skipField(tag)
            }
        }

        func encode(to writer: inout ProtoWriter) {
            if !name.isEmpty { writer.writeString(field: 1, name) }
        }
    }

    /// The request's `id`, echoed in the response.
    var id = ""
    var input0 = Input()
    var input1 = Input()
    var inputCount = 0
    var raw0 = ByteBuffer()
    var raw1 = ByteBuffer()
    var rawCount = 0
    var output0 = ""
    var output1 = ""
    var outputCount = 0

    /// Reads `bytes`, or returns nil when they hold more than this type carries (see above).
    init?(decoding bytes: ByteBuffer) {
        do {
            var reader = try ProtoReader(buffer: bytes)
            while let tag = try reader.nextTag() {
                switch tag.fieldNumber {
                case 1, 2:
                    // Model name and version: the envelope's choice is the one that counts, but
                    // they must still be valid strings, as the general decoder requires.
                    _ = try reader.readString(tag)
                case 3:
                    id = try reader.readString(tag)
                case 5:
                    var input = Input()
                    try reader.merge(tag, into: &input)
                    guard input.isPlain else { return nil }
                    switch inputCount {
                    case 0: input0 = input
                    case 1: input1 = input
                    default: return nil
                    }
                    inputCount += 1
                case 6:
                    var output = RequestedOutput()
                    try reader.merge(tag, into: &output)
                    guard output.isPlain else { return nil }
                    switch outputCount {
                    case 0: output0 = output.name
                    case 1: output1 = output.name
                    default: return nil
                    }
                    outputCount += 1
                case 7:
                    let raw = try reader.readBytes(tag)
                    switch rawCount {
                    case 0: raw0 = raw
                    case 1: raw1 = raw
                    default: return nil
                    }
                    rawCount += 1
                default:
                    // Request parameters (4) and fields this worker does not know.
                    return nil
                }
            }
        } catch {
            return nil
        }
    }

    /// Input `index` (below `inputCount`).
    func input(_ index: Int) -> Input { index == 0 ? input0 : input1 }
    /// Raw contents `index` (below `rawCount`).
    func raw(_ index: Int) -> ByteBuffer { index == 0 ? raw0 : raw1 }
    /// The name of requested output `index` (below `outputCount`).
    func output(_ index: Int) -> String { index == 0 ? output0 : output1 }
}
