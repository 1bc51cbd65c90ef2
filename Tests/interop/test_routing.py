"""Routes through the real gateway and workers: a weighted split of unversioned ModelInfer
calls between two versions, the variant named in `x-switchyard-variant`, a blue-green switch and
back through `POST /routes/NAME` under load with no failed call, and the route shown by
`GET /routes` and `GET /config`."""
import json
import threading
import time
import urllib.error
import urllib.request

import grpc
import numpy as np
import pytest
from tritonclient.grpc import service_pb2, service_pb2_grpc

from conftest import Gateway, serving_both_versions, two_versions


def admin(gw, method, path):
    request = urllib.request.Request(f"http://127.0.0.1:{gw.admin_port}{path}", method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def simple_request():
    request = service_pb2.ModelInferRequest(model_name="simple")
    for name in ("INPUT0", "INPUT1"):
        request.inputs.add(name=name, datatype="INT32", shape=[1, 16])
        request.raw_input_contents.append(np.arange(16, dtype=np.int32).tobytes())
    return request


@pytest.fixture(scope="module")
def routed(tmp_path_factory):
    gw = Gateway(tmp_path_factory.mktemp("routing"), ["--model", "simple:1", "--model", "simple:2", "--workers-per-model", "1",
                                                      "--log-level", "info", "--access-log", "off"])
    yield from serving_both_versions(gw)


def start_load(gw, clients):
    """`clients` threads calling unversioned ModelInfer back to back, each call recorded as
    (time answered, version served or the error, time started); set the event to stop them.
    A route change must hold for calls started after it returned, and cannot have touched
    calls answered before it began."""
    results = []
    stop = threading.Event()

    def load():
        channel = grpc.insecure_channel(gw.plaintext_target)
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        while not stop.is_set():
            started = time.monotonic()
            try:
                results.append((time.monotonic(), stub.ModelInfer(simple_request(), timeout=10).model_version, started))
            except grpc.RpcError as error:
                results.append((time.monotonic(), f"error {error.code()}: {error.details()}", started))
        channel.close()

    threads = [threading.Thread(target=load) for _ in range(clients)]
    for thread in threads:
        thread.start()
    return results, stop, threads


def stop_load_and_gateway(gw, fixture, stop, threads):
    """Stops the load's threads, then the gateway; returns its last /metrics."""
    stop.set()
    for thread in threads:
        thread.join(timeout=20)
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{gw.admin_port}/metrics", timeout=10).read().decode()
    next(fixture, None)
    return metrics


def served_version(stub):
    response, call = stub.ModelInfer.with_call(simple_request(), timeout=10)
    header = dict(call.initial_metadata())["x-switchyard-variant"]
    assert header == response.model_version, (header, response.model_version)
    return response.model_version


def test_without_a_route_the_newest_version_serves(routed):
    assert {served_version(routed.stub) for _ in range(20)} == {"2"}


def test_a_90_10_split_over_2000_calls_lands_within_4_points(routed):
    status, body = admin(routed, "POST", "/routes/simple?variants=1:90,2:10")
    assert status == 200, body
    assert json.loads(body)["variants"] == [{"version": "1", "weight": 90}, {"version": "2", "weight": 10}]
    versions = [served_version(routed.stub) for _ in range(2000)]
    share = versions.count("2") * 100 / len(versions)
    assert abs(share - 10) <= 4, f"version 2 got {share:.1f} % of 2000 calls"
    # A request that names a version gets it, whatever the weights.
    request = simple_request()
    request.model_version = "2"
    assert all(routed.stub.ModelInfer(request, timeout=10).model_version == "2" for _ in range(20))
    status, body = admin(routed, "GET", "/routes")
    assert status == 200 and json.loads(body)[0]["variants"][1] == {"version": "2", "weight": 10}
    status, body = admin(routed, "GET", "/config")
    assert status == 200 and json.loads(body)["routes"][0]["model"] == "simple"


def test_blue_green_switch_and_back_under_load_fails_no_call(routed):
    status, body = admin(routed, "POST", "/routes/simple?variants=1:100,2:0")
    assert status == 200, body
    results, stop, threads = start_load(routed, 4)
    time.sleep(0.7)
    switched = time.monotonic()
    assert admin(routed, "POST", "/routes/simple?variants=1:0,2:100")[0] == 200
    settled = time.monotonic()
    time.sleep(0.7)
    back = time.monotonic()
    assert admin(routed, "POST", "/routes/simple?variants=1:100,2:0")[0] == 200
    back_settled = time.monotonic()
    time.sleep(0.7)
    stop.set()
    for thread in threads:
        thread.join(timeout=20)
    errors = [r for r in results if r[1].startswith("error")]
    assert not errors, errors[:3]
    before = [v for t, v, _ in results if t < switched]
    assert set(before) == {"1"}, f"before the switch: {before.count('1')} calls to 1, {before.count('2')} to 2; routes {admin(routed, 'GET', '/routes')}"
    assert {v for t, v, start in results if settled < start and t < back} == {"2"}, "after the switch returned, every call went to green"
    assert {v for _, v, start in results if start > back_settled} == {"1"}, "after the rollback returned, every call went to blue"
    assert len(results) > 200


@pytest.mark.parametrize("query, status, message", [
    ("?variants=1:50,9:50", 404, "unknown version '9' of model 'simple'"),
    ("?variants=1:0,2:0", 400, "at least one above 0"),
    ("?variants=1:-5,2:10", 400, "weights must be 0 or more"),
    ("?variants=1:60,2:50", 400, "the weights add up to 110, not 100"),
    ("?variants=one", 400, "give the weights as ?variants=VERSION:WEIGHT"),
    ("", 400, "give the weights as ?variants=VERSION:WEIGHT"),
])
def test_bad_route_changes_are_refused_and_the_route_stays(routed, query, status, message):
    before = admin(routed, "GET", "/routes")[1]
    got, body = admin(routed, "POST", f"/routes/simple{query}")
    assert got == status and message in body, (got, body)
    assert admin(routed, "GET", "/routes")[1] == before
    assert admin(routed, "POST", "/routes/nosuch?variants=1:1")[0] == 404


def test_an_override_header_is_refused_unless_the_route_allows_it(routed):
    admin(routed, "POST", "/routes/simple?variants=1:50,2:50")
    with pytest.raises(grpc.RpcError) as error:
        routed.stub.ModelInfer(simple_request(), metadata=[("x-switchyard-variant", "2")], timeout=10)
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "does not allow choosing a variant" in error.value.details()


@pytest.fixture(scope="module")
def sticky(tmp_path_factory):
    """`simple` at versions 1 and 2 split 90/10 by `x-user-id`, from a configuration file."""
    workdir = tmp_path_factory.mktemp("sticky")
    config = workdir / "route.yaml"
    config.write_text(route_file(90, 10))
    gw = Gateway(workdir, ["--config", str(config), "--log-level", "info", "--access-log", "off"])
    yield from serving_both_versions(gw)


def version_for(stub, user):
    response, call = stub.ModelInfer.with_call(simple_request(), metadata=[("x-user-id", user)], timeout=10)
    assert dict(call.initial_metadata())["x-switchyard-variant"] == response.model_version
    return response.model_version


def test_a_sticky_key_keeps_its_variant_and_raising_the_canary_only_moves_keys_into_it(sticky):
    users = [f"user-{index}" for index in range(1000)]
    first = {user: version_for(sticky.stub, user) for user in users}
    share = sum(1 for v in first.values() if v == "2") * 100 / len(users)
    assert abs(share - 10) <= 4, f"version 2 got {share:.1f} % of 1000 keys"
    for user in users[:200]:
        assert all(version_for(sticky.stub, user) == first[user] for _ in range(3)), user
    # A stream keeps a key on one variant for its life: every message gets the key's variant.
    responses = sticky.stub.ModelStreamInfer(iter([simple_request() for _ in range(20)]), metadata=[("x-user-id", users[0])], timeout=10)
    assert {r.infer_response.model_version for r in responses} == {first[users[0]]}
    # Raise the canary: keys only move from 1 to 2, about the 10 points of the change.
    status, body = admin(sticky, "POST", "/routes/simple?variants=1:80,2:20")
    assert status == 200 and json.loads(body)["sticky_key"] == "x-user-id", body
    after = {user: version_for(sticky.stub, user) for user in users}
    moved = [user for user in users if after[user] != first[user]]
    assert all(first[user] == "1" and after[user] == "2" for user in moved), "a key left the canary while it grew"
    assert 40 <= len(moved) <= 160, f"{len(moved)} of 1000 keys moved for a 10-point change"
    # Lower it below where it started: keys only move out of it.
    admin(sticky, "POST", "/routes/simple?variants=1:95,2:5")
    lowered = {user: version_for(sticky.stub, user) for user in users}
    assert all(after[user] == "2" and lowered[user] == "1" for user in users if lowered[user] != after[user])


def route_file(one, two):
    return two_versions(one, two, "      sticky_key: x-user-id\n")


def test_a_configuration_reload_swaps_routes_under_load_and_a_bad_file_is_refused(tmp_path):
    import signal

    config = tmp_path / "route.yaml"
    config.write_text(route_file(100, 0))
    gw = Gateway(tmp_path, ["--config", str(config), "--log-level", "info", "--access-log", "off"])
    fixture = serving_both_versions(gw)
    next(fixture)
    results, stop, threads = start_load(gw, 3)
    try:
        time.sleep(0.5)
        # Blue-green by editing the file: everything moves to 2 once the reload returns.
        config.write_text(route_file(0, 100))
        status, body = admin(gw, "POST", "/config/reload")
        assert status == 200, body
        reloaded = time.monotonic()
        assert json.loads(body)["routes"][0]["variants"] == [{"version": "1", "weight": 0}, {"version": "2", "weight": 100}]
        time.sleep(0.5)
        # A file with a mistake is refused with its line and column, and the routes stay.
        config.write_text(route_file(50, "fifty"))
        status, body = admin(gw, "POST", "/config/reload")
        assert status == 422, body
        assert f"{config}:10:" in body and "the configuration in use stays" in body, body
        refused = time.monotonic()
        time.sleep(0.5)
        # SIGHUP reloads too: back to 1.
        config.write_text(route_file(100, 0))
        gw.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and json.loads(admin(gw, "GET", "/routes")[1])[0]["variants"][0]["weight"] != 100:
            time.sleep(0.05)
        hup = time.monotonic()
        time.sleep(0.5)
    finally:
        metrics = stop_load_and_gateway(gw, fixture, stop, threads)
    errors = [r for r in results if r[1].startswith("error")]
    assert not errors, errors[:3]
    assert {v for t, v, start in results if reloaded < start and t < refused + 0.4} == {"2"}
    assert {v for _, v, start in results if start > hup} == {"1"}
    assert 'switchyard_config_reloads_total{result="applied"} 2' in metrics, [l for l in metrics.splitlines() if "reload" in l]
    assert 'switchyard_config_reloads_total{result="refused"} 1' in metrics


VARIANTS_FILE = """
logging:
  format: {log_format}
models:
  simple:
    versions:
{versions}
    route:
      variants:
{weights}
"""


def variants_file(versions, weights, log_format="text"):
    """A configuration of `simple`: `versions` maps a version to its worker count (or to a dict
    of its keys), `weights` a version to its weight."""
    lines = []
    for version, spec in versions.items():
        spec = spec if isinstance(spec, dict) else {"workers": spec}
        keys = ", ".join(f"{key}: {json.dumps(value)}" for key, value in spec.items())
        lines.append(f'      - {{version: "{version}", {keys}}}')
    route = [f'        - {{version: "{version}", weight: {weight}}}' for version, weight in weights.items()]
    return VARIANTS_FILE.format(log_format=log_format, versions="\n".join(lines), weights="\n".join(route))


def start_stream_load(gw, results, stop):
    """One ModelStreamInfer stream sending unversioned requests back to back for as long as the
    load runs; each response is recorded like a unary call's (version or error), at the time its
    request was handed to grpc (so a response read late still counts where it was routed)."""

    sent = {}

    def requests():
        while not stop.is_set():
            request = simple_request()
            request.id = str(len(sent))
            sent[request.id] = time.monotonic()
            yield request
            time.sleep(0.002)

    def run():
        channel = grpc.insecure_channel(gw.plaintext_target)
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        try:
            for response in stub.ModelStreamInfer(requests(), timeout=120):
                if response.error_message:
                    results.append((time.monotonic(), f"error in stream: {response.error_message}", 0))
                else:
                    sent_at = sent[response.infer_response.id]
                    results.append((sent_at, response.infer_response.model_version, sent_at))
        except grpc.RpcError as error:
            results.append((time.monotonic(), f"error {error.code()}: {error.details()}", 0))
        channel.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def workers_of(gw):
    return sorted((w["version"], w["worker"]) for w in json.loads(admin(gw, "GET", "/workers")[1]) if w["model"] == "simple")


def test_a_reload_that_changes_worker_counts_and_versions_under_load_fails_no_call(tmp_path):
    config = tmp_path / "variants.yaml"
    # One request at a time per worker of version 1, so that calls queue in the pool a reload
    # replaces: a drain must run its queue to the end, not fail it.
    one = {"workers": 1, "max_inflight_per_worker": 1}
    config.write_text(variants_file({"1": one, "2": 1}, {"1": 100, "2": 0}))
    gw = Gateway(tmp_path, ["--config", str(config), "--log-level", "info", "--access-log", "off"])
    fixture = serving_both_versions(gw)
    next(fixture)
    results, stop, threads = start_load(gw, 6)
    threads.append(start_stream_load(gw, results, stop))
    marks = {}
    try:
        time.sleep(0.5)
        # More workers for version 1: a new pool is started and ready, takes the calls, the
        # old one drains. Version 2 is untouched (its worker keeps its pid).
        pid_of_2 = [w["pid"] for w in json.loads(admin(gw, "GET", "/workers")[1]) if w["version"] == "2"]
        two = {"workers": 2, "max_inflight_per_worker": 1}
        config.write_text(variants_file({"1": two, "2": 1}, {"1": 100, "2": 0}, log_format="json"))
        status, body = admin(gw, "POST", "/config/reload")
        assert status == 200, body
        answer = json.loads(body)
        assert answer["variants"] == {"added": [], "replaced": ["simple:1"], "removed": [], "unchanged": ["simple:2"]}, answer
        assert answer["restart_required"] == ["logging.format"], answer
        assert workers_of(gw) == [("1", "simple-r1-0"), ("1", "simple-r1-1"), ("2", "simple-v2-0")], workers_of(gw)
        assert [w["pid"] for w in json.loads(admin(gw, "GET", "/workers")[1]) if w["version"] == "2"] == pid_of_2
        time.sleep(0.5)
        # A new version 3 takes every unversioned call once the reload returns.
        config.write_text(variants_file({"1": two, "2": 1, "3": 1}, {"1": 0, "2": 0, "3": 100}))
        status, body = admin(gw, "POST", "/config/reload")
        assert status == 200, body
        marks["to 3"] = time.monotonic()
        assert json.loads(body)["variants"]["added"] == ["simple:3"], body
        time.sleep(0.5)
        # Versions 1 and 2 go: their workers stop once their calls have finished.
        config.write_text(variants_file({"3": 1}, {"3": 100}))
        status, body = admin(gw, "POST", "/config/reload")
        assert status == 200, body
        assert json.loads(body)["variants"]["removed"] == ["simple:1", "simple:2"], body
        assert workers_of(gw) == [("3", "simple-v3-0")], workers_of(gw)
        # A variant whose workers cannot start is refused, and nothing changes.
        config.write_text(variants_file({"3": 1, "4": {"workers": 1, "worker_arguments": ["--no-such-flag"]}}, {"3": 100, "4": 0}))
        status, body = admin(gw, "POST", "/config/reload")
        assert status == 422, body
        assert "version 4" in body and "nothing was changed" in body, body
        assert workers_of(gw) == [("3", "simple-v3-0")], workers_of(gw)
        models = {(m["model"], m["version"], m["workers"]) for m in json.loads(admin(gw, "GET", "/config")[1])["models"]}
        assert ("simple", "3", 1) in models and not any(m[1] in ("1", "2", "4") for m in models), models
        time.sleep(0.5)
    finally:
        metrics = stop_load_and_gateway(gw, fixture, stop, threads)
    errors = [r for r in results if r[1].startswith("error")]
    assert not errors, errors[:3]
    assert len(results) > 100, len(results)
    late = [r for r in results if r[2] > marks["to 3"] and r[1] != "3"]
    assert not late, (late[:5], marks["to 3"])
    assert 'switchyard_config_reloads_total{result="applied"} 3' in metrics
    assert 'switchyard_config_reloads_total{result="refused"} 1' in metrics


def test_watching_the_file_reloads_it_when_its_content_changes(tmp_path):
    config = tmp_path / "route.yaml"
    config.write_text(route_file(100, 0))
    gw = Gateway(tmp_path, ["--config", str(config), "--watch-config", "200ms", "--log-level", "info", "--access-log", "off"])
    fixture = serving_both_versions(gw)
    next(fixture)

    def weights():
        return [v["weight"] for v in json.loads(admin(gw, "GET", "/routes")[1])[0]["variants"]]

    def reloads(result):
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{gw.admin_port}/metrics", timeout=10).read().decode()
        line = next((l for l in metrics.splitlines() if l.startswith(f'switchyard_config_reloads_total{{result="{result}"}}')), None)
        return int(float(line.split()[-1])) if line else 0

    def wait_for(condition):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not condition():
            time.sleep(0.05)
        return condition()

    try:
        # Replaced the way a ConfigMap is: a new file renamed over the old one.
        staged = tmp_path / "route.yaml.new"
        staged.write_text(route_file(0, 100))
        staged.rename(config)
        assert wait_for(lambda: weights() == [0, 100]), weights()
        assert served_version(gw.stub) == "2"
        config.write_text(route_file(50, "fifty"))
        assert wait_for(lambda: reloads("refused") == 1), gw.log_text()[-2000:]
        time.sleep(0.6)  # unchanged content is not read as a change: no second refusal
        assert reloads("refused") == 1 and reloads("applied") == 1
        assert weights() == [0, 100]
    finally:
        next(fixture, None)


SHADOW_FILE = two_versions(100, 0, '      shadow: {version: "2", fraction: 1.0}\n')


def test_a_stalled_or_dead_shadow_costs_the_primary_nothing(tmp_path):
    import os
    import signal

    config = tmp_path / "shadow.yaml"
    config.write_text(SHADOW_FILE)
    gw = Gateway(tmp_path, ["--config", str(config), "--log-level", "info", "--access-log", "off"])
    fixture = serving_both_versions(gw)
    next(fixture)

    def shadow_pid():
        return next(w["pid"] for w in json.loads(admin(gw, "GET", "/workers")[1]) if w["version"] == "2" and w["pid"])

    def shed():
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{gw.admin_port}/metrics", timeout=10).read().decode()
        return sum(float(l.split()[-1]) for l in metrics.splitlines() if l.startswith("switchyard_shadow_requests_shed_total"))

    results, stop, threads = start_load(gw, 4)
    stalled = shadow_pid()
    try:
        time.sleep(0.5)
        # A stalled shadow: its worker process stops answering (SIGSTOP). Its queue fills, then
        # copies are shed; the primary's calls go on as before.
        os.kill(stalled, signal.SIGSTOP)
        stall_began = time.monotonic()
        time.sleep(1.5)
        stall_ended = time.monotonic()
        assert shed() > 0
        # A dead shadow: its worker is killed (the gateway restarts it); the primary goes on.
        os.kill(stalled, signal.SIGCONT)
        os.kill(stalled, signal.SIGKILL)
        time.sleep(1.0)
    finally:
        try:
            os.kill(stalled, signal.SIGCONT)
        except ProcessLookupError:
            pass
        stop_load_and_gateway(gw, fixture, stop, threads)
    errors = [r for r in results if r[1].startswith("error")]
    assert not errors, errors[:3]
    assert {v for _, v, _ in results} == {"1"}, "the client only ever hears the primary"
    during = sorted(t - start for t, _, start in results if stall_began < start and t < stall_ended)
    assert len(during) > 50, len(during)
    assert during[len(during) * 99 // 100] < 0.5, f"p99 of the primary's calls while the shadow stalled: {during[len(during) * 99 // 100]:.3f} s"
