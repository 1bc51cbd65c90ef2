import Gateway
import InferenceProtocol
import NIOCore
import ProtoWire
import XCTest

/// `InferRequestValidator.validate(_: ModelInferRequestScan, config:)` against the validator it
/// replaced (`ReferenceInferRequestValidator`, which validates a fully decoded request): over a
/// table that reaches every failure message for configurations like the built-in models', and
/// over seeded random requests, both give the same batch size or the same message, byte for byte.
final class InferRequestValidatorTests: XCTestCase {
    // MARK: Configurations (as Sources/Worker/Models/BuiltinModels.swift builds them)

    static func batched(_ name: String, _ dataType: DataType, inputs: [String], outputs: [String], dims: [Int64]) -> ModelConfig {
        var config = ModelConfig()
        config.name = name
        config.maxBatchSize = 8
        config.input = inputs.map { ModelInput(name: $0, dataType: dataType, dims: dims) }
        config.output = outputs.map { ModelOutput(name: $0, dataType: dataType, dims: dims) }
        return config
    }

    static let simple = batched("simple", .int32, inputs: ["INPUT0", "INPUT1"], outputs: ["OUTPUT0", "OUTPUT1"], dims: [16])
    static let simpleString = batched("simple_string", .string, inputs: ["INPUT0", "INPUT1"], outputs: ["OUTPUT0", "OUTPUT1"], dims: [16])
    static let simpleIdentity = batched("simple_identity", .string, inputs: ["INPUT0"], outputs: ["OUTPUT0"], dims: [-1])
    static let repeatInt32: ModelConfig = {
        var config = ModelConfig()
        config.name = "repeat_int32"
        config.maxBatchSize = 0
        config.input = [
            ModelInput(name: "IN", dataType: .int32, dims: [-1]),
            ModelInput(name: "DELAY", dataType: .uint32, dims: [-1]),
            ModelInput(name: "WAIT", dataType: .uint32, dims: [1]),
        ]
        config.output = [ModelOutput(name: "OUT", dataType: .int32, dims: [1]), ModelOutput(name: "IDX", dataType: .uint32, dims: [1])]
        return config
    }()
    /// Not built in: an FP16 input (typed contents refused), an optional input, and an input of
    /// a type the gateway cannot check.
    static let mixed: ModelConfig = {
        var config = ModelConfig()
        config.name = "mixed"
        config.maxBatchSize = 0
        var optional = ModelInput(name: "OPT", dataType: .fp64, dims: [2])
        optional.optional = true
        config.input = [
            ModelInput(name: "HALF", dataType: .fp16, dims: [4]),
            optional,
            ModelInput(name: "ODD", dataType: .unrecognized(99), dims: [1]),
            ModelInput(name: "FLAGS", dataType: .bool, dims: [-1, 2]),
            ModelInput(name: "BIG", dataType: .uint64, dims: [-1]),
            ModelInput(name: "WIDE", dataType: .int64, dims: [-1]),
            ModelInput(name: "REAL", dataType: .fp32, dims: [-1]),
        ]
        config.output = [ModelOutput(name: "Y", dataType: .fp32, dims: [1])]
        return config
    }()

