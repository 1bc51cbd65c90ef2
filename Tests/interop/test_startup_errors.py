"""A listener that cannot be opened stops the start with a message that names the listener, the
address, the reason and the flag that moves it, and before any worker starts."""
import socket
import subprocess

import pytest

from conftest import free_port, switchyard_binary


@pytest.mark.parametrize("listener, flag, key", [
    ("plaintext", "--plaintext-address", "listeners.plaintext.address"),
    ("TLS", "--tls-address", "listeners.tls.address"),
    ("admin", "--admin-address", "listeners.admin.address"),
])
def test_a_port_in_use_names_the_listener_the_address_and_the_flag(tmp_path, listener, flag, key):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        addresses = {"--plaintext-address": f"127.0.0.1:{free_port()}", "--tls-address": f"127.0.0.1:{free_port()}",
                     "--admin-address": f"127.0.0.1:{free_port()}"}
        addresses[flag] = f"127.0.0.1:{port}"
        args = [switchyard_binary(), "serve", "--model", "simple", "--workers-per-model", "1", "--dev-certs-dir", str(tmp_path / "certs")]
        for name, value in addresses.items():
            args += [name, value]
        result = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert result.returncode != 0
    message = f"cannot listen on 127.0.0.1:{port} for the {listener} listener: address already in use"
    assert message in result.stderr, result.stderr[-2000:]
    assert flag in result.stderr and key in result.stderr
    assert "worker started" not in result.stderr
