import NIOCore
import ProtoWire
import XCTest

@testable import InferenceProtocol

/// Decodes `message`'s encoding and checks that the same value comes back with nothing left
/// over as an unknown field.
private func assertRoundTrips<M: ProtoMessage>(
    _ message: M, file: StaticString = #filePath, line: UInt = #line
) throws {
    let bytes = message.encodedBytes()
    let decoded = try M(decodingBytes: bytes)
    XCTAssertEqual(decoded, message, "\(M.protoMessageName) did not round-trip", file: file, line: line)
    XCTAssertEqual(decoded.encodedBytes(), bytes, "\(M.protoMessageName) re-encoded differently", file: file, line: line)
}

private func hexBytes(_ hex: String) -> [UInt8] {
    let digits = Array(hex.filter { !$0.isWhitespace })
    return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
}

/// Every message of `model_config.proto` with every field set to something other than its
/// default, built up from the leaves.
private enum FullModelConfig {
    static var resource: ModelRateLimiter.Resource {
        var value = ModelRateLimiter.Resource()
        value.name = "R1"
        value.global = true
        value.count = 4
        return value
    }

    static var rateLimiter: ModelRateLimiter {
        var value = ModelRateLimiter()
        value.resources = [resource, resource]
        value.priority = 2
        return value
    }

    static var secondaryDevice: ModelInstanceGroup.SecondaryDevice {
        var value = ModelInstanceGroup.SecondaryDevice()
        value.kind = .unrecognized(1)  // KIND_NVDLA is the only (default) kind.
        value.deviceID = 3
        return value
    }

    static var instanceGroup: ModelInstanceGroup {
        var value = ModelInstanceGroup()
        value.name = "group0"
        value.kind = .gpu
        value.count = 2
        value.rateLimiter = rateLimiter
        value.gpus = [0, 1]
        value.secondaryDevices = [secondaryDevice]
        value.profile = ["0", "1"]
        value.passive = true
        value.hostPolicy = "policy"
        return value
    }

    static var input: ModelInput {
        var value = ModelInput(name: "INPUT0", dataType: .fp32, dims: [3, -1, 224])
        value.format = .nchw
        value.reshape = ModelTensorReshape(shape: [-1, 224])
        value.isShapeTensor = true
        value.allowRaggedBatch = true
        value.optional = true
        value.isNonLinearFormatIO = true
        return value
    }

    static var output: ModelOutput {
        var value = ModelOutput(name: "OUTPUT0", dataType: .int64, dims: [1000])
        value.reshape = ModelTensorReshape(shape: [1, 1000])
        value.labelFilename = "labels.txt"
        value.isShapeTensor = true
        value.isNonLinearFormatIO = true
        return value
    }

    static var batchInput: BatchInput {
        var value = BatchInput()
        value.kind = .batchItemShapeFlatten
        value.targetName = ["T0", "T1"]
        value.dataType = .int32
        value.sourceInput = ["INPUT0"]
        return value
    }

    static var batchOutput: BatchOutput {
        var value = BatchOutput()
        value.targetName = ["OUTPUT0"]
        value.kind = .unrecognized(7)  // BATCH_SCATTER_WITH_INPUT_SHAPE is the only (default) kind.
        value.sourceInput = ["INPUT0", "INPUT1"]
        return value
    }

    static var graphSpec: ModelOptimizationPolicy.Cuda.GraphSpec {
        typealias GraphSpec = ModelOptimizationPolicy.Cuda.GraphSpec
        var lowerBound = GraphSpec.LowerBound()
        lowerBound.batchSize = 1
        lowerBound.input = ["INPUT0": GraphSpec.Shape(dim: [3, 1, 224])]
        var value = GraphSpec()
        value.batchSize = 8
        value.input = ["INPUT0": GraphSpec.Shape(dim: [3, 224, 224])]
        value.graphLowerBound = lowerBound
        return value
    }

