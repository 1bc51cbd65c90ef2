"""perf_analyzer, the binary that PyPI's tritonclient ships, runs against the gateway unchanged:
it reads the model's metadata, config and statistics and measures inferences of `simple`."""
import os
import subprocess
from pathlib import Path

from conftest import REPO


def perf_analyzer_env():
    env = dict(os.environ)
    cudart = next((REPO / ".venv" / "lib").glob("python3*/site-packages/nvidia/cuda_runtime/lib"))
    env["LD_LIBRARY_PATH"] = f"{cudart}:{env.get('LD_LIBRARY_PATH', '')}"
    return env


def test_perf_analyzer_measures_simple_over_grpc(inference_gateway):
    binary = REPO / ".venv" / "bin" / "perf_analyzer"
    result = subprocess.run(
        [str(binary), "-m", "simple", "-i", "grpc", "-u", inference_gateway.plaintext_target,
         "--concurrency-range", "2", "--measurement-mode", "count_windows", "--measurement-request-count", "50",
         # This machine is shared and noisy: accept any window as stable; the figures are
         # measured separately (loadtest/), this test checks that perf_analyzer works at all.
         "-s", "1000", "--max-trials", "3"],
        capture_output=True, text=True, timeout=120, env=perf_analyzer_env())
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Concurrency: 2, throughput:" in output, output
    assert "Successful request count:" in output, output
