"""`switchyard loadtest` against the real gateway and its real workers: unary and streaming
ModelInfer over h2c, TLS and mutual TLS with the dev certificates, and gRPC health. Its JSON
result is parsed and its call count compared with the gateway's own counter
(`nv_inference_request_success` on the admin /metrics); thresholds give the documented exit
statuses; the HTML report, rendered by headless Chromium, has drawn plots."""
import json
import shutil
import subprocess
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import Gateway, switchyard_binary, wait_models_ready


def infer_successes(gw, model="simple"):
    """The gateway's nv_inference_request_success for `model`, all versions summed."""
    with urllib.request.urlopen(f"http://127.0.0.1:{gw.admin_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in ("nv_inference_request_success", "nv_inference_request_success_total") \
                    and sample.labels.get("model") == model:
                total += sample.value
    return int(total)


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("loadtest")
    gw = Gateway(workdir, ["--model", "simple", "--workers-per-model", "2", "--log-level", "info"])
    wait_models_ready(gw, "simple")
    yield gw
    assert gw.stop() == 0, gw.log_text()


def loadtest(*args, timeout=120):
    """Runs `switchyard loadtest ARGS --json -`; returns (exit status, parsed JSON or None, stderr)."""
    process = subprocess.run([switchyard_binary(), "loadtest", *args, "--json", "-"],
                             capture_output=True, timeout=timeout, text=True)
    result = None
    if process.stdout.strip():
        result = json.loads(process.stdout)
    return process.returncode, result, process.stderr


def tls_args(gw, mutual=False):
    args = ["-u", gw.tls_target, "--ssl-grpc-use-ssl", "--ssl-grpc-root-certifications-file", str(gw.certs / "ca.pem")]
    if mutual:
        args += ["--ssl-grpc-private-key-file", str(gw.certs / "client-key.pem"),
                 "--ssl-grpc-certificate-chain-file", str(gw.certs / "client.pem")]
    return args


@pytest.mark.parametrize("transport,streaming", [
    ("h2c", False), ("h2c", True), ("tls", False), ("tls", True), ("mtls", False),
])
def test_loadtest_counts_match_the_gateways_counter(loaded, transport, streaming):
    target = ["-u", loaded.plaintext_target] if transport == "h2c" else tls_args(loaded, mutual=transport == "mtls")
    before = infer_successes(loaded)
    code, result, stderr = loadtest(
        *target, "-m", "simple", "--concurrency-range", "4", "--connections", "2", "--duration", "2s",
        "--warmup", "500ms", *(["--streaming"] if streaming else []))
    assert code == 0, stderr
    after = infer_successes(loaded)
    [step] = result["steps"]
    assert step["calls"] > 0
    assert step["errors"] == {}
    assert step["succeeded"] == step["calls"]
    assert step["latency"]["count"] == step["calls"]
    assert 0 < step["latency"]["p50"] <= step["latency"]["p99"] <= step["latency"]["max"]
    assert result["description"]["transport"] == transport
    assert result["description"]["streaming"] == streaming
    # Every call the driver made, warm-up included, is one success at the gateway; the driver
    # waits for its calls in flight before it reports, so the counts agree.
    made = step["calls"] + result["warmupCalls"]
    assert abs((after - before) - made) <= 2, (after - before, made)


def test_open_loop_rate_is_kept_and_counted(loaded):
    before = infer_successes(loaded)
    code, result, stderr = loadtest(
        "-u", loaded.plaintext_target, "--request-rate-range", "200", "--request-distribution", "poisson",
        "--duration", "3s", "--connections", "2")
    assert code == 0, stderr
    after = infer_successes(loaded)
    [step] = result["steps"]
    assert step["requestRate"] == 200
    # Poisson arrivals at 200/s for 3 s: 600 expected, a standard deviation of about 25.
    assert 500 <= step["calls"] <= 700, step["calls"]
    assert step["errors"] == {}
    assert abs((after - before) - step["calls"]) <= 2


def test_call_count_mode_makes_exactly_that_many_calls(loaded):
    before = infer_successes(loaded)
    code, result, stderr = loadtest("-u", loaded.plaintext_target, "--requests", "257", "--concurrency-range", "8",
                                    "--connections", "3")
    assert code == 0, stderr
    assert result["steps"][0]["calls"] == 257
    assert infer_successes(loaded) - before == 257


def test_health_check_load(loaded):
    code, result, stderr = loadtest("-u", loaded.plaintext_target, "--rpc", "health", "--duration", "1s",
                                    "--concurrency-range", "8")
    assert code == 0, stderr
    assert result["description"]["method"] == "/grpc.health.v1.Health/Check"
    assert result["steps"][0]["calls"] > 0
    assert result["steps"][0]["errors"] == {}


def test_capacity_search_runs_each_level(loaded):
    code, result, stderr = loadtest("-u", loaded.plaintext_target, "--concurrency-range", "1:4:3", "--duration", "1s")
    assert code == 0, stderr
    assert [s["concurrency"] for s in result["steps"]] == [1, 4]


def test_latency_objective_broken_exits_3(loaded):
    code, result, stderr = loadtest("-u", loaded.plaintext_target, "--duration", "1s", "--max-latency", "p50=1us")
    assert code == 3, stderr
    assert result["violations"][0]["kind"] == "latency"
    assert "FAILED" in stderr


def test_error_rate_exceeded_exits_2(loaded):
    # A model the gateway does not serve: every call is NOT_FOUND. Inputs are given, so no
    # ModelMetadata is needed.
    code, result, stderr = loadtest("-u", loaded.plaintext_target, "-m", "no_such_model", "--input", "INPUT0:INT32:1,16",
                                    "--duration", "1s", "--max-error-rate", "0.01")
    assert code == 2, stderr
    [step] = result["steps"]
    assert step["errors"].get("NOT_FOUND", 0) == step["calls"] > 0


def test_usage_error_exits_64(loaded):
    process = subprocess.run([switchyard_binary(), "loadtest", "--concurrency-range", "8:1"], capture_output=True, timeout=30)
    assert process.returncode == 64


def test_unreachable_target_exits_1():
    from conftest import free_port
    process = subprocess.run([switchyard_binary(), "loadtest", "-u", f"127.0.0.1:{free_port()}", "--duration", "1s"],
                             capture_output=True, timeout=60, text=True)
    assert process.returncode == 1
    assert "cannot connect" in process.stderr


def chromium_binary():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_html_report_renders_with_drawn_plots(loaded, tmp_path):
    chromium = chromium_binary()
    if chromium is None:
        pytest.skip("chromium is not installed (scripts/bootstrap.sh --python installs Debian's chromium)")
    report = tmp_path / "report.html"
    code, _, stderr = loadtest("-u", loaded.plaintext_target, "--concurrency-range", "1:3:2", "--duration", "2s",
                               "--html", str(report))
    assert code == 0, stderr
    process = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", report.as_uri()],
        capture_output=True, timeout=120, text=True)
    assert process.returncode == 0, process.stderr
    dom = process.stdout
    for plot in ("latency-over-time-0", "percentiles-0", "throughput-0", "latency-over-time-1", "capacity-latency"):
        assert f'<svg id="{plot}"' in dom, plot
    # The parsed DOM holds the series as paths with drawn segments, and their points.
    assert dom.count('<path class="series"') >= 2 * 6 + 3
    assert 'd="M' in dom and " L" in dom
    assert dom.count("<circle") > 10
    screenshot = tmp_path / "report.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={screenshot}",
                    "--window-size=1400,1800", report.as_uri()], capture_output=True, timeout=120)
    assert screenshot.exists() and screenshot.stat().st_size > 10_000
