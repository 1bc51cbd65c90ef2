@testable import ONNXModel
import ProtoWire
import XCTest

/// The native ONNX runtime on models built here through the same protobuf encoding an exporter
/// writes: decoding, load-time refusals naming the node, and each operator's arithmetic against
/// values worked out by hand. (Tests/interop/test_onnx_runtime.py compares whole models with
/// onnxruntime.)
final class ONNXModelTests: XCTestCase {
    private func model(
        nodes: [ONNXNodeProto], inputs: [ONNXValueInfo], outputs: [ONNXValueInfo], initializers: [ONNXTensorProto] = [], opset: Int64 = 17,
        ml: Bool = false
    ) throws -> ONNXModel {
        var proto = ONNXModelProto()
        proto.irVersion = 8
        proto.opsetImports = [ONNXOperatorSetID(domain: "", version: opset)] + (ml ? [ONNXOperatorSetID(domain: "ai.onnx.ml", version: 3)] : [])
        proto.graph.nodes = nodes
        proto.graph.inputs = inputs
        proto.graph.outputs = outputs
        proto.graph.initializers = initializers
        // Through the bytes, as a file would come.
        return try ONNXModel(bytes: proto.encodedBytes())
    }

    private func floats(_ array: NDArray?) -> [Float] { array?.floats ?? [] }

    func testATwoLayerMLPComputesWhatTheArithmeticSays() throws {
        // y = softmax(relu(x · W1ᵀ + b1) · W2 + b2), W1 given transposed (transB), as torch exports Linear.
        let w1: [Float] = [1, 0, -1, 2, 0.5, 0.5]  // 3 × 2 (out × in)
        let b1: [Float] = [0, -1, 0.25]
        let w2: [Float] = [1, -1, 0, 2, 3, 0]  // 3 × 2 (in × out)
        let b2: [Float] = [0.5, -0.5]
        let mlp = try model(
            nodes: [
                ONNXNodeProto("Gemm", inputs: ["x", "w1", "b1"], outputs: ["h"], name: "fc1", attributes: [.int("transB", 1)]),
                ONNXNodeProto("Relu", inputs: ["h"], outputs: ["r"]),
                ONNXNodeProto("MatMul", inputs: ["r", "w2"], outputs: ["m"]),
                ONNXNodeProto("Add", inputs: ["m", "b2"], outputs: ["logits"]),
                ONNXNodeProto("Softmax", inputs: ["logits"], outputs: ["y"], attributes: [.int("axis", -1)]),
            ],
            inputs: [ONNXValueInfo("x", .float, [nil, 2])], outputs: [ONNXValueInfo("y", .float, [nil, 2])],
            initializers: [
                .float("w1", dims: [3, 2], w1), .float("b1", dims: [3], b1), .float("w2", dims: [3, 2], w2), .float("b2", dims: [2], b2),
            ])
        XCTAssertEqual(mlp.inputs.map(\.name), ["x"])
        XCTAssertEqual(mlp.inputs.first?.shape, [nil, 2])
        let x: [Float] = [1, 2, -3, 0.5]
        let y = try mlp.run(["x": NDArray(shape: [2, 2], floats: x)])["y"]
        // By hand.
        var expected: [Float] = []
        for row in 0..<2 {
            let input = Array(x[row * 2..<row * 2 + 2])
            let hidden = (0..<3).map { j in max(0, input[0] * w1[j * 2] + input[1] * w1[j * 2 + 1] + b1[j]) }
            let logits = (0..<2).map { k in hidden[0] * w2[k] + hidden[1] * w2[2 + k] + hidden[2] * w2[4 + k] + b2[k] }
            let e = logits.map { exp($0 - logits.max()!) }
            expected += e.map { $0 / e.reduce(0, +) }
        }
        XCTAssertEqual(y?.shape, [2, 2])
        for (got, want) in zip(floats(y), expected) { XCTAssertEqual(got, want, accuracy: 1e-6) }
    }

    func testTheMatrixMultiplyMatchesANaiveOneOnOddSizes() {
        for (m, k, n) in [(1, 1, 1), (3, 5, 7), (2, 9, 17), (5, 16, 8), (4, 33, 31), (9, 40, 20), (13, 7, 64)] {
            let a = (0..<(m * k)).map { Float(($0 * 7) % 11) - 5 }
            let b = (0..<(k * n)).map { Float(($0 * 5) % 13) / 3 - 2 }
            let c = Kernels.matmul(a, b, m: m, k: k, n: n)
            for i in 0..<m {
                for j in 0..<n {
                    let naive = (0..<k).reduce(Float(0)) { $0 + a[i * k + $1] * b[$1 * n + j] }
                    XCTAssertEqual(c[i * n + j], naive, accuracy: 1e-4, "\(m)×\(k)×\(n) at \(i),\(j)")
                }
            }
        }
    }