    /// An input of every datatype a configuration can name, for the datatype mapping.
    static let allTypes: ModelConfig = {
        var config = ModelConfig()
        config.name = "all_types"
        config.maxBatchSize = 4
        let types: [DataType] = [
            .invalid, .bool, .uint8, .uint16, .uint32, .uint64, .int8, .int16, .int32, .int64, .fp16, .fp32, .fp64, .string,
            .bf16, .unrecognized(99),
        ]
        config.input = types.enumerated().map { ModelInput(name: "IN\($0)", dataType: $1, dims: [2]) }
        config.output = [ModelOutput(name: "OUT", dataType: .fp32, dims: [1])]
        return config
    }()
    /// More inputs and outputs than the validator looks up without a dictionary or tracks in
    /// its bit mask; a repeated input name in the configuration (the first one counts).
    static let wide: ModelConfig = {
        var config = ModelConfig()
        config.name = "wide"
        config.maxBatchSize = 0
        config.input = (0..<70).map { ModelInput(name: "X\($0)", dataType: .int32, dims: [1]) }
        config.input.append(ModelInput(name: "X3", dataType: .fp32, dims: [9]))
        config.input[68].optional = true
        config.output = (0..<20).map { ModelOutput(name: "Y\($0 % 19)", dataType: .int32, dims: [1]) }
        return config
    }()
    /// A few inputs, one repeated in the configuration.
    static let twice: ModelConfig = {
        var config = ModelConfig()
        config.name = "twice"
        config.input = [ModelInput(name: "A", dataType: .int32, dims: [1]), ModelInput(name: "A", dataType: .fp32, dims: [2])]
        config.output = [ModelOutput(name: "B", dataType: .int32, dims: [1]), ModelOutput(name: "B", dataType: .int32, dims: [1])]
        return config
    }()

    // MARK: Building requests

    static func tensor(_ name: String, _ datatype: String, _ shape: TensorShape, contents: InferTensorContents? = nil) -> ModelInferRequest.InferInputTensor {
        var input = ModelInferRequest.InferInputTensor()
        input.name = name
        input.datatype = datatype
        input.shape = shape
        input.contents = contents
        return input
    }

    static func request(_ model: String, _ inputs: [ModelInferRequest.InferInputTensor], raw: [ByteBuffer] = [], outputs: [String] = []) -> ModelInferRequest {
        var request = ModelInferRequest()
        request.modelName = model
        request.id = "7"
        request.inputs = inputs
        request.rawInputContents = raw
        request.outputs = outputs.map { name in
            var output = ModelInferRequest.InferRequestedOutputTensor()
            output.name = name
            return output
        }
        return request
    }

    static func ints(_ count: Int) -> InferTensorContents {
        var contents = InferTensorContents()
        contents.intContents = (0..<count).map(Int32.init)
        return contents
    }

    static func strings(_ count: Int) -> InferTensorContents {
        var contents = InferTensorContents()
        contents.bytesContents = (0..<count).map { ByteBuffer(string: "\($0)") }
        return contents
    }

    /// BYTES raw contents: each element a 4-byte little-endian length and its bytes.
    static func rawStrings(_ count: Int, truncated: Bool = false) -> ByteBuffer {
        var buffer = ByteBuffer()
        for index in 0..<count {
            buffer.writeInteger(UInt32(String(index).utf8.count), endianness: .little)
            buffer.writeString(String(index))
        }
        if truncated { buffer.writeInteger(UInt32(10), endianness: .little); buffer.writeString("short") }
        return buffer
    }

    static func raw(_ bytes: Int) -> ByteBuffer { ByteBuffer(repeating: 0, count: bytes) }

    /// One row: a request, the configuration it is checked against, and a fragment of the
    /// reference validator's message (nil: the request is valid).
    struct Case {
        var label: String
        var config: ModelConfig
        var request: ModelInferRequest
        var expected: String?
    }

