"""The native ONNX runtime (Sources/ONNXModel, through `switchyard model run`) against
onnxruntime on models made here: MLPs built with the onnx helper API and scikit-learn models
exported by skl2onnx, batch 1 and 32. Outputs must agree within 1e-5 relative; unsupported
operators are refused at load naming the node."""
import json
import subprocess

import numpy as np
import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper, numpy_helper

from conftest import switchyard_binary, wait_models_ready

RNG = np.random.default_rng(7)


def mlp(width=256, features=64, classes=10, opset=17):
    """A 3-layer MLP as torch.onnx exports Linear layers: Gemm with transB=1, Relu, Softmax."""
    layers, initializers, previous, size = [], [], "x", features
    for index, out in enumerate([width, width, classes]):
        w = RNG.normal(0, 1 / np.sqrt(size), (out, size)).astype(np.float32)
        b = RNG.normal(0, 0.1, out).astype(np.float32)
        initializers += [numpy_helper.from_array(w, f"w{index}"), numpy_helper.from_array(b, f"b{index}")]
        layers.append(helper.make_node("Gemm", [previous, f"w{index}", f"b{index}"], [f"h{index}"], name=f"fc{index}", transB=1))
        previous, size = f"h{index}", out
        if index < 2:
            layers.append(helper.make_node("Relu", [previous], [f"r{index}"], name=f"relu{index}"))
            previous = f"r{index}"
    layers.append(helper.make_node("Softmax", [previous], ["probabilities"], axis=-1))
    graph = helper.make_graph(
        layers, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", features])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", classes])], initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), features


def shapes_and_indexing():
    """MatMul + Add (raw-data weights), Tanh, Sigmoid, LeakyRelu, Clip (opset-13 inputs),
    Unsqueeze/Squeeze with axes inputs, Transpose, Concat, Gather, Cast, ArgMax, LogSoftmax, Div, Sub."""
    w = RNG.normal(0, 0.5, (8, 6)).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"]),
        helper.make_node("Add", ["m", "bias"], ["a"]),
        helper.make_node("Tanh", ["a"], ["t"]),
        helper.make_node("LeakyRelu", ["a"], ["l"], alpha=0.2),
        helper.make_node("Sigmoid", ["l"], ["s"]),
        helper.make_node("Clip", ["a", "low", "high"], ["c"]),
        helper.make_node("Sub", ["t", "s"], ["d"]),
        helper.make_node("Div", ["d", "two"], ["half"]),
        helper.make_node("Concat", ["half", "c"], ["cat"], axis=1),
        helper.make_node("Unsqueeze", ["cat", "axes"], ["u"]),
        helper.make_node("Transpose", ["u"], ["tr"], perm=[1, 0, 2]),
        helper.make_node("Squeeze", ["tr", "axes0"], ["sq"]),
        helper.make_node("Gather", ["sq", "pick"], ["g"], axis=1),
        helper.make_node("LogSoftmax", ["g"], ["logp"], axis=1),
        helper.make_node("ArgMax", ["logp"], ["best"], axis=1, keepdims=0),
        helper.make_node("Cast", ["best"], ["bestf"], to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["logp", "shape"], ["flat"]),
    ]
    initializers = [
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(RNG.normal(0, 0.1, 6).astype(np.float32), "bias"),
        numpy_helper.from_array(np.array(-0.5, np.float32), "low"),
        numpy_helper.from_array(np.array(0.7, np.float32), "high"),
        numpy_helper.from_array(np.array(2.0, np.float32), "two"),
        numpy_helper.from_array(np.array([1], np.int64), "axes"),
        numpy_helper.from_array(np.array([0], np.int64), "axes0"),
        numpy_helper.from_array(np.array([0, 11, 3, -1, 5], np.int64), "pick"),
        numpy_helper.from_array(np.array([0, -1], np.int64), "shape"),
    ]
    graph = helper.make_graph(
        nodes, "shapes", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 8])],
        [helper.make_tensor_value_info("logp", TensorProto.FLOAT, ["N", 5]), helper.make_tensor_value_info("bestf", TensorProto.FLOAT, ["N"]),
         helper.make_tensor_value_info("flat", TensorProto.FLOAT, ["N", 5]), helper.make_tensor_value_info("best", TensorProto.INT64, ["N"])],
        initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), 8


