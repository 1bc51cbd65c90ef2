import InferenceProtocol
import NIOCore
import ProtoWire

/// How close two floating-point elements must be to count as equal: numpy's `isclose`,
/// `|a - b| <= absolute + relative * |b|` with `a` the primary's element and `b` the shadow's;
/// NaN equals NaN (a model that answers NaN in both variants agrees with itself).
struct ShadowTolerance: Sendable, Hashable {
    var absolute: Double
    var relative: Double

    static let `default` = ShadowTolerance(
        absolute: ModelRoute.Shadow.defaultAbsoluteTolerance, relative: ModelRoute.Shadow.defaultRelativeTolerance)

    init(absolute: Double, relative: Double) {
        self.absolute = absolute
        self.relative = relative
    }

    init(_ shadow: ModelRoute.Shadow) {
        self.init(absolute: shadow.absoluteTolerance, relative: shadow.relativeTolerance)
    }

    @inline(__always)
    func isClose(_ a: Double, _ b: Double) -> Bool {
        if a == b || (a.isNaN && b.isNaN) { return true }
        return abs(a - b) <= absolute + relative * abs(b)
    }
}

/// What comparing a primary's answer with its shadow's found. A pure value: it may be made on
/// the thread pool and recorded on the loop.
struct ShadowComparison: Sendable, Equatable {
    /// Nil when the answers agree; else why not ("output 'OUTPUT0': shape [1, 16] vs [1, 8]",
    /// "3 of 32 elements differ"), for logs and tests (never a metric label).
    var difference: String?
    /// Elements compared, over every output (0 when the outputs' names, datatypes or shapes
    /// already differ).
    var comparedElements: UInt64 = 0
    /// Of those, the ones that differ (beyond the tolerance for floating point).
    var mismatchedElements: UInt64 = 0
    /// The largest `|primary - shadow|` over the numeric elements (integer, BOOL and floating
    /// point; BYTES are not numbers), NaN and infinite differences left out; nil when no
    /// numeric element was compared.
    var maxAbsoluteDifference: Double?

    var matches: Bool { difference == nil }

    /// Decodes both `ModelInferResponse`s and compares their outputs: the same names, datatypes
    /// and shapes, then element by element, integer, BOOL and BYTES exactly and FP16, BF16,
    /// FP32 and FP64 within `tolerance`. The data may travel in `raw_output_contents` on one
    /// side and typed contents on the other. Model name, version, id and parameters are not
    /// compared (the versions differ by design).
    static func compare(primary: ByteBuffer, shadow: ByteBuffer, tolerance: ShadowTolerance) -> ShadowComparison {
        let left: [String: OutputTensor]
        let right: [String: OutputTensor]
        do {
            left = try OutputTensor.outputs(of: primary)
        } catch {
            return ShadowComparison(difference: "the primary's answer is not a valid inference.ModelInferResponse: \(error)")
        }
        do {
            right = try OutputTensor.outputs(of: shadow)
        } catch {
            return ShadowComparison(difference: "the shadow's answer is not a valid inference.ModelInferResponse: \(error)")
        }
        for name in left.keys.sorted() where right[name] == nil {
            return ShadowComparison(difference: "output '\(name)' is missing from the shadow's answer")
        }
        for name in right.keys.sorted() where left[name] == nil {
            return ShadowComparison(difference: "output '\(name)' is missing from the primary's answer")
        }
        var result = ShadowComparison()
        var reasons: [String] = []
        for name in left.keys.sorted() {
            let (a, b) = (left[name]!, right[name]!)
            guard a.datatype == b.datatype else {
                return ShadowComparison(difference: "output '\(name)': datatype \(a.datatype) vs \(b.datatype)")
            }
            guard a.shape == b.shape else {
                return ShadowComparison(difference: "output '\(name)': shape \(a.shape) vs \(b.shape)")
            }
            let before = result.mismatchedElements
            if let problem = result.compareElements(a, b, tolerance: tolerance) {
                return ShadowComparison(difference: "output '\(name)': \(problem)")
            }
            if result.mismatchedElements > before { reasons.append("'\(name)': \(result.mismatchedElements - before) elements") }
        }
        if !reasons.isEmpty {
            result.difference = "\(result.mismatchedElements) of \(result.comparedElements) elements differ (\(reasons.joined(separator: ", ")))"
        }
        return result
    }

