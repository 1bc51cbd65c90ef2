"""Workers in another language: the Python worker (workers/python/worker.py) serving ONNX models
built at test time by models/make_models.py.

First the worker alone, spoken to over its socket with the worker protocol (HELLO, requests in
one batch, its own INVALID_ARGUMENT answers, PING, SIGTERM); then the real gateway with model
`iris` at two versions on the worker as a command backend (`backend: {command: [...]}`),
weighted 50/50, called with grpcio and tritonclient: answers equal onnxruntime run here in the
test, ModelMetadata and ModelConfig describe the ONNX model, bad inputs get INVALID_ARGUMENT and
leave the worker alive, and a SIGKILLed worker is restarted by its pool.
"""
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import grpc
import numpy as np
import pytest

onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("skl2onnx")

from conftest import REPO, Gateway  # noqa: E402

WORKER = REPO / "workers" / "python" / "worker.py"
sys.path.insert(0, str(REPO / "models"))
sys.path.insert(0, str(REPO / "workers" / "python"))
import make_models  # noqa: E402
import wire  # noqa: E402

HEAD = struct.Struct(">IBQ")
HELLO, INFER_REQUEST, INFER_RESPONSE, PING, PONG = 1, 2, 3, 6, 7


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The test models, generated into a fresh directory: {"iris/1": path, ...}."""
    return make_models.write_all(str(tmp_path_factory.mktemp("models")))


def reference(path, features):
    """What onnxruntime answers in this process: {output name: array}."""
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {session.get_inputs()[0].name: features})))


def iris_features(rows, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.uniform([4.3, 2.0, 1.0, 0.1], [7.9, 4.4, 6.9, 2.5], size=(rows, 4))).astype(np.float32)


# ---------------------------------------------------------------- the worker alone


def infer_request_bytes(model, inputs, outputs=(), version=""):
    """An inference.ModelInferRequest made with tritonclient's protobuf classes (an encoder
    independent of the worker's own)."""
    from tritonclient.grpc import service_pb2

    request = service_pb2.ModelInferRequest(model_name=model, model_version=version, id="t-1")
    for name, datatype, array in inputs:
        request.inputs.add(name=name, datatype=datatype, shape=list(array.shape))
        request.raw_input_contents.append(np.ascontiguousarray(array).tobytes())
    for name in outputs:
        request.outputs.add(name=name)
    return request.SerializeToString()


def worker_infer_frame(request_id, model, request, version=""):
    payload = wire.f_bytes(1, model) + wire.f_bytes(2, version) + wire.f_bytes(3, request, always=True)
    return HEAD.pack(9 + len(payload), INFER_REQUEST, request_id) + payload