def sklearn_model(name):
    """An iris model from scikit-learn through skl2onnx, class probabilities as a tensor (no
    ZipMap). (skl2onnx 1.20 cannot convert a LinearSVC at all: its default zipmap option is not
    one LinearSVC's converter takes.)"""
    from skl2onnx import to_onnx
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LinearRegression, LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer, StandardScaler

    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    estimators = {
        "iris_logistic": lambda: (LogisticRegression(max_iter=500).fit(x, y), x),
        "iris_scaled_logistic": lambda: (make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, C=0.5)).fit(x, y), x),
        "iris_normalized_logistic": lambda: (make_pipeline(Normalizer(norm="l2"), LogisticRegression(max_iter=500)).fit(x, y), x),
        "iris_regression": lambda: (make_pipeline(StandardScaler(), LinearRegression()).fit(x[:, :3], x[:, 3]), x[:, :3]),
    }
    estimator, data = estimators[name]()
    final = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    options = {id(final): {"zipmap": False}} if hasattr(final, "predict_proba") else None
    return to_onnx(estimator, data[:1], target_opset={"": 17, "ai.onnx.ml": 3}, options=options), data.shape[1]


def run_switchyard(path, inputs):
    payload = {name: {"shape": list(value.shape), "data": value.ravel().tolist()} for name, value in inputs.items()}
    result = subprocess.run([switchyard_binary(), "model", "run", str(path)], input=json.dumps(payload), capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return {name: np.array(value["data"], dtype=np.float32 if value["datatype"] == "FP32" else np.int64).reshape(value["shape"])
            for name, value in json.loads(result.stdout).items()}


def compare(model, features, tmp_path, name):
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, path)
    onnx.checker.check_model(str(path))
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    for batch in (1, 32):
        x = RNG.normal(0, 2, (batch, features)).astype(np.float32)
        expected = dict(zip([o.name for o in session.get_outputs()], session.run(None, {input_name: x})))
        got = run_switchyard(path, {input_name: x})
        assert set(got) == set(expected), (got.keys(), expected.keys())
        for output, want in expected.items():
            have = got[output]
            assert have.shape == np.asarray(want).shape, (name, output, have.shape, np.asarray(want).shape)
            if np.asarray(want).dtype.kind in "iu":
                assert np.array_equal(have, want), (name, output, have, want)
            else:
                np.testing.assert_allclose(have, want, rtol=1e-5, atol=1e-6, err_msg=f"{name}.{output} at batch {batch}")


def test_mlps_match_onnxruntime(tmp_path):
    model, features = mlp()
    compare(model, features, tmp_path, "mlp256")
    model, features = mlp(width=33, features=7, classes=3, opset=11)  # odd sizes, legacy Softmax
    compare(model, features, tmp_path, "mlp_odd")


def test_shape_and_indexing_operators_match_onnxruntime(tmp_path):
    model, features = shapes_and_indexing()
    compare(model, features, tmp_path, "shapes")


@pytest.mark.parametrize("name", ["iris_logistic", "iris_scaled_logistic", "iris_normalized_logistic", "iris_regression"])
def test_scikit_learn_models_exported_by_skl2onnx_match_onnxruntime(tmp_path, name):
    model, features = sklearn_model(name)
    compare(model, features, tmp_path, name)


