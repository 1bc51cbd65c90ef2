"""Authentication and authorization through the real gateway and workers (issue 11, first
slice): API keys stored as SHA-256 (`switchyard hash-key`), in `x-api-key` or
`authorization: Bearer`; mTLS client certificates mapped to principals; anonymous access per
listener; per-principal models (globs, versions) and method groups; a key revoked by a reload
stops an open stream; no key ever appears in the gateway's output."""
import hashlib
import json
import subprocess
import threading
import time
import urllib.request

import grpc
import numpy as np
import pytest
import tritonclient.grpc as triton
from tritonclient.grpc import service_pb2, service_pb2_grpc

from conftest import Gateway, reload_config, serving_both_versions, simple_request, switchyard_binary, two_versions

ALICE_KEY = "sy_alice_7f3c9a1e5b2d4f60"
BOB_KEY = "sy_bob_0a9e8d7c6b5a4f3e"
OPS_KEY = "sy_ops_5d4c3b2a19f8e7d6"


def sha(key):
    return hashlib.sha256(key.encode()).hexdigest()


def policy_file(alice_key=ALICE_KEY):
    keys = [f'    - {{principal: bob, sha256: "{sha(BOB_KEY)}"}}', f'    - {{principal: ops, sha256: "{sha(OPS_KEY)}"}}']
    if alice_key:
        keys.insert(0, f'    - {{principal: alice, sha256: "{sha(alice_key)}"}}')
    return two_versions(50, 50) + f"""  simple_string:
    versions: [{{version: "1", workers: 1}}]
auth:
  api_keys:
{chr(10).join(keys)}
  client_certificates:
    - {{principal: service, uri: "spiffe://switchyard/*"}}
  anonymous: {{plaintext: false, tls: false}}
principals:
  alice: {{models: ["simple:1"], methods: [inference, metadata]}}
  bob: {{methods: [statistics]}}
  service: {{models: ["simple*"], methods: [inference]}}
  ops: {{methods: [metadata, statistics, repository]}}
"""


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("auth")
    config = workdir / "auth.yaml"
    config.write_text(policy_file())
    gw = Gateway(workdir, ["--config", str(config), "--log-level", "info"])
    gw.config = config
    yield from serving_both_versions(gw, metadata=[("x-api-key", OPS_KEY)])
    # No key ever reaches the gateway's output (logs, access log).
    output = gw.log_path.read_text(errors="replace")
    for secret in (ALICE_KEY, BOB_KEY, OPS_KEY):
        assert secret not in output


def refused(call):
    with pytest.raises(grpc.RpcError) as error:
        call()
    return error.value.code(), error.value.details()


def test_hash_key_prints_the_sha256_of_the_key_read_from_standard_input():
    out = subprocess.run([switchyard_binary(), "hash-key"], input=ALICE_KEY + "\n", capture_output=True, text=True, check=True)
    assert out.stdout.strip() == sha(ALICE_KEY)
    generated = subprocess.run([switchyard_binary(), "hash-key", "--generate"], capture_output=True, text=True, check=True)
    assert generated.stdout.strip() == sha(generated.stderr.strip())


def test_a_call_without_credentials_or_with_a_wrong_key_is_unauthenticated(secured):
    code, message = refused(lambda: secured.stub.ModelInfer(simple_request(), timeout=10))
    assert code == grpc.StatusCode.UNAUTHENTICATED and "requires credentials" in message, message
    code, message = refused(lambda: secured.stub.ModelInfer(simple_request(), metadata=[("x-api-key", "sy_wrong_key")], timeout=10))
    assert code == grpc.StatusCode.UNAUTHENTICATED and "not valid" in message and "sy_wrong_key" not in message, message
    code, message = refused(lambda: secured.stub.ModelInfer(simple_request(), metadata=[("authorization", "Basic YWxpY2U6")], timeout=10))
    assert code == grpc.StatusCode.UNAUTHENTICATED and "Bearer" in message and "YWxpY2U6" not in message, message


def test_a_known_key_may_use_what_its_principal_allows_and_nothing_else(secured):
    stub = secured.stub
    alice = [("x-api-key", ALICE_KEY)]
    # Unversioned calls go only to the version alice may use, whatever the 50/50 route says.
    versions = {stub.ModelInfer(simple_request(), metadata=alice, timeout=10).model_version for _ in range(40)}
    assert versions == {"1"}
    assert stub.ModelInfer(simple_request(), metadata=[("authorization", f"Bearer {ALICE_KEY}")], timeout=10).model_version == "1"
    code, message = refused(lambda: stub.ModelInfer(simple_request("2"), metadata=alice, timeout=10))
    assert code == grpc.StatusCode.PERMISSION_DENIED and message == "principal 'alice' may not use version 2 of model 'simple'", message
    other = simple_request()
    other.model_name = "simple_string"
    code, message = refused(lambda: stub.ModelInfer(other, metadata=alice, timeout=10))
    assert code == grpc.StatusCode.PERMISSION_DENIED and message == "principal 'alice' may not use model 'simple_string'", message
    code, message = refused(lambda: stub.ModelStatistics(service_pb2.ModelStatisticsRequest(name="simple"), metadata=alice, timeout=10))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "may not call ModelStatistics (method group 'statistics')" in message, message
    # bob may read statistics and nothing else.
    bob = [("x-api-key", BOB_KEY)]
    assert stub.ModelStatistics(service_pb2.ModelStatisticsRequest(name="simple"), metadata=bob, timeout=10).model_stats
    code, message = refused(lambda: stub.ModelInfer(simple_request(), metadata=bob, timeout=10))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "principal 'bob' may not call ModelInfer" in message, message


