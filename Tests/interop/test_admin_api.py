"""The admin API (issue 9) against the real gateway and real workers: GET /workers, drain and
undrain of models and versions, restart of one worker under load, GET /config, the bearer token,
and the refusal to start beyond loopback without one."""
import os
import queue
import subprocess
import threading
import time
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
from tritonclient.grpc import service_pb2, service_pb2_grpc

from conftest import Gateway, free_port, switchyard_binary, simple_request

TOKEN = "test-admin-token-7f3a9c"
WORKER_FIELDS = {"pid", "worker", "model", "version", "state", "in_flight", "queued", "worker_in_flight",
                 "worker_queued", "restarts", "uptime_seconds", "socket_path", "drained"}


@pytest.fixture(scope="module")
def admin_gateway(tmp_path_factory):
    """simple at versions 1 and 2 (2 workers each), simple_identity and repeat_int32 (1 worker
    each), with an admin token."""
    workdir = tmp_path_factory.mktemp("admin")
    token_file = workdir / "admin-token"
    token_file.write_text(TOKEN + "\n")
    gw = Gateway(workdir, ["--model", "simple:1", "--model", "simple:2", "--model", "simple_identity", "--model", "repeat_int32",
                           "--workers-per-model", "2", "--admin-token-file", str(token_file)])
    channel = grpc.insecure_channel(gw.plaintext_target)
    stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if stub.ServerReady(service_pb2.ServerReadyRequest(), timeout=1).ready:
                break
        except grpc.RpcError:
            pass
        time.sleep(0.1)
    gw.stub = stub
    # Ready means one live worker per variant; the tests below want every worker up.
    while time.monotonic() < deadline:
        if all(w["state"] == "ready" for w in admin_json(gw, "GET", "/workers")):
            break
        time.sleep(0.1)
    yield gw
    channel.close()
    code = gw.stop()
    assert code == 0, f"gateway exited with {code}:\n{gw.log_text()}"


def admin(gw, method, path, token=TOKEN, headers=None):
    """(status, headers, body text) of one admin request."""
    request = urllib.request.Request(f"http://127.0.0.1:{gw.admin_port}{path}", method=method, data=b"" if method == "POST" else None)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


def admin_json(gw, method, path):
    import json

    status, _, body = admin(gw, method, path)
    assert status == 200, f"{method} {path}: {status} {body}"
    return json.loads(body)


def identity_request():
    request = service_pb2.ModelInferRequest(model_name="simple_identity")
    request.inputs.add(name="INPUT0", datatype="BYTES", shape=[1, 1])
    value = b"hello"
    request.raw_input_contents.append(len(value).to_bytes(4, "little") + value)
    return request


def repeat_request(request_id, values, delay_ms):
    request = service_pb2.ModelInferRequest(model_name="repeat_int32", id=request_id)
    request.inputs.add(name="IN", datatype="INT32", shape=[len(values)])
    request.inputs.add(name="DELAY", datatype="UINT32", shape=[len(values)])
    request.inputs.add(name="WAIT", datatype="UINT32", shape=[1])
    request.raw_input_contents.extend([
        np.array(values, dtype=np.int32).tobytes(),
        np.full(len(values), delay_ms, dtype=np.uint32).tobytes(),
        np.zeros(1, dtype=np.uint32).tobytes(),
    ])
    return request


