"""`switchyard serve --config FILE` and `switchyard check-config FILE` with the real binary: the
sample switchyard.yaml at the repository root serves `simple` at versions 1 and 2 (flags given
on the command line override the file's ports and worker counts), and a file with mistakes is
refused with one FILE:LINE:COLUMN line per mistake, by check-config and by serve alike."""
import json
import subprocess
import urllib.request
import time
from pathlib import Path

import pytest
import tritonclient.grpc as triton

from conftest import Gateway, free_port, infer_simple, switchyard_binary

SAMPLE = Path(__file__).resolve().parents[2] / "switchyard.yaml"

BAD = """\
models:
  simple:
    versions:
      - {version: "1", workers: two}
      - {version: "2"}
    route:
      variants:
        - {version: "1", weight: 90}
        - {version: "3", weight: 20}
      stiky_key: x-user-id
listeners:
  plaintext: {address: "localhost"}
"""


def bad_lines(path):
    return [
        f"{path}:4:33: error: expected a number of workers, got 'two'; write a whole number such as 1",
        f"{path}:8:9: error: the weights of the route of 'simple' add up to 110, not 100; 90 + 20 = 110; make them add up to 100",
        f"{path}:9:21: error: the route of 'simple' names version '3', which the model does not configure; 'simple' configures versions '1', '2'",
        f"{path}:10:7: error: unknown key 'stiky_key' in the route of 'simple'; did you mean 'sticky_key'?",
        f"{path}:12:24: error: expected host:port, got 'localhost'; such as 127.0.0.1:8001 or [::1]:8001, or none to turn the listener off",
    ]


@pytest.fixture
def bad_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(BAD)
    return path


def test_check_config_accepts_the_sample():
    result = subprocess.run([switchyard_binary(), "check-config", str(SAMPLE)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{SAMPLE}: ok (4 models, 1 routes)"


def test_check_config_prints_every_mistake_with_file_line_and_column(bad_file):
    result = subprocess.run([switchyard_binary(), "check-config", str(bad_file)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert result.stderr.splitlines() == bad_lines(bad_file)


def test_serve_refuses_a_bad_file_with_the_same_lines_before_binding(bad_file, tmp_path):
    port = free_port()
    result = subprocess.run(
        [switchyard_binary(), "serve", "--config", str(bad_file), "--plaintext-address", f"127.0.0.1:{port}",
         "--tls-address", "none", "--admin-address", "none", "--dev-certs-dir", str(tmp_path / "certs")],
        capture_output=True, text=True, timeout=30, cwd=tmp_path)
    assert result.returncode != 0
    assert result.stderr.splitlines() == bad_lines(bad_file)
    assert not (tmp_path / "certs").exists()  # nothing was set up


def test_serve_with_the_sample_answers_on_both_versions_of_simple(tmp_path):
    # The Gateway helper gives every port on the command line: the flags override the file's.
    gw = Gateway(tmp_path, ["--config", str(SAMPLE), "--workers-per-model", "1", "--access-log", "off"])
    client = triton.InferenceServerClient(gw.plaintext_target)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (client.is_model_ready("simple", "1") and client.is_model_ready("simple", "2")):
            time.sleep(0.1)
        assert infer_simple(client, "1") == "1"
        assert infer_simple(client, "2") == "2"
        index = sorted((m.name, m.version) for m in client.get_model_repository_index().models)
        assert index == [("repeat_int32", "1"), ("simple", "1"), ("simple", "2"), ("simple_identity", "1"), ("simple_string", "1")]
        # --workers-per-model 1 overrides the file's 2 workers per version (loopback admin: no token).
        with urllib.request.urlopen(f"http://127.0.0.1:{gw.admin_port}/workers", timeout=10) as response:
            workers = json.load(response)
        assert sorted((w["model"], w["version"]) for w in workers) == index
    finally:
        client.close()
        assert gw.stop() == 0, gw.log_text()


def test_without_flags_the_file_decides_listeners_and_models(tmp_path):
    port = free_port()
    config = tmp_path / "small.yaml"
    config.write_text(f"""\
listeners:
  plaintext: {{address: "127.0.0.1:{port}"}}
  tls: none
  admin: none
models:
  simple:
    versions: [{{version: "7", workers: 1}}]
logging: {{access_log: "off"}}
""")
    log = open(tmp_path / "gateway.log", "wb")
    process = subprocess.Popen([switchyard_binary(), "serve", "--config", str(config)], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    client = triton.InferenceServerClient(f"127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if client.is_model_ready("simple", "7"):
                    break
            except Exception:
                pass
            time.sleep(0.1)
        assert infer_simple(client, "7") == "7", (tmp_path / "gateway.log").read_text()
        assert [(m.name, m.version) for m in client.get_model_repository_index().models] == [("simple", "7")]
        assert not (tmp_path / "Certs").exists()  # no TLS listener: no dev certificates made
    finally:
        client.close()
        process.terminate()
        assert process.wait(timeout=20) == 0, (tmp_path / "gateway.log").read_text()
        log.close()


def test_model_flags_over_a_file_warn_about_the_routes_they_leave_out(tmp_path):
    # The sample routes simple 90/10 between versions 1 and 2; `--model simple` serves version 1 only.
    gw = Gateway(tmp_path, ["--config", str(SAMPLE), "--model", "simple", "--workers-per-model", "1", "--access-log", "off"])
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{gw.admin_port}/routes", timeout=10) as response:
            assert json.load(response) == []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "routes naming a version it does not serve" not in gw.log_text():
            time.sleep(0.05)
        line = next(l for l in gw.log_text().splitlines() if "routes naming a version it does not serve" in l)
        assert "--model replaces the file's models" in line and "models=simple" in line, line
    finally:
        assert gw.stop() == 0, gw.log_text()
