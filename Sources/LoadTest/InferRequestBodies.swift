import Foundation
import InferenceProtocol
import NIOCore
import ProtoWire

/// One input tensor of the requests a run sends: its name, datatype and shape (batch dimension
/// included, as sent).
public struct InputTensorSpec: Sendable, Equatable, Codable {
    /// Tensor name (`INPUT0`).
    public var name: String
    /// Datatype as the protocol spells it (`INT32`).
    public var datatype: String
    /// The shape sent, every dimension fixed.
    public var shape: [Int64]

    /// A spec from its values.
    public init(name: String, datatype: String, shape: [Int64]) {
        self.name = name
        self.datatype = datatype
        self.shape = shape
    }

    /// Parses `NAME:DATATYPE:D1,D2` (`--input INPUT0:INT32:1,16`); nil when malformed.
    public init?(parsing text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, !parts[0].isEmpty, TensorDatatype(protocolName: parts[1].uppercased()) != nil,
              let shape = Self.parseDimensions(parts[2]), !shape.contains(where: { $0 < 0 })
        else { return nil }
        self.init(name: parts[0], datatype: parts[1].uppercased(), shape: shape)
    }

    /// `1,16` as dimensions; nil when a dimension is not an integer. Empty text is a scalar.
    public static func parseDimensions(_ text: String) -> [Int64]? {
        if text.isEmpty { return [] }
        var dims: [Int64] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let value = Int64(part.trimmingCharacters(in: .whitespaces)) else { return nil }
            dims.append(value)
        }
        return dims
    }

    /// Elements in the tensor.
    public var elementCount: Int { shape.reduce(1) { $0 * Int($1) } }
}

/// Where tensor data comes from: perf_analyzer's `--input-data random|zero|FILE`.
public enum InputDataSource: Sendable, Equatable {
    /// Random values (small non-negative integers, floats in [0, 1), decimal strings for BYTES),
    /// drawn once: every call sends the same bytes.
    case random
    /// All zeros ("0" strings for BYTES).
    case zero
    /// perf_analyzer's JSON format: `{"data": [{"INPUT0": [1, 2], "INPUT1": {"content": [...],
    /// "shape": [1, 2]}}, ...]}`; each entry becomes one request, sent in turn.
    case file(String)

    /// `random`, `zero`, or a path.
    public init(argument: String) {
        switch argument {
        case "random": self = .random
        case "zero", "zeros": self = .zero
        default: self = .file(argument)
        }
    }
}

/// A mistake in the inputs: a shape that cannot be fixed, data that does not fit.
public struct InputError: Error, CustomStringConvertible, Equatable {
    /// What is wrong and how to fix it.
    public var description: String
    init(_ description: String) { self.description = description }
}

/// Builds the request bodies of a run: the input specs from ModelMetadata and the flags, then
/// each distinct `ModelInferRequest` encoded once. The driver sends these bytes again and again.
public enum InferRequestBodies {
    /// The inputs to send for a model with metadata `inputs`: the `--shape` overrides (a full
    /// shape, or one without a leading variable batch dimension, which `batchSize` fills), else
    /// the metadata's shape with a leading -1 replaced by `batchSize`.
    ///
    /// - Throws: `InputError` when a dimension stays variable or a `--shape` names no input.
    public static func resolve(
        metadata inputs: [ModelMetadataResponse.TensorMetadata],
        shapes: [String: [Int64]],
        batchSize: Int
    ) throws -> [InputTensorSpec] {
        for name in shapes.keys where !inputs.contains(where: { $0.name == name }) {
            throw InputError("--shape names '\(name)', which the model does not have (inputs: \(inputs.map(\.name).joined(separator: ", ")))")
        }
        return try inputs.map { input in
            var shape = input.shape
            if let given = shapes[input.name] {
                if given.count + 1 == shape.count, shape.first == -1 {
                    shape = [Int64(batchSize)] + given
                } else {
                    shape = given
                }
            } else if shape.first == -1 {
                shape[0] = Int64(batchSize)
            }
            if shape.contains(where: { $0 < 0 }) {
                throw InputError("input '\(input.name)' has shape \(input.shape) with a variable dimension; give it with --shape \(input.name):\(input.shape.map { $0 < 0 ? "1" : String($0) }.joined(separator: ","))")
            }
            return InputTensorSpec(name: input.name, datatype: input.datatype, shape: shape)
        }
    }

