"""Calls leave nothing behind: the gateway's resident memory stays flat over many ModelInfer calls
(a reference cycle between a call and its pool request once leaked about 1.6 KiB per call)."""
import shutil
import struct
import subprocess
import time

import numpy as np
import pytest
from tritonclient.grpc import service_pb2


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def infer_body(path):
    request = service_pb2.ModelInferRequest(model_name="simple")
    for name in ("INPUT0", "INPUT1"):
        request.inputs.add(name=name, datatype="INT32", shape=[1, 16])
        request.raw_input_contents.append(np.arange(16, dtype=np.int32).tobytes())
    data = request.SerializeToString()
    path.write_bytes(b"\x00" + struct.pack(">I", len(data)) + data)


def h2load(target, body, count):
    result = subprocess.run(
        ["h2load", "-n", str(count), "-c", "4", "-m", "16", "-d", str(body),
         "-H", "content-type: application/grpc", "-H", "te: trailers", "-H", ":method: POST",
         f"http://{target}/inference.GRPCInferenceService/ModelInfer"],
        capture_output=True, text=True, timeout=120)
    assert f"{count} succeeded" in result.stdout, result.stdout + result.stderr


@pytest.mark.skipif(shutil.which("h2load") is None, reason="h2load (nghttp2-client) is not installed")
def test_resident_memory_stays_flat_over_many_model_infer_calls(inference_gateway, tmp_path):
    body = tmp_path / "infer.body"
    infer_body(body)
    pid = inference_gateway.process.pid
    h2load(inference_gateway.plaintext_target, body, 3000)  # warm-up: buffers, caches, pools
    time.sleep(0.2)
    before = rss_kib(pid)
    h2load(inference_gateway.plaintext_target, body, 12000)
    time.sleep(0.2)
    grown = rss_kib(pid) - before
    assert grown < 6 * 1024, f"RSS grew by {grown} KiB over 12000 calls ({grown * 1024 // 12000} bytes per call)"
