"""OAuth2 access tokens through the real gateway and workers (issue 11): JWTs minted here with
PyJWT (RS256, ES256, EdDSA) against a JWKS file the gateway reads and re-reads; issuer,
audience, expiry and scopes/claims mapped to principals; key rotation and a broken JWKS file
(the keys in use are kept); tokens never appear in the gateway's output."""
import json
import os
import subprocess
import time
import urllib.error
import urllib.request

import grpc
import jwt
import pytest
import tritonclient.grpc as triton
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from tritonclient.grpc import service_pb2

from conftest import Gateway, reload_config, serving_both_versions, simple_request, switchyard_binary, two_versions

ISSUER = "https://login.example.test/"
AUDIENCE = "switchyard"

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()
NEXT_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(algorithm, key, kid, alg):
    jwk = json.loads(algorithm.to_jwk(key.public_key()))
    jwk.update(kid=kid, alg=alg, use="sig")
    return jwk


def jwks(*keys):
    return json.dumps({"keys": list(keys)})


FIRST_JWKS = jwks(
    public_jwk(RSAAlgorithm, RSA_KEY, "rsa-1", "RS256"),
    public_jwk(ECAlgorithm, EC_KEY, "ec-1", "ES256"),
    public_jwk(OKPAlgorithm, ED_KEY, "ed-1", "EdDSA"),
)
ROTATED_JWKS = jwks(
    public_jwk(RSAAlgorithm, NEXT_RSA_KEY, "rsa-2", "RS256"),
    public_jwk(ECAlgorithm, EC_KEY, "ec-1", "ES256"),
    public_jwk(OKPAlgorithm, ED_KEY, "ed-1", "EdDSA"),
)


def token(key=RSA_KEY, kid="rsa-1", alg="RS256", expires_in=300, **claims):
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-42", "iat": now, "exp": None if expires_in is None else now + expires_in, "scope": "openid models.infer"}
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, key, algorithm=alg, headers={"kid": kid})


def bearer(value):
    return [("authorization", f"Bearer {value}")]


MINTED = []


def minted(value):
    MINTED.append(value)
    return value


@pytest.fixture(scope="module")
def secured(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("jwt")
    keys = workdir / "jwks.json"
    keys.write_text(FIRST_JWKS)
    config = workdir / "jwt.yaml"
    config.write_text(jwt_config(keys))
    gw = Gateway(workdir, ["--config", str(config), "--log-level", "debug"])
    gw.jwks = keys
    gw.config = config
    # analysts may see every model's metadata (scorer only version 1).
    yield from serving_both_versions(gw, metadata=bearer(minted(token(expires_in=3600, scope=None, groups=["analytics-ops"]))))
    output = gw.log_path.read_text(errors="replace")
    for value in MINTED:
        assert value not in output
        assert value.split(".")[2] not in output


def jwt_config(keys, audience=AUDIENCE, source="jwks_file"):
    return two_versions(50, 50) + f"""
auth:
  jwt:
    {source}: {keys}
    issuer: {ISSUER}
    audiences: [{audience}]
    clock_leeway: 5s
    refresh_interval: 200ms
    rules:
      - {{principal: scorer, scope: models.infer}}
      - {{principal: analysts, claim: groups, value: "analytics-*"}}
  anonymous: {{plaintext: false, tls: false}}
principals:
  scorer: {{models: ["simple:1"], methods: [inference, metadata]}}
  analysts: {{methods: [statistics, metadata]}}
"""


def refused(call):
    with pytest.raises(grpc.RpcError) as error:
        call()
    return error.value.code(), error.value.details()


def metric(gw, name, labels=""):
    text = urllib.request.urlopen(f"http://127.0.0.1:{gw.admin_port}/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(name + labels + " ") or (not labels and line.startswith(name + " ")):
            return float(line.split()[-1])
    return None


def replace_file(path, text):
    """Like a ConfigMap or a key-rotation job: write aside, then rename over."""
    aside = path.with_suffix(".new")
    aside.write_text(text)
    os.replace(aside, path)


def test_tokens_of_each_algorithm_call_as_their_principal(secured):
    for value in (token(), token(EC_KEY, "ec-1", "ES256"), token(ED_KEY, "ed-1", "EdDSA")):
        reply = secured.stub.ModelInfer(simple_request(), metadata=bearer(minted(value)), timeout=10)
        assert reply.model_version == "1"  # scorer may use version 1 only, whatever the 50/50 route says
    # tritonclient, with the token in its headers.
    client = triton.InferenceServerClient(secured.plaintext_target)
    assert client.is_model_ready("simple", "1", headers={"authorization": f"Bearer {minted(token())}"})
    # A group claim maps to another principal.
    analyst = bearer(minted(token(EC_KEY, "ec-1", "ES256", scope=None, groups=["staff", "analytics-eu"])))
    assert secured.stub.ModelStatistics(service_pb2.ModelStatisticsRequest(name="simple"), metadata=analyst, timeout=10).model_stats
    code, message = refused(lambda: secured.stub.ModelInfer(simple_request(), metadata=analyst, timeout=10))
    assert code == grpc.StatusCode.PERMISSION_DENIED and "principal 'analysts' may not call ModelInfer" in message, message


def test_bad_tokens_are_refused_saying_which_check_failed(secured):
    cases = [
        (token(expires_in=-60), grpc.StatusCode.UNAUTHENTICATED, "expired at"),
        (token(aud="billing"), grpc.StatusCode.UNAUTHENTICATED, "audience"),
        (token(iss="https://elsewhere.test/"), grpc.StatusCode.UNAUTHENTICATED, "issuer 'https://elsewhere.test/'"),
        (token(nbf=int(time.time()) + 120), grpc.StatusCode.UNAUTHENTICATED, "not valid before"),
        (token(NEXT_RSA_KEY, "rsa-1"), grpc.StatusCode.UNAUTHENTICATED, "signature does not verify"),
        (token(NEXT_RSA_KEY, "rsa-9"), grpc.StatusCode.UNAUTHENTICATED, "key id 'rsa-9'"),
        (token(expires_in=None), grpc.StatusCode.UNAUTHENTICATED, "no exp claim"),
        (jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60}, "a-shared-secret-of-32-bytes-long!", algorithm="HS256",
                    headers={"kid": "rsa-1"}), grpc.StatusCode.UNAUTHENTICATED, "HS256"),
        (token(scope="openid"), grpc.StatusCode.PERMISSION_DENIED, "(sub 'user-42') is valid, but its claims match no rule"),
    ]
    for value, expected, words in cases:
        code, message = refused(lambda: secured.stub.ModelInfer(simple_request(), metadata=bearer(minted(value)), timeout=10))
        assert (code, words in message) == (expected, True), (words, code, message)
        assert value not in message and value.split(".")[2] not in message