    /// The encoded `ModelInferRequest`s: one for random or zero data, one per entry of a data file.
    public static func make(
        model: String,
        version: String,
        inputs: [InputTensorSpec],
        data: InputDataSource,
        seed: UInt64 = 42
    ) throws -> [ByteBuffer] {
        let tensors: [[ByteBuffer]]
        var shapesPerRequest: [[[Int64]]] = []
        switch data {
        case .random, .zero:
            var random = SplitMix64(seed: seed)
            tensors = [try inputs.map { try generated($0, zero: data == .zero, random: &random) }]
            shapesPerRequest = [inputs.map(\.shape)]
        case .file(let path):
            let entries = try loadDataFile(path, inputs: inputs)
            tensors = entries.map { $0.map { $0.bytes } }
            shapesPerRequest = entries.map { $0.map { $0.shape } }
        }
        return tensors.enumerated().map { index, raw in
            var request = ModelInferRequest()
            request.modelName = model
            request.modelVersion = version
            for (spec, shape) in zip(inputs, shapesPerRequest[index]) {
                var tensor = ModelInferRequest.InferInputTensor()
                tensor.name = spec.name
                tensor.datatype = spec.datatype
                tensor.shape = TensorShape(shape)
                request.inputs.append(tensor)
            }
            request.rawInputContents = raw
            return request.encoded()
        }
    }

    private static func generated(_ spec: InputTensorSpec, zero: Bool, random: inout SplitMix64) throws -> ByteBuffer {
        guard let datatype = TensorDatatype(protocolName: spec.datatype) else {
            throw InputError("input '\(spec.name)' has datatype '\(spec.datatype)', which the protocol does not define")
        }
        let count = spec.elementCount
        let values: [ElementValue] = (0..<count).map { _ in
            if zero { return datatype == .bytes ? .text("0") : .number(0) }
            switch datatype {
            case .bytes: return .text(String(random.next() % 100))
            case .bool: return .number(Double(random.next() & 1))
            case .fp16, .fp32, .fp64, .bf16: return .number(Double(random.next() >> 11) * 0x1.0p-53)
            default: return .number(Double(random.next() % 100))
            }
        }
        return try encode(values, as: datatype, name: spec.name)
    }

    /// One element of a tensor as JSON gives it.
    enum ElementValue: Equatable {
        case number(Double)
        case text(String)
    }

