"""GET /metrics and the access log against the real gateway and real workers: the counters,
parsed with prometheus_client's own text parser, equal the calls sent (by method, code, model
and version); histograms count what they should; a model name that does not exist adds no
series; TLS handshakes and their failures are counted by reason; every call gets one access-log
line with its request id, which goes back to the client in `x-request-id`."""
import json
import socket
import ssl
import subprocess
import time
import urllib.request

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
from prometheus_client.parser import text_string_to_metric_families
from tritonclient.grpc import service_pb2

from conftest import Gateway, switchyard_binary, wait_models_ready

INFER = "/inference.GRPCInferenceService/ModelInfer"


def scrape(gw):
    with urllib.request.urlopen(f"http://127.0.0.1:{gw.admin_port}/metrics", timeout=10) as response:
        assert response.status == 200
        assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return text, samples


def value(samples, name, **labels):
    """A sample's value. prometheus_client's parser names every counter's samples `…_total`,
    also Triton's counters (`nv_inference_request_success`), which are exposed without it."""
    key = tuple(sorted(labels.items()))
    return samples.get((name, key), samples.get((name + "_total", key), 0.0))


def series_with(samples, name):
    return {labels: v for (n, labels), v in samples.items() if n == name}


def simple_request(rows=1):
    request = service_pb2.ModelInferRequest(model_name="simple")
    data = np.arange(16 * rows, dtype=np.int32).reshape(rows, 16)
    for name in ("INPUT0", "INPUT1"):
        tensor = request.inputs.add(name=name, datatype="INT32", shape=[rows, 16])
        tensor.contents.int_contents.extend(data.flatten().tolist())
    return request


@pytest.fixture(scope="module")
def metered(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("metrics")
    gw = Gateway(workdir, ["--model", "simple", "--model", "repeat_int32", "--workers-per-model", "1",
                           "--access-log", str(workdir / "access.log"), "--log-level", "info",
                           "--metrics-latency-buckets", "0.001,0.01,0.1,1"])
    wait_models_ready(gw, "simple")
    yield gw
    assert gw.stop() == 0, gw.log_text()


def test_counters_match_the_calls_sent(metered):
    _, before = scrape(metered)
    channel = grpc.insecure_channel(metered.plaintext_target)
    infer = channel.unary_unary(INFER, request_serializer=service_pb2.ModelInferRequest.SerializeToString,
                                response_deserializer=service_pb2.ModelInferResponse.FromString)
    ok, bad_shape, unknown = 7, 3, 4
    for _ in range(ok):
        infer(simple_request(), timeout=10)
    for _ in range(bad_shape):
        request = simple_request()
        request.inputs[0].shape[1] = 8
        with pytest.raises(grpc.RpcError) as error:
            infer(request, timeout=10)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    for index in range(unknown):
        request = simple_request()
        request.model_name = f"no_such_model_{index}"
        with pytest.raises(grpc.RpcError) as error:
            infer(request, timeout=10)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
    channel.close()

    text, after = scrape(metered)
    method = dict(grpc_type="unary", grpc_service="inference.GRPCInferenceService", grpc_method="ModelInfer")

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("grpc_server_started_total", **method) == ok + bad_shape + unknown
    assert delta("grpc_server_handled_total", grpc_code="OK", **method) == ok
    assert delta("grpc_server_handled_total", grpc_code="INVALID_ARGUMENT", **method) == bad_shape
    assert delta("grpc_server_handled_total", grpc_code="NOT_FOUND", **method) == unknown
    assert delta("grpc_server_msg_received_total", **method) == ok + bad_shape + unknown
    assert delta("grpc_server_msg_sent_total", **method) == ok
    assert delta("grpc_server_handling_seconds_count", **method) == ok + bad_shape + unknown
    assert value(after, "grpc_server_handling_seconds_bucket", le="+Inf", **method) == value(after, "grpc_server_handling_seconds_count", **method)
    # The buckets are the ones given on the command line, cumulative.
    buckets = sorted((float(dict(labels)["le"]), v) for labels, v in series_with(after, "grpc_server_handling_seconds_bucket").items()
                     if dict(labels)["grpc_method"] == "ModelInfer")
    assert [le for le, _ in buckets] == [0.001, 0.01, 0.1, 1.0, float("inf")]
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:]))

    model = dict(model="simple", version="1")
    # Triton's names and shape, exactly: a counter without a _total suffix.
    assert 'nv_inference_request_success{model="simple",version="1"} ' in text
    assert delta("nv_inference_request_success", **model) == ok
    assert delta("nv_inference_count", **model) == ok
    assert delta("nv_inference_exec_count", **model) == ok
    assert delta("switchyard_inference_request_duration_seconds_count", **model) == ok
    assert value(after, "nv_inference_request_duration_us", **model) > 0
    # The variant's histograms use the buckets given too, and every call lands in one of them.
    name = "switchyard_inference_request_duration_seconds"
    variant = sorted((float(dict(labels)["le"]), v) for labels, v in series_with(after, name + "_bucket").items()
                     if dict(labels)["model"] == "simple" and dict(labels)["version"] == "1")
    assert [le for le, _ in variant] == [0.001, 0.01, 0.1, 1.0, float("inf")], variant
    assert variant[-1][1] == variant[-2][1] == value(after, name + "_count", **model), variant
    for reason in ("REJECTED", "CANCELED", "BACKEND", "OTHER"):
        assert ("nv_inference_request_failure_total", tuple(sorted(dict(reason=reason, **model).items()))) in after

    # Names that do not exist create no series: model labels come from the configuration only.
    assert "no_such_model" not in text
    models = {dict(labels).get("model") for (name, labels) in after if dict(labels).get("model")}
    assert models == {"simple", "repeat_int32"}


