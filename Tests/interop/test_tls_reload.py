"""TLS material reloads on SIGHUP without dropping connections: new handshakes see the new
certificate, an open connection keeps working, and a broken file keeps the old one in use."""
import signal
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import served_fingerprint


def test_sighup_reloads_the_certificate_and_keeps_open_connections(reloadable_tls_gateway):
    setup = reloadable_tls_gateway
    gw, first, second, live = setup.gateway, setup.first, setup.second, setup.live
    before = served_fingerprint(gw.tls_port, first / "ca.pem")
    creds = grpc.ssl_channel_credentials((first / "ca.pem").read_bytes())
    old = grpc.secure_channel(gw.tls_target, creds)
    stub = health_pb2_grpc.HealthStub(old)
    assert stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status == health_pb2.HealthCheckResponse.SERVING

    setup.swap_in_second()
    gw.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "TLS material reloaded" not in gw.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "TLS material reloaded" in gw.log_text()

    after = served_fingerprint(gw.tls_port, second / "ca.pem")
    assert after != before
    # The connection opened before the reload still carries calls.
    assert stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status == health_pb2.HealthCheckResponse.SERVING
    old.close()

    # A broken key is refused and the current certificate stays in use.
    (live / "server-key.pem").write_text("not a key")
    gw.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "TLS reload failed" not in gw.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "TLS reload failed" in gw.log_text()
    assert served_fingerprint(gw.tls_port, second / "ca.pem") == after