    /// Adds one output's element counts; returns a problem that makes them incomparable.
    private mutating func compareElements(_ a: OutputTensor, _ b: OutputTensor, tolerance: ShadowTolerance) -> String? {
        let x: OutputTensor.Elements
        let y: OutputTensor.Elements
        do {
            x = try a.elements()
            y = try b.elements()
        } catch {
            return "\(error)"
        }
        switch (x, y) {
        case (.floats(let x), .floats(let y)):
            guard x.count == y.count else { return "\(x.count) vs \(y.count) elements" }
            for index in x.indices {
                let close = tolerance.isClose(x[index], y[index])
                if !close { mismatchedElements += 1 }
                let difference = abs(x[index] - y[index])
                if difference.isFinite { noteDifference(difference) } else if close { noteDifference(0) }
            }
            comparedElements += UInt64(x.count)
        case (.integers(let x), .integers(let y)):
            guard x.count == y.count else { return "\(x.count) vs \(y.count) elements" }
            for index in x.indices {
                if x[index] != y[index] { mismatchedElements += 1 }
                noteDifference(x[index].distance(to: y[index]))
            }
            comparedElements += UInt64(x.count)
        case (.bytes(let x), .bytes(let y)):
            guard x.count == y.count else { return "\(x.count) vs \(y.count) elements" }
            for index in x.indices where x[index] != y[index] { mismatchedElements += 1 }
            comparedElements += UInt64(x.count)
        default:
            return "incomparable contents"
        }
        return nil
    }

    private mutating func noteDifference(_ difference: Double) {
        maxAbsoluteDifference = max(maxAbsoluteDifference ?? 0, difference)
    }
}

/// An integer element of any width and signedness, compared exactly.
enum IntegerElement: Equatable {
    case signed(Int64)
    case unsigned(UInt64)

    static func == (a: Self, b: Self) -> Bool {
        switch (a, b) {
        case (.signed(let x), .signed(let y)): x == y
        case (.unsigned(let x), .unsigned(let y)): x == y
        case (.signed(let x), .unsigned(let y)), (.unsigned(let y), .signed(let x)): x >= 0 && UInt64(x) == y
        }
    }

    /// `|self - other|`, as a Double (inexact only beyond 2^53).
    func distance(to other: Self) -> Double {
        abs(value - other.value)
    }

    private var value: Double {
        switch self {
        case .signed(let x): Double(x)
        case .unsigned(let x): Double(x)
        }
    }
}

/// One output of a `ModelInferResponse`, with its data from typed contents or raw contents.
struct OutputTensor {
    enum Elements {
        case floats([Double])
        case integers([IntegerElement])
        case bytes([ByteBuffer])
    }

    struct Malformed: Error, CustomStringConvertible {
        var description: String
    }

    let datatype: String
    let shape: [Int64]
    let contents: InferTensorContents?
    let raw: ByteBuffer?

    /// The outputs of an encoded `ModelInferResponse`, by name.
    static func outputs(of bytes: ByteBuffer) throws -> [String: OutputTensor] {
        let response = try ModelInferResponse(decoding: bytes)
        var outputs: [String: OutputTensor] = [:]
        for (index, output) in response.outputs.enumerated() {
            guard outputs[output.name] == nil else { throw Malformed(description: "output '\(output.name)' appears twice") }
            let raw = index < response.rawOutputContents.count ? response.rawOutputContents[index] : nil
            outputs[output.name] = OutputTensor(datatype: output.datatype, shape: Array(output.shape), contents: output.contents, raw: raw)
        }
        return outputs
    }

