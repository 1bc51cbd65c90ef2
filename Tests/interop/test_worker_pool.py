"""The worker pool's limits against a real gateway with one slow worker: a full queue answers
RESOURCE_EXHAUSTED at once, a deadline that passes while queued frees the slot, and the
gateway's death takes its workers with it."""
import os
import signal
import subprocess
import time

import grpc
import pytest
from tritonclient.grpc import service_pb2, service_pb2_grpc

from conftest import Gateway


@pytest.fixture(scope="module")
def tight_gateway(tmp_path_factory):
    gw = Gateway(tmp_path_factory.mktemp("tight"), [
        "--model", "repeat_int32", "--workers-per-model", "1",
        "--max-inflight-per-worker", "1", "--max-queued-requests", "1"])
    channel = grpc.insecure_channel(gw.plaintext_target)
    stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if stub.ModelReady(service_pb2.ModelReadyRequest(name="repeat_int32"), timeout=2).ready:
                break
        except grpc.RpcError:
            pass
        time.sleep(0.1)
    yield gw, stub
    channel.close()
    assert gw.stop() == 0, gw.log_text()


def repeat_request(request_id, delay_ms):
    import numpy as np

    request = service_pb2.ModelInferRequest(model_name="repeat_int32", id=request_id)
    for name, datatype, values in (("IN", "INT32", np.array([1], np.int32)), ("DELAY", "UINT32", np.array([delay_ms], np.uint32)),
                                   ("WAIT", "UINT32", np.array([0], np.uint32))):
        request.inputs.add(name=name, datatype=datatype, shape=[1])
        request.raw_input_contents.append(values.tobytes())
    return request


def test_full_queue_is_resource_exhausted_at_once(tight_gateway):
    _, stub = tight_gateway
    requests = [repeat_request("running", 1500), repeat_request("queued", 10), repeat_request("refused", 10)]

    def feed():
        for r in requests:
            yield r
            time.sleep(0.1)

    started = time.monotonic()
    responses = list(stub.ModelStreamInfer(feed(), timeout=15))
    errors = [r.error_message for r in responses if r.error_message]
    ids = [r.infer_response.id for r in responses if not r.error_message]
    assert len(errors) == 1, responses
    assert "over capacity" in errors[0] and "RESOURCE_EXHAUSTED" in errors[0], errors[0]
    assert sorted(ids) == ["queued", "running"]
    assert time.monotonic() - started < 10


def test_a_deadline_that_passes_while_queued_frees_the_queue(tight_gateway):
    _, stub = tight_gateway
    # One stream holds the worker; a second stream queues behind it and times out.
    holder = stub.ModelStreamInfer(iter([repeat_request("holder", 1500)]), timeout=15)
    time.sleep(0.2)
    with pytest.raises(grpc.RpcError) as error:
        list(stub.ModelStreamInfer(iter([repeat_request("waits", 10)]), timeout=0.4))
    assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # The holder finishes, and the queue slot the timed-out request held is free again.
    assert [r.infer_response.id for r in holder] == ["holder"]
    again = list(stub.ModelStreamInfer(iter([repeat_request("after", 10)]), timeout=10))
    assert [r.infer_response.id for r in again] == ["after"]


def test_workers_exit_when_the_gateway_is_killed(tmp_path):
    gw = Gateway(tmp_path, ["--model", "simple", "--workers-per-model", "2"])
    try:
        deadline = time.monotonic() + 30
        pids = []
        while time.monotonic() < deadline and len(pids) < 2:
            pids = children_running_worker(gw.process.pid)
            time.sleep(0.1)
        assert len(pids) == 2, gw.log_text()
        os.kill(gw.process.pid, signal.SIGKILL)
        gw.process.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(alive(p) for p in pids):
            time.sleep(0.1)
        assert not any(alive(p) for p in pids), "workers outlived the gateway"
    finally:
        gw.log.close()


def children_running_worker(parent):
    result = subprocess.run(["pgrep", "-P", str(parent), "-f", "worker --socket"], capture_output=True, text=True)
    return [int(p) for p in result.stdout.split()]


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split()[2] != "Z"
    except FileNotFoundError:
        return False
