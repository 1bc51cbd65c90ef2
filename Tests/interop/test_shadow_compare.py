"""Shadow output comparison through the real gateway and workers: `simple` version 1 serves,
version 2 gets a copy of every call (fraction 1.0) and the two answers are compared. With
identical workers every call counts as a match; with version 2's workers adding 1 to every
output element (the hidden `--diagnostic-output-offset` test aid, passed in worker_arguments)
every call counts as differing by 1, while the client still gets version 1's correct answers."""
import json
import subprocess
import time

import numpy as np
import pytest

from conftest import Gateway, switchyard_binary
from test_metrics import scrape, value
from test_routing import admin, serving_both_versions, simple_request

CALLS = 40

CONFIG = """
models:
  simple:
    versions:
      - {{version: "1", workers: 1}}
      - {{version: "2", workers: 1, worker_arguments: {shadow_arguments}}}
    route:
      variants: [{{version: "1", weight: 100}}]
      shadow: {{version: "2", fraction: 1.0, absolute_tolerance: 0.5, relative_tolerance: 0}}
"""

PAIR = {"model": "simple", "version": "1", "shadow_version": "2"}


def shadowed_gateway(tmp_path_factory, name, shadow_arguments):
    workdir = tmp_path_factory.mktemp(name)
    config = workdir / "shadow.yaml"
    config.write_text(CONFIG.format(shadow_arguments=json.dumps(shadow_arguments)))
    gw = Gateway(workdir, ["--config", str(config), "--log-level", "info", "--access-log", "off"])
    yield from serving_both_versions(gw)


@pytest.fixture(scope="module")
def identical(tmp_path_factory):
    yield from shadowed_gateway(tmp_path_factory, "shadow-identical", [])


@pytest.fixture(scope="module")
def offset(tmp_path_factory):
    yield from shadowed_gateway(tmp_path_factory, "shadow-offset", ["--diagnostic-output-offset", "1"])


def call_and_check(gw):
    """CALLS unversioned calls, one after another; each must be version 1's correct answer."""
    a = np.arange(16, dtype=np.int32)
    for _ in range(CALLS):
        response = gw.stub.ModelInfer(simple_request(), timeout=10)
        assert response.model_version == "1"
        assert np.frombuffer(response.raw_output_contents[0], dtype=np.int32).tolist() == (a * 2).tolist()
        assert np.frombuffer(response.raw_output_contents[1], dtype=np.int32).tolist() == [0] * 16


def settled_samples(gw, result):
    """The scrape once every call's comparison has its result (the shadow answers on its own)."""
    deadline = time.monotonic() + 10
    while True:
        text, samples = scrape(gw)
        if value(samples, "switchyard_shadow_comparisons_total", **PAIR, result=result) >= CALLS or time.monotonic() > deadline:
            return text, samples


def comparison_results(samples):
    results = ("match", "differ", "primary_failed", "shadow_failed", "shadow_timeout", "shadow_shed", "skipped")
    return {r: value(samples, "switchyard_shadow_comparisons_total", **PAIR, result=r) for r in results}


def test_identical_variants_count_every_shadowed_call_as_a_match_with_both_latencies(identical):
    call_and_check(identical)
    text, samples = settled_samples(identical, "match")
    assert comparison_results(samples) == {
        "match": CALLS, "differ": 0, "primary_failed": 0, "shadow_failed": 0, "shadow_timeout": 0, "shadow_shed": 0, "skipped": 0,
    }, [line for line in text.splitlines() if line.startswith("switchyard_shadow")]
    for side in ("primary", "shadow"):
        assert value(samples, "switchyard_shadow_request_duration_seconds_count", **PAIR, side=side) == CALLS, side
        assert value(samples, "switchyard_shadow_request_duration_seconds_sum", **PAIR, side=side) > 0, side
    assert value(samples, "switchyard_shadow_compared_elements_total", **PAIR) == CALLS * 32
    assert value(samples, "switchyard_shadow_mismatched_elements_total", **PAIR) == 0
    # Every pair's largest difference is 0: all in the lowest bucket.
    assert value(samples, "switchyard_shadow_max_abs_difference_bucket", **PAIR, le="1e-09") == CALLS
    # The shed counter stays, and nothing was shed.
    assert value(samples, "switchyard_shadow_requests_shed_total", model="simple", version="2") == 0


def test_shadowed_stream_messages_are_compared_one_by_one(identical):
    _, before = scrape(identical)
    matched = value(before, "switchyard_shadow_comparisons_total", **PAIR, result="match")
    responses = list(identical.stub.ModelStreamInfer(iter([simple_request() for _ in range(10)]), timeout=10))
    assert [r.infer_response.model_version for r in responses] == ["1"] * 10
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        _, samples = scrape(identical)
        if value(samples, "switchyard_shadow_comparisons_total", **PAIR, result="match") >= matched + 10:
            break
        time.sleep(0.05)
    assert value(samples, "switchyard_shadow_comparisons_total", **PAIR, result="match") == matched + 10
    assert value(samples, "switchyard_shadow_comparisons_total", **PAIR, result="differ") == 0


def test_a_shadow_that_answers_differently_counts_every_call_as_differing_by_its_offset(offset):
    call_and_check(offset)
    text, samples = settled_samples(offset, "differ")
    results = comparison_results(samples)
    assert results["differ"] == CALLS and results["match"] == 0, [line for line in text.splitlines() if line.startswith("switchyard_shadow")]
    assert value(samples, "switchyard_shadow_compared_elements_total", **PAIR) == CALLS * 32
    assert value(samples, "switchyard_shadow_mismatched_elements_total", **PAIR) == CALLS * 32
    # Each pair differs by exactly 1: above the 0.1 bucket, within the 1 bucket.
    assert value(samples, "switchyard_shadow_max_abs_difference_count", **PAIR) == CALLS
    assert value(samples, "switchyard_shadow_max_abs_difference_sum", **PAIR) == CALLS
    assert value(samples, "switchyard_shadow_max_abs_difference_bucket", **PAIR, le="0.1") == 0
    assert value(samples, "switchyard_shadow_max_abs_difference_bucket", **PAIR, le="1") == CALLS
    assert value(samples, "switchyard_shadow_request_duration_seconds_count", **PAIR, side="shadow") == CALLS


def test_the_route_shows_its_shadow_tolerances(offset):
    status, body = admin(offset, "GET", "/routes")
    assert status == 200, body
    assert json.loads(body)[0]["shadow"] == {"version": "2", "fraction": 1.0, "absolute_tolerance": 0.5, "relative_tolerance": 0}
    status, body = admin(offset, "GET", "/config")
    assert status == 200 and json.loads(body)["routes"][0]["shadow"]["absolute_tolerance"] == 0.5, body


def test_the_output_offset_test_aid_is_hidden_from_the_workers_help():
    help_text = subprocess.run([switchyard_binary(), "worker", "--help"], capture_output=True, text=True).stdout
    assert "--socket" in help_text and "diagnostic-output-offset" not in help_text