    static var optimization: ModelOptimizationPolicy {
        var graph = ModelOptimizationPolicy.Graph()
        graph.level = 1
        var cuda = ModelOptimizationPolicy.Cuda()
        cuda.graphs = true
        cuda.busyWaitEvents = true
        cuda.graphSpec = [graphSpec]
        cuda.outputCopyStream = true
        var accelerator = ModelOptimizationPolicy.ExecutionAccelerators.Accelerator()
        accelerator.name = "tensorrt"
        accelerator.parameters = ["precision_mode": "FP16"]
        var cpuAccelerator = ModelOptimizationPolicy.ExecutionAccelerators.Accelerator()
        cpuAccelerator.name = "openvino"
        var accelerators = ModelOptimizationPolicy.ExecutionAccelerators()
        accelerators.gpuExecutionAccelerator = [accelerator]
        accelerators.cpuExecutionAccelerator = [cpuAccelerator]
        var value = ModelOptimizationPolicy()
        value.graph = graph
        value.priority = .priorityMax
        value.cuda = cuda
        value.executionAccelerators = accelerators
        value.inputPinnedMemory = .init(enable: true)
        value.outputPinnedMemory = .init(enable: false)
        value.gatherKernelBufferThreshold = 4096
        value.eagerBatching = true
        return value
    }

    static var queuePolicy: ModelQueuePolicy {
        var value = ModelQueuePolicy()
        value.timeoutAction = .delay
        value.defaultTimeoutMicroseconds = 5_000_000
        value.allowTimeoutOverride = true
        value.maxQueueSize = 64
        return value
    }

    static var dynamicBatching: ModelDynamicBatching {
        var value = ModelDynamicBatching()
        value.preferredBatchSize = [4, 8]
        value.maxQueueDelayMicroseconds = 100
        value.preserveOrdering = true
        value.priorityLevels = 3
        value.defaultPriorityLevel = 2
        value.defaultQueuePolicy = queuePolicy
        var other = queuePolicy
        other.maxQueueSize = 1
        value.priorityQueuePolicy = [1: queuePolicy, 3: other]
        return value
    }

    static var control: ModelSequenceBatching.Control {
        var value = ModelSequenceBatching.Control()
        value.kind = .controlSequenceCorrid
        value.int32FalseTrue = [0, 1]
        value.fp32FalseTrue = [0, 1]
        value.boolFalseTrue = [false, true]
        value.dataType = .uint64
        return value
    }

    static var initialState: ModelSequenceBatching.InitialState {
        var value = ModelSequenceBatching.InitialState()
        value.dataType = .fp16
        value.dims = [1, 16]
        value.stateData = .dataFile("state.bin")
        value.name = "init"
        return value
    }

    static var sequenceState: ModelSequenceBatching.State {
        var zeroState = initialState
        zeroState.stateData = .zeroData(true)
        var value = ModelSequenceBatching.State()
        value.inputName = "INPUT_STATE"
        value.outputName = "OUTPUT_STATE"
        value.dataType = .fp32
        value.dims = [-1]
        value.initialState = [initialState, zeroState]
        value.useSameBufferForInputOutput = true
        value.useGrowableMemory = true
        return value
    }

    static var strategyDirect: ModelSequenceBatching.StrategyDirect {
        var value = ModelSequenceBatching.StrategyDirect()
        value.maxQueueDelayMicroseconds = 200
        value.minimumSlotUtilization = 0.5
        return value
    }

    static var strategyOldest: ModelSequenceBatching.StrategyOldest {
        var value = ModelSequenceBatching.StrategyOldest()
        value.maxCandidateSequences = 4
        value.preferredBatchSize = [2, 4]
        value.maxQueueDelayMicroseconds = 300
        value.preserveOrdering = true
        return value
    }

    static var sequenceBatching: ModelSequenceBatching {
        var controlInput = ModelSequenceBatching.ControlInput()
        controlInput.name = "CORRID"
        controlInput.control = [control, control]
        var value = ModelSequenceBatching()
        value.strategyChoice = .oldest(strategyOldest)
        value.maxSequenceIdleMicroseconds = 1_000_000
        value.controlInput = [controlInput]
        value.state = [sequenceState]
        value.iterativeSequence = true
        return value
    }

