"""Shared fixtures for the interop tests: the real `switchyard` binary and its helpers."""
import os
import struct
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def switchyard_binary() -> str:
    binary = os.environ.get("SWITCHYARD_BINARY", str(REPO / ".build" / "debug" / "switchyard"))
    if not os.access(binary, os.X_OK):
        pytest.fail(f"switchyard binary not found at {binary}: run `swift build` first (scripts/test.sh does)")
    return binary


class ProtoDecoder:
    """`switchyard proto decode --stream`: one long-lived process decoding many messages."""

    def __init__(self, message_type: str, output_format: str = "binary"):
        self.process = subprocess.Popen(
            [switchyard_binary(), "proto", "decode", "--type", message_type, "--format", output_format, "--stream"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )

    def decode(self, data: bytes):
        """(ok, payload): the re-encoded bytes, or the error message."""
        self.process.stdin.write(struct.pack(">I", len(data)) + data)
        self.process.stdin.flush()
        status = self.process.stdout.read(1)
        assert status, "switchyard proto decode exited"
        (length,) = struct.unpack(">I", self.process.stdout.read(4))
        payload = self.process.stdout.read(length)
        return status == b"\x00", payload

    def close(self):
        self.process.stdin.close()
        assert self.process.wait(timeout=10) == 0


@pytest.fixture
def proto_decoder():
    decoders = []

    def make(message_type: str, output_format: str = "binary") -> ProtoDecoder:
        decoder = ProtoDecoder(message_type, output_format)
        decoders.append(decoder)
        return decoder

    yield make
    for decoder in decoders:
        decoder.close()


def infer_simple(client, version):
    """One ModelInfer of `simple` at `version` with tritonclient; checks the sum and returns
    the version that answered (the response's model_version)."""
    import numpy as np
    import tritonclient.grpc as triton

    a = np.arange(16, dtype=np.int32).reshape(1, 16)
    inputs = [triton.InferInput("INPUT0", [1, 16], "INT32"), triton.InferInput("INPUT1", [1, 16], "INT32")]
    inputs[0].set_data_from_numpy(a)
    inputs[1].set_data_from_numpy(a)
    result = client.infer("simple", inputs, model_version=version)
    assert (result.as_numpy("OUTPUT0") == a * 2).all()
    return result.get_response().model_version


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Gateway:
    """A running `switchyard serve` process on free loopback ports."""

    def __init__(self, workdir: Path, extra_args=(), env=None):
        import time

        self.workdir = workdir
        self.plaintext_port = free_port()
        self.tls_port = free_port()
        self.admin_port = free_port()
        self.certs = workdir / "certs"
        self.log_path = workdir / "gateway.log"
        self.log = open(self.log_path, "wb")
        args = [
            switchyard_binary(), "serve",
            "--plaintext-address", f"127.0.0.1:{self.plaintext_port}",
            "--tls-address", f"127.0.0.1:{self.tls_port}",
            "--admin-address", f"127.0.0.1:{self.admin_port}",
            "--dev-certs-dir", str(self.certs),
            "--enable-echo-service",
            "--log-level", "debug",
            *extra_args,
        ]
        self.process = subprocess.Popen(args, cwd=workdir, stdout=self.log, stderr=subprocess.STDOUT,
                                        env=None if env is None else {**os.environ, **env})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gateway exited with {self.process.returncode}:\n{self.log_text()}")
            if self._listening(self.plaintext_port) and self._listening(self.tls_port) and self._listening(self.admin_port):
                return
            time.sleep(0.05)
        raise RuntimeError(f"gateway did not start listening:\n{self.log_text()}")

    @staticmethod
    def _listening(port: int) -> bool:
        import socket

        with socket.socket() as sock:
            sock.settimeout(0.2)
            return sock.connect_ex(("127.0.0.1", port)) == 0

    @property
    def plaintext_target(self) -> str:
        return f"127.0.0.1:{self.plaintext_port}"

    @property
    def tls_target(self) -> str:
        return f"localhost:{self.tls_port}"

    def log_text(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        import signal

        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise AssertionError(f"gateway did not exit within 20 s of SIGTERM:\n{self.log_text()}")
        self.log.close()
        return self.process.returncode


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    """The gateway with dev certificates, the echo diagnostic and debug logs, for one module."""
    gw = Gateway(tmp_path_factory.mktemp("gateway"), [
        "--model", "simple", "--workers-per-model", "1", "--handshake-timeout", "1500ms"])
    yield gw
    code = gw.stop()
    assert code == 0, f"gateway exited with {code}:\n{gw.log_text()}"


@pytest.fixture(scope="module")
def inference_gateway(tmp_path_factory):
    """The gateway on its embedded default models (2 workers each), ready to infer."""
    import time

    import tritonclient.grpc as triton

    gw = Gateway(tmp_path_factory.mktemp("inference"))
    client = triton.InferenceServerClient(gw.plaintext_target)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not client.is_server_ready():
        time.sleep(0.1)
    assert client.is_server_ready(), gw.log_text()
    client.close()
    yield gw
    code = gw.stop()
    assert code == 0, f"gateway exited with {code}:\n{gw.log_text()}"


def make_certs(directory):
    """A fresh dev CA, server and client certificate set in `directory` (`switchyard certs`)."""
    subprocess.run([switchyard_binary(), "certs", "--dir", str(directory)], check=True, capture_output=True)


def served_fingerprint(port, ca):
    """SHA-256 of the certificate a TLS handshake with 127.0.0.1:`port` is shown (verified by `ca`)."""
    import hashlib
    import socket
    import ssl

    context = ssl.create_default_context(cafile=str(ca))
    context.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            return hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest()


class ReloadableTLSGateway:
    """A gateway whose TLS files live in `live`, first copied from certificate set `first`; a
    second set `second` is ready to be swapped in. For the TLS reload tests."""

    FILES = ("server.pem", "server-key.pem", "ca.pem")

    def __init__(self, workdir: Path):
        import shutil

        self.first, self.second, self.live = workdir / "a", workdir / "b", workdir / "live"
        make_certs(self.first)
        make_certs(self.second)
        self.live.mkdir()
        for name in self.FILES:
            shutil.copy(self.first / name, self.live / name)
        self.gateway = Gateway(workdir, ["--model", "simple", "--workers-per-model", "1",
                                         "--tls-cert", str(self.live / "server.pem"),
                                         "--tls-key", str(self.live / "server-key.pem"),
                                         "--tls-client-ca", str(self.live / "ca.pem")])

    def swap_in_second(self):
        """Copies the second certificate set over the live files (the gateway does not notice yet)."""
        import shutil

        for name in self.FILES:
            shutil.copy(self.second / name, self.live / name)


@pytest.fixture
def reloadable_tls_gateway(tmp_path):
    """A ReloadableTLSGateway, stopped (and checked to exit 0) after the test."""
    setup = ReloadableTLSGateway(tmp_path)
    yield setup
    code = setup.gateway.stop()
    assert code == 0, setup.gateway.log_text()



def simple_request(version=""):
    """A ModelInferRequest for `simple` (INPUT0 = INPUT1 = 0..15, INT32 [1,16]); `version` empty
    lets the gateway choose."""
    import numpy as np
    from tritonclient.grpc import service_pb2

    request = service_pb2.ModelInferRequest(model_name="simple", model_version=version)
    for name in ("INPUT0", "INPUT1"):
        request.inputs.add(name=name, datatype="INT32", shape=[1, 16])
        request.raw_input_contents.append(np.arange(16, dtype=np.int32).tobytes())
    return request


def two_versions(one, two, extra=""):
    """A configuration of `simple` at versions 1 and 2, one worker each, routed `one` : `two`,
    with `extra` lines of route keys."""
    return f"""
models:
  simple:
    versions:
      - {{version: "1", workers: 1}}
      - {{version: "2", workers: 1}}
    route:
      variants:
        - {{version: "1", weight: {one}}}
        - {{version: "2", weight: {two}}}
{extra}"""


def serving_both_versions(gw, metadata=()):
    """Yields `gw` with a ModelInfer stub (`gw.stub`) once both versions of `simple` are ready
    (asked with `metadata`); stops the gateway after."""
    import time

    import grpc
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    channel = grpc.insecure_channel(gw.plaintext_target)
    gw.stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if all(gw.stub.ModelReady(service_pb2.ModelReadyRequest(name="simple", version=v), metadata=metadata, timeout=1).ready
                   for v in ("1", "2")):
                break
        except grpc.RpcError:
            pass
        time.sleep(0.1)
    yield gw
    channel.close()
    assert gw.stop() == 0, gw.log_text()


def reload_config(gw):
    """POST /config/reload on `gw`'s admin listener: (HTTP status, body)."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(f"http://127.0.0.1:{gw.admin_port}/config/reload", method="POST", data=b"")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def wait_models_ready(gw, *models, timeout=60):
    """Waits until each of `models` (a name, or a (name, version) pair) is ready on `gw`'s
    plaintext listener; fails with the gateway's log when one is not within `timeout` s."""
    import time

    import tritonclient.grpc as triton

    client = triton.InferenceServerClient(gw.plaintext_target)
    wanted = [(m, "") if isinstance(m, str) else m for m in models]
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                if all(client.is_model_ready(name, version) for name, version in wanted):
                    return
            except Exception:
                pass  # not known yet, or not answering yet
            assert time.monotonic() < deadline, f"{models} not ready within {timeout} s:\n{gw.log_text()}"
            time.sleep(0.1)
    finally:
        client.close()