    static let table: [Case] = {
        let i0 = tensor("INPUT0", "INT32", [1, 16]), i1 = tensor("INPUT1", "INT32", [1, 16])
        var contentsOnlyUnknown = InferTensorContents()
        var unknownWriter = ProtoWriter()
        unknownWriter.write(ProtoInt32.self, field: 42, 1)
        contentsOnlyUnknown = try! InferTensorContents(decoding: unknownWriter.buffer)
        var fp16Typed = InferTensorContents()
        fp16Typed.fp32Contents = [1, 2, 3, 4]
        var wait = InferTensorContents()
        wait.uintContents = [0]
        var flags = InferTensorContents()
        flags.boolContents = [true, false, true, false]
        var bigs = InferTensorContents()
        bigs.uint64Contents = [1, 2]
        var wides = InferTensorContents()
        wides.int64Contents = [-1, -2, -3]
        var reals = InferTensorContents()
        reals.fp32Contents = [1]
        var opt = InferTensorContents()
        opt.fp64Contents = [1, 2]
        return [
            Case(label: "simple raw, perf_analyzer's shape", config: simple, request: request("simple", [i0, i1], raw: [raw(64), raw(64)]), expected: nil),
            Case(label: "simple typed", config: simple, request: request("simple", [tensor("INPUT0", "INT32", [1, 16], contents: ints(16)), tensor("INPUT1", "INT32", [1, 16], contents: ints(16))], outputs: ["OUTPUT1"]), expected: nil),
            Case(label: "simple batch 8", config: simple, request: request("simple", [tensor("INPUT0", "INT32", [8, 16]), tensor("INPUT1", "INT32", [8, 16])], raw: [raw(512), raw(512)]), expected: nil),
            Case(label: "raw count", config: simple, request: request("simple", [i0, i1], raw: [raw(64), raw(64), raw(64)]), expected: "raw_input_contents; send one raw buffer per input"),
            Case(label: "raw count, one missing", config: simple, request: request("simple", [i0, i1], raw: [raw(64)]), expected: "request has 2 inputs but 1 raw_input_contents"),
            Case(label: "unknown input", config: simple, request: request("simple", [tensor("INPUT9", "INT32", [1, 16]), i1], raw: [raw(64), raw(64)]), expected: "unexpected input 'INPUT9'"),
            Case(label: "duplicate", config: simple, request: request("simple", [i0, i0], raw: [raw(64), raw(64)]), expected: "appears more than once"),
            Case(label: "datatype", config: simple, request: request("simple", [tensor("INPUT0", "FP32", [1, 16]), i1], raw: [raw(64), raw(64)]), expected: "has datatype FP32"),
            Case(label: "no datatype", config: simple, request: request("simple", [tensor("INPUT0", "", [1, 16]), i1], raw: [raw(64), raw(64)]), expected: "has datatype (none)"),
            Case(label: "empty shape", config: simple, request: request("simple", [tensor("INPUT0", "INT32", []), i1], raw: [raw(64), raw(64)]), expected: "has an empty shape"),
            Case(label: "batch 0", config: simple, request: request("simple", [tensor("INPUT0", "INT32", [0, 16]), i1], raw: [raw(0), raw(64)]), expected: "has batch size 0"),
            Case(label: "batch 9", config: simple, request: request("simple", [tensor("INPUT0", "INT32", [9, 16]), i1], raw: [raw(576), raw(64)]), expected: "accepts 1 to 8"),
            Case(label: "batch mismatch", config: simple, request: request("simple", [i0, tensor("INPUT1", "INT32", [2, 16])], raw: [raw(64), raw(128)]), expected: "an earlier input has 1"),
            Case(label: "shape", config: simple, request: request("simple", [tensor("INPUT0", "INT32", [1, 15]), i1], raw: [raw(60), raw(64)]), expected: "has shape [1, 15]; model 'simple' expects [-1, 16]"),
            Case(label: "shape rank", config: simple, request: request("simple", [tensor("INPUT0", "INT32", [1, 16, 1]), i1], raw: [raw(64), raw(64)]), expected: "has shape [1, 16, 1]"),
            Case(label: "long shape", config: simple, request: request("simple", [tensor("INPUT0", "INT32", [1, 2, 3, 4, 5, 6]), i1]), expected: "has shape [1, 2, 3, 4, 5, 6]"),
            Case(label: "raw size", config: simple, request: request("simple", [i0, i1], raw: [raw(63), raw(64)]), expected: "has 63 bytes of raw contents; shape [1, 16] of INT32 needs 64 bytes"),
            Case(label: "raw size overflow", config: repeatInt32, request: request("repeat_int32", [tensor("IN", "INT32", [Int64.max / 2])], raw: [raw(4)]), expected: "needs more than Int64.max bytes"),
            Case(label: "element count overflow", config: repeatInt32, request: request("repeat_int32", [tensor("IN", "INT32", [Int64.max])], raw: [raw(4)]), expected: "needs more than Int64.max bytes"),
            Case(label: "both typed and raw", config: simple, request: request("simple", [tensor("INPUT0", "INT32", [1, 16], contents: ints(16)), i1], raw: [raw(64), raw(64)]), expected: "has both typed contents and raw_input_contents"),
            Case(label: "unknown-only contents beside raw", config: simple, request: request("simple", [tensor("INPUT0", "INT32", [1, 16], contents: contentsOnlyUnknown), i1], raw: [raw(64), raw(64)]), expected: "has both typed contents"),
            Case(label: "empty contents beside raw", config: simple, request: request("simple", [tensor("INPUT0", "INT32", [1, 16], contents: InferTensorContents()), i1], raw: [raw(64), raw(64)]), expected: nil),
            Case(label: "typed count", config: simple, request: request("simple", [tensor("INPUT0", "INT32", [1, 16], contents: ints(15)), tensor("INPUT1", "INT32", [1, 16], contents: ints(16))]), expected: "has 15 elements in int_contents; shape [1, 16] needs 16"),
            Case(label: "no data at all", config: simple, request: request("simple", [i0, i1]), expected: "has 0 elements in int_contents"),
            Case(label: "strings raw", config: simpleString, request: request("simple_string", [tensor("INPUT0", "BYTES", [1, 16]), tensor("INPUT1", "BYTES", [1, 16])], raw: [rawStrings(16), rawStrings(16)]), expected: nil),
            Case(label: "strings typed", config: simpleString, request: request("simple_string", [tensor("INPUT0", "BYTES", [1, 16], contents: strings(16)), tensor("INPUT1", "BYTES", [1, 16], contents: strings(16))]), expected: nil),
            Case(label: "malformed BYTES raw", config: simpleString, request: request("simple_string", [tensor("INPUT0", "BYTES", [1, 16]), tensor("INPUT1", "BYTES", [1, 16])], raw: [rawStrings(3, truncated: true), rawStrings(16)]), expected: "malformed BYTES raw contents: element 3 runs past the end"),
            Case(label: "malformed BYTES raw, short prefix", config: simpleString, request: request("simple_string", [tensor("INPUT0", "BYTES", [1, 16]), tensor("INPUT1", "BYTES", [1, 16])], raw: [raw(3), rawStrings(16)]), expected: "element 0 runs past the end"),
            Case(label: "BYTES raw count", config: simpleString, request: request("simple_string", [tensor("INPUT0", "BYTES", [1, 16]), tensor("INPUT1", "BYTES", [1, 16])], raw: [rawStrings(15), rawStrings(16)]), expected: "has 15 BYTES elements in raw contents; shape [1, 16] needs 16"),
            Case(label: "BYTES typed count", config: simpleString, request: request("simple_string", [tensor("INPUT0", "BYTES", [1, 16], contents: strings(17)), tensor("INPUT1", "BYTES", [1, 16], contents: strings(16))]), expected: "has 17 elements in bytes_contents"),
            Case(label: "identity any length", config: simpleIdentity, request: request("simple_identity", [tensor("INPUT0", "BYTES", [2, 5], contents: strings(10))]), expected: nil),
            Case(label: "identity negative dim", config: simpleIdentity, request: request("simple_identity", [tensor("INPUT0", "BYTES", [1, -1])]), expected: "has shape [1, -1]; model 'simple_identity' expects [-1, -1]"),
            Case(label: "repeat valid", config: repeatInt32, request: request("repeat_int32", [tensor("IN", "INT32", [3], contents: ints(3)), tensor("DELAY", "UINT32", [0], contents: InferTensorContents()), tensor("WAIT", "UINT32", [1], contents: wait)], outputs: ["OUT", "IDX"]), expected: nil),
            Case(label: "repeat shape", config: repeatInt32, request: request("repeat_int32", [tensor("IN", "INT32", [1, 3])]), expected: "model 'repeat_int32' expects [-1]"),
            Case(label: "missing input", config: repeatInt32, request: request("repeat_int32", [tensor("IN", "INT32", [3], contents: ints(3)), tensor("WAIT", "UINT32", [1], contents: wait)]), expected: "input 'DELAY' of model 'repeat_int32' is missing"),
            Case(label: "missing input, simple", config: simple, request: request("simple", [i0], raw: [raw(64)]), expected: "input 'INPUT1' of model 'simple' is missing"),
            Case(label: "unknown output", config: simple, request: request("simple", [i0, i1], raw: [raw(64), raw(64)], outputs: ["OUTPUT0", "OUTPUT7"]), expected: "requested output 'OUTPUT7' is not an output of model 'simple'; it has: OUTPUT0, OUTPUT1"),
            Case(label: "fp16 typed", config: mixed, request: request("mixed", [tensor("HALF", "FP16", [4], contents: fp16Typed)]), expected: "input 'HALF' of datatype FP16 must be sent as raw_input_contents"),
            Case(label: "fp16 raw", config: mixed, request: request("mixed", [tensor("HALF", "FP16", [4]), tensor("ODD", "(a type this gateway cannot check)", [1])], raw: [raw(8), rawStrings(1)]), expected: "is missing"),
            Case(label: "unknown config type typed", config: mixed, request: request("mixed", [tensor("ODD", "(a type this gateway cannot check)", [1])]), expected: "of datatype (a type this gateway cannot check) must be sent as raw_input_contents"),
            Case(label: "every typed field", config: mixed, request: request("mixed", [
                tensor("HALF", "FP16", [4]), tensor("OPT", "FP64", [2]), tensor("ODD", "(a type this gateway cannot check)", [1]),
                tensor("FLAGS", "BOOL", [2, 2]), tensor("BIG", "UINT64", [2]), tensor("WIDE", "INT64", [3]), tensor("REAL", "FP32", [1]),
            ], raw: [raw(8), raw(16), rawStrings(1), raw(4), raw(16), raw(24), raw(4)]), expected: nil),
            Case(label: "typed bool, uint64, int64, fp32, fp64", config: mixed, request: request("mixed", [
                tensor("OPT", "FP64", [2], contents: opt), tensor("FLAGS", "BOOL", [2, 2], contents: flags), tensor("BIG", "UINT64", [2], contents: bigs),
                tensor("WIDE", "INT64", [3], contents: wides), tensor("REAL", "FP32", [2], contents: reals),
            ]), expected: "has 1 elements in fp32_contents; shape [2] needs 2"),
            Case(label: "optional input absent", config: mixed, request: request("mixed", [
                tensor("HALF", "FP16", [4]), tensor("ODD", "(a type this gateway cannot check)", [1]),
                tensor("FLAGS", "BOOL", [0, 2]), tensor("BIG", "UINT64", [0]), tensor("WIDE", "INT64", [0]), tensor("REAL", "FP32", [0]),
            ], raw: [raw(8), rawStrings(1), raw(0), raw(0), raw(0), raw(0)], outputs: ["Y"]), expected: nil),
            Case(label: "wide valid", config: wide, request: request("wide", (0..<70).map { tensor("X\($0)", "INT32", [1], contents: ints(1)) }, outputs: ["Y18", "Y0"]), expected: nil),
            Case(label: "wide without its optional input", config: wide, request: request("wide", (0..<70).map { tensor("X\($0)", "INT32", [1], contents: ints(1)) }.filter { $0.name != "X68" }), expected: nil),
            Case(label: "wide duplicate past 64", config: wide, request: request("wide", (0..<70).map { tensor("X\($0)", "INT32", [1], contents: ints(1)) } + [tensor("X66", "INT32", [1], contents: ints(1))]), expected: "input 'X66' appears more than once"),
            Case(label: "wide missing past 64", config: wide, request: request("wide", (0..<70).map { tensor("X\($0)", "INT32", [1], contents: ints(1)) }.filter { $0.name != "X65" }), expected: "input 'X65' of model 'wide' is missing"),
            Case(label: "wide unknown input", config: wide, request: request("wide", [tensor("X70", "INT32", [1])]), expected: "unexpected input 'X70' for model 'wide'; it takes: X0, X1, X10"),
            Case(label: "wide unknown output", config: wide, request: request("wide", (0..<70).map { tensor("X\($0)", "INT32", [1], contents: ints(1)) }, outputs: ["Y19"]), expected: "it has: Y0, Y1, Y10, Y11"),
            Case(label: "repeated spec name, first wins", config: twice, request: request("twice", [tensor("A", "INT32", [1], contents: ints(1))], outputs: ["B"]), expected: nil),
            Case(label: "repeated spec name, second type", config: twice, request: request("twice", [tensor("A", "FP32", [2])]), expected: "has datatype FP32; model 'twice' expects INT32"),
            Case(label: "repeated spec name, twice", config: twice, request: request("twice", [tensor("A", "INT32", [1], contents: ints(1)), tensor("A", "INT32", [1], contents: ints(1))]), expected: "appears more than once"),
            Case(label: "unknown output of repeated names", config: twice, request: request("twice", [tensor("A", "INT32", [1], contents: ints(1))], outputs: ["C"]), expected: "it has: B"),
        ]
    }()