    func testShapeOperatorsAndIndexing() throws {
        let ops = try model(
            nodes: [
                ONNXNodeProto("Reshape", inputs: ["x", "shape"], outputs: ["r"]),  // [2,3] → [3,2]
                ONNXNodeProto("Transpose", inputs: ["r"], outputs: ["t"]),  // → [2,3]
                ONNXNodeProto("Concat", inputs: ["t", "x"], outputs: ["c"], attributes: [.int("axis", 0)]),  // [4,3]
                ONNXNodeProto("Gather", inputs: ["c", "pick"], outputs: ["g"], attributes: [.int("axis", 1)]),  // [4,2]
                ONNXNodeProto("ArgMax", inputs: ["g"], outputs: ["a"], attributes: [.int("axis", 1), .int("keepdims", 0)]),
                ONNXNodeProto("Unsqueeze", inputs: ["a", "axes"], outputs: ["u"]),
                ONNXNodeProto("Flatten", inputs: ["g"], outputs: ["f"], attributes: [.int("axis", 0)]),
            ],
            inputs: [ONNXValueInfo("x", .float, [2, 3])],
            outputs: [ONNXValueInfo("t", .float, [2, 3]), ONNXValueInfo("g", .float, [4, 2]), ONNXValueInfo("u", .int64, [4, 1]), ONNXValueInfo("f", .float, [1, 8])],
            initializers: [.int64("shape", dims: [2], [3, -1]), .int64("pick", dims: [2], [2, -3]), .int64("axes", dims: [1], [-1])])
        let out = try ops.run(["x": NDArray(shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])])
        // r = [[1,2],[3,4],[5,6]]; t = rᵀ = [[1,3,5],[2,4,6]]
        XCTAssertEqual(floats(out["t"]), [1, 3, 5, 2, 4, 6])
        // c = [[1,3,5],[2,4,6],[1,2,3],[4,5,6]]; columns 2 and 0
        XCTAssertEqual(floats(out["g"]), [5, 1, 6, 2, 3, 1, 6, 4])
        XCTAssertEqual(out["u"]?.int64s, [0, 0, 0, 0])
        XCTAssertEqual(out["u"]?.shape, [4, 1])
        XCTAssertEqual(out["f"]?.shape, [1, 8])
    }

    func testBroadcastingAndElementwiseOperators() throws {
        let ops = try model(
            nodes: [
                ONNXNodeProto("Sub", inputs: ["x", "column"], outputs: ["s"]),  // [2,3] - [2,1]
                ONNXNodeProto("Div", inputs: ["s", "two"], outputs: ["d"]),  // scalar
                ONNXNodeProto("LeakyRelu", inputs: ["d"], outputs: ["l"], attributes: [.float("alpha", 0.5)]),
                ONNXNodeProto("Clip", inputs: ["l", "low", "high"], outputs: ["y"]),
                ONNXNodeProto("Sigmoid", inputs: ["x"], outputs: ["sig"]),
                ONNXNodeProto("Tanh", inputs: ["x"], outputs: ["th"]),
                ONNXNodeProto("LogSoftmax", inputs: ["x"], outputs: ["ls"]),
            ],
            inputs: [ONNXValueInfo("x", .float, [2, 3])],
            outputs: [ONNXValueInfo("y", .float, [2, 3]), ONNXValueInfo("sig", .float, [2, 3]), ONNXValueInfo("th", .float, [2, 3]), ONNXValueInfo("ls", .float, [2, 3])],
            initializers: [
                .float("column", dims: [2, 1], [1, 10]), .float("two", dims: [], [2]), .float("low", dims: [], [-1]), .float("high", dims: [], [1.5]),
            ])
        let x: [Float] = [0, 1, 5, 10, 12, 4]
        let out = try ops.run(["x": NDArray(shape: [2, 3], floats: x)])
        // s = [[-1,0,4],[0,2,-6]]; d = [[-0.5,0,2],[0,1,-3]]; leaky = [[-0.25,0,2],[0,1,-1.5]]; clip [-1,1.5]
        XCTAssertEqual(floats(out["y"]), [-0.25, 0, 1.5, 0, 1, -1])
        for (got, value) in zip(floats(out["sig"]), x) { XCTAssertEqual(got, 1 / (1 + exp(-value)), accuracy: 1e-6) }
        for (got, value) in zip(floats(out["th"]), x) { XCTAssertEqual(got, tanh(value), accuracy: 1e-6) }
        let row = x[0..<3].map { exp($0) }
        XCTAssertEqual(floats(out["ls"])[2], log(row[2] / row.reduce(0, +)), accuracy: 1e-5)
    }

    func testClassicMLOperatorsAsSkl2onnxWritesThem() throws {
        // A 3-class linear classifier (softmax) after a scaler, as LogisticRegression exports.
        let classifier = try model(
            nodes: [
                ONNXNodeProto("Scaler", inputs: ["x"], outputs: ["scaled"], domain: "ai.onnx.ml", attributes: [.floats("offset", [1, 1]), .floats("scale", [2, 0.5])]),
                ONNXNodeProto(
                    "LinearClassifier", inputs: ["scaled"], outputs: ["label", "probabilities"], domain: "ai.onnx.ml",
                    attributes: [
                        .floats("coefficients", [1, 0, 0, 1, -1, -1]), .floats("intercepts", [0, 0, 0.5]), .ints("classlabels_ints", [10, 20, 30]),
                        .string("post_transform", "SOFTMAX"),
                    ]),
                ONNXNodeProto("Normalizer", inputs: ["probabilities"], outputs: ["normalized"], domain: "ai.onnx.ml", attributes: [.string("norm", "MAX")]),
            ],
            inputs: [ONNXValueInfo("x", .float, [nil, 2])],
            outputs: [ONNXValueInfo("label", .int64, [nil]), ONNXValueInfo("probabilities", .float, [nil, 3]), ONNXValueInfo("normalized", .float, [nil, 3])],
            ml: true)
        let out = try classifier.run(["x": NDArray(shape: [2, 2], floats: [3, 1, 1, 9])])
        // scaled = [[4,0],[0,4]]; scores = [[4,0,-3.5],[0,4,-3.5]]
        XCTAssertEqual(out["label"]?.int64s, [10, 20])
        let p = floats(out["probabilities"])
        let e: [Float] = [exp(4), 1, exp(-3.5)]
        XCTAssertEqual(p[0], e[0] / e.reduce(0, +), accuracy: 1e-6)
        XCTAssertEqual(p[1] + p[0] + p[2], 1, accuracy: 1e-6)
        XCTAssertEqual(floats(out["normalized"])[0], 1, accuracy: 1e-6)
    }

    func testUnsupportedOperatorsOpsetsAndBrokenGraphsAreRefusedAtLoadNamingTheNode() throws {
        let x = ONNXValueInfo("x", .float, [1])
        func refusal(_ body: () throws -> ONNXModel) -> String {
            do {
                _ = try body()
                return "loaded"
            } catch {
                return "\(error)"
            }
        }
        XCTAssertEqual(
            refusal { try model(nodes: [ONNXNodeProto("Conv", inputs: ["x"], outputs: ["y"], name: "conv1")], inputs: [x], outputs: [ONNXValueInfo("y", .float, [1])]) }
                .prefix(70),
            "node 'conv1' (Conv): operator Conv is not supported by this runtime (s")
        XCTAssertTrue(refusal { try model(nodes: [], inputs: [x], outputs: [x], opset: 5) }.contains("opset 5 is outside"))
        XCTAssertTrue(
            refusal { try model(nodes: [ONNXNodeProto("Relu", inputs: ["later"], outputs: ["y"], name: "r")], inputs: [x], outputs: [ONNXValueInfo("y", .float, [1])]) }
                .contains("node 'r' (Relu) reads 'later' before any node makes it"))
        XCTAssertTrue(
            refusal {
                try model(
                    nodes: [ONNXNodeProto("TreeEnsembleClassifier", inputs: ["x"], outputs: ["y"], name: "trees", domain: "ai.onnx.ml")], inputs: [x],
                    outputs: [ONNXValueInfo("y", .float, [1])], ml: true)
            }.contains("node 'trees' (TreeEnsembleClassifier): operator ai.onnx.ml.TreeEnsembleClassifier is not supported"))
        XCTAssertTrue(refusal { try ONNXModel(bytes: [0x0a, 0xff]) }.hasPrefix("not a valid ONNX model"))
    }

    func testARequestOfTheWrongShapeIsRefusedWithTheShapeTheModelTakes() throws {
        let identity = try model(
            nodes: [ONNXNodeProto("Identity", inputs: ["x"], outputs: ["y"])], inputs: [ONNXValueInfo("x", .float, [nil, 4])],
            outputs: [ONNXValueInfo("y", .float, [nil, 4])])
        XCTAssertThrowsError(try identity.run(["x": NDArray(shape: [2, 3], floats: [Float](repeating: 0, count: 6))])) { error in
            XCTAssertEqual("\(error)", "input 'x' has shape [2, 3]; the model takes [-1, 4]")
        }
        XCTAssertThrowsError(try identity.run([:])) { error in XCTAssertEqual("\(error)", "input 'x' is missing") }
    }

    func testRawDataInitializersDecodeLittleEndian() throws {
        var weights = ONNXTensorProto()
        weights.name = "w"
        weights.dims = [2]
        weights.dataType = ONNXElementType.float.rawValue
        weights.rawData = [Float(1.5), Float(-2)].flatMap { value in withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) } }
        let add = try model(
            nodes: [ONNXNodeProto("Add", inputs: ["x", "w"], outputs: ["y"])], inputs: [ONNXValueInfo("x", .float, [2])],
            outputs: [ONNXValueInfo("y", .float, [2])], initializers: [weights])
        XCTAssertEqual(floats(try add.run(["x": NDArray(shape: [2], floats: [1, 1])])["y"]), [2.5, -1])
    }
}