class WorkerConnection:
    """A gateway's side of one connection to a worker started by hand."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(20)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.sock.connect(path)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                assert time.monotonic() < deadline, "the worker did not listen within 30 s"
                time.sleep(0.05)

    def read_frame(self):
        head = self._read(4)
        (length,) = struct.unpack(">I", head)
        body = self._read(length)
        return body[0], struct.unpack(">Q", body[1:9])[0], body[9:]

    def _read(self, count):
        data = b""
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            assert chunk, "the worker closed the connection"
            data += chunk
        return data


def parse_infer_response(payload):
    """(response bytes, status code, message, final, counts_execution) of an InferResponse."""
    response, code, message, final, counts = b"", 0, "", False, False
    for number, _, value in wire.fields(payload):
        if number == 1:
            response = bytes(value)
        elif number == 2:
            for n, _, v in wire.fields(value):
                if n == 1:
                    code = v
                elif n == 2:
                    message = bytes(v).decode()
        elif number == 3:
            final = bool(value)
        elif number == 4:
            counts = any(n == 5 and v for n, _, v in wire.fields(value))
    return response, code, message, final, counts


@pytest.fixture
def lone_worker(models, tmp_path):
    """worker.py serving iris version 1 on a socket of its own, without a gateway."""
    path = str(tmp_path / "iris.sock")
    env = {**os.environ, "SWITCHYARD_WORKER_SOCKET": path, "SWITCHYARD_WORKER_ID": "iris-test", "SWITCHYARD_MODEL": "iris",
           "SWITCHYARD_MAX_BATCH_SIZE": "4", "SWITCHYARD_MAX_QUEUE_DELAY_US": "20000", "SWITCHYARD_LOG_LEVEL": "debug"}
    log = open(tmp_path / "worker.log", "wb")
    process = subprocess.Popen([sys.executable, str(WORKER), "--model", models["iris/1"], "--threads", "1"], env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    yield process, path, tmp_path / "worker.log"
    if process.poll() is None:
        process.kill()
        process.wait()
    log.close()


def test_the_worker_says_hello_with_the_onnx_models_inputs_and_outputs(lone_worker):
    from tritonclient.grpc import model_config_pb2

    _, path, _ = lone_worker
    connection = WorkerConnection(path)
    kind, request_id, payload = connection.read_frame()
    assert (kind, request_id) == (HELLO, 0)
    fields = list(wire.fields(payload))
    assert (1, 0, 1) in fields  # protocol_version 1
    descriptor = next(bytes(v) for n, _, v in fields if n == 3)
    name, versions, max_batch, config = "", [], 0, None
    for n, _, v in wire.fields(descriptor):
        if n == 1:
            name = bytes(v).decode()
        elif n == 2:
            versions.append(bytes(v).decode())
        elif n == 3:
            max_batch = v
        elif n == 5:
            config = model_config_pb2.ModelConfig.FromString(bytes(v))
    assert (name, versions, max_batch) == ("iris", ["1"], 4)
    assert config.name == "iris" and config.max_batch_size == 4 and config.platform == "onnxruntime_onnx"
    assert [(i.name, i.data_type, list(i.dims)) for i in config.input] == [("X", model_config_pb2.TYPE_FP32, [4])]
    assert [(o.name, o.data_type, list(o.dims)) for o in config.output] == [
        ("label", model_config_pb2.TYPE_INT64, []), ("probabilities", model_config_pb2.TYPE_FP32, [3])]
    assert config.dynamic_batching.max_queue_delay_microseconds == 20000


def test_requests_queued_together_run_as_one_batch_and_each_gets_its_rows(lone_worker, models):
    from tritonclient.grpc import service_pb2

    _, path, _ = lone_worker
    connection = WorkerConnection(path)
    assert connection.read_frame()[0] == HELLO
    batches = [iris_features(n, seed=n) for n in (1, 2, 1)]
    frames = b"".join(worker_infer_frame(10 + i, "iris", infer_request_bytes("iris", [("X", "FP32", f)]))
                      for i, f in enumerate(batches))
    connection.sock.sendall(frames)
    answers = {}
    for _ in batches:
        kind, request_id, payload = connection.read_frame()
        assert kind == INFER_RESPONSE
        answers[request_id] = parse_infer_response(payload)
    executions = 0
    for i, features in enumerate(batches):
        response, code, message, final, counts = answers[10 + i]
        assert code == 0 and final, message
        executions += counts
        decoded = service_pb2.ModelInferResponse.FromString(response)
        assert decoded.model_name == "iris" and decoded.model_version == "1" and decoded.id == "t-1"
        outputs = {o.name: (o.datatype, list(o.shape)) for o in decoded.outputs}
        assert outputs == {"label": ("INT64", [len(features)]), "probabilities": ("FP32", [len(features), 3])}
        expected = reference(models["iris/1"], features)
        label = np.frombuffer(decoded.raw_output_contents[0], dtype=np.int64)
        probabilities = np.frombuffer(decoded.raw_output_contents[1], dtype=np.float32).reshape(-1, 3)
        assert (label == expected["label"]).all()
        np.testing.assert_allclose(probabilities, expected["probabilities"], rtol=1e-5, atol=1e-7)
    assert executions == 1, "4 rows in 3 requests within the queue delay make one execution"


def test_the_worker_refuses_bad_inputs_itself_and_keeps_serving(lone_worker):
    _, path, _ = lone_worker
    connection = WorkerConnection(path)
    assert connection.read_frame()[0] == HELLO
    cases = [
        (infer_request_bytes("iris", [("X", "FP32", np.zeros((1, 5), np.float32))]),
         "input 'X' has shape [1, 5], but model 'iris' expects [-1, 4] (-1: any size)"),
        (infer_request_bytes("iris", [("X", "FP64", np.zeros((1, 4), np.float64))]), "input 'X' of model 'iris' is FP32, not FP64"),
        (infer_request_bytes("iris", [("Y", "FP32", np.zeros((1, 4), np.float32))]), "model 'iris' has no input 'Y'; its inputs are X FP32 [-1, 4]"),
        (infer_request_bytes("iris", [("X", "FP32", np.zeros((5, 4), np.float32))]), "batch size 5 of input 'X' is outside 1 to 4"),
        (infer_request_bytes("iris", [("X", "FP32", np.zeros((1, 4), np.float32))], outputs=["nope"]), "model 'iris' has no output 'nope'"),
        (b"\x2a\xff\xff", "the ModelInferRequest is not valid protobuf"),
    ]
    for index, (request, expected) in enumerate(cases):
        connection.sock.sendall(worker_infer_frame(100 + index, "iris", request))
        kind, request_id, payload = connection.read_frame()
        _, code, message, final, _ = parse_infer_response(payload)
        assert (kind, request_id, code, final) == (INFER_RESPONSE, 100 + index, 3, True), message
        assert expected in message
    connection.sock.sendall(worker_infer_frame(200, "iris", infer_request_bytes("iris", [("X", "FP32", iris_features(1))]), version="7"))
    _, _, payload = connection.read_frame()
    assert parse_infer_response(payload)[1:3] == (5, "model 'iris' has no version '7' on worker iris-test; it serves version 1")
    connection.sock.sendall(worker_infer_frame(201, "iris", infer_request_bytes("iris", [("X", "FP32", iris_features(2))])))
    _, request_id, payload = connection.read_frame()
    assert request_id == 201 and parse_infer_response(payload)[1] == 0


def test_the_worker_honours_deadlines_cancels_and_unique_ids(lone_worker):
    _, path, _ = lone_worker
    connection = WorkerConnection(path)
    assert connection.read_frame()[0] == HELLO
    request = infer_request_bytes("iris", [("X", "FP32", iris_features(1))])
    past = wire.f_bytes(1, "iris") + wire.f_varint(4, time.time_ns() - 1_000_000_000) + wire.f_bytes(3, request, always=True)
    connection.sock.sendall(HEAD.pack(9 + len(past), INFER_REQUEST, 1) + past)
    kind, request_id, payload = connection.read_frame()
    assert (kind, request_id) == (INFER_RESPONSE, 1) and parse_infer_response(payload)[1] == 4  # DEADLINE_EXCEEDED
    # A request waits up to the 20 ms queue delay for a fuller batch: a CANCEL sent with it ends it
    # without an answer. Id 3 is sent twice: the second copy gets ERROR, the first its answer.
    CANCEL, ERROR = 5, 8
    cancel = HEAD.pack(9, CANCEL, 2)
    connection.sock.sendall(worker_infer_frame(2, "iris", request) + cancel + worker_infer_frame(3, "iris", request)
                            + worker_infer_frame(3, "iris", request))
    kind, request_id, payload = connection.read_frame()
    assert (kind, request_id) == (ERROR, 3), (kind, request_id)
    assert b"already in flight" in bytes(payload)
    kind, request_id, payload = connection.read_frame()
    assert (kind, request_id) == (INFER_RESPONSE, 3) and parse_infer_response(payload)[1] == 0
    connection.sock.settimeout(0.5)
    with pytest.raises(socket.timeout):
        connection.read_frame()  # nothing comes for the cancelled id 2


def test_the_worker_answers_pings_and_exits_0_on_sigterm_removing_its_socket(lone_worker):
    process, path, _ = lone_worker
    connection = WorkerConnection(path)
    assert connection.read_frame()[0] == HELLO
    payload = wire.f_varint(1, 42) + wire.f_varint(2, 1234)
    connection.sock.sendall(HEAD.pack(9 + len(payload), PING, 0) + payload)
    kind, request_id, payload = connection.read_frame()
    assert (kind, request_id) == (PONG, 0)
    assert wire.ping(payload) == (42, 1234)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0
    assert not os.path.exists(path)


# ---------------------------------------------------------------- behind the gateway


def iris_config(models, workers=1):
    command = [sys.executable, str(WORKER), "--threads", "1", "--model"]
    return f"""