    // MARK: The check

    /// The result both validators should give: a batch size or a message.
    enum Outcome: Equatable {
        case valid(Int64)
        case invalid(String)
    }

    static func reference(_ request: ModelInferRequest, _ config: ModelConfig) -> Outcome {
        do throws(ReferenceInferRequestValidator.Failure) {
            return .valid(try ReferenceInferRequestValidator.validate(request, config: config))
        } catch {
            return .invalid(error.description)
        }
    }

    static func scanned(_ bytes: ByteBuffer, _ config: ModelConfig) throws -> Outcome {
        let scan = try ModelInferRequestScan(decoding: bytes)
        do throws(InferRequestValidator.Failure) {
            return .valid(try InferRequestValidator.validate(scan, config: config))
        } catch {
            return .invalid(error.description)
        }
    }

    func testTheScanValidatorGivesTheReferenceResultOnEveryRowOfTheTable() throws {
        for row in Self.table {
            let bytes = row.request.encoded()
            // The reference sees what the gateway used to see: the decoded bytes.
            let decoded = try ModelInferRequest(decoding: bytes)
            let expected = Self.reference(decoded, row.config)
            switch (expected, row.expected) {
            case (.valid, nil): break
            case (.invalid(let message), let fragment?):
                XCTAssertTrue(message.contains(fragment), "\(row.label): the reference said \(message)")
            default:
                XCTFail("\(row.label): the table expects \(row.expected ?? "a valid request"), the reference gave \(expected)")
            }
            XCTAssertEqual(try Self.scanned(bytes, row.config), expected, row.label)
        }
    }