    static var ensembleStep: ModelEnsembling.Step {
        var value = ModelEnsembling.Step()
        value.modelName = "preprocess"
        value.modelVersion = -1
        value.inputMap = ["RAW": "IMAGE"]
        value.outputMap = ["OUT": "preprocessed"]
        value.modelNamespace = "ns"
        return value
    }

    static var ensembling: ModelEnsembling {
        var value = ModelEnsembling()
        value.step = [ensembleStep, ensembleStep]
        value.maxInflightRequests = 16
        return value
    }

    static var warmupInput: ModelWarmup.Input {
        var value = ModelWarmup.Input()
        value.dataType = .bf16
        value.dims = [16]
        value.inputDataType = .randomData(true)
        return value
    }

    static var warmup: ModelWarmup {
        var fileInput = warmupInput
        fileInput.inputDataType = .inputDataFile("raw_input")
        var value = ModelWarmup()
        value.name = "warmup"
        value.batchSize = 4
        value.inputs = ["INPUT0": warmupInput, "INPUT1": fileInput]
        value.count = 3
        return value
    }

    static var metrics: ModelMetrics {
        var control = ModelMetrics.MetricControl()
        control.metricIdentifier = .init(family: "nv_inference_first_response_histogram_ms")
        control.metricOptions = .histogramOptions(.init(buckets: [0.5, 1, 2.5, 10]))
        var value = ModelMetrics()
        value.metricControl = [control]
        return value
    }

    static var repositoryAgents: ModelRepositoryAgents {
        var agent = ModelRepositoryAgents.Agent()
        agent.name = "checksum"
        agent.parameters = ["MD5:model.onnx": "d41d8cd98f00b204e9800998ecf8427e"]
        var value = ModelRepositoryAgents()
        value.agents = [agent]
        return value
    }

    /// A configuration with every field of ModelConfig set (the scheduling oneof holds dynamic
    /// batching; the other two members are covered on their own).
    static var config: ModelConfig {
        var operations = ModelOperations()
        operations.opLibraryFilename = ["libcustom.so"]
        var value = ModelConfig()
        value.name = "full"
        value.platform = "onnxruntime_onnx"
        value.backend = "onnxruntime"
        value.runtime = "model.py"
        value.versionPolicy = ModelVersionPolicy(.specific(.init(versions: [1, 3])))
        value.maxBatchSize = 8
        value.input = [input, input]
        value.output = [output]
        value.batchInput = [batchInput]
        value.batchOutput = [batchOutput]
        value.optimization = optimization
        value.schedulingChoice = .dynamicBatching(dynamicBatching)
        value.instanceGroup = [instanceGroup]
        value.defaultModelFilename = "model.onnx"
        value.ccModelFilenames = ["7.5": "model_75.plan", "8.0": "model_80.plan"]
        value.metricTags = ["team": "search"]
        value.parameters = ["EXECUTION_ENV_PATH": ModelParameter(stringValue: "/opt/env.tar.gz")]
        value.modelWarmup = [warmup]
        value.modelOperations = operations
        value.modelTransactionPolicy = ModelTransactionPolicy(decoupled: true)
        value.modelRepositoryAgents = repositoryAgents
        value.responseCache = ModelResponseCache(enable: true)
        value.modelMetrics = metrics
        return value
    }

    /// Triton's `simple` example model.
    static var simple: ModelConfig {
        var group = ModelInstanceGroup()
        group.count = 2
        group.kind = .cpu
        var batching = ModelDynamicBatching()
        batching.maxQueueDelayMicroseconds = 100
        var value = ModelConfig()
        value.name = "simple"
        value.maxBatchSize = 8
        value.input = [
            ModelInput(name: "INPUT0", dataType: .int32, dims: [16]),
            ModelInput(name: "INPUT1", dataType: .int32, dims: [16]),
        ]
        value.output = [
            ModelOutput(name: "OUTPUT0", dataType: .int32, dims: [16]),
            ModelOutput(name: "OUTPUT1", dataType: .int32, dims: [16]),
        ]
        value.schedulingChoice = .dynamicBatching(batching)
        value.instanceGroup = [group]
        return value
    }
}

