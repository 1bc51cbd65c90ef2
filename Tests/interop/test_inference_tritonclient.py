"""The inference service against tritonclient, unchanged: the real gateway with real worker
processes serving the built-in example models."""
import os
import queue
import signal
import subprocess
import threading
import time
from functools import partial

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException, np_to_triton_dtype


TARGET = []


@pytest.fixture
def client(inference_gateway):
    TARGET[:] = [inference_gateway.plaintext_target]
    c = triton.InferenceServerClient(inference_gateway.plaintext_target)
    yield c
    c.close()


def simple_inputs(a, b, datatype="INT32"):
    inputs = [triton.InferInput("INPUT0", list(a.shape), datatype), triton.InferInput("INPUT1", list(b.shape), datatype)]
    inputs[0].set_data_from_numpy(a)
    inputs[1].set_data_from_numpy(b)
    return inputs


def test_server_live_ready_and_metadata(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    metadata = client.get_server_metadata()
    assert metadata.name == "switchyard"
    assert "model_repository" in metadata.extensions


def test_model_ready_metadata_and_config(client):
    assert client.is_model_ready("simple")
    assert client.is_model_ready("simple", "1")
    metadata = client.get_model_metadata("simple")
    assert [(t.name, t.datatype, list(t.shape)) for t in metadata.inputs] == [
        ("INPUT0", "INT32", [-1, 16]), ("INPUT1", "INT32", [-1, 16])]
    assert [t.name for t in metadata.outputs] == ["OUTPUT0", "OUTPUT1"]
    config = client.get_model_config("simple").config
    assert config.name == "simple" and config.max_batch_size == 8
    assert client.get_model_config("repeat_int32").config.model_transaction_policy.decoupled


def test_repository_index_lists_every_builtin_model(client):
    index = {m.name: m.state for m in client.get_model_repository_index().models}
    assert index == {"simple": "READY", "simple_string": "READY", "simple_identity": "READY", "repeat_int32": "READY"}


def test_simple_adds_and_subtracts_with_raw_contents(client):
    a = np.arange(16, dtype=np.int32).reshape(1, 16)
    b = np.full((1, 16), 3, dtype=np.int32)
    result = client.infer("simple", simple_inputs(a, b), request_id="req-7",
                          outputs=[triton.InferRequestedOutput("OUTPUT0"), triton.InferRequestedOutput("OUTPUT1")])
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), a + b)
    np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), a - b)
    assert result.get_response().id == "req-7"


def test_simple_batch_of_eight_and_only_the_requested_output(client):
    a = np.random.randint(-1000, 1000, size=(8, 16), dtype=np.int32)
    b = np.random.randint(-1000, 1000, size=(8, 16), dtype=np.int32)
    result = client.infer("simple", simple_inputs(a, b), outputs=[triton.InferRequestedOutput("OUTPUT1")])
    np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), a - b)
    assert result.as_numpy("OUTPUT0") is None


def test_simple_with_typed_contents(inference_gateway):
    with grpc.insecure_channel(inference_gateway.plaintext_target) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        request = service_pb2.ModelInferRequest(model_name="simple", id="typed")
        for name, values in (("INPUT0", list(range(16))), ("INPUT1", [2] * 16)):
            tensor = request.inputs.add(name=name, datatype="INT32", shape=[1, 16])
            tensor.contents.int_contents.extend(values)
        response = stub.ModelInfer(request, timeout=10)
        out0 = np.frombuffer(response.raw_output_contents[0], dtype=np.int32)
        np.testing.assert_array_equal(out0, np.arange(16) + 2)


def test_simple_string_over_bytes_tensors(client):
    a = np.array([str(i).encode() for i in range(16)], dtype=np.object_).reshape(1, 16)
    b = np.array([b"1"] * 16, dtype=np.object_).reshape(1, 16)
    result = client.infer("simple_string", simple_inputs(a, b, "BYTES"))
    assert [int(x) for x in result.as_numpy("OUTPUT0").flatten()] == [i + 1 for i in range(16)]
    assert [int(x) for x in result.as_numpy("OUTPUT1").flatten()] == [i - 1 for i in range(16)]