    /// Random requests over the table's models: names, datatypes, shapes, raw sizes and typed
    /// contents drawn near the valid ones, so each check is reached often, valid or not.
    func testTheScanValidatorGivesTheReferenceResultOnRandomRequests() throws {
        var random = SplitMix64(seed: 0x7A11_DA7E)
        let configs = [Self.simple, Self.simpleString, Self.simpleIdentity, Self.repeatInt32, Self.mixed, Self.allTypes, Self.wide, Self.twice]
        let datatypes = TensorDatatype.allCases.map(\.rawValue) + ["", "(a type this gateway cannot check)", "int32"]
        var outcomes: [String: Int] = [:]
        for round in 0..<4000 {
            let config = configs[Int(random.next() % UInt64(configs.count))]
            let names = config.input.map(\.name) + ["EXTRA"]
            let inputCount = random.next() % 4 == 0 ? Int(random.next() % UInt64(config.input.count + 2)) : config.input.count
            let useRaw = random.next() % 2 == 0
            var inputs: [ModelInferRequest.InferInputTensor] = []
            var raws: [ByteBuffer] = []
            for index in 0..<inputCount {
                let name = random.next() % 16 == 0 ? names[Int(random.next() % UInt64(names.count))] : names[index % names.count]
                let spec = config.input.first { $0.name == name }
                let datatype = random.next() % 16 == 0 || spec == nil
                    ? datatypes[Int(random.next() % UInt64(datatypes.count))]
                    : spec!.dataType.protocolName ?? "(a type this gateway cannot check)"
                var shape = TensorShape()
                if config.maxBatchSize > 0 { shape.append(random.next() % 4 == 0 ? Int64(random.next() % 11) - 1 : 2) }
                for dim in spec?.dims ?? [2] {
                    shape.append(dim == -1 || random.next() % 6 == 0 ? Int64(random.next() % 5) - (random.next() % 10 == 0 ? 1 : 0) : dim)
                }
                if random.next() % 20 == 0 { shape.append(1) }
                let elements = shape.reduce(1) { $0 * max($1, 0) }
                let count = Int(elements) + (random.next() % 6 == 0 ? Int(random.next() % 3) - 1 : 0)
                let type = TensorDatatype(protocolName: datatype)
                var contents: InferTensorContents?
                if !useRaw || random.next() % 10 == 0 {
                    var typed = InferTensorContents()
                    let n = max(count, 0)
                    switch type {
                    case .bool: typed.boolContents = Array(repeating: true, count: n)
                    case .int8, .int16, .int32: typed.intContents = Array(repeating: -1, count: n)
                    case .int64: typed.int64Contents = Array(repeating: -1, count: n)
                    case .uint8, .uint16, .uint32: typed.uintContents = Array(repeating: 1, count: n)
                    case .uint64: typed.uint64Contents = Array(repeating: 1, count: n)
                    case .fp32, .fp16, .bf16: typed.fp32Contents = Array(repeating: 1, count: n)
                    case .fp64: typed.fp64Contents = Array(repeating: 1, count: n)
                    case .bytes, nil: typed.bytesContents = Array(repeating: ByteBuffer(string: "x"), count: n)
                    }
                    contents = random.next() % 10 == 0 ? InferTensorContents() : typed
                }
                inputs.append(Self.tensor(name, datatype, shape, contents: contents))
                if useRaw {
                    if let size = type?.elementSize {
                        raws.append(Self.raw(max(count, 0) * size))
                    } else {
                        raws.append(Self.rawStrings(max(count, 0), truncated: random.next() % 8 == 0))
                    }
                }
            }
            if useRaw, random.next() % 12 == 0 { raws.append(Self.raw(4)) }
            let outputNames = config.output.map(\.name) + ["NOPE"]
            let outputs = (0..<Int(random.next() % 3)).map { _ in outputNames[Int(random.next() % UInt64(outputNames.count))] }
            let bytes = Self.request(config.name, inputs, raw: raws, outputs: outputs).encoded()
            let expected = Self.reference(try ModelInferRequest(decoding: bytes), config)
            let actual = try Self.scanned(bytes, config)
            XCTAssertEqual(actual, expected, "round \(round)")
            let kind: String
            switch expected {
            case .valid: kind = "valid"
            case .invalid(let message): kind = String(message.split(separator: " ").prefix(3).joined(separator: " "))
            }
            outcomes[kind, default: 0] += 1
        }
        XCTAssertGreaterThan(outcomes["valid", default: 0], 100, "too few valid random requests: \(outcomes)")
    }
}

/// A small seeded generator, so every run tests the same cases.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D4_9BB8_3013_3EB
        return z ^ (z >> 31)
    }
}
