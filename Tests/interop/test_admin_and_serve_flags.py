"""The admin listener (HTTP/1.1: /healthz, /readyz, POST /tls/reload) and the `serve` flags for
HTTP/2 settings and connection management, against the real gateway."""
import http.client
import json
import shutil
import socket
import subprocess
import time

import grpc
import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from conftest import Gateway, served_fingerprint, switchyard_binary


def admin_request(port, method, path, timeout=10):
    """One HTTP/1.1 request to the admin listener: (status, body text, content-type)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path)
        response = connection.getresponse()
        return response.status, response.read().decode(), response.getheader("content-type")
    finally:
        connection.close()


def test_reload_tls_by_admin_call_swaps_the_certificate_and_keeps_connections(reloadable_tls_gateway):
    setup = reloadable_tls_gateway
    gw, first, second, live = setup.gateway, setup.first, setup.second, setup.live
    before = served_fingerprint(gw.tls_port, first / "ca.pem")
    old = grpc.secure_channel(gw.tls_target, grpc.ssl_channel_credentials((first / "ca.pem").read_bytes()))
    stub = health_pb2_grpc.HealthStub(old)
    assert stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status == health_pb2.HealthCheckResponse.SERVING

    setup.swap_in_second()
    status, body, content_type = admin_request(gw.admin_port, "POST", "/tls/reload")
    assert status == 200, body
    assert content_type == "application/json"
    certificates = json.loads(body)["certificates"]
    after = served_fingerprint(gw.tls_port, second / "ca.pem")
    assert after != before
    assert [c["sha256_fingerprint"] for c in certificates] == [after]
    assert certificates[0]["common_name"] == "localhost"
    assert "localhost" in certificates[0]["dns_names"]
    assert certificates[0]["not_after"] > time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    assert "TLS material reloaded" in gw.log_text()
    # The connection opened before the reload still carries calls.
    assert stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status == health_pb2.HealthCheckResponse.SERVING
    old.close()

    # A key that does not belong to the certificate: 500 saying so, and the old material stays.
    shutil.copy(first / "server-key.pem", live / "server-key.pem")
    status, body, _ = admin_request(gw.admin_port, "POST", "/tls/reload")
    assert status == 500
    assert "previous certificate stays in use" in body
    assert served_fingerprint(gw.tls_port, second / "ca.pem") == after


def test_admin_health_readiness_and_errors(gateway):
    assert admin_request(gateway.admin_port, "GET", "/healthz")[:2] == (200, "ok\n")
    deadline = time.monotonic() + 30
    while admin_request(gateway.admin_port, "GET", "/readyz")[0] != 200 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert admin_request(gateway.admin_port, "GET", "/readyz")[:2] == (200, "ready\n")
    status, body, _ = admin_request(gateway.admin_port, "GET", "/tls/reload")
    assert status == 405 and "use POST" in body
    status, body, _ = admin_request(gateway.admin_port, "GET", "/nothing-here")
    assert status == 404 and "/healthz" in body


def test_reload_without_a_tls_listener_is_503(tmp_path):
    port, admin = free_ports(2)
    log = open(tmp_path / "gateway.log", "wb")
    process = subprocess.Popen([switchyard_binary(), "serve", "--plaintext-address", f"127.0.0.1:{port}",
                                "--tls-address", "none", "--admin-address", f"127.0.0.1:{admin}",
                                "--model", "simple", "--workers-per-model", "1"],
                               cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_listening(admin)
        status, body, _ = admin_request(admin, "POST", "/tls/reload")
        assert status == 503
        assert "no TLS listener" in body
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0
        log.close()


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def wait_listening(port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError(f"nothing listening on {port}")


def h2_connect(port):
    """A python-h2 client connection on h2c: returns (socket, connection, events so far)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    return sock, conn


def read_events(sock, conn, until, timeout):
    """Reads until `until(events)` holds or the peer closes; returns every event seen."""
    events = []
    deadline = time.monotonic() + timeout
    sock.settimeout(0.5)
    while time.monotonic() < deadline and not until(events):
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        if not data:
            break
        events += conn.receive_data(data)
        pending = conn.data_to_send()
        if pending:
            sock.sendall(pending)
    return events


def test_http2_settings_flags_are_advertised(tmp_path):
    gw = Gateway(tmp_path, ["--model", "simple", "--workers-per-model", "1", "--max-concurrent-streams", "7",
                            "--initial-window-size", "131072", "--max-frame-size", "32768",
                            "--max-header-list-size", "8192"])
    try:
        sock, conn = h2_connect(gw.plaintext_port)
        events = read_events(sock, conn, lambda evs: any(isinstance(e, h2.events.RemoteSettingsChanged) for e in evs), 5)
        settings = next(e for e in events if isinstance(e, h2.events.RemoteSettingsChanged)).changed_settings
        assert settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS].new_value == 7
        assert settings[h2.settings.SettingCodes.INITIAL_WINDOW_SIZE].new_value == 131072
        assert settings[h2.settings.SettingCodes.MAX_FRAME_SIZE].new_value == 32768
        assert settings[h2.settings.SettingCodes.MAX_HEADER_LIST_SIZE].new_value == 8192
        sock.close()
    finally:
        assert gw.stop() == 0


def test_max_connection_age_and_idle_timeout_send_goaway(tmp_path):
    gw = Gateway(tmp_path, ["--model", "simple", "--workers-per-model", "1",
                            "--max-connection-age", "1s", "--drain-timeout", "2s", "--idle-timeout", "off"])
    try:
        sock, conn = h2_connect(gw.plaintext_port)
        start = time.monotonic()
        events = read_events(sock, conn, lambda evs: any(isinstance(e, h2.events.ConnectionTerminated) for e in evs), 8)
        goaway = [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
        assert goaway, f"no GOAWAY within 8 s: {events}"
        assert goaway[0].error_code == 0  # NO_ERROR: a graceful drain, not a failure
        assert 0.8 <= time.monotonic() - start <= 6
        sock.close()
    finally:
        assert gw.stop() == 0

    (tmp_path / "idle").mkdir()
    gw = Gateway(tmp_path / "idle", ["--model", "simple", "--workers-per-model", "1", "--idle-timeout", "1s"])
    try:
        sock, conn = h2_connect(gw.plaintext_port)
        events = read_events(sock, conn, lambda evs: any(isinstance(e, h2.events.ConnectionTerminated) for e in evs), 8)
        goaway = [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
        assert goaway and goaway[0].error_code == 0 and goaway[0].additional_data == b"idle", events
        sock.close()
    finally:
        assert gw.stop() == 0


@pytest.mark.parametrize("flag,value,message", [
    ("--max-frame-size", "100", "--max-frame-size must be 16384 to 16777215"),
    ("--initial-window-size", "10", "--initial-window-size must be 65535 to 2147483647"),
    ("--max-concurrent-streams", "0", "--max-concurrent-streams must be at least 1"),
    ("--idle-timeout", "0s", "--idle-timeout needs a positive duration"),
    ("--keepalive-timeout", "off", "--keepalive-timeout needs a positive duration"),
    ("--max-connection-age", "5 minutes", "--max-connection-age"),
    ("--admin-address", "nowhere", "--admin-address must be host:port or 'none'"),
])
def test_bad_flag_values_are_refused_with_a_message(tmp_path, flag, value, message):
    result = subprocess.run([switchyard_binary(), "serve", flag, value], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