final class ModelConfigMessagesTests: XCTestCase {
    // MARK: Every message, every field

    func testEveryModelConfigMessageRoundTripsWithEveryFieldSet() throws {
        typealias Full = FullModelConfig
        try assertRoundTrips(Full.resource)
        try assertRoundTrips(Full.rateLimiter)
        try assertRoundTrips(Full.secondaryDevice)
        try assertRoundTrips(Full.instanceGroup)
        try assertRoundTrips(ModelTensorReshape(shape: [2, -1, 8]))
        try assertRoundTrips(Full.input)
        try assertRoundTrips(Full.output)
        try assertRoundTrips(Full.batchInput)
        try assertRoundTrips(Full.batchOutput)
        try assertRoundTrips(ModelVersionPolicy.Latest(numVersions: 2))
        try assertRoundTrips(ModelVersionPolicy.All())
        try assertRoundTrips(ModelVersionPolicy.Specific(versions: [1, 4, 9]))
        try assertRoundTrips(ModelVersionPolicy(.latest(.init(numVersions: 2))))
        try assertRoundTrips(ModelVersionPolicy(.all(.init())))
        try assertRoundTrips(ModelVersionPolicy(.specific(.init(versions: [7]))))
        try assertRoundTrips(Full.optimization.graph!)
        try assertRoundTrips(Full.graphSpec.input["INPUT0"]!)
        try assertRoundTrips(Full.graphSpec.graphLowerBound!)
        try assertRoundTrips(Full.graphSpec)
        try assertRoundTrips(Full.optimization.cuda!)
        try assertRoundTrips(Full.optimization.executionAccelerators!.gpuExecutionAccelerator[0])
        try assertRoundTrips(Full.optimization.executionAccelerators!)
        try assertRoundTrips(ModelOptimizationPolicy.PinnedMemoryBuffer(enable: true))
        try assertRoundTrips(Full.optimization)
        try assertRoundTrips(Full.queuePolicy)
        try assertRoundTrips(Full.dynamicBatching)
        try assertRoundTrips(Full.control)
        try assertRoundTrips(Full.sequenceBatching.controlInput[0])
        try assertRoundTrips(Full.initialState)
        try assertRoundTrips(Full.sequenceState)
        try assertRoundTrips(Full.strategyDirect)
        try assertRoundTrips(Full.strategyOldest)
        try assertRoundTrips(Full.sequenceBatching)
        var direct = Full.sequenceBatching
        direct.strategyChoice = .direct(Full.strategyDirect)
        try assertRoundTrips(direct)
        try assertRoundTrips(Full.ensembleStep)
        try assertRoundTrips(Full.ensembling)
        try assertRoundTrips(ModelParameter(stringValue: "yes"))
        try assertRoundTrips(Full.warmupInput)
        var zeroInput = Full.warmupInput
        zeroInput.inputDataType = .zeroData(true)
        try assertRoundTrips(zeroInput)
        try assertRoundTrips(Full.warmup)
        try assertRoundTrips(Full.config.modelOperations!)
        try assertRoundTrips(ModelTransactionPolicy(decoupled: true))
        try assertRoundTrips(Full.repositoryAgents.agents[0])
        try assertRoundTrips(Full.repositoryAgents)
        try assertRoundTrips(ModelResponseCache(enable: true))
        try assertRoundTrips(Full.metrics.metricControl[0].metricIdentifier!)
        try assertRoundTrips(ModelMetrics.MetricControl.HistogramOptions(buckets: [1, 2]))
        try assertRoundTrips(Full.metrics.metricControl[0])
        try assertRoundTrips(Full.metrics)
        try assertRoundTrips(Full.config)
    }

