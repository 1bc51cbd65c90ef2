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
