"""Traces of inference requests exported over OTLP/HTTP to a Python receiver (otlp_receiver.py,
on opentelemetry-proto): the client's W3C traceparent parents the gateway's server span, the
queue and worker spans are its children, attributes follow OpenTelemetry's RPC conventions,
errors are marked, sampling is parent-based with a ratio for new traces; and the worker's log
lines carry the call's x-request-id and trace id."""
import json
import os
import secrets
import time

import numpy as np
import pytest
import tritonclient.grpc as triton
from tritonclient.utils import InferenceServerException

from conftest import Gateway
from otlp_receiver import OTLPReceiver

SERVER_SPANS = {"inference.GRPCInferenceService/ModelInfer", "inference.GRPCInferenceService/ModelStreamInfer"}


def traceparent(sampled=True):
    trace_id, span_id = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, span_id, f"00-{trace_id}-{span_id}-{'01' if sampled else '00'}"


def wait_ready(gw, models=("simple", "simple_string", "repeat_int32")):
    client = triton.InferenceServerClient(gw.plaintext_target)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if all(client.is_model_ready(model) for model in models):
                break
        except InferenceServerException:
            pass
        time.sleep(0.1)
    assert all(client.is_model_ready(model) for model in models), gw.log_text()
    return client


def simple_inputs():
    a = np.arange(16, dtype=np.int32).reshape(1, 16)
    inputs = [triton.InferInput("INPUT0", [1, 16], "INT32"), triton.InferInput("INPUT1", [1, 16], "INT32")]
    inputs[0].set_data_from_numpy(a)
    inputs[1].set_data_from_numpy(a)
    return inputs


def bad_string_inputs():
    """simple_string inputs the gateway cannot judge (BYTES) and the worker refuses (not numbers)."""
    a = np.array([[b"not-a-number"] * 16], dtype=np.object_)
    inputs = [triton.InferInput("INPUT0", [1, 16], "BYTES"), triton.InferInput("INPUT1", [1, 16], "BYTES")]
    inputs[0].set_data_from_numpy(a)
    inputs[1].set_data_from_numpy(a)
    return inputs


def of_trace(spans, trace_id):
    return [span for span in spans if span["trace_id"] == trace_id]


def by_name(spans, name):
    found = [span for span in spans if span["name"] == name]
    assert len(found) == 1, (name, spans)
    return found[0]


@pytest.fixture(scope="module")
def receiver():
    r = OTLPReceiver()
    yield r
    r.close()


@pytest.fixture(scope="module")
def traced(receiver, tmp_path_factory):
    gw = Gateway(tmp_path_factory.mktemp("tracing"), [
        "--model", "simple", "--model", "simple_string", "--model", "repeat_int32", "--workers-per-model", "1",
        "--otlp-endpoint", receiver.endpoint, "--trace-sampling-ratio", "1.0", "--log-format", "json"])
    client = wait_ready(gw)
    yield gw, client
    client.close()
    code = gw.stop()
    assert code == 0, f"gateway exited with {code}:\n{gw.log_text()}"