    func testEverySchedulingChoiceRoundTrips() throws {
        var config = FullModelConfig.config
        for choice: ModelConfig.SchedulingChoice in [
            .dynamicBatching(FullModelConfig.dynamicBatching),
            .sequenceBatching(FullModelConfig.sequenceBatching),
            .ensembleScheduling(FullModelConfig.ensembling),
        ] {
            config.schedulingChoice = choice
            try assertRoundTrips(config)
        }
    }

    func testDefaultMessagesEncodeToNothing() {
        XCTAssertEqual(ModelConfig().encodedBytes(), [])
        XCTAssertEqual(ModelInput().encodedBytes(), [])
        XCTAssertEqual(ModelInstanceGroup().encodedBytes(), [])
        XCTAssertEqual(ModelDynamicBatching().encodedBytes(), [])
        XCTAssertEqual(ModelSequenceBatching().encodedBytes(), [])
        XCTAssertEqual(ModelOptimizationPolicy().encodedBytes(), [])
        XCTAssertEqual(ModelWarmup().encodedBytes(), [])
    }

    // MARK: Against an independent encoder

    // The fixtures below are what Debian's protoc 3.21 makes of the published schema:
    // `protoc --encode=inference.ModelConfig -I Protos Protos/inference/model_config.proto`
    // applied to the text format of the value (`--encode=inference.ModelSequenceBatching` and
    // `inference.ModelEnsembling` for the other two). Decoding them pins every field number and
    // wire type to the real schema; matching them byte for byte shows that the encoding is the
    // one protoc-generated code produces (field-number order, packed repeated scalars).

    func testDecodesAndReproducesProtocEncodingOfTheFullConfig() throws {
        let bytes = hexBytes(Self.protocFullConfigHex)
        let decoded = try ModelConfig(decodingBytes: bytes)
        XCTAssertEqual(decoded, FullModelConfig.config)
        XCTAssertEqual(FullModelConfig.config.encodedBytes(), bytes)
    }

    func testDecodesAndReproducesProtocEncodingOfSequenceBatching() throws {
        var expected = FullModelConfig.sequenceBatching
        expected.strategyChoice = .direct(FullModelConfig.strategyDirect)
        let bytes = hexBytes(Self.protocSequenceBatchingHex)
        XCTAssertEqual(try ModelSequenceBatching(decodingBytes: bytes), expected)
        XCTAssertEqual(expected.encodedBytes(), bytes)
        XCTAssertEqual(FullModelConfig.strategyOldest.encodedBytes(), hexBytes(Self.protocStrategyOldestHex))
    }

    func testDecodesAndReproducesProtocEncodingOfEnsembling() throws {
        let bytes = hexBytes(Self.protocEnsemblingHex)
        XCTAssertEqual(try ModelEnsembling(decodingBytes: bytes), FullModelConfig.ensembling)
        XCTAssertEqual(FullModelConfig.ensembling.encodedBytes(), bytes)
    }