def test_metadata_and_statistics_show_only_the_models_a_principal_may_use(secured):
    stub = secured.stub
    alice = [("x-api-key", ALICE_KEY)]
    # Unversioned, the model's newest version alice may use stands for it.
    assert stub.ModelMetadata(service_pb2.ModelMetadataRequest(name="simple"), metadata=alice, timeout=10).name == "simple"
    assert stub.ModelReady(service_pb2.ModelReadyRequest(name="simple", version="1"), metadata=alice, timeout=10).ready
    code, message = refused(lambda: stub.ModelConfig(service_pb2.ModelConfigRequest(name="simple", version="2"), metadata=alice, timeout=10))
    assert code == grpc.StatusCode.PERMISSION_DENIED and message == "principal 'alice' may not use version 2 of model 'simple'", message
    code, message = refused(lambda: stub.ModelMetadata(service_pb2.ModelMetadataRequest(name="simple_string"), metadata=alice, timeout=10))
    assert code == grpc.StatusCode.PERMISSION_DENIED and message == "principal 'alice' may not use model 'simple_string'", message
    # ops may see everything; statistics of all models list what the caller may use.
    everything = stub.ModelStatistics(service_pb2.ModelStatisticsRequest(), metadata=[("x-api-key", OPS_KEY)], timeout=10)
    assert {(m.name, m.version) for m in everything.model_stats} == {("simple", "1"), ("simple", "2"), ("simple_string", "1")}


def test_tritonclient_sends_its_key_as_a_header(secured):
    client = triton.InferenceServerClient(secured.plaintext_target)
    inputs = [triton.InferInput(name, [1, 16], "INT32") for name in ("INPUT0", "INPUT1")]
    for tensor in inputs:
        tensor.set_data_from_numpy(np.arange(16, dtype=np.int32).reshape(1, 16))
    result = client.infer("simple", inputs, headers={"x-api-key": ALICE_KEY})
    assert result.get_response().model_version == "1"
    with pytest.raises(triton.InferenceServerException) as error:
        client.infer("simple", inputs)
    assert "UNAUTHENTICATED" in str(error.value.status())
    client.close()


def test_health_checks_need_no_credentials(secured):
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    channel = grpc.insecure_channel(secured.plaintext_target)
    assert health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10).status == health_pb2.HealthCheckResponse.SERVING
    channel.close()


def test_a_client_certificate_maps_to_its_principal(secured):
    root = (secured.certs / "ca.pem").read_bytes()
    mtls = grpc.ssl_channel_credentials(root, (secured.certs / "client-key.pem").read_bytes(), (secured.certs / "client.pem").read_bytes())
    channel = grpc.secure_channel(secured.tls_target, mtls)
    stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
    assert stub.ModelInfer(simple_request("2"), timeout=10).model_version == "2"  # service may use simple*
    code, message = refused(lambda: stub.ModelReady(service_pb2.ModelReadyRequest(name="simple"), timeout=10))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "principal 'service' may not call ModelReady" in message, message
    channel.close()
    # TLS without a certificate or a key: no anonymous access on the TLS listener.
    channel = grpc.secure_channel(secured.tls_target, grpc.ssl_channel_credentials(root))
    code, message = refused(lambda: service_pb2_grpc.GRPCInferenceServiceStub(channel).ModelInfer(simple_request(), timeout=10))
    assert code == grpc.StatusCode.UNAUTHENTICATED, message
    channel.close()


def test_the_access_log_names_the_principal(secured):
    secured.stub.ModelInfer(simple_request(), metadata=[("x-api-key", ALICE_KEY)], timeout=10)

    def entries():
        return [json.loads(l[l.index("{"):]) for l in secured.log_text().splitlines() if '"log":"access"' in l]

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any(e["principal"] == "alice" and e["method"].endswith("/ModelInfer") for e in entries()):
        time.sleep(0.1)
    assert any(e["principal"] == "alice" and e["method"].endswith("/ModelInfer") and e["grpc_code"] == "OK" for e in entries())
    refusals = [e for e in entries() if e["grpc_code"] == "UNAUTHENTICATED"]
    assert refusals and all(e["principal"] is None for e in refusals)


def test_a_key_revoked_by_a_reload_ends_an_open_stream_at_its_next_message(secured):
    alice = [("x-api-key", ALICE_KEY)]
    go = threading.Event()
    sent = []

    def requests():
        yield simple_request()
        go.wait(timeout=30)
        for _ in range(3):
            sent.append(1)
            yield simple_request()
            time.sleep(0.05)

    responses = secured.stub.ModelStreamInfer(requests(), metadata=alice, timeout=60)
    first = next(responses)
    assert first.infer_response.model_version == "1" and not first.error_message
    try:
        secured.config.write_text(policy_file(alice_key=None))
        status, body = reload_config(secured)
        assert status == 200, body
        go.set()
        with pytest.raises(grpc.RpcError) as error:
            for response in responses:
                assert response.error_message == "", response.error_message
        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED, error.value.details()
        assert "not valid" in error.value.details()
        # New calls with the revoked key are refused too; bob's key still works.
        code, _ = refused(lambda: secured.stub.ModelInfer(simple_request(), metadata=alice, timeout=10))
        assert code == grpc.StatusCode.UNAUTHENTICATED
        assert secured.stub.ModelStatistics(service_pb2.ModelStatisticsRequest(name="simple"), metadata=[("x-api-key", BOB_KEY)], timeout=10)
    finally:
        go.set()
        secured.config.write_text(policy_file())
        assert reload_config(secured)[0] == 200


