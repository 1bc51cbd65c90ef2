import NIOCore
import ProtoWire

/// What the gateway needs to route and validate an encoded `inference.ModelInferRequest`, read
/// in one pass over its bytes without materialising any tensor.
///
/// Model name, version, id and request parameters are decoded fully, as `ModelInferRequest`
/// decodes them. Each input keeps its name, datatype, shape and parameters, and a summary of its
/// typed `contents`: whether the field is there and how many elements each typed field holds,
/// counted without storing them. `raw_input_contents` entries are slices of the input buffer
/// (no copy); requested outputs keep their names and parameters.
///
/// The scan makes every check the full decode makes, in the same order: it accepts exactly the
/// bytes that `ModelInferRequest(decoding:limits:)` accepts and, for the others, throws the same
/// `ProtoDecodingError` (code, detail and field path). So the gateway can validate a request
/// from the scan and forward the bytes that arrived, and the worker's full decode will not fail
/// where the scan succeeded.
public struct ModelInferRequestScan: Sendable, Hashable {
    /// Requests larger than this many encoded bytes (256 KiB) are scanned on a thread pool by
    /// the gateway rather than on the connection's event loop: the scan costs time in proportion
    /// to the bytes of typed contents, and a large request must not hold up the other calls
    /// sharing the loop. Below it a scan takes microseconds.
    public static let inlineScanLimit = 256 * 1024

    /// One input tensor's description, as `ModelInferRequest.InferInputTensor` has it, with its
    /// typed contents summarised.
    public struct Input: Sendable, Hashable {
        /// `name` (field 1).
        public var name: String = ""
        /// `datatype` (field 2), as it was spelled.
        public var datatype: String = ""
        /// `shape` (field 3).
        public var shape = TensorShape()
        /// `parameters` (field 4).
        public var parameters = [String: InferParameter]()
        /// A summary of `contents` (field 5); nil when the field is absent.
        public var contents: ContentsSummary?

        /// An input with every field at its default.
        public init() {}
    }

    /// How many elements each typed field of an `inference.InferTensorContents` holds, counted
    /// from the wire (packed or not, over every occurrence of the field), and whether the message
    /// held fields this decoder does not know.
    public struct ContentsSummary: Sendable, Hashable {
        /// `bool_contents` (field 1).
        public var boolCount = 0
        /// `int_contents` (field 2).
        public var intCount = 0
        /// `int64_contents` (field 3).
        public var int64Count = 0
        /// `uint_contents` (field 4).
        public var uintCount = 0
        /// `uint64_contents` (field 5).
        public var uint64Count = 0
        /// `fp32_contents` (field 6).
        public var fp32Count = 0
        /// `fp64_contents` (field 7).
        public var fp64Count = 0
        /// `bytes_contents` (field 8).
        public var bytesCount = 0
        /// True when the contents held a field other than 1 to 8.
        public var hasUnknownFields = false

        /// A summary of empty contents.
        public init() {}

        /// The summary of contents already decoded: what a scan of their encoding gives.
        public init(_ contents: InferTensorContents) {
            boolCount = contents.boolContents.count
            intCount = contents.intContents.count
            int64Count = contents.int64Contents.count
            uintCount = contents.uintContents.count
            uint64Count = contents.uint64Contents.count
            fp32Count = contents.fp32Contents.count
            fp64Count = contents.fp64Contents.count
            bytesCount = contents.bytesContents.count
            hasUnknownFields = !contents.unknownFields.isEmpty
        }

        /// True when the decoded contents would equal `InferTensorContents()`: no element in
        /// any typed field and no unknown field.
        public var isEmpty: Bool {
            boolCount == 0 && intCount == 0 && int64Count == 0 && uintCount == 0 && uint64Count == 0
                && fp32Count == 0 && fp64Count == 0 && bytesCount == 0 && !hasUnknownFields
        }

        /// The element count of the typed field that carries `datatype` (see
        /// `TensorDatatype.contentsField`); nil for FP16 and BF16, which have none.
        public func elementCount(for datatype: TensorDatatype) -> Int? {
            switch datatype {
            case .bool: return boolCount
            case .int8, .int16, .int32: return intCount
            case .int64: return int64Count
            case .uint8, .uint16, .uint32: return uintCount
            case .uint64: return uint64Count
            case .fp32: return fp32Count
            case .fp64: return fp64Count
            case .bytes: return bytesCount
            case .fp16, .bf16: return nil
            }
        }
    }

    /// One requested output, as `ModelInferRequest.InferRequestedOutputTensor` has it.
    public struct RequestedOutput: Sendable, Hashable {
        /// `name` (field 1).
        public var name: String = ""
        /// `parameters` (field 2).
        public var parameters = [String: InferParameter]()

        /// An output with every field at its default.
        public init() {}
    }

    /// `model_name` (field 1).
    public var modelName: String = ""
    /// `model_version` (field 2); empty lets the server choose.
    public var modelVersion: String = ""
    /// `id` (field 3).
    public var id: String = ""
    /// `parameters` (field 4).
    public var parameters = [String: InferParameter]()
    /// `inputs` (field 5), in order.
    public var inputs: [Input] = []
    /// `outputs` (field 6), in order.
    public var outputs: [RequestedOutput] = []
    /// `raw_input_contents` (field 7), in order, as slices of the scanned buffer.
    public var rawInputContents: [ByteBuffer] = []