    static let protocFullConfigHex = """
        0a0466756c6c12106f6e6e7872756e74696d655f6f6e6e781a061a040a02010320082a330a06494e50555430100b1802
        220d03ffffffffffffffffff01e0012a0e0a0cffffffffffffffffff01e00130013801400148012a330a06494e505554
        30100b1802220d03ffffffffffffffffff01e0012a0e0a0cffffffffffffffffff01e001300138014001480132260a07
        4f55545055543010091a02e807220a6c6162656c732e7478742a050a0301e807300138013a3e0a0667726f7570301002
        1a02000120012a01302a013132160a080a025231100118040a080a02523110011804100238014204080110034a06706f
        6c696379420a6d6f64656c2e6f6e6e784a140a03372e35120d6d6f64656c5f37352e706c616e4a140a03382e30120d6d
        6f64656c5f38302e706c616e520e0a047465616d12067365617263685a3b0a0204081064180120032802320b080110c0
        96b102180120403a0f0801120b080110c096b102180120403a0f0803120b080110c096b1021801200162780a02080110
        011a33080110011a2b080812110a06494e5055543012070a0503e001e0011a14080112100a06494e5055543012060a04
        0301e001200122300a220a0874656e736f72727412160a0e707265636973696f6e5f6d6f6465120446503136120a0a08
        6f70656e76696e6f2a0208013200388020400172270a12455845435554494f4e5f454e565f5041544812110a0f2f6f70
        742f656e762e7461722e677a82013b0a067761726d757010041a110a06494e505554301207080e12011020011a1a0a06
        494e505554311210080e1201102a097261775f696e70757420038a010b6f6e6e7872756e74696d6592010e0a0c6c6962
        637573746f6d2e736f9a01020801a201140805120254301202543118082206494e50555430aa011b0a074f5554505554
        3010071a06494e505554301a06494e50555431ba01400a3e0a08636865636b73756d12320a0e4d44353a6d6f64656c2e
        6f6e6e7812206434316438636439386630306232303465393830303939386563663834323765c201020801ca01086d6f
        64656c2e7079d201520a500a2a0a286e765f696e666572656e63655f66697273745f726573706f6e73655f686973746f
        6772616d5f6d7312220a20000000000000e03f000000000000f03f00000000000004400000000000002440
        """

    static let protocSequenceBatchingHex = """
        08c0843d12380a06434f5252494412160803120200011a08000000000000803f20052a02000112160803120200011a08
        000000000000803f20052a0200011a0808c801150000003f2a560a0b494e5055545f5354415445120c4f55545055545f
        5354415445180b220affffffffffffffffff012a17080a12020110220973746174652e62696e2a04696e69742a0e080a
        1202011018012a04696e6974300138013001
        """

    static let protocStrategyOldestHex = """
        08041202020418ac022001
        """

    static let protocEnsemblingHex = """
        0a3e0a0a70726570726f6365737310ffffffffffffffffff011a0c0a035241571205494d41474522130a034f5554120c
        70726570726f6365737365642a026e730a3e0a0a70726570726f6365737310ffffffffffffffffff011a0c0a03524157
        1205494d41474522130a034f5554120c70726570726f6365737365642a026e731010
        """

    // MARK: Triton's simple model

    func testSimpleModelConfigRoundTrips() throws {
        let simple = FullModelConfig.simple
        try assertRoundTrips(simple)
        let decoded = try ModelConfig(decodingBytes: simple.encodedBytes())
        XCTAssertEqual(decoded.name, "simple")
        XCTAssertEqual(decoded.maxBatchSize, 8)
        XCTAssertEqual(decoded.input.map(\.name), ["INPUT0", "INPUT1"])
        XCTAssertEqual(decoded.input.map(\.dataType), [.int32, .int32])
        XCTAssertEqual(decoded.input.map(\.dims), [[16], [16]])
        XCTAssertEqual(decoded.output.map(\.name), ["OUTPUT0", "OUTPUT1"])
        guard case .dynamicBatching(let batching)? = decoded.schedulingChoice else {
            return XCTFail("expected dynamic batching, got \(String(describing: decoded.schedulingChoice))")
        }
        XCTAssertEqual(batching.maxQueueDelayMicroseconds, 100)
        XCTAssertEqual(decoded.instanceGroup.count, 1)
        XCTAssertEqual(decoded.instanceGroup[0].count, 2)
        XCTAssertEqual(decoded.instanceGroup[0].kind, .cpu)
    }