def test_simple_identity_returns_its_input(client):
    data = np.array([b"hello", b"", b"\x00\xff binary"], dtype=np.object_).reshape(1, 3)
    tensor = triton.InferInput("INPUT0", [1, 3], "BYTES")
    tensor.set_data_from_numpy(data)
    result = client.infer("simple_identity", [tensor])
    assert list(result.as_numpy("OUTPUT0").flatten()) == list(data.flatten())


def test_repeat_int32_streams_one_response_per_element(client):
    responses = queue.Queue()
    client.start_stream(callback=lambda result, error: responses.put((result, error)))
    try:
        values = np.array([4, 5, 6], dtype=np.int32)
        inputs = [triton.InferInput("IN", [3], "INT32"), triton.InferInput("DELAY", [3], "UINT32"),
                  triton.InferInput("WAIT", [1], "UINT32")]
        inputs[0].set_data_from_numpy(values)
        inputs[1].set_data_from_numpy(np.array([10, 10, 10], dtype=np.uint32))
        inputs[2].set_data_from_numpy(np.array([10], dtype=np.uint32))
        client.async_stream_infer("repeat_int32", inputs, request_id="r1")
        got = []
        for _ in range(3):
            result, error = responses.get(timeout=10)
            assert error is None, error
            got.append((int(result.as_numpy("OUT")[0]), int(result.as_numpy("IDX")[0])))
        assert got == [(4, 0), (5, 1), (6, 2)]
    finally:
        client.stop_stream()


def test_stream_reports_a_failed_request_and_goes_on(client):
    responses = queue.Queue()
    client.start_stream(callback=lambda result, error: responses.put((result, error)))
    try:
        bad = simple_inputs(np.zeros((1, 15), dtype=np.int32), np.zeros((1, 15), dtype=np.int32))
        client.async_stream_infer("simple", bad, request_id="bad")
        a = np.ones((1, 16), dtype=np.int32)
        client.async_stream_infer("simple", simple_inputs(a, a), request_id="good")
        first, second = responses.get(timeout=10), responses.get(timeout=10)
        results = {True: [], False: []}
        for result, error in (first, second):
            results[error is None].append(result if error is None else error)
        assert len(results[False]) == 1 and "INPUT0" in str(results[False][0])
        np.testing.assert_array_equal(results[True][0].as_numpy("OUTPUT0"), a + a)
    finally:
        client.stop_stream()


@pytest.mark.parametrize(
    "model, a, datatype, code, words",
    [
        ("no_such_model", np.zeros((1, 16), np.int32), "INT32", "StatusCode.NOT_FOUND", "unknown model 'no_such_model'"),
        ("simple", np.zeros((1, 8), np.int32), "INT32", "StatusCode.INVALID_ARGUMENT", "expects [-1, 16]"),
        ("simple", np.zeros((1, 16), np.float32), "FP32", "StatusCode.INVALID_ARGUMENT", "expects INT32"),
        ("simple", np.zeros((9, 16), np.int32), "INT32", "StatusCode.INVALID_ARGUMENT", "accepts 1 to 8"),
    ],
)
def test_bad_requests_get_precise_errors(client, model, a, datatype, code, words):
    with pytest.raises(InferenceServerException) as error:
        client.infer(model, simple_inputs(a, a.copy(), datatype))
    assert error.value.status() == code
    assert words in error.value.message()


def test_unknown_version_is_not_found(client):
    a = np.zeros((1, 16), np.int32)
    with pytest.raises(InferenceServerException) as error:
        client.infer("simple", simple_inputs(a, a), model_version="7")
    assert error.value.status() == "StatusCode.NOT_FOUND"


