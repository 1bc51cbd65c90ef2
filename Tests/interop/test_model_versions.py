"""Two versions of one model served side by side by separate worker pools (`--model simple:1
--model simple:2`): each request goes to the version it names, an empty version goes to the
newest, an unknown one is NOT_FOUND, and readiness, metadata and statistics are per version."""
import time

import grpc
import pytest
import tritonclient.grpc as triton
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

from conftest import Gateway, infer_simple


@pytest.fixture(scope="module")
def versions_gateway(tmp_path_factory):
    gw = Gateway(tmp_path_factory.mktemp("versions"), [
        "--model", "simple:1", "--model", "simple:2", "--workers-per-model", "1"])
    client = triton.InferenceServerClient(gw.plaintext_target)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not client.is_server_ready():
        time.sleep(0.1)
    assert client.is_server_ready(), gw.log_text()
    yield gw, client
    client.close()
    assert gw.stop() == 0, gw.log_text()


def infer(client, version):
    return infer_simple(client, version)


def test_each_version_answers_for_itself_and_empty_means_the_newest(versions_gateway):
    _, client = versions_gateway
    assert infer(client, "1") == "1"
    assert infer(client, "2") == "2"
    assert infer(client, "") == "2"


def test_an_unknown_version_is_not_found_and_names_the_versions_served(versions_gateway):
    _, client = versions_gateway
    with pytest.raises(InferenceServerException) as error:
        infer(client, "3")
    assert "StatusCode.NOT_FOUND" in str(error.value.status())
    assert "unknown version '3' of model 'simple'; it has versions 1, 2" in error.value.message()


def test_index_readiness_metadata_and_statistics_are_per_version(versions_gateway):
    gw, client = versions_gateway
    index = sorted((m.name, m.version, m.state) for m in client.get_model_repository_index().models)
    assert index == [("simple", "1", "READY"), ("simple", "2", "READY")]
    assert client.is_model_ready("simple", "1") and client.is_model_ready("simple", "2")
    assert not_found(lambda: client.is_model_ready("simple", "9"))
    assert list(client.get_model_metadata("simple", "1").versions) == ["1", "2"]

    before = {s.version: s.inference_stats.success.count for s in client.get_inference_statistics("simple").model_stats}
    for _ in range(3):
        infer(client, "1")
    infer(client, "2")
    after = {s.version: s.inference_stats.success.count for s in client.get_inference_statistics("simple").model_stats}
    assert after["1"] - before["1"] == 3 and after["2"] - before["2"] == 1
    only_two = client.get_inference_statistics("simple", "2").model_stats
    assert [s.version for s in only_two] == ["2"]


def test_the_versions_run_on_separate_workers(versions_gateway):
    gw, _ = versions_gateway
    log = gw.log_text()
    assert "worker=simple-0" in log and "worker=simple-v2-0" in log, log[-2000:]


def not_found(call) -> bool:
    try:
        call()
    except InferenceServerException as error:
        return "NOT_FOUND" in str(error.status())
    return False