def test_stream_messages_are_counted(metered):
    _, before = scrape(metered)
    client = triton.InferenceServerClient(metered.plaintext_target)
    responses = []
    client.start_stream(callback=lambda result, error: responses.append((result, error)))
    for index in range(5):
        inputs = [triton.InferInput("INPUT0", [1, 16], "INT32"), triton.InferInput("INPUT1", [1, 16], "INT32")]
        for tensor in inputs:
            tensor.set_data_from_numpy(np.ones((1, 16), dtype=np.int32))
        client.async_stream_infer("simple", inputs, request_id=str(index))
    deadline = time.monotonic() + 10
    while len(responses) < 5 and time.monotonic() < deadline:
        time.sleep(0.02)
    client.stop_stream()
    client.close()
    assert len(responses) == 5 and all(error is None for _, error in responses)
    time.sleep(0.2)
    _, after = scrape(metered)
    method = dict(grpc_type="bidi_stream", grpc_service="inference.GRPCInferenceService", grpc_method="ModelStreamInfer")
    assert value(after, "grpc_server_msg_received_total", **method) - value(before, "grpc_server_msg_received_total", **method) == 5
    assert value(after, "grpc_server_msg_sent_total", **method) - value(before, "grpc_server_msg_sent_total", **method) == 5
    assert value(after, "grpc_server_handled_total", grpc_code="OK", **method) - value(before, "grpc_server_handled_total", grpc_code="OK", **method) == 1
    assert value(after, "switchyard_grpc_calls_in_flight", **method) == 0


def test_tls_handshakes_and_failures_are_counted_by_reason(metered):
    _, before = scrape(metered)
    # Plaintext HTTP/2 to the TLS port: not TLS.
    with socket.create_connection(("127.0.0.1", metered.tls_port), timeout=5) as sock:
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        sock.settimeout(5)
        try:
            while sock.recv(4096):
                pass
        except OSError:
            pass
    # A real handshake with the dev CA.
    context = ssl.create_default_context(cafile=str(metered.certs / "ca.pem"))
    context.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", metered.tls_port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            assert tls.selected_alpn_protocol() == "h2"
    time.sleep(0.3)
    _, after = scrape(metered)
    assert value(after, "switchyard_tls_handshake_failures_total", reason="not_tls") - value(before, "switchyard_tls_handshake_failures_total", reason="not_tls") == 1
    assert value(after, "switchyard_tls_handshakes_total", resumed="false") - value(before, "switchyard_tls_handshakes_total", resumed="false") == 1
    assert value(after, "switchyard_connections_accepted_total", listener="tls") - value(before, "switchyard_connections_accepted_total", listener="tls") == 2
    assert value(after, "switchyard_connections_open", listener="tls") == 0
    assert value(after, "switchyard_workers", model="simple", version="1", state="ready") == 1