def test_the_client_traceparent_parents_the_server_span_and_its_queue_and_worker_children(traced, receiver):
    _, client = traced
    trace_id, parent_id, header = traceparent()
    client.infer("simple", simple_inputs(), headers={"traceparent": header, "tracestate": "vendor=abc", "x-request-id": "req-ok-1"})

    spans = receiver.wait_for(lambda spans: len(of_trace(spans, trace_id)) >= 3)
    spans = of_trace(spans, trace_id)
    assert len(spans) == 3, spans
    server = by_name(spans, "inference.GRPCInferenceService/ModelInfer")
    queue = by_name(spans, "switchyard.queue")
    worker = by_name(spans, "switchyard.worker")

    assert server["parent_span_id"] == parent_id
    assert server["kind"] == "SPAN_KIND_SERVER"
    assert server["status"] == "STATUS_CODE_UNSET"
    assert server["service"] == "switchyard"
    attributes = server["attributes"]
    assert attributes["rpc.system"] == "grpc"
    assert attributes["rpc.service"] == "inference.GRPCInferenceService"
    assert attributes["rpc.method"] == "ModelInfer"
    assert attributes["rpc.grpc.status_code"] == 0
    assert attributes["switchyard.model.name"] == "simple"
    assert attributes["switchyard.model.version"] == "1"
    assert attributes["switchyard.request_id"] == "req-ok-1"
    assert attributes["network.peer.address"] == "127.0.0.1" and attributes["network.peer.port"] > 0
    assert attributes["server.port"] == traced[0].plaintext_port

    for child in (queue, worker):
        assert child["parent_span_id"] == server["span_id"], child
        assert server["start"] <= child["start"] <= child["end"] <= server["end"], (server, child)
    assert queue["end"] <= worker["start"]
    assert worker["kind"] == "SPAN_KIND_CLIENT"
    assert worker["attributes"]["switchyard.worker.pid"] > 0
    assert worker["attributes"]["switchyard.model.name"] == "simple"
    for key in ("queue_ns", "compute_input_ns", "compute_infer_ns", "compute_output_ns"):
        assert worker["attributes"][f"switchyard.worker.{key}"] >= 0, worker


def test_a_failed_call_has_error_status_on_its_spans(traced, receiver):
    _, client = traced
    trace_id, _, header = traceparent()
    with pytest.raises(InferenceServerException):
        client.infer("simple_string", bad_string_inputs(), headers={"traceparent": header})
    spans = of_trace(receiver.wait_for(lambda spans: len(of_trace(spans, trace_id)) >= 3), trace_id)
    server = by_name(spans, "inference.GRPCInferenceService/ModelInfer")
    assert server["status"] == "STATUS_CODE_ERROR"
    assert server["attributes"]["rpc.grpc.status_code"] == 3  # INVALID_ARGUMENT, from the worker
    assert "INVALID_ARGUMENT" in server["status_message"] or "invalidArgument" in server["status_message"]
    assert by_name(spans, "switchyard.worker")["status"] == "STATUS_CODE_ERROR"

    # Refused by the gateway itself (no such version): a server span alone, NOT_FOUND.
    trace_id, _, header = traceparent()
    with pytest.raises(InferenceServerException):
        client.infer("simple", simple_inputs(), model_version="9", headers={"traceparent": header})
    spans = of_trace(receiver.wait_for(lambda spans: len(of_trace(spans, trace_id)) >= 1), trace_id)
    server = by_name(spans, "inference.GRPCInferenceService/ModelInfer")
    assert server["status"] == "STATUS_CODE_ERROR" and server["attributes"]["rpc.grpc.status_code"] == 5
    time.sleep(0.3)
    assert len(of_trace(receiver.spans, trace_id)) == 1


def test_without_a_traceparent_a_new_trace_starts_and_an_unsampled_parent_is_honoured(traced, receiver):
    _, client = traced
    before = {span["trace_id"] for span in receiver.spans}
    unsampled_id, _, unsampled = traceparent(sampled=False)
    client.infer("simple", simple_inputs(), headers={"traceparent": unsampled})
    client.infer("simple", simple_inputs(), headers={"x-request-id": "req-root"})

    def root_arrived(spans):
        return any(s["attributes"].get("switchyard.request_id") == "req-root" for s in spans)

    spans = receiver.wait_for(root_arrived)
    root = next(s for s in spans if s["attributes"].get("switchyard.request_id") == "req-root")
    assert root["trace_id"] not in before
    assert root["parent_span_id"] == ""
    children = [s for s in spans if s["parent_span_id"] == root["span_id"]]
    assert sorted(s["name"] for s in children) == ["switchyard.queue", "switchyard.worker"]
    assert of_trace(spans, unsampled_id) == [], "a parent that is not sampled starts no span"