models:
  iris:
    versions:
      - version: "1"
        workers: {workers}
        max_batch_size: 8
        backend: {{command: {json.dumps(command + [models["iris/1"]])}, environment: {{OMP_NUM_THREADS: "1"}}}}
      - version: "2"
        workers: {workers}
        max_batch_size: 8
        backend: {{command: {json.dumps(command + [models["iris/2"]])}}}
    route:
      variants:
        - {{version: "1", weight: 50}}
        - {{version: "2", weight: 50}}
  mlp:
    versions:
      - version: "1"
        workers: 1
        max_batch_size: 16
        max_queue_delay_microseconds: 2000
        backend: {{command: {json.dumps(command + [models["mlp/1"]])}}}
"""


def admin_json(gw, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{gw.admin_port}{path}", timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def iris_gateway(tmp_path_factory, models):
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    workdir = tmp_path_factory.mktemp("iris-gateway")
    (workdir / "switchyard.yaml").write_text(iris_config(models))
    check = subprocess.run([os.environ.get("SWITCHYARD_BINARY", str(REPO / ".build/debug/switchyard")), "check-config",
                            str(workdir / "switchyard.yaml")], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    gw = Gateway(workdir, ["--config", str(workdir / "switchyard.yaml")])
    channel = grpc.insecure_channel(gw.plaintext_target)
    gw.stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if all(gw.stub.ModelReady(service_pb2.ModelReadyRequest(name="iris", version=v), timeout=2).ready for v in ("1", "2")):
                break
        except grpc.RpcError:
            pass
        time.sleep(0.1)
    else:
        pytest.fail(f"iris did not become ready:\n{gw.log_text()[-4000:]}")
    yield gw
    channel.close()
    assert gw.stop() == 0, gw.log_text()[-4000:]


def test_both_versions_answer_as_onnxruntime_does_in_process(iris_gateway, models):
    import tritonclient.grpc as triton

    client = triton.InferenceServerClient(iris_gateway.plaintext_target)
    seen = set()
    for round_ in range(24):
        features = iris_features(1 + round_ % 5, seed=round_)
        given = triton.InferInput("X", list(features.shape), "FP32")
        given.set_data_from_numpy(features)
        version = "" if round_ >= 4 else "12"[round_ % 2]
        result = client.infer("iris", [given], model_version=version)
        answered = result.get_response().model_version
        seen.add(answered)
        expected = reference(models[f"iris/{answered}"], features)
        assert (result.as_numpy("label") == expected["label"]).all()
        np.testing.assert_allclose(result.as_numpy("probabilities"), expected["probabilities"], rtol=1e-5, atol=1e-7)
    assert seen == {"1", "2"}, "the 50/50 route sends requests to both versions"
    # The versions differ (C=0.05 against C=100), so each answer came from its own model.
    features = iris_features(8, seed=99)
    one, two = reference(models["iris/1"], features), reference(models["iris/2"], features)
    assert not np.allclose(one["probabilities"], two["probabilities"], rtol=1e-3)
    client.close()


def test_the_mlp_answers_concurrent_calls_as_onnxruntime_does(iris_gateway, models):
    import concurrent.futures

    from tritonclient.grpc import service_pb2

    deadline = time.monotonic() + 60
    while not iris_gateway.stub.ModelReady(service_pb2.ModelReadyRequest(name="mlp"), timeout=5).ready:
        assert time.monotonic() < deadline, iris_gateway.log_text()[-4000:]
        time.sleep(0.1)
    rng = np.random.default_rng(3)
    batches = [rng.standard_normal((1 + i % 4, 32)).astype(np.float32) for i in range(32)]

    def call(features):
        request = service_pb2.ModelInferRequest(model_name="mlp")
        request.inputs.add(name="input", datatype="FP32", shape=list(features.shape))
        request.raw_input_contents.append(features.tobytes())
        answer = iris_gateway.stub.ModelInfer(request, timeout=30)
        assert [(o.name, o.datatype, list(o.shape)) for o in answer.outputs] == [("logits", "FP32", [len(features), 10])]
        return np.frombuffer(answer.raw_output_contents[0], np.float32).reshape(-1, 10)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(call, batches))
    for features, logits in zip(batches, answers):
        np.testing.assert_allclose(logits, reference(models["mlp/1"], features)["logits"], rtol=1e-5, atol=1e-5)


def test_typed_contents_are_served_like_raw_contents(iris_gateway, models):
    from tritonclient.grpc import service_pb2

    features = iris_features(3, seed=21)
    request = service_pb2.ModelInferRequest(model_name="iris", model_version="2")
    tensor = request.inputs.add(name="X", datatype="FP32", shape=[3, 4])
    tensor.contents.fp32_contents.extend(features.ravel().tolist())
    request.outputs.add(name="probabilities")
    answer = iris_gateway.stub.ModelInfer(request, timeout=10)
    assert [o.name for o in answer.outputs] == ["probabilities"], "only the output asked for"
    np.testing.assert_allclose(np.frombuffer(answer.raw_output_contents[0], np.float32).reshape(3, 3),
                               reference(models["iris/2"], features)["probabilities"], rtol=1e-5)


def test_metadata_and_config_describe_the_onnx_model(iris_gateway):
    import tritonclient.grpc as triton

    client = triton.InferenceServerClient(iris_gateway.plaintext_target)
    metadata = client.get_model_metadata("iris", "2")
    assert metadata.name == "iris" and metadata.platform == "onnxruntime_onnx"
    assert list(metadata.versions) == ["1", "2"]
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.inputs] == [("X", "FP32", [-1, 4])]
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.outputs] == [("label", "INT64", [-1]), ("probabilities", "FP32", [-1, 3])]
    config = client.get_model_config("iris", "1").config
    assert config.max_batch_size == 8 and [i.name for i in config.input] == ["X"]
    client.close()


def test_bad_inputs_get_invalid_argument_that_says_what_to_fix_and_the_worker_lives_on(iris_gateway):
    from tritonclient.grpc import service_pb2

    pids = {w["pid"] for w in admin_json(iris_gateway, "/workers")}

    def call(name, datatype, array):
        request = service_pb2.ModelInferRequest(model_name="iris", model_version="1")
        request.inputs.add(name=name, datatype=datatype, shape=list(array.shape))
        request.raw_input_contents.append(array.tobytes())
        with pytest.raises(grpc.RpcError) as error:
            iris_gateway.stub.ModelInfer(request, timeout=10)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, error.value.details()
        return error.value.details()

    wrong_shape = call("X", "FP32", np.zeros((2, 5), np.float32))
    wrong_type = call("X", "INT32", np.zeros((2, 4), np.int32))
    wrong_name = call("Z", "FP32", np.zeros((2, 4), np.float32))
    for message, words in ((wrong_shape, ["X", "5", "4"]), (wrong_type, ["X", "INT32", "FP32"]), (wrong_name, ["Z"])):
        assert all(word in message for word in words), message
    request = service_pb2.ModelInferRequest(model_name="iris", model_version="1")
    request.inputs.add(name="X", datatype="FP32", shape=[1, 4])
    request.raw_input_contents.append(iris_features(1).tobytes())
    assert iris_gateway.stub.ModelInfer(request, timeout=10).model_version == "1"
    assert {w["pid"] for w in admin_json(iris_gateway, "/workers")} == pids, "no worker was replaced"


def test_a_sigkilled_python_worker_is_restarted_and_calls_recover(iris_gateway, models):
    from tritonclient.grpc import service_pb2

    workers = admin_json(iris_gateway, "/workers")
    victim = next(w for w in workers if w["version"] == "2")
    os.kill(victim["pid"], signal.SIGKILL)
    request = service_pb2.ModelInferRequest(model_name="iris", model_version="2")
    request.inputs.add(name="X", datatype="FP32", shape=[3, 4])
    features = iris_features(3, seed=5)
    request.raw_input_contents.append(features.tobytes())
    deadline = time.monotonic() + 60
    answer = None
    while time.monotonic() < deadline:
        try:
            answer = iris_gateway.stub.ModelInfer(request, timeout=5)
            now = next((w for w in admin_json(iris_gateway, "/workers") if w["version"] == "2"), None)
            if now and now["pid"] not in (None, victim["pid"]) and now["state"] == "ready":
                break
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error.details()
        time.sleep(0.1)
    now = next(w for w in admin_json(iris_gateway, "/workers") if w["version"] == "2")
    assert now["pid"] != victim["pid"] and now["state"] == "ready" and now["restarts"] >= 1, now
    assert answer is not None and answer.model_version == "2"
    expected = reference(models["iris/2"], features)
    np.testing.assert_allclose(np.frombuffer(answer.raw_output_contents[1], np.float32).reshape(3, 3), expected["probabilities"], rtol=1e-5)


def test_check_config_reports_backend_mistakes_with_line_and_column(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("""models:
  iris:
    versions:
      - version: "1"
        backend: {command: [no-such-worker-program, x.py]}
      - version: "2"
        backend: {command: [], environment: {SWITCHYARD_MODEL: x}}
      - version: "3"
        backend: docker