def test_access_log_has_one_line_per_call_with_the_request_id_the_client_gets(metered):
    channel = grpc.insecure_channel(metered.plaintext_target)
    infer = channel.unary_unary(INFER, request_serializer=service_pb2.ModelInferRequest.SerializeToString,
                                response_deserializer=service_pb2.ModelInferResponse.FromString)
    given = [f"client-id-{index}" for index in range(5)]
    for request_id in given:
        _, call = infer.with_call(simple_request(), metadata=[("x-request-id", request_id)], timeout=10)
        assert dict(call.initial_metadata())["x-request-id"] == request_id
    generated = []
    for _ in range(5):
        _, call = infer.with_call(simple_request(), timeout=10)
        generated.append(dict(call.initial_metadata())["x-request-id"])
    assert len(set(generated)) == 5 and all(len(request_id) == 15 for request_id in generated)
    failing = simple_request()
    failing.model_name = "missing"
    with pytest.raises(grpc.RpcError) as error:
        infer.with_call(failing, metadata=[("x-request-id", "failing-call")], timeout=10)
    assert dict(error.value.trailing_metadata())["x-request-id"] == "failing-call"
    channel.close()

    time.sleep(0.5)
    lines = [json.loads(line) for line in (metered.workdir / "access.log").read_text().splitlines()]
    by_id = {line["request_id"]: line for line in lines}
    assert len(by_id) == len(lines), "request ids repeat"
    for request_id in given + generated:
        line = by_id[request_id]
        assert line["log"] == "access" and line["method"] == INFER
        assert line["model"] == "simple" and line["version"] == "1"
        assert line["grpc_code"] == "OK" and line["grpc_status"] == 0
        assert line["peer"].startswith("127.0.0.1:")
        assert line["worker_pid"] > 0 and line["bytes_in"] > 0 and line["bytes_out"] > 0 and line["duration_us"] >= 0
        assert line["time"].endswith("Z") and line["user_agent"].startswith("grpc-python")
    failed = by_id["failing-call"]
    assert failed["grpc_code"] == "NOT_FOUND" and "missing" in failed["grpc_message"] and failed["worker_pid"] is None
    assert failed["model"] == "missing" and failed["version"] is None


def test_sampling_keeps_failures_and_counts_what_it_leaves_out(tmp_path):
    gw = Gateway(tmp_path, ["--model", "simple", "--workers-per-model", "1", "--access-log", str(tmp_path / "access.log"),
                            "--access-log-sample-rate", "0", "--log-level", "info"])
    try:
        wait_models_ready(gw, "simple")
        channel = grpc.insecure_channel(gw.plaintext_target)
        infer = channel.unary_unary(INFER, request_serializer=service_pb2.ModelInferRequest.SerializeToString,
                                    response_deserializer=service_pb2.ModelInferResponse.FromString)
        for _ in range(10):
            infer(simple_request(), timeout=10)
        failing = simple_request()
        failing.model_name = "missing"
        with pytest.raises(grpc.RpcError):
            infer.with_call(failing, metadata=[("x-request-id", "kept")], timeout=10)
        channel.close()
        time.sleep(0.5)
        lines = [json.loads(line) for line in (tmp_path / "access.log").read_text().splitlines()]
        assert [line["request_id"] for line in lines] == ["kept"]
        _, samples = scrape(gw)
        assert value(samples, "switchyard_access_log_sampled_out_total") >= 10
        assert value(samples, "switchyard_log_lines_dropped_total", log="access") == 0
    finally:
        assert gw.stop() == 0


@pytest.mark.parametrize("flags, message", [
    (["--log-level", "info,pool=loud"], "unknown log level 'loud' for pool"),
    (["--log-level", "info,network=debug"], "unknown log subsystem 'network'"),
    (["--access-log-sample-rate", "1.5"], "--access-log-sample-rate must be between 0 and 1"),
    (["--metrics-latency-buckets", "0.1,abc"], "--metrics-latency-buckets must be positive numbers"),
])
def test_bad_observability_flags_are_refused(flags, message):
    result = subprocess.run([switchyard_binary(), "serve", *flags], capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert message in result.stderr