def test_a_rotated_jwks_takes_effect_and_a_broken_one_keeps_the_keys_in_use(secured):
    old, new = minted(token()), minted(token(NEXT_RSA_KEY, "rsa-2"))
    assert secured.stub.ModelInfer(simple_request(), metadata=bearer(old), timeout=10).model_version == "1"
    code, _ = refused(lambda: secured.stub.ModelInfer(simple_request(), metadata=bearer(new), timeout=10))
    assert code == grpc.StatusCode.UNAUTHENTICATED

    replace_file(secured.jwks, ROTATED_JWKS)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            secured.stub.ModelInfer(simple_request(), metadata=bearer(new), timeout=10)
            break
        except grpc.RpcError:
            time.sleep(0.1)
    assert secured.stub.ModelInfer(simple_request(), metadata=bearer(new), timeout=10).model_version == "1"
    # The old key left the JWKS: its token, cached a moment ago, is refused now.
    code, message = refused(lambda: secured.stub.ModelInfer(simple_request(), metadata=bearer(old), timeout=10))
    assert code == grpc.StatusCode.UNAUTHENTICATED and "key id 'rsa-1'" in message, message
    loaded = metric(secured, "switchyard_jwks_refreshes_total", '{result="loaded"}')
    assert loaded >= 1

    # A truncated file (a failed write): refused, logged, the keys in use stay.
    failed_before = metric(secured, "switchyard_jwks_refreshes_total", '{result="failed"}')
    replace_file(secured.jwks, ROTATED_JWKS[:40])
    deadline = time.monotonic() + 10
    while metric(secured, "switchyard_jwks_refreshes_total", '{result="failed"}') == failed_before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert metric(secured, "switchyard_jwks_refreshes_total", '{result="failed"}') > failed_before
    assert secured.stub.ModelInfer(simple_request(), metadata=bearer(new), timeout=10).model_version == "1"
    assert "JWKS refresh failed; the keys in use are kept" in secured.log_text()
    replace_file(secured.jwks, ROTATED_JWKS)
    # No token, nor its signature, in the metrics either.
    text = urllib.request.urlopen(f"http://127.0.0.1:{secured.admin_port}/metrics", timeout=5).read().decode()
    assert MINTED and not any(value in text or value.split(".")[2] in text for value in MINTED)


def test_a_reload_changes_the_token_checks_and_refuses_an_unusable_jwks(secured, tmp_path):
    old_audience, new_audience = minted(token(EC_KEY, "ec-1", "ES256")), minted(token(EC_KEY, "ec-1", "ES256", aud="switchyard-eu"))
    assert secured.stub.ModelInfer(simple_request(), metadata=bearer(old_audience), timeout=10).model_version == "1"
    # A JWKS the new configuration names that cannot be used: the whole reload is refused.
    broken = tmp_path / "broken-jwks.json"
    broken.write_text('{"keys": []}')
    secured.config.write_text(jwt_config(broken, audience="switchyard-eu"))
    status, body = reload_config(secured)
    assert status >= 400 and "broken-jwks.json" in body and "nothing was changed" in body, (status, body)
    assert secured.stub.ModelInfer(simple_request(), metadata=bearer(old_audience), timeout=10).model_version == "1"
    # A new audience: tokens for the old one stop at their next call.
    secured.config.write_text(jwt_config(secured.jwks, audience="switchyard-eu"))
    status, body = reload_config(secured)
    assert status == 200, body
    assert secured.stub.ModelInfer(simple_request(), metadata=bearer(new_audience), timeout=10).model_version == "1"
    code, message = refused(lambda: secured.stub.ModelInfer(simple_request(), metadata=bearer(old_audience), timeout=10))
    assert code == grpc.StatusCode.UNAUTHENTICATED and "audience" in message, message
    secured.config.write_text(jwt_config(secured.jwks))
    assert reload_config(secured)[0] == 200