def test_statistics_count_inferences(client):
    a = np.ones((2, 16), dtype=np.int32)
    before = client.get_inference_statistics("simple").model_stats[0]
    for _ in range(3):
        client.infer("simple", simple_inputs(a, a))
    after = client.get_inference_statistics("simple").model_stats[0]
    assert after.inference_stats.success.count == before.inference_stats.success.count + 3
    assert after.inference_count == before.inference_count + 6
    assert after.inference_stats.success.ns > before.inference_stats.success.ns
    # The workers report where the time went; counts stay aligned as perf_analyzer requires.
    stats = after.inference_stats
    assert stats.queue.count == stats.compute_input.count == stats.compute_infer.count == stats.compute_output.count
    assert stats.compute_infer.ns > before.inference_stats.compute_infer.ns
    assert stats.compute_input.ns > before.inference_stats.compute_input.ns
    assert before.execution_count < after.execution_count <= before.execution_count + 3


def test_batched_requests_count_one_execution_per_batch(client):
    """Concurrent requests that the worker's dynamic batcher runs together count as fewer
    executions than inferences (Triton's execution_count)."""
    a = np.ones((1, 16), dtype=np.int32)
    before = client.get_inference_statistics("simple").model_stats[0]
    done = []

    def run():
        c = triton.InferenceServerClient(TARGET[0])
        for _ in range(40):
            c.infer("simple", simple_inputs(a, a))
        done.append(True)
        c.close()

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    after = client.get_inference_statistics("simple").model_stats[0]
    requests = after.inference_stats.success.count - before.inference_stats.success.count
    executions = after.execution_count - before.execution_count
    assert requests == 320 and len(done) == 8
    assert 1 <= executions <= requests


def test_unload_and_load(client):
    client.unload_model("simple_identity")
    assert not client.is_model_ready("simple_identity")
    index = {m.name: m.state for m in client.get_model_repository_index().models}
    assert index["simple_identity"] == "UNAVAILABLE"
    with pytest.raises(InferenceServerException) as error:
        client.infer("simple_identity", [triton.InferInput("INPUT0", [1, 1], "BYTES")])
    assert error.value.status() == "StatusCode.UNAVAILABLE"
    client.load_model("simple_identity")
    assert client.is_model_ready("simple_identity")


def worker_pids(model, gateway):
    # Only this gateway's children: other gateways (benchmarks, other tests) may serve the model too.
    result = subprocess.run(["pgrep", "-P", str(gateway.process.pid), "-f", f"worker --socket .*/{model}-"],
                            capture_output=True, text=True)
    return [int(pid) for pid in result.stdout.split()]


def test_killing_a_worker_mid_flight_costs_no_request(inference_gateway):
    client = triton.InferenceServerClient(inference_gateway.plaintext_target)
    a = np.arange(16, dtype=np.int32).reshape(1, 16)
    pids = worker_pids("simple", inference_gateway)
    assert len(pids) == 2, pids
    results, errors = [], []

    def run(n):
        c = triton.InferenceServerClient(inference_gateway.plaintext_target)
        for _ in range(n):
            try:
                r = c.infer("simple", simple_inputs(a, a))
                results.append(r.as_numpy("OUTPUT0"))
            except Exception as e:  # noqa: BLE001 - any failure is the test's failure
                errors.append(e)
        c.close()

    threads = [threading.Thread(target=run, args=(60,)) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    os.kill(pids[0], signal.SIGKILL)
    for t in threads:
        t.join(timeout=60)
    assert errors == []
    assert len(results) == 480
    for r in results:
        np.testing.assert_array_equal(r, a + a)
    # The replacement joins: two workers again, and the model stays ready throughout.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(worker_pids("simple", inference_gateway)) < 2:
        time.sleep(0.1)
    assert len(worker_pids("simple", inference_gateway)) == 2
    assert client.is_model_ready("simple")
    client.close()
