"""Worker failures against the real gateway with real workers, made on purpose with the
diagnostic models (`switchyard serve --enable-diagnostic-models`): a worker that stalls is found
by the health pings, killed and replaced, and what it held runs elsewhere; a poison request that
kills two workers is answered with an error and never dispatched again; a non-idempotent
model's request on a worker that dies fails instead of running twice."""
import contextlib
import os
import re
import signal
import subprocess
import threading
import time

import grpc
import numpy as np
import pytest
from tritonclient.grpc import service_pb2, service_pb2_grpc

from conftest import Gateway, switchyard_binary

# WorkerLauncher's defaults: a PING every 2 s, and 3 s for its PONG.
PING_INTERVAL = 2.0
PING_TIMEOUT = 3.0


def diagnostic_request(model, value, sleep_ms=None, request_id=""):
    request = service_pb2.ModelInferRequest(model_name=model, id=request_id)
    request.inputs.add(name="IN", datatype="INT32", shape=[1])
    request.raw_input_contents.append(np.array([value], np.int32).tobytes())
    if sleep_ms is not None:
        request.inputs.add(name="SLEEP_MS", datatype="UINT32", shape=[1])
        request.raw_input_contents.append(np.array([sleep_ms], np.uint32).tobytes())
    return request


def out_value(response):
    assert [o.name for o in response.outputs] == ["OUT"], response
    return int(np.frombuffer(response.raw_output_contents[0], np.int32)[0])


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def wait_until(condition, timeout, interval=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


class Pool:
    """A gateway serving one diagnostic model, its stub, and the worker processes seen."""

    def __init__(self, gateway, model, stub):
        self.gateway = gateway
        self.model = model
        self.stub = stub
        self.seen = set()

    def workers(self):
        """Live worker pids of the model, children of this gateway."""
        result = subprocess.run(
            ["pgrep", "-P", str(self.gateway.process.pid), "-f", f"worker --socket .*/{self.model}-"],
            capture_output=True, text=True)
        pids = {int(p) for p in result.stdout.split() if alive(int(p))}
        self.seen |= pids
        return pids

    def ready(self):
        """ModelReady's answer; None when the call itself failed (a slow machine, not an answer)."""
        try:
            return self.stub.ModelReady(service_pb2.ModelReadyRequest(name=self.model), timeout=5).ready
        except grpc.RpcError:
            return None

    def infer(self, value, sleep_ms=None, timeout=10, request_id=""):
        return self.stub.ModelInfer(diagnostic_request(self.model, value, sleep_ms, request_id), timeout=timeout)

    def future(self, value, sleep_ms=None, timeout=20, request_id=""):
        return self.stub.ModelInfer.future(diagnostic_request(self.model, value, sleep_ms, request_id), timeout=timeout)

    def log_count(self, pattern):
        return len(re.findall(pattern, self.gateway.log_text()))


@contextlib.contextmanager
def diagnostic_pool(tmp_path, model, workers=2):
    """The gateway with `workers` workers of `model`, all ready; on exit the gateway stops with
    status 0 and no worker it ever had is left running."""
    gw = Gateway(tmp_path, ["--enable-diagnostic-models", "--model", model, "--workers-per-model", str(workers)])
    channel = grpc.insecure_channel(gw.plaintext_target)
    pool = Pool(gw, model, service_pb2_grpc.GRPCInferenceServiceStub(channel))
    try:
        # Every worker connected (said HELLO), not only spawned: the tests rely on where
        # least-outstanding dispatch puts requests.
        assert wait_until(
            lambda: pool.log_count(r"\] worker ready") >= workers and len(pool.workers()) == workers and pool.ready(), 20
        ), gw.log_text()
        yield pool
    finally:
        channel.close()
        pool.workers()
        code = gw.stop()
        assert wait_until(lambda: not any(alive(p) for p in pool.seen), 5), \
            f"workers left running: {[p for p in pool.seen if alive(p)]}"
        assert code == 0, f"gateway exited with {code}:\n{gw.log_path.read_text(errors='replace')}"


def test_diagnostic_models_need_the_flag(tmp_path):
    result = subprocess.run(
        [switchyard_binary(), "serve", "--model", "diagnostic_crash",
         "--plaintext-address", "none", "--tls-address", "none"],
        cwd=tmp_path, capture_output=True, text=True, timeout=20)
    assert result.returncode != 0
    assert "--enable-diagnostic-models" in result.stderr, result.stderr


def test_a_stalled_worker_is_killed_and_replaced_and_its_requests_succeed_elsewhere(tmp_path):
    SLEEP_MS = 3000
    with diagnostic_pool(tmp_path, "diagnostic_stall") as pool:
        before = pool.workers()
        started = time.monotonic()
        finished_at = {}
        normals = []
        for i in range(8):
            future = pool.future(100 + i, sleep_ms=SLEEP_MS, timeout=25, request_id=f"n{i}")
            future.add_done_callback(lambda f, i=i: finished_at.__setitem__(i, time.monotonic() - started))
            normals.append(future)
        time.sleep(0.5)  # all eight in flight: four on each worker (least outstanding first)
        stall = pool.future(7, timeout=2, request_id="stall")
        stalled_at = time.monotonic()

        # The model stays ready throughout: the other worker serves.
        not_ready = []
        stop_watch = threading.Event()

        def watch_readiness():
            while not stop_watch.is_set():
                if pool.ready() is False:
                    not_ready.append(time.monotonic() - started)
                time.sleep(0.1)

        watcher = threading.Thread(target=watch_readiness)
        watcher.start()
        try:
            # The stalled worker misses a PONG and is SIGKILLed: at most one ping interval for
            # the next PING, plus the PONG timeout, plus slack.
            assert wait_until(lambda: any(not alive(p) for p in before), PING_INTERVAL + PING_TIMEOUT + 2.5), \
                pool.gateway.log_text()
            killed_after = time.monotonic() - stalled_at
            dead = {p for p in before if not alive(p)}
            assert len(dead) == 1, f"only the stalled worker dies: {dead} of {before}"
            assert killed_after >= 0.5, f"killed after {killed_after:.1f} s: too soon to be the ping timeout"

            # The stalling request itself hung until its deadline; it is not run again.
            with pytest.raises(grpc.RpcError) as error:
                stall.result()
            assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

            # Every normal request succeeds: those on the healthy worker after their sleep,
            # those frozen on the stalled one after the kill and a whole sleep on another worker.
            values = [out_value(f.result(timeout=20)) for f in normals]
            assert values == [100 + i for i in range(8)]
            killed_at = stalled_at - started + killed_after
            rescued = [i for i, t in finished_at.items() if t >= killed_at + 0.9 * SLEEP_MS / 1000]
            on_time = [i for i in finished_at if i not in rescued]
            assert on_time and rescued, (killed_at, finished_at)
            assert pool.log_count(r"did not answer a health ping; killing it") >= 1
            assert pool.log_count(r"re-dispatching a request from a dead worker") >= len(rescued)

            # A replacement joins: two workers again, one of them new.
            assert wait_until(lambda: len(pool.workers()) == 2 and pool.workers() != before - dead, 10), pool.gateway.log_text()
            after = pool.workers()
            assert before - dead <= after and len(after - before) == 1
            assert out_value(pool.infer(5, request_id="after")) == 5
        finally:
            stop_watch.set()
            watcher.join()
        assert not_ready == [], f"model not ready at {not_ready}"
        assert time.monotonic() - started < 20


def test_a_poison_request_is_failed_after_two_worker_deaths_and_never_dispatched_again(tmp_path):
    with diagnostic_pool(tmp_path, "diagnostic_crash") as pool:
        before = pool.workers()
        # Meanwhile: a normal request on one worker while the poison kills the other, then
        # this one, which puts the normal request on a replacement.
        meanwhile = pool.future(5, sleep_ms=2500, timeout=25, request_id="meanwhile")
        time.sleep(0.5)
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as error:
            pool.infer(42, timeout=20, request_id="poison")
        assert error.value.code() == grpc.StatusCode.INTERNAL
        message = error.value.details()
        assert "poison" in message, message
        assert "diagnostic_crash-0" in message and "diagnostic_crash-1" in message, message
        assert time.monotonic() - started < 5, "the poison request is answered at once, not after a timeout"

        assert out_value(meanwhile.result(timeout=20)) == 5

        # Both workers are replaced, and the pool serves at full strength afterwards.
        assert wait_until(lambda: len(pool.workers()) == 2, 10), pool.gateway.log_text()
        after = pool.workers()
        assert not (after & before), f"both workers were replaced: {before} -> {after}"
        futures = [pool.future(i, sleep_ms=100, timeout=10) for i in range(20)]
        assert [out_value(f.result()) for f in futures] == list(range(20))

        # The poison input reached exactly two workers, and no worker died since.
        time.sleep(0.5)
        assert pool.log_count(r"received its fault input IN=42") == 2, pool.gateway.log_text()
        assert pool.workers() == after
        assert pool.ready()


def test_a_non_idempotent_models_request_on_a_dead_worker_fails_unavailable(tmp_path):
    with diagnostic_pool(tmp_path, "diagnostic_stateful") as pool:
        config = pool.stub.ModelConfig(service_pb2.ModelConfigRequest(name="diagnostic_stateful"), timeout=5).config
        assert config.parameters["switchyard.idempotent"].string_value == "false"
        before = pool.workers()
        # One request in flight on each worker (least outstanding first).
        first = pool.future(1, sleep_ms=3000, timeout=20, request_id="first")
        time.sleep(0.3)
        second = pool.future(2, sleep_ms=3000, timeout=20, request_id="second")
        time.sleep(0.7)
        victim = sorted(before)[0]
        os.kill(victim, signal.SIGKILL)
        killed = time.monotonic()

        outcomes = []
        for future in (first, second):
            try:
                outcomes.append(("ok", out_value(future.result()), time.monotonic() - killed))
            except grpc.RpcError as e:
                outcomes.append((e.code(), e.details(), time.monotonic() - killed))
        failed = [o for o in outcomes if o[0] != "ok"]
        succeeded = [o for o in outcomes if o[0] == "ok"]
        assert len(failed) == 1 and len(succeeded) == 1, outcomes
        code, message, _ = failed[0]
        assert code == grpc.StatusCode.UNAVAILABLE, outcomes
        assert "non-idempotent" in message and "not retried" in message, message
        assert pool.log_count(r"re-dispatching a request from a dead worker") == 0

        # The next requests succeed: on the survivor at once, and on both once replaced.
        assert [out_value(pool.infer(v)) for v in (3, 4, 5)] == [3, 4, 5]
        assert wait_until(lambda: len(pool.workers()) == 2, 10), pool.gateway.log_text()
        assert victim not in pool.workers()
        futures = [pool.future(i, sleep_ms=200, timeout=10) for i in range(6)]
        assert [out_value(f.result()) for f in futures] == list(range(6))


def test_a_single_worker_pool_sends_orphans_to_the_replacement_and_still_stops_poison(tmp_path):
    with diagnostic_pool(tmp_path, "diagnostic_crash", workers=1) as pool:
        (first,) = pool.workers()
        # The one worker dies with a request in flight: it runs on the replacement.
        request = pool.future(9, sleep_ms=2000, timeout=15, request_id="orphan")
        time.sleep(0.6)
        os.kill(first, signal.SIGKILL)
        assert out_value(request.result()) == 9
        (second,) = pool.workers()
        assert second != first

        # A poison request kills the worker and its replacement, then is failed.
        with pytest.raises(grpc.RpcError) as error:
            pool.infer(42, timeout=15, request_id="poison")
        assert error.value.code() == grpc.StatusCode.INTERNAL
        assert "poison" in error.value.details(), error.value.details()
        assert wait_until(lambda: pool.ready() and len(pool.workers()) == 1 and second not in pool.workers(), 10)
        assert out_value(pool.infer(10)) == 10
        assert pool.log_count(r"received its fault input IN=42") == 2