def test_an_unsupported_operator_is_refused_at_load_naming_the_node(tmp_path):
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="stem_conv")
    graph = helper.make_graph([node], "conv", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 3, 3])],
                              [numpy_helper.from_array(np.ones((1, 1, 2, 2), np.float32), "w")])
    path = tmp_path / "conv.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    result = subprocess.run([switchyard_binary(), "model", "check", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "node 'stem_conv' (Conv): operator Conv is not supported" in result.stderr, result.stderr
    model, _ = mlp(width=4, features=3, classes=2)
    onnx.save(model, tmp_path / "small.onnx")
    result = subprocess.run([switchyard_binary(), "model", "check", str(tmp_path / "small.onnx")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "input x: FLOAT [-1, 3]" in result.stdout and "output probabilities: FLOAT [-1, 2]" in result.stdout, result.stdout


def write_iris_versions(root):
    """ROOT/iris/1/model.onnx and ROOT/iris/2/model.onnx: logistic regressions with C=0.05 and
    C=100 (so the versions answer differently); returns the iris features."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from skl2onnx import to_onnx

    x, y = load_iris(return_X_y=True)
    x = x.astype(np.float32)
    for version, c in (("1", 0.05), ("2", 100.0)):
        estimator = LogisticRegression(C=c, max_iter=1000).fit(x, y)
        (root / "iris" / version).mkdir(parents=True)
        onnx.save(to_onnx(estimator, x[:1], target_opset={"": 17, "ai.onnx.ml": 3}, options={id(estimator): {"zipmap": False}}),
                  root / "iris" / version / "model.onnx")
    return x


def test_the_gateway_serves_onnx_models_with_the_native_backend(tmp_path):
    """model_file: two iris versions at 50/50 and the 256-wide MLP behind the real gateway and
    workers, answered as onnxruntime answers, concurrent requests batched, bad input refused."""
    import concurrent.futures

    import tritonclient.grpc as triton

    from conftest import Gateway

    x_iris = write_iris_versions(tmp_path)
    model, _ = mlp()
    onnx.save(model, tmp_path / "mlp.onnx")
    config = tmp_path / "models.yaml"
    config.write_text("""
models:
  iris:
    versions:
      - {version: "1", model_file: iris/1/model.onnx, workers: 1, max_batch_size: 64}
      - {version: "2", model_file: iris/2/model.onnx, workers: 1, max_batch_size: 64}
    route:
      variants: [{version: "1", weight: 50}, {version: "2", weight: 50}]
  mlp:
    versions:
      - {version: "1", model_file: mlp.onnx, workers: 1, max_batch_size: 32, max_queue_delay_microseconds: 500}
""")
    gw = Gateway(tmp_path, ["--config", str(config)])
    try:
        client = triton.InferenceServerClient(gw.plaintext_target)
        wait_models_ready(gw, ("iris", "1"), ("iris", "2"), "mlp")
        metadata = client.get_model_metadata("iris", "1")
        assert metadata.platform == "onnxruntime_onnx"
        assert [(i.name, i.datatype, list(i.shape)) for i in metadata.inputs] == [("X", "FP32", [-1, 4])]
        assert [(o.name, o.datatype) for o in metadata.outputs] == [("label", "INT64"), ("probabilities", "FP32")]

        sessions = {v: onnxruntime.InferenceSession(str(tmp_path / "iris" / v / "model.onnx"), providers=["CPUExecutionProvider"])
                    for v in ("1", "2")}
        sessions["mlp"] = onnxruntime.InferenceSession(str(tmp_path / "mlp.onnx"), providers=["CPUExecutionProvider"])

        def infer(model, x, version=""):
            tensor = triton.InferInput("X" if model == "iris" else "x", list(x.shape), "FP32")
            tensor.set_data_from_numpy(x)
            return client.infer(model, [tensor], model_version=version)

        seen = set()
        for batch in (1, 32):
            x = RNG.normal(5, 2, (batch, 4)).astype(np.float32)
            for _ in range(6):
                reply = infer("iris", x)
                version = reply.get_response().model_version
                seen.add(version)
                label, probabilities = sessions[version].run(None, {"X": x})
                assert np.array_equal(reply.as_numpy("label"), label)
                np.testing.assert_allclose(reply.as_numpy("probabilities"), probabilities, rtol=1e-5, atol=1e-6)
        assert seen == {"1", "2"}, seen

        # 64 concurrent MLP calls (batched by the worker) each get their own rows.
        inputs = [RNG.normal(0, 1, (1, 64)).astype(np.float32) for _ in range(64)]
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            replies = list(pool.map(lambda x: infer("mlp", x), inputs))
        for x, reply in zip(inputs, replies):
            np.testing.assert_allclose(reply.as_numpy("probabilities"), sessions["mlp"].run(None, {"x": x})[0], rtol=1e-5, atol=1e-6)

        with pytest.raises(Exception) as error:
            infer("iris", np.zeros((2, 3), np.float32), "1")
        assert "INVALID_ARGUMENT" in str(error.value) and "expects [-1, 4]" in str(error.value), str(error.value)
        assert infer("iris", x_iris[:2], "1").as_numpy("label").tolist() == [0, 0]
    finally:
        assert gw.stop() == 0, gw.log_text()


def make_repository(root):
    """A Triton model repository: iris with a config.pbtxt serving all its versions, mlp without
    one (its graph says everything; the latest version only)."""
    x = write_iris_versions(root)
    (root / "iris" / "config.pbtxt").write_text("""
name: "iris"
platform: "onnxruntime_onnx"
max_batch_size: 16
input [ { name: "X", data_type: TYPE_FP32, dims: [ 4 ] } ]
output [
  { name: "label", data_type: TYPE_INT64, dims: [ 1 ] },
  { name: "probabilities", data_type: TYPE_FP32, dims: [ 3 ] }
]
instance_group [ { count: 1, kind: KIND_CPU } ]
dynamic_batching { max_queue_delay_microseconds: 200 }
version_policy: { all: {} }
""")
    for version in ("1", "3"):
        model, _ = mlp(width=16, features=8, classes=4)
        (root / "mlp" / version).mkdir(parents=True)
        onnx.save(model, root / "mlp" / version / "model.onnx")
    return x


def test_a_triton_model_repository_serves_unchanged(tmp_path):
    import tritonclient.grpc as triton

    from conftest import Gateway

    repository = tmp_path / "repository"
    x = make_repository(repository)
    gw = Gateway(tmp_path, ["--model-repository", str(repository)])
    try:
        client = triton.InferenceServerClient(gw.plaintext_target)
        wait_models_ready(gw, ("iris", "1"), ("iris", "2"), ("mlp", "3"))
        index = {(m.name, m.version): m.state for m in client.get_model_repository_index().models}
        assert index == {("iris", "1"): "READY", ("iris", "2"): "READY", ("mlp", "3"): "READY"}, index
        # index above: a repository alone serves its models only (no built-in simple).
        assert client.get_model_config("iris", "2").config.max_batch_size == 16
        for version in ("1", "2"):
            session = onnxruntime.InferenceSession(str(repository / "iris" / version / "model.onnx"), providers=["CPUExecutionProvider"])
            tensor = triton.InferInput("X", [16, 4], "FP32")
            tensor.set_data_from_numpy(x[::9][:16].copy())
            reply = client.infer("iris", [tensor], model_version=version)
            label, probabilities = session.run(None, {"X": x[::9][:16]})
            assert np.array_equal(reply.as_numpy("label"), label)
            np.testing.assert_allclose(reply.as_numpy("probabilities"), probabilities, rtol=1e-5, atol=1e-6)
        with pytest.raises(Exception) as error:
            tensor = triton.InferInput("x", [1, 8], "FP32")
            tensor.set_data_from_numpy(np.zeros((1, 8), np.float32))
            client.infer("mlp", [tensor], model_version="1")
        assert "StatusCode.NOT_FOUND" in str(error.value) and "version" in str(error.value), str(error.value)
    finally:
        assert gw.stop() == 0, gw.log_text()

    # Explicit model control: only --load-model at start, the rest on RepositoryModelLoad.
    gw = Gateway(tmp_path, ["--model-repository", str(repository), "--model-control-mode", "explicit", "--load-model", "iris"])
    try:
        client = triton.InferenceServerClient(gw.plaintext_target)
        wait_models_ready(gw, ("iris", "2"))
        assert not client.is_model_ready("mlp")
        client.load_model("mlp")
        assert client.is_model_ready("mlp", "3")
        client.unload_model("mlp")
        assert not client.is_model_ready("mlp")
    finally:
        assert gw.stop() == 0, gw.log_text()


def test_a_repository_with_a_mistake_is_refused_with_its_place(tmp_path):
    from conftest import Gateway

    repository = tmp_path / "repository"
    make_repository(repository)
    (repository / "iris" / "config.pbtxt").write_text('name: "iris"\nmax_batch_size: 16\ninput [ { name: "X" data_type: TYPE_FP33 } ]\n')
    (repository / "tf_model" / "1").mkdir(parents=True)
    (repository / "tf_model" / "config.pbtxt").write_text('platform: "tensorflow_savedmodel"\n')
    (repository / "tf_model" / "1" / "model.onnx").write_bytes(b"")
    with pytest.raises(RuntimeError) as error:
        Gateway(tmp_path, ["--model-repository", str(repository)])
    message = str(error.value)
    assert f"{repository}/iris/config.pbtxt:3:32: 'TYPE_FP33' is not a value of inference.DataType; did you mean TYPE_FP32?" in message, message
    assert "platform 'tensorflow_savedmodel' is not served here" in message, message