    /// The elements, normalised: raw little-endian contents and typed contents give the same.
    func elements() throws -> Elements {
        guard let type = TensorDatatype(protocolName: datatype) else { throw Malformed(description: "unknown datatype '\(datatype)'") }
        if let raw { return try Self.decodeRaw(raw, type) }
        let contents = contents ?? InferTensorContents()
        switch type {
        case .bool: return .integers(contents.boolContents.map { .unsigned($0 ? 1 : 0) })
        case .int8, .int16, .int32: return .integers(contents.intContents.map { .signed(Int64($0)) })
        case .int64: return .integers(contents.int64Contents.map { .signed($0) })
        case .uint8, .uint16, .uint32: return .integers(contents.uintContents.map { .unsigned(UInt64($0)) })
        case .uint64: return .integers(contents.uint64Contents.map { .unsigned($0) })
        case .fp32: return .floats(contents.fp32Contents.map { Double($0) })
        case .fp64: return .floats(contents.fp64Contents)
        case .bytes: return .bytes(contents.bytesContents)
        case .fp16, .bf16: throw Malformed(description: "\(datatype) data without raw contents")
        }
    }

    private static func decodeRaw(_ raw: ByteBuffer, _ type: TensorDatatype) throws -> Elements {
        if type == .bytes {
            var buffer = raw
            var elements: [ByteBuffer] = []
            while buffer.readableBytes > 0 {
                guard let length = buffer.readInteger(endianness: .little, as: UInt32.self), let element = buffer.readSlice(length: Int(length))
                else { throw Malformed(description: "raw BYTES contents end inside an element") }
                elements.append(element)
            }
            return .bytes(elements)
        }
        let size = type.elementSize!
        guard raw.readableBytes % size == 0 else {
            throw Malformed(description: "\(raw.readableBytes) raw bytes are not a whole number of \(type) elements")
        }
        let count = raw.readableBytes / size
        let start = raw.readerIndex
        func integer<T: FixedWidthInteger>(_: T.Type, _ index: Int) -> T {
            raw.getInteger(at: start + index * size, endianness: .little, as: T.self)!
        }
        switch type {
        case .bool, .uint8: return .integers((0..<count).map { .unsigned(UInt64(integer(UInt8.self, $0))) })
        case .uint16: return .integers((0..<count).map { .unsigned(UInt64(integer(UInt16.self, $0))) })
        case .uint32: return .integers((0..<count).map { .unsigned(UInt64(integer(UInt32.self, $0))) })
        case .uint64: return .integers((0..<count).map { .unsigned(integer(UInt64.self, $0)) })
        case .int8: return .integers((0..<count).map { .signed(Int64(integer(Int8.self, $0))) })
        case .int16: return .integers((0..<count).map { .signed(Int64(integer(Int16.self, $0))) })
        case .int32: return .integers((0..<count).map { .signed(Int64(integer(Int32.self, $0))) })
        case .int64: return .integers((0..<count).map { .signed(integer(Int64.self, $0)) })
        case .fp16: return .floats((0..<count).map { Self.halfToDouble(integer(UInt16.self, $0)) })
        case .bf16: return .floats((0..<count).map { Double(Float(bitPattern: UInt32(integer(UInt16.self, $0)) << 16)) })
        case .fp32: return .floats((0..<count).map { Double(Float(bitPattern: integer(UInt32.self, $0))) })
        case .fp64: return .floats((0..<count).map { Double(bitPattern: integer(UInt64.self, $0)) })
        case .bytes: return .bytes([])  // handled above
        }
    }

    /// IEEE 754 binary16 to Double (without `Float16`, which not every platform has).
    static func halfToDouble(_ bits: UInt16) -> Double {
        let sign: Double = bits & 0x8000 != 0 ? -1 : 1
        let exponent = Int((bits >> 10) & 0x1f)
        let fraction = Double(bits & 0x3ff)
        switch exponent {
        case 0: return sign * fraction * 0x1p-24
        case 0x1f: return fraction == 0 ? sign * .infinity : .nan
        default: return sign * (1 + fraction / 1024) * Double(sign: .plus, exponent: exponent - 15, significand: 1)
        }
    }
}
