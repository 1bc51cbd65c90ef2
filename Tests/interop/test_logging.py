"""`serve --log-format json`: every line the gateway writes (its own events and its workers'
relayed output) is one JSON object with the fixed fields, also on shutdown; a bad format is
refused before anything starts."""
import json
import subprocess
import time

import tritonclient.grpc as triton

from conftest import free_port, switchyard_binary


def test_json_log_format_writes_one_json_object_per_line(tmp_path):
    port = free_port()
    log = tmp_path / "gateway.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [switchyard_binary(), "serve", "--plaintext-address", f"127.0.0.1:{port}", "--tls-address", "none",
             "--admin-address", "none", "--model", "simple", "--workers-per-model", "1", "--log-format", "json"],
            cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT)
        try:
            client = triton.InferenceServerClient(f"127.0.0.1:{port}")
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if client.is_server_ready():
                        break
                except Exception:
                    pass
                time.sleep(0.1)
            assert client.is_model_ready("simple")
            client.close()
        finally:
            process.terminate()
            assert process.wait(timeout=20) == 0
    lines = log.read_text().splitlines()
    events = [json.loads(line) for line in lines]  # raises on any line that is not JSON
    # The access log (stdout by default) has lines of its own shape; see test_metrics.py.
    access = [event for event in events if event.get("log") == "access"]
    assert access and all(event["method"].startswith("/inference.GRPCInferenceService/") for event in access)
    events = [event for event in events if event.get("log") != "access"]
    assert len(events) >= 5
    for event in events:
        assert {"time", "level", "logger", "message", "source"} <= set(event), event
        assert event["time"].endswith("Z") and "T" in event["time"], event
    messages = [event["message"] for event in events]
    assert "models loaded" in messages
    assert messages[-1] == "stopped: every worker has exited", messages[-3:]
    relayed = [event for event in events if event.get("metadata.source") == "worker-stderr"]
    assert relayed and all(event["worker"] == "simple-0" for event in relayed), relayed[:2]


def test_an_unknown_log_format_is_refused():
    result = subprocess.run([switchyard_binary(), "serve", "--log-format", "xml"], capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert "--log-format must be text or json, not 'xml'" in result.stderr