    /// The simple model's bytes, computed by hand in field-number order.
    func testSimpleModelConfigHasTheExpectedBytes() {
        // ModelInput { name = 1 "INPUT0", data_type = 2 TYPE_INT32 (8), dims = 4 packed [16] }
        func tensor(_ name: String, dimsField: UInt8) -> [UInt8] {
            [0x0A, UInt8(name.utf8.count)] + Array(name.utf8) + [0x10, 0x08, dimsField << 3 | 2, 0x01, 0x10]
        }
        let input0 = tensor("INPUT0", dimsField: 4), input1 = tensor("INPUT1", dimsField: 4)
        let output0 = tensor("OUTPUT0", dimsField: 3), output1 = tensor("OUTPUT1", dimsField: 3)
        var expected: [UInt8] = [0x0A, 0x06] + Array("simple".utf8)  // name = 1
        expected += [0x20, 0x08]  // max_batch_size = 4: 8
        expected += [0x2A, UInt8(input0.count)] + input0  // input = 5
        expected += [0x2A, UInt8(input1.count)] + input1
        expected += [0x32, UInt8(output0.count)] + output0  // output = 6
        expected += [0x32, UInt8(output1.count)] + output1
        expected += [0x3A, 0x04, 0x10, 0x02, 0x20, 0x02]  // instance_group = 7 { count 2, kind KIND_CPU }
        expected += [0x5A, 0x02, 0x10, 0x64]  // dynamic_batching = 11 { max_queue_delay_microseconds 100 }
        XCTAssertEqual(FullModelConfig.simple.encodedBytes(), expected)
    }

    // MARK: Enums

    func testDataTypeNumbersMatchTheSchema() {
        XCTAssertEqual(DataType.allCases.map(\.rawValue), Array(0...14))
        XCTAssertEqual(DataType.int32.rawValue, 8)
        XCTAssertEqual(DataType.string.rawValue, 13)
        XCTAssertEqual(DataType.bf16.rawValue, 14)
        for value in DataType.allCases {
            XCTAssertEqual(DataType(rawValue: value.rawValue), value)
        }
    }

    func testDataTypeProtocolNames() {
        XCTAssertEqual(DataType.int32.protocolName, "INT32")
        XCTAssertEqual(DataType.string.protocolName, "BYTES")
        XCTAssertNil(DataType.invalid.protocolName)
        XCTAssertEqual(DataType(protocolName: "BYTES"), .string)
        XCTAssertEqual(DataType(protocolName: "FP16"), .fp16)
        XCTAssertNil(DataType(protocolName: "STRING"))
        for value in DataType.allCases.dropFirst() {
            XCTAssertEqual(DataType(protocolName: value.protocolName!), value)
        }
    }

    func testUnrecognizedEnumValuesSurviveARoundTrip() throws {
        var input = ModelInput(name: "X", dataType: .unrecognized(99), dims: [1])
        input.format = .unrecognized(-1)
        let decoded = try ModelInput(decodingBytes: input.encodedBytes())
        XCTAssertEqual(decoded.dataType, .unrecognized(99))
        XCTAssertEqual(decoded.dataType.rawValue, 99)
        XCTAssertEqual(decoded.format.rawValue, -1)
        XCTAssertTrue(decoded.unknownFields.isEmpty)
    }

    func testEnumEqualityGoesByNumber() {
        XCTAssertEqual(DataType.unrecognized(8), .int32)
        XCTAssertEqual(DataType(rawValue: 8), .int32)
        XCTAssertEqual(Set<ModelInstanceGroup.Kind>([.unrecognized(2), .cpu]).count, 1)
    }

    // MARK: Wire details

    func testRepeatedScalarsAreWrittenPackedAndReadEitherWay() throws {
        let input = ModelInput(name: "", dataType: .invalid, dims: [1, 2])
        XCTAssertEqual(input.encodedBytes(), [0x22, 0x02, 0x01, 0x02])
        let unpacked = try ModelInput(decodingBytes: [0x20, 0x01, 0x20, 0x02, 0x22, 0x01, 0x03])
        XCTAssertEqual(unpacked.dims, [1, 2, 3])
    }

    func testNegativeDimsTakeTenBytes() {
        let input = ModelInput(name: "", dataType: .invalid, dims: [-1])
        XCTAssertEqual(input.encodedBytes(), [0x22, 0x0A] + Array(repeating: 0xFF, count: 9) + [0x01])
    }