def test_workers_lists_every_worker_with_the_pids_of_real_processes(admin_gateway):
    workers = admin_json(admin_gateway, "GET", "/workers")
    assert all(set(w) == WORKER_FIELDS for w in workers), workers
    by_variant = {}
    for w in workers:
        by_variant.setdefault((w["model"], w["version"]), []).append(w)
    assert sorted(by_variant) == [("repeat_int32", "1"), ("simple", "1"), ("simple", "2"), ("simple_identity", "1")]
    assert all(len(ws) == 2 for ws in by_variant.values())
    for w in workers:
        assert w["state"] == "ready", w
        assert w["restarts"] == 0 and w["uptime_seconds"] > 0 and not w["drained"]
        with open(f"/proc/{w['pid']}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
        assert b"worker" in argv and w["socket_path"].encode() in argv, (w, argv)
        assert os.path.exists(w["socket_path"])
        with open(f"/proc/{w['pid']}/stat") as f:
            parent = int(f.read().rsplit(")", 1)[1].split()[1])
        assert parent == admin_gateway.process.pid


def test_the_token_is_required_everywhere_but_the_probes(admin_gateway):
    for method, path in (("GET", "/workers"), ("GET", "/config"), ("POST", "/models/simple/drain"),
                         ("POST", "/workers/1/restart"), ("POST", "/tls/reload"), ("GET", "/nothing-here")):
        status, headers, body = admin(admin_gateway, method, path, token=None)
        assert status == 401, (method, path, status, body)
        assert headers["WWW-Authenticate"].startswith("Bearer"), headers
        assert "requires a bearer token" in body
        status, headers, body = admin(admin_gateway, method, path, token="not-the-token-42")
        assert status == 401 and "wrong" in body and "not-the-token-42" not in body, (status, body)
        assert headers["WWW-Authenticate"].startswith("Bearer")
    status, _, body = admin(admin_gateway, "GET", "/workers", token=None, headers={"Authorization": f"Basic {TOKEN}"})
    assert status == 401 and "not a bearer token" in body
    assert admin(admin_gateway, "GET", "/workers")[0] == 200
    for method in ("GET", "HEAD"):
        assert admin(admin_gateway, method, "/healthz", token=None)[0] == 200
        assert admin(admin_gateway, method, "/readyz", token=None)[0] == 200
    assert TOKEN not in admin_gateway.log_text()


def test_bad_admin_requests_get_404_405_and_400(admin_gateway):
    status, _, body = admin(admin_gateway, "GET", "/no/such/endpoint")
    assert status == 404 and "GET /workers" in body
    status, headers, _ = admin(admin_gateway, "DELETE", "/workers")
    assert status == 405 and headers["Allow"] == "GET, HEAD"
    status, headers, _ = admin(admin_gateway, "GET", "/models/simple/drain")
    assert status == 405 and headers["Allow"] == "POST"
    assert admin(admin_gateway, "POST", "/models/bad%20name/drain")[0] == 400
    assert admin(admin_gateway, "POST", "/models/simple/versions/%2e%2e%2Fx/drain")[0] == 400
    status, _, body = admin(admin_gateway, "POST", "/models/nonesuch/drain")
    assert status == 404 and "unknown model 'nonesuch'" in body
    status, _, body = admin(admin_gateway, "POST", "/models/simple/versions/9/drain")
    assert status == 404 and "unknown version '9'" in body
    assert admin(admin_gateway, "POST", "/workers/abc/restart")[0] == 400
    assert admin(admin_gateway, "POST", "/workers/-3/restart")[0] == 400
    status, _, body = admin(admin_gateway, "POST", "/workers/999999/restart")
    assert status == 404 and "no worker has pid 999999" in body


def test_config_shows_the_effective_configuration_with_secrets_masked(admin_gateway):
    status, _, body = admin(admin_gateway, "GET", "/config")
    assert status == 200
    import json

    config = json.loads(body)
    assert config["admin"] == {"address": f"127.0.0.1:{admin_gateway.admin_port}", "token": "***"}
    assert config["listeners"]["plaintext"] == admin_gateway.plaintext_target
    assert config["tls"]["private_key"].endswith("server-key.pem")
    assert {(m["model"], m["version"]) for m in config["models"]} == {
        ("simple", "1"), ("simple", "2"), ("simple_identity", "1"), ("repeat_int32", "1")}
    assert config["timeouts"]["drain_timeout_ms"] == 30000 and config["timeouts"]["shutdown_delay_ms"] == 0
    assert config["log"] == {"format": "text", "level": "debug"}
    assert TOKEN not in body and "PRIVATE KEY" not in body and "BEGIN" not in body


def test_draining_a_version_sends_unversioned_calls_to_the_other_and_undrain_brings_it_back(admin_gateway):
    stub = admin_gateway.stub
    assert stub.ModelInfer(simple_request(), timeout=10).model_version == "2"
    assert admin_json(admin_gateway, "POST", "/models/simple/versions/2/drain") == {"model": "simple", "drained": True, "versions": ["2"]}
    try:
        for _ in range(20):
            assert stub.ModelInfer(simple_request(), timeout=10).model_version == "1"
        with pytest.raises(grpc.RpcError) as refused:
            stub.ModelInfer(simple_request("2"), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "version 2 of model 'simple' is drained by an operator" in refused.value.details()
        drained = [w for w in admin_json(admin_gateway, "GET", "/workers") if w["model"] == "simple"]
        assert {w["version"]: w["drained"] for w in drained} == {"1": False, "2": True}
        assert all(w["state"] == "ready" for w in drained)
        status, _, body = admin(admin_gateway, "GET", "/readyz", token=None)
        assert status == 200, body  # an operator's drain is deliberate: the gateway stays ready
    finally:
        admin_json(admin_gateway, "POST", "/models/simple/versions/2/undrain")
    assert stub.ModelInfer(simple_request(), timeout=10).model_version == "2"
    assert stub.ModelInfer(simple_request("2"), timeout=10).model_version == "2"


def test_a_drained_single_version_model_is_unavailable_with_the_reason(admin_gateway):
    stub = admin_gateway.stub
    stub.ModelInfer(identity_request(), timeout=10)
    admin_json(admin_gateway, "POST", "/models/simple_identity/drain")
    try:
        with pytest.raises(grpc.RpcError) as refused:
            stub.ModelInfer(identity_request(), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert refused.value.details() == "model 'simple_identity' is drained by an operator and takes no new requests; try again later"
    finally:
        admin_json(admin_gateway, "POST", "/models/simple_identity/undrain")
    stub.ModelInfer(identity_request(), timeout=10)


def test_requests_in_flight_when_a_model_is_drained_finish(admin_gateway):
    """A repeat_int32 request answering 6 times 150 ms apart is in flight when the model is
    drained: all 6 answers come; the next request on the stream is refused, naming the drain."""
    requests = queue.Queue()
    requests.put(repeat_request("before", list(range(6)), 150))

    def feed():
        while True:
            item = requests.get()
            if item is None:
                return
            yield item

    responses = admin_gateway.stub.ModelStreamInfer(feed(), timeout=30)
    answers = []
    try:
        first = next(responses)
        assert not first.error_message, first.error_message
        answers.append(first.infer_response.id)
        admin_json(admin_gateway, "POST", "/models/repeat_int32/drain")
        while len(answers) < 6:
            response = next(responses)
            assert not response.error_message, response.error_message
            answers.append(response.infer_response.id)
        requests.put(repeat_request("after", [1], 0))
        refused = next(responses)
        assert "drained by an operator" in refused.error_message, refused
    finally:
        admin_json(admin_gateway, "POST", "/models/repeat_int32/undrain")
        requests.put(None)
    assert answers == ["before"] * 6
    for _ in responses:
        pass


def test_restarting_a_worker_under_load_loses_no_call_and_changes_its_pid(admin_gateway):
    before = [w for w in admin_json(admin_gateway, "GET", "/workers") if w["worker"] == "simple-0"][0]
    stop = threading.Event()
    results = {"ok": 0, "errors": []}
    lock = threading.Lock()

    def load():
        channel = grpc.insecure_channel(admin_gateway.plaintext_target)
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        request = simple_request("1")
        while not stop.is_set():
            try:
                stub.ModelInfer(request, timeout=20)
                with lock:
                    results["ok"] += 1
            except grpc.RpcError as error:
                with lock:
                    results["errors"].append(f"{error.code().name}: {error.details()}")
        channel.close()

    threads = [threading.Thread(target=load, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        answer = admin_json(admin_gateway, "POST", f"/workers/{before['pid']}/restart")
        time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not results["errors"], results["errors"][:5]
    assert results["ok"] > 50, results
    assert answer["old_pid"] == before["pid"] and answer["ready"] and answer["new_pid"] != before["pid"], answer
    after = [w for w in admin_json(admin_gateway, "GET", "/workers") if w["worker"] == "simple-0"][0]
    assert after["pid"] == answer["new_pid"] and after["state"] == "ready" and after["restarts"] == before["restarts"] + 1, after
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{before['pid']}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{before['pid']}"), "the old worker process is still there"


def test_the_gateway_refuses_a_non_loopback_admin_address_without_a_token(tmp_path):
    result = subprocess.run(
        [switchyard_binary(), "serve", "--plaintext-address", f"127.0.0.1:{free_port()}", "--tls-address", "none",
         "--admin-address", f"0.0.0.0:{free_port()}", "--model", "simple", "--workers-per-model", "1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "--admin-address" in result.stderr and "--admin-token-file" in result.stderr, result.stderr
    assert not list(tmp_path.glob("**/*.sock"))
