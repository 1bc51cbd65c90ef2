"""Rate and concurrency limits through the real gateway and workers (issue 11): a principal's
rate holds within 5 % over 10 s with retry pushback on every refusal; a model's own limit is
shared by its callers; a principal's concurrent calls are capped; a stream over its rate is
slowed through flow control, and refused per message (the stream staying open) only when a
message would have to wait too long."""
import hashlib
import threading
import time
import urllib.request

import grpc
import pytest
from tritonclient.grpc import service_pb2, service_pb2_grpc

from conftest import Gateway, serving_both_versions, simple_request, two_versions

KEYS = {name: f"sy_{name}_key_5e1f0c" for name in ("metered", "narrow", "streamer", "trickle", "free")}


def sha(key):
    return hashlib.sha256(key.encode()).hexdigest()


def limits_file():
    keys = "\n".join(f'    - {{principal: {name}, sha256: "{sha(key)}"}}' for name, key in KEYS.items())
    return two_versions(100, 0) + f"""  simple_string:
    versions: [{{version: "1", workers: 1}}]
    rate_limit: {{requests_per_second: 5, burst: 5}}
auth:
  api_keys:
{keys}
principals:
  metered: {{rate_limit: {{requests_per_second: 20, burst: 5}}}}
  narrow: {{max_concurrent_calls: 1}}
  streamer: {{rate_limit: {{requests_per_second: 20, burst: 1}}}}
  trickle: {{rate_limit: {{requests_per_second: 0.5, burst: 1}}}}
  free: {{}}
"""


def key(name):
    return [("x-api-key", KEYS[name])]


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("limits")
    config = workdir / "limits.yaml"
    config.write_text(limits_file())
    gw = Gateway(workdir, ["--config", str(config), "--log-level", "info", "--access-log", "off"])
    yield from serving_both_versions(gw, metadata=key("free"))


def test_a_principals_rate_holds_within_5_percent_over_10_seconds_with_retry_pushback(limited):
    ok = []
    refusals = []
    stop = threading.Event()

    def hammer():
        channel = grpc.insecure_channel(limited.plaintext_target)
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        while not stop.is_set():
            try:
                stub.ModelInfer(simple_request(), metadata=key("metered"), timeout=10)
                ok.append(time.monotonic())
            except grpc.RpcError as error:
                refusals.append((error.code(), error.details(), dict(error.trailing_metadata() or ())))
        channel.close()

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    time.sleep(10)
    stop.set()
    for thread in threads:
        thread.join(timeout=20)
    elapsed = time.monotonic() - started
    expected = 20 * elapsed + 5  # the rate over the run, plus the burst
    assert abs(len(ok) - expected) <= 0.05 * expected, f"{len(ok)} calls went through in {elapsed:.1f} s; expected {expected:.0f} ± 5 %"
    assert len(refusals) > len(ok), "the clients pushed well over the rate"
    code, message, trailers = refusals[0]
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert message.startswith("principal 'metered' is over its rate limit of 20 requests/s (burst 5); retry in "), message
    assert 1 <= int(trailers["grpc-retry-pushback-ms"]) <= 50, trailers
    assert trailers["retry-after"] == "1", trailers
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{limited.admin_port}/metrics", timeout=10).read().decode()
    line = next(l for l in metrics.splitlines() if l.startswith('switchyard_rate_limited_total{limit="principal",principal="metered"}'))
    assert int(line.split()[-1]) == len(refusals)


def test_a_models_own_limit_is_shared_by_its_callers(limited):
    request = service_pb2.ModelInferRequest(model_name="simple_string")
    tensor = request.inputs.add(name="INPUT0", datatype="BYTES", shape=[1, 16])
    tensor.contents.bytes_contents.extend([b"1"] * 16)
    tensor = request.inputs.add(name="INPUT1", datatype="BYTES", shape=[1, 16])
    tensor.contents.bytes_contents.extend([b"2"] * 16)
    outcomes = []
    for _ in range(12):
        try:
            limited.stub.ModelInfer(request, metadata=key("free"), timeout=10)
            outcomes.append("OK")
        except grpc.RpcError as error:
            outcomes.append(error.details())
    assert outcomes[:5] == ["OK"] * 5, outcomes
    refused = [o for o in outcomes if o != "OK"]
    assert refused and all(o.startswith("model 'simple_string' is over its rate limit of 5 requests/s (burst 5)") for o in refused), outcomes


def test_a_principals_concurrent_calls_are_capped(limited):
    gate = threading.Event()

    def hold():
        yield simple_request()
        gate.wait(timeout=20)

    stream = limited.stub.ModelStreamInfer(hold(), metadata=key("narrow"), timeout=30)
    assert next(stream).infer_response.model_version == "1"  # the stream is in flight: one call
    with pytest.raises(grpc.RpcError) as error:
        limited.stub.ModelInfer(simple_request(), metadata=key("narrow"), timeout=10)
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "principal 'narrow' has 1 calls in flight, its limit (max_concurrent_calls)" in error.value.details()
    gate.set()
    assert list(stream) == []
    limited.stub.ModelInfer(simple_request(), metadata=key("narrow"), timeout=10)  # the slot came back


def test_a_stream_over_its_rate_is_slowed_not_refused(limited):
    started = time.monotonic()
    responses = list(limited.stub.ModelStreamInfer(iter([simple_request() for _ in range(40)]), metadata=key("streamer"), timeout=60))
    elapsed = time.monotonic() - started
    assert [r.error_message for r in responses] == [""] * 40
    # 40 messages at 20/s with a burst of 1: the stream is read at the rate, about 1.95 s.
    assert 1.7 <= elapsed <= 10.0, elapsed


def test_a_stream_that_would_wait_too_long_has_messages_refused_and_stays_open(limited):
    def requests():
        for _ in range(3):
            yield simple_request()
        time.sleep(2.2)  # the bucket (0.5/s) has room again
        yield simple_request()

    responses = list(limited.stub.ModelStreamInfer(requests(), metadata=key("trickle"), timeout=60))
    # A refusal goes out at once, a served request's answer when its worker replies: count, not order.
    errors = [r.error_message for r in responses if r.error_message]
    assert len(responses) == 4 and len(errors) == 2, [r.error_message for r in responses]
    for error in errors:
        assert "RESOURCE_EXHAUSTED: principal 'trickle' is over its rate limit of 0.5 requests/s (burst 1); retry in" in error, error