    func testPriorityQueuePolicyMapHasUInt64KeysInAscendingOrder() throws {
        var batching = ModelDynamicBatching()
        var policy = ModelQueuePolicy()
        policy.maxQueueSize = 5
        batching.priorityQueuePolicy = [300: policy, 2: ModelQueuePolicy()]
        // Entry { key = 1, value = 2 }: the default policy is written as an empty message.
        XCTAssertEqual(
            batching.encodedBytes(),
            [0x3A, 0x04, 0x08, 0x02, 0x12, 0x00, 0x3A, 0x07, 0x08, 0xAC, 0x02, 0x12, 0x02, 0x20, 0x05])
        try assertRoundTrips(batching)
    }

    func testMapEntryWithoutKeyOrValueTakesTheDefaults() throws {
        let batching = try ModelDynamicBatching(decodingBytes: [0x3A, 0x00, 0x3A, 0x02, 0x08, 0x07])
        XCTAssertEqual(batching.priorityQueuePolicy, [0: ModelQueuePolicy(), 7: ModelQueuePolicy()])
    }

    func testRepeatedMapKeyKeepsTheLastValue() throws {
        let bytes: [UInt8] = [0x4A, 0x06, 0x0A, 0x01, 0x61, 0x12, 0x01, 0x31, 0x4A, 0x06, 0x0A, 0x01, 0x61, 0x12, 0x01, 0x32]
        let config = try ModelConfig(decodingBytes: bytes)
        XCTAssertEqual(config.ccModelFilenames, ["a": "2"])
    }

    func testOneofMemberThatArrivesTwiceMerges() throws {
        // dynamic_batching { max_queue_delay_microseconds 100 } then dynamic_batching { preserve_ordering true }
        let config = try ModelConfig(decodingBytes: [0x5A, 0x02, 0x10, 0x64, 0x5A, 0x02, 0x18, 0x01])
        var expected = ModelDynamicBatching()
        expected.maxQueueDelayMicroseconds = 100
        expected.preserveOrdering = true
        XCTAssertEqual(config.schedulingChoice, .dynamicBatching(expected))
    }

    func testLaterOneofMemberReplacesAnEarlierOne() throws {
        // dynamic_batching { } then ensemble_scheduling { max_inflight_requests 3 }
        let config = try ModelConfig(decodingBytes: [0x5A, 0x00, 0x7A, 0x02, 0x10, 0x03])
        var expected = ModelEnsembling()
        expected.maxInflightRequests = 3
        XCTAssertEqual(config.schedulingChoice, .ensembleScheduling(expected))
    }

    func testOneofScalarMemberIsWrittenEvenWhenDefault() throws {
        var input = ModelWarmup.Input()
        input.inputDataType = .zeroData(false)
        XCTAssertEqual(input.encodedBytes(), [0x18, 0x00])
        XCTAssertEqual(try ModelWarmup.Input(decodingBytes: [0x18, 0x00]).inputDataType, .zeroData(false))
    }

    func testUnknownFieldsArePreserved() throws {
        // name = 1 "m", then field 99 (varint 5), which this schema does not have.
        let bytes: [UInt8] = [0x0A, 0x01, 0x6D, 0x98, 0x06, 0x05]
        let config = try ModelConfig(decodingBytes: bytes)
        XCTAssertEqual(config.name, "m")
        XCTAssertFalse(config.unknownFields.isEmpty)
        XCTAssertEqual(config.encodedBytes(), bytes)
    }

    func testWrongWireTypeNamesTheFieldPath() {
        // instance_group = 7 { count = 2 sent as a string }
        XCTAssertThrowsError(try ModelConfig(decodingBytes: [0x3A, 0x03, 0x12, 0x01, 0x41])) { error in
            guard let error = error as? ProtoDecodingError else { return XCTFail("\(error)") }
            XCTAssertEqual(error.code, .wrongWireType)
            XCTAssertEqual(
                error.path,
                [.init(message: "inference.ModelConfig", fieldNumber: 7),
                 .init(message: "inference.ModelInstanceGroup", fieldNumber: 2)])
        }
    }
}