    /// Little-endian raw contents of `values` as `datatype` (BYTES: each element's 4-byte
    /// length and bytes).
    static func encode(_ values: [ElementValue], as datatype: TensorDatatype, name: String) throws -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(values.count * (datatype.elementSize ?? 8))
        for value in values {
            if datatype == .bytes {
                let text: String
                switch value {
                case .text(let string): text = string
                case .number(let number): text = StepResult.number(number)
                }
                buffer.writeInteger(UInt32(text.utf8.count), endianness: .little)
                buffer.writeString(text)
                continue
            }
            guard case .number(let number) = value else {
                throw InputError("input '\(name)' is \(datatype) but its data holds a string")
            }
            guard number.isFinite || datatype == .fp32 || datatype == .fp64, abs(number) < 1.8e19 || !number.isFinite else {
                throw InputError("input '\(name)': \(number) does not fit \(datatype)")
            }
            switch datatype {
            case .bool: buffer.writeInteger(UInt8(number != 0 ? 1 : 0))
            case .uint8: buffer.writeInteger(UInt8(truncatingIfNeeded: Int64(number)))
            case .int8: buffer.writeInteger(Int8(truncatingIfNeeded: Int64(number)))
            case .uint16: buffer.writeInteger(UInt16(truncatingIfNeeded: Int64(number)), endianness: .little)
            case .int16: buffer.writeInteger(Int16(truncatingIfNeeded: Int64(number)), endianness: .little)
            case .uint32: buffer.writeInteger(UInt32(truncatingIfNeeded: Int64(number)), endianness: .little)
            case .int32: buffer.writeInteger(Int32(truncatingIfNeeded: Int64(number)), endianness: .little)
            case .uint64: buffer.writeInteger(number < 0 ? UInt64(bitPattern: Int64(number)) : UInt64(number), endianness: .little)
            case .int64: buffer.writeInteger(number >= 9.2e18 ? Int64.max : Int64(number), endianness: .little)
            case .fp32: buffer.writeInteger(Float(number).bitPattern, endianness: .little)
            case .fp64: buffer.writeInteger(number.bitPattern, endianness: .little)
            case .bf16: buffer.writeInteger(UInt16(Float(number).bitPattern >> 16), endianness: .little)
            case .fp16: buffer.writeInteger(halfBits(Float(number)), endianness: .little)
            case .bytes: break
            }
        }
        return buffer
    }

    /// IEEE 754 binary16 bits of `value` (round toward zero; enough for test data).
    private static func halfBits(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        let sign = UInt16((bits >> 16) & 0x8000)
        let exponent = Int((bits >> 23) & 0xFF) - 127 + 15
        let mantissa = UInt16((bits >> 13) & 0x3FF)
        if value == 0 { return sign }
        if exponent <= 0 { return sign }
        if exponent >= 31 { return sign | 0x7C00 }
        return sign | UInt16(exponent) << 10 | mantissa
    }

    /// The entries of a perf_analyzer input-data file: per entry, per input, its bytes and shape.
    static func loadDataFile(_ path: String, inputs: [InputTensorSpec]) throws -> [[(bytes: ByteBuffer, shape: [Int64])]] {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw InputError("cannot read the input data file \(path): \(error.localizedDescription)")
        }
        return try parseDataFile(data, path: path, inputs: inputs)
    }

    static func parseDataFile(_ data: Data, path: String, inputs: [InputTensorSpec]) throws -> [[(bytes: ByteBuffer, shape: [Int64])]] {
        guard let root = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let entries = root["data"] as? [[String: Any]], !entries.isEmpty
        else {
            throw InputError("\(path): expected perf_analyzer's input data format, {\"data\": [{\"INPUT0\": [...]}, ...]}")
        }
        return try entries.enumerated().map { index, entry in
            try inputs.map { spec in
                guard let datatype = TensorDatatype(protocolName: spec.datatype) else {
                    throw InputError("input '\(spec.name)' has datatype '\(spec.datatype)', which the protocol does not define")
                }
                guard let raw = entry[spec.name] else {
                    throw InputError("\(path): entry \(index) has no data for input '\(spec.name)'")
                }
                var shape = spec.shape
                let content: Any
                if let object = raw as? [String: Any] {
                    content = object["content"] as Any
                    if let given = object["shape"] as? [NSNumber] { shape = given.map { $0.int64Value } }
                } else {
                    content = raw
                }
                let values = flatten(content)
                let expected = shape.reduce(1) { $0 * Int($1) }
                guard values.count == expected else {
                    throw InputError("\(path): entry \(index), input '\(spec.name)': \(values.count) values for shape \(shape) (\(expected) elements)")
                }
                return (try encode(values, as: datatype, name: spec.name), shape)
            }
        }
    }

    private static func flatten(_ value: Any) -> [ElementValue] {
        if let array = value as? [Any] { return array.flatMap(flatten) }
        if let string = value as? String { return [.text(string)] }
        if let number = value as? NSNumber { return [.number(number.doubleValue)] }
        return []
    }
}