""")
    result = subprocess.run([os.environ.get("SWITCHYARD_BINARY", str(REPO / ".build/debug/switchyard")), "check-config", str(config)],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert f"{config}:5:29: error: the worker program of 'iris' version 1 cannot be started: 'no-such-worker-program' is not on PATH" in result.stderr, result.stderr
    assert f"{config}:7:28: error: the command of 'iris' version 2 is empty" in result.stderr, result.stderr
    assert f"{config}:7:46: error: SWITCHYARD_MODEL is set by the gateway for each worker" in result.stderr, result.stderr
    assert f"{config}:9:18: error: expected builtin or a mapping with a command" in result.stderr, result.stderr


def test_a_reload_that_changes_the_backend_replaces_the_pool_and_serves_the_new_model(tmp_path, models):
    import shutil

    from conftest import reload_config
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    # Relative paths resolve against the file's directory: the model sits next to it.
    shutil.copy(models["iris/1"], tmp_path / "a.onnx")
    shutil.copy(models["iris/2"], tmp_path / "b.onnx")
    config = tmp_path / "switchyard.yaml"

    def write(model_file):
        config.write_text(f"""
models:
  iris:
    versions:
      - version: "1"
        workers: 1
        backend: {{command: {json.dumps([sys.executable, str(WORKER), "--threads", "1", "--model", model_file])}}}