def test_each_stream_request_has_its_own_server_span_under_the_clients_span(traced, receiver):
    gw, _ = traced
    trace_id, parent_id, header = traceparent()
    results = []
    client = triton.InferenceServerClient(gw.plaintext_target)
    client.start_stream(callback=lambda result, error: results.append((result, error)), headers={"traceparent": header})
    for index in range(2):
        values = np.array([index + 1, index + 2], dtype=np.int32)
        inputs = [triton.InferInput("IN", [2], "INT32"), triton.InferInput("DELAY", [2], "UINT32"),
                  triton.InferInput("WAIT", [1], "UINT32")]
        inputs[0].set_data_from_numpy(values)
        inputs[1].set_data_from_numpy(np.zeros(2, dtype=np.uint32))
        inputs[2].set_data_from_numpy(np.zeros(1, dtype=np.uint32))
        client.async_stream_infer("repeat_int32", inputs, request_id=f"stream-{index}")
    deadline = time.monotonic() + 10
    while len(results) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    client.stop_stream()
    client.close()
    assert len(results) == 4 and all(error is None for _, error in results), results

    spans = of_trace(receiver.wait_for(lambda spans: len(of_trace(spans, trace_id)) >= 6), trace_id)
    servers = [s for s in spans if s["name"] == "inference.GRPCInferenceService/ModelStreamInfer"]
    assert len(servers) == 2, spans
    assert {s["attributes"]["switchyard.inference.id"] for s in servers} == {"stream-0", "stream-1"}
    for server in servers:
        assert server["parent_span_id"] == parent_id
        assert server["attributes"]["rpc.method"] == "ModelStreamInfer"
        assert server["attributes"]["rpc.grpc.status_code"] == 0
        children = sorted(s["name"] for s in spans if s["parent_span_id"] == server["span_id"])
        assert children == ["switchyard.queue", "switchyard.worker"], spans


def test_worker_log_lines_carry_the_request_id_and_trace_id(traced):
    gw, client = traced
    trace_id, _, header = traceparent()
    with pytest.raises(InferenceServerException):
        client.infer("simple_string", bad_string_inputs(), headers={"traceparent": header, "x-request-id": "req-log-7"})

    def worker_lines():
        events = [json.loads(line) for line in gw.log_text().splitlines() if line.startswith("{")]
        return [e for e in events if e.get("metadata.source") == "worker-stderr" and "request_id=req-log-7" in e["message"]]

    deadline = time.monotonic() + 10
    while not worker_lines() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = worker_lines()
    assert lines, gw.log_text()[-4000:]
    assert all(f"trace_id={trace_id}" in e["message"] for e in lines), lines
    assert lines[0]["worker"].startswith("simple_string-")


def test_with_ratio_zero_only_sampled_parents_are_exported_and_the_environment_names_the_collector(tmp_path):
    receiver = OTLPReceiver()
    gw = Gateway(tmp_path, ["--model", "simple", "--workers-per-model", "1", "--trace-sampling-ratio", "0"],
                 env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint, "OTEL_SERVICE_NAME": "switchyard-test",
                      "OTEL_BSP_SCHEDULE_DELAY": "100"})
    try:
        client = wait_ready(gw, models=("simple",))
        for _ in range(3):
            client.infer("simple", simple_inputs())
        trace_id, parent_id, header = traceparent()
        client.infer("simple", simple_inputs(), headers={"traceparent": header})
        spans = receiver.wait_for(lambda spans: len(of_trace(spans, trace_id)) >= 3)
        time.sleep(0.5)
        assert {s["trace_id"] for s in receiver.spans} == {trace_id}, receiver.spans
        assert {s["service"] for s in spans} == {"switchyard-test"}
        client.close()
    finally:
        code = gw.stop()
        receiver.close()
    assert code == 0, gw.log_text()


def test_shutdown_with_the_collector_down_is_prompt(tmp_path):
    receiver = OTLPReceiver()
    endpoint = receiver.endpoint
    receiver.close()  # nothing listens there any more
    gw = Gateway(tmp_path, ["--model", "simple", "--workers-per-model", "1", "--otlp-endpoint", endpoint])
    client = wait_ready(gw, models=("simple",))
    for _ in range(20):
        client.infer("simple", simple_inputs())
    client.close()
    started = time.monotonic()
    assert gw.stop() == 0, gw.log_text()
    assert time.monotonic() - started < 15, "flushing to a collector that is down is bounded"