    /// Scans the encoded request in `bytes`.
    ///
    /// - Throws: `ProtoDecodingError`, the very error `ModelInferRequest(decoding:limits:)`
    ///   throws for the same bytes and limits, when they are not a valid request.
    public init(decoding bytes: ByteBuffer, limits: ProtoLimits = .default) throws {
        var reader = try ProtoReader(buffer: bytes, limits: limits)
        while let tag = try reader.nextTag() {
            do {
                switch tag.fieldNumber {
                case 1: modelName = try reader.readString(tag)
                case 2: modelVersion = try reader.readString(tag)
                case 3: id = try reader.readString(tag)
                case 4: try reader.readMapEntry(tag, into: &parameters)
                case 5:
                    // Scanned in place at the end of the array, not built apart and copied in.
                    if inputs.capacity == 0 { inputs.reserveCapacity(4) }
                    inputs.append(Input())
                    let last = inputs.count &- 1
                    try reader.readEmbeddedMessage(tag) { try Self.scanInput(&$0, into: &inputs[last]) }
                case 6:
                    outputs.append(try reader.readEmbeddedMessage(tag, Self.scanOutput))
                case 7: try reader.appendBytes(tag, to: &rawInputContents)
                default: try reader.skipField(tag)
                }
            } catch var error as ProtoDecodingError {
                error.path.insert(.init(message: ModelInferRequest.protoMessageName, fieldNumber: tag.fieldNumber), at: 0)
                throw error
            }
        }
    }

    /// What a scan of `request`'s encoding gives, taken from the decoded value without encoding
    /// it (for callers that already hold a decoded request).
    public init(_ request: ModelInferRequest) {
        modelName = request.modelName
        modelVersion = request.modelVersion
        id = request.id
        parameters = request.parameters
        inputs = request.inputs.map { tensor in
            var input = Input()
            input.name = tensor.name
            input.datatype = tensor.datatype
            input.shape = tensor.shape
            input.parameters = tensor.parameters
            input.contents = tensor.contents.map(ContentsSummary.init)
            return input
        }
        outputs = request.outputs.map { tensor in
            var output = RequestedOutput()
            output.name = tensor.name
            output.parameters = tensor.parameters
            return output
        }
        rawInputContents = request.rawInputContents
    }

    private static func scanInput(_ reader: inout ProtoReader, into input: inout Input) throws {
        while let tag = try reader.nextTag() {
            do {
                switch tag.fieldNumber {
                case 1: input.name = try reader.readString(tag)
                case 2: input.datatype = try reader.readString(tag, knownValue: TensorDatatype.protocolName(spelledBy:))
                case 3: try reader.readRepeated(ProtoInt64.self, tag, into: &input.shape)
                case 4: try reader.readMapEntry(tag, into: &input.parameters)
                case 5:
                    // A singular message field that occurs more than once merges: counts add up.
                    var summary = input.contents ?? ContentsSummary()
                    try reader.readEmbeddedMessage(tag) { try summary.scan(&$0) }
                    input.contents = summary
                default: try reader.skipField(tag)
                }
            } catch var error as ProtoDecodingError {
                error.path.insert(
                    .init(message: ModelInferRequest.InferInputTensor.protoMessageName, fieldNumber: tag.fieldNumber), at: 0)
                throw error
            }
        }
    }

    private static func scanOutput(_ reader: inout ProtoReader) throws -> RequestedOutput {
        var output = RequestedOutput()
        while let tag = try reader.nextTag() {
            do {
                switch tag.fieldNumber {
                case 1: output.name = try reader.readString(tag)
                case 2: try reader.readMapEntry(tag, into: &output.parameters)
                default: try reader.skipField(tag)
                }
            } catch var error as ProtoDecodingError {
                error.path.insert(
                    .init(message: ModelInferRequest.InferRequestedOutputTensor.protoMessageName, fieldNumber: tag.fieldNumber),
                    at: 0)
                throw error
            }
        }
        return output
    }
}

extension ModelInferRequestScan.ContentsSummary {
    /// Adds the counts of one occurrence of an `InferTensorContents` message.
    fileprivate mutating func scan(_ reader: inout ProtoReader) throws {
        while let tag = try reader.nextTag() {
            do {
                switch tag.fieldNumber {
                case 1: boolCount &+= try reader.countRepeated(ProtoBool.self, tag)
                case 2: intCount &+= try reader.countRepeated(ProtoInt32.self, tag)
                case 3: int64Count &+= try reader.countRepeated(ProtoInt64.self, tag)
                case 4: uintCount &+= try reader.countRepeated(ProtoUInt32.self, tag)
                case 5: uint64Count &+= try reader.countRepeated(ProtoUInt64.self, tag)
                case 6: fp32Count &+= try reader.countRepeated(ProtoFloat.self, tag)
                case 7: fp64Count &+= try reader.countRepeated(ProtoDouble.self, tag)
                case 8:
                    try reader.skipBytes(tag)
                    bytesCount &+= 1
                default:
                    try reader.skipField(tag)
                    hasUnknownFields = true
                }
            } catch var error as ProtoDecodingError {
                error.path.insert(.init(message: InferTensorContents.protoMessageName, fieldNumber: tag.fieldNumber), at: 0)
                throw error
            }
        }
    }
}