def test_a_stream_with_a_token_is_served_message_by_message(secured):
    def requests():
        for _ in range(5):
            yield simple_request()

    replies = list(secured.stub.ModelStreamInfer(requests(), metadata=bearer(minted(token(EC_KEY, "ec-1", "ES256"))), timeout=20))
    assert len(replies) == 5 and all(r.error_message == "" for r in replies), [r.error_message for r in replies]


def test_a_gateway_whose_jwks_file_is_unusable_does_not_start(tmp_path):
    config = tmp_path / "bad.yaml"
    (tmp_path / "jwks.json").write_text('{"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}')
    config.write_text(f"""
auth:
  jwt:
    jwks_file: {tmp_path / 'jwks.json'}
    issuer: {ISSUER}
    rules: [{{principal: scorer}}]
principals:
  scorer: {{}}
""")
    with pytest.raises(RuntimeError) as error:
        Gateway(tmp_path, ["--config", str(config)])
    assert "has no kid" in str(error.value), str(error.value)
    # Nor does one whose JWKS URL cannot be fetched.
    unreachable = tmp_path / "unreachable.yaml"
    unreachable.write_text(jwt_config("http://127.0.0.1:9/jwks.json", source="jwks_url"))
    with pytest.raises(RuntimeError) as error:
        Gateway(tmp_path, ["--config", str(unreachable)])
    assert "the JWKS at http://127.0.0.1:9/jwks.json cannot be fetched" in str(error.value), str(error.value)
    # check-config reads the JWKS too, and reports mistakes of the section with their line.
    result = subprocess.run([switchyard_binary(), "check-config", str(config)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and "auth.jwt" in result.stderr and "has no kid" in result.stderr, result.stderr
    config.write_text(f"""
auth:
  jwt:
    jwks_file: {tmp_path / 'jwks.json'}
    algorithms: [RS256, HS256]
    rules: [{{principal: nobody, scope: x}}]
""")
    result = subprocess.run([switchyard_binary(), "check-config", str(config)], capture_output=True, text=True, timeout=30)
    assert result.returncode == 1, result.stderr
    assert f"{config}:4:5: error: auth.jwt has no issuer" in result.stderr, result.stderr
    assert f"{config}:5:25: error: HS256 cannot be accepted" in result.stderr, result.stderr
    assert "principal 'nobody' has no permissions under principals" in result.stderr, result.stderr


class JWKSServer:
    """An HTTP server of one JWKS document, which the test swaps or breaks."""

    def __init__(self, document):
        import http.server
        import threading

        self.document, self.status = document, 200
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = server.document.encode()
                self.send_response(server.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/.well-known/jwks.json"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def test_keys_from_a_jwks_url_are_fetched_again_and_kept_while_the_url_fails(tmp_path):
    server = JWKSServer(FIRST_JWKS)
    config = tmp_path / "url.yaml"
    config.write_text(jwt_config(server.url, source="jwks_url"))
    gw = Gateway(tmp_path, ["--config", str(config)])
    try:
        ready = bearer(minted(token(scope=None, groups=["analytics-ops"])))
        for _ in serving_both_versions(gw, metadata=ready):
            old, new = minted(token()), minted(token(NEXT_RSA_KEY, "rsa-2"))
            assert gw.stub.ModelInfer(simple_request(), metadata=bearer(old), timeout=10).model_version == "1"
            server.document = ROTATED_JWKS
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    gw.stub.ModelInfer(simple_request(), metadata=bearer(new), timeout=10)
                    break
                except grpc.RpcError:
                    time.sleep(0.1)
            assert gw.stub.ModelInfer(simple_request(), metadata=bearer(new), timeout=10).model_version == "1"
            code, _ = refused(lambda: gw.stub.ModelInfer(simple_request(), metadata=bearer(old), timeout=10))
            assert code == grpc.StatusCode.UNAUTHENTICATED
            # The identity provider fails: the keys in use stay.
            server.status = 503
            deadline = time.monotonic() + 10
            while not metric(gw, "switchyard_jwks_refreshes_total", '{result="failed"}') and time.monotonic() < deadline:
                time.sleep(0.1)
            assert metric(gw, "switchyard_jwks_refreshes_total", '{result="failed"}') >= 1
            assert gw.stub.ModelInfer(simple_request(), metadata=bearer(new), timeout=10).model_version == "1"
            assert "answered 503" in gw.log_text()
    finally:
        server.close()
        if gw.process.poll() is None:
            gw.stop()