""")

    write("a.onnx")
    gw = Gateway(tmp_path, ["--config", str(config)])
    channel = grpc.insecure_channel(gw.plaintext_target)
    stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
    features = iris_features(4, seed=11)

    def probabilities():
        request = service_pb2.ModelInferRequest(model_name="iris")
        request.inputs.add(name="X", datatype="FP32", shape=[4, 4])
        request.raw_input_contents.append(features.tobytes())
        answer = stub.ModelInfer(request, timeout=10)
        return np.frombuffer(answer.raw_output_contents[1], np.float32).reshape(4, 3)

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if stub.ModelReady(service_pb2.ModelReadyRequest(name="iris"), timeout=2).ready:
                    break
            except grpc.RpcError:
                pass
            assert time.monotonic() < deadline, gw.log_text()[-4000:]
            time.sleep(0.1)
        np.testing.assert_allclose(probabilities(), reference(models["iris/1"], features)["probabilities"], rtol=1e-5)
        backend = admin_json(gw, "/config")["models"][0]["backend"]
        assert backend["command"][-1] == "a.onnx" and backend["working_directory"] == str(tmp_path), backend
        write("b.onnx")
        status, body = reload_config(gw)
        assert status == 200, body
        assert json.loads(body)["variants"]["replaced"] == ["iris:1"], body
        np.testing.assert_allclose(probabilities(), reference(models["iris/2"], features)["probabilities"], rtol=1e-5)
    finally:
        channel.close()
        assert gw.stop() == 0, gw.log_text()[-4000:]


def test_the_python_workers_exit_when_the_gateway_is_sigkilled(tmp_path, models):
    config = tmp_path / "switchyard.yaml"
    command = [sys.executable, str(WORKER), "--threads", "1", "--model", models["iris/1"]]
    config.write_text(f"models: {{iris: {{versions: [{{version: \"1\", workers: 2, backend: {{command: {json.dumps(command)}}}}}]}}}}\n")
    gw = Gateway(tmp_path, ["--config", str(config)])
    try:
        deadline = time.monotonic() + 60
        pids = []
        while len(pids) < 2 or any(w["state"] != "ready" for w in workers):
            assert time.monotonic() < deadline, gw.log_text()[-4000:]
            time.sleep(0.1)
            workers = admin_json(gw, "/workers")
            pids = [w["pid"] for w in workers if w["pid"]]
    finally:
        gw.process.kill()
        gw.process.wait()
        gw.log.close()

    def alive(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
        except FileNotFoundError:
            return False

    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in pids if alive(pid)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left, f"workers {left} outlived their gateway"
