"""Hostile HTTP/2 peers against the real gateway, one test per protection of HTTP2Configuration.

Each test opens a well-behaved connection (python-h2) next to an abusive one (raw frames on a
socket), then checks that the abusive connection gets the GOAWAY the configuration promises
and is closed, that the well-behaved connection still completes grpc.health.v1.Health/Check,
and that the gateway process is still alive and serving new grpcio channels. All traffic stays
on 127.0.0.1; every socket has a timeout of at most 5 s.

Numbers below are the defaults of HTTP2Configuration (nothing is configured for these tests):
100 concurrent streams, 16 KiB header lists, 8 CONTINUATIONs, 1000 queued acknowledgements,
200 resets then 50/s, 200 glitches then 50/s, PINGs at most every 5 minutes with 2 strikes.
"""
import socket
import struct
import time

import grpc
import h2.config
import h2.connection
import h2.events
import hpack
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

# Frame types, flags and error codes (RFC 9113 §6, §7).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM = ACK = 0x1
END_HEADERS = 0x4
PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, STREAM_CLOSED = 0x1, 0x2, 0x3, 0x5
REFUSED_STREAM, CANCEL, ENHANCE_YOUR_CALM = 0x7, 0x8, 0xB
SETTINGS_MAX_CONCURRENT_STREAMS, SETTINGS_MAX_HEADER_LIST_SIZE = 0x3, 0x6

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
EMPTY_GRPC_MESSAGE = b"\x00\x00\x00\x00\x00"  # uncompressed, length 0: an empty HealthCheckRequest
TIMEOUT = 5.0


def frame(frame_type: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes([frame_type, flags]) + stream_id.to_bytes(4, "big") + payload


def request_headers(path=HEALTH_CHECK, extra=()):
    return [
        (":method", "POST"), (":scheme", "http"), (":path", path), (":authority", "127.0.0.1"),
        ("content-type", "application/grpc"), ("te", "trailers"), *extra,
    ]


def vm_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS line")


class Frame:
    def __init__(self, frame_type, flags, stream_id, payload):
        self.type, self.flags, self.stream_id, self.payload = frame_type, flags, stream_id, payload

    @property
    def error_code(self) -> int:
        """RST_STREAM's code, or GOAWAY's."""
        offset = 4 if self.type == GOAWAY else 0
        return struct.unpack(">I", self.payload[offset:offset + 4])[0]

    @property
    def last_stream_id(self) -> int:
        return struct.unpack(">I", self.payload[:4])[0] & 0x7FFFFFFF

    @property
    def debug_data(self) -> bytes:
        return self.payload[8:]

    def __repr__(self):
        return f"Frame(type={self.type}, flags={self.flags:#x}, stream={self.stream_id}, payload={self.payload[:40]!r})"


class RawPeer:
    """A client that writes whatever bytes it likes and parses what the server sends back."""

    def __init__(self, port: int, preface: bool = True, ack_settings: bool = True):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.encoder = hpack.Encoder()
        self.received: list[Frame] = []
        self.closed = False
        self._buffer = b""
        self.server_settings = {}
        if preface:
            self.send(PREFACE + frame(SETTINGS, 0, 0))
            settings = self.read_until(lambda f: f.type == SETTINGS and not f.flags & ACK)
            assert settings is not None, "the server sent no SETTINGS"
            payload = settings.payload
            self.server_settings = dict(struct.unpack(">HI", payload[i:i + 6]) for i in range(0, len(payload), 6))
            if ack_settings:
                self.send(frame(SETTINGS, ACK, 0))

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.sock.close()

    def header_block(self, headers) -> bytes:
        return self.encoder.encode(headers)

    def send(self, data: bytes) -> bool:
        """Sends all of `data`; False when the server closed or stopped reading meanwhile."""
        try:
            self.sock.settimeout(TIMEOUT)
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            return False

    def flood(self, data: bytes, times: int, chunk: int = 200) -> int:
        """Sends `data` `times` times in chunks; stops early when the server stops reading."""
        sent = 0
        while sent < times:
            count = min(chunk, times - sent)
            if not self.send(data * count):
                break
            sent += count
        return sent

    def read_until(self, predicate, timeout: float = TIMEOUT):
        """The first received frame matching `predicate`, reading more as needed; None on
        end of stream or timeout."""
        for received in self.received:
            if predicate(received):
                return received
        deadline = time.monotonic() + timeout
        while not self.closed and time.monotonic() < deadline:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(1 << 16)
            except socket.timeout:
                return None
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                self.closed = True
                return None
            self._buffer += chunk
            while len(self._buffer) >= 9:
                length = int.from_bytes(self._buffer[:3], "big")
                if len(self._buffer) < 9 + length:
                    break
                received = Frame(
                    self._buffer[3], self._buffer[4], int.from_bytes(self._buffer[5:9], "big") & 0x7FFFFFFF,
                    self._buffer[9:9 + length])
                self._buffer = self._buffer[9 + length:]
                self.received.append(received)
                if predicate(received):
                    return received
        return None

    def goaway(self, timeout: float = TIMEOUT):
        return self.read_until(lambda f: f.type == GOAWAY, timeout)

    def wait_closed(self, timeout: float = TIMEOUT) -> bool:
        """True once the server has closed the connection (end of stream or reset)."""
        self.read_until(lambda f: False, timeout)
        return self.closed

    def resets(self, code=None):
        return [f for f in self.received if f.type == RST_STREAM and (code is None or f.error_code == code)]

    def assert_calmed(self, reason: bytes, code: int = ENHANCE_YOUR_CALM):
        """GOAWAY with `code` whose debug data contains `reason`, then the connection closes."""
        goaway = self.goaway()
        assert goaway is not None, f"no GOAWAY; received {self.received[-5:]}"
        assert goaway.error_code == code, f"GOAWAY {goaway.error_code:#x} {goaway.debug_data!r}"
        assert reason in goaway.debug_data, goaway.debug_data
        assert self.wait_closed(), "the server kept the connection open after GOAWAY"
        return goaway


class WellBehavedClient:
    """A python-h2 client connection that makes ordinary health checks."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())

    def __enter__(self):
        return self

    def __exit__(self, *_):
        self.sock.close()

    def health_check(self):
        """Health/Check for the whole server; returns (response headers, body, trailers)."""
        stream_id = self.conn.get_next_available_stream_id()
        self.conn.send_headers(stream_id, request_headers())
        self.conn.send_data(stream_id, EMPTY_GRPC_MESSAGE, end_stream=True)
        self.sock.sendall(self.conn.data_to_send())
        headers, body, trailers = None, b"", None
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            data = self.sock.recv(1 << 16)
            assert data, "the server closed the well-behaved connection"
            for event in self.conn.receive_data(data):
                if getattr(event, "stream_id", stream_id) != stream_id:
                    continue
                if isinstance(event, h2.events.ResponseReceived):
                    headers = dict(event.headers)
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data
                    self.conn.acknowledge_received_data(event.flow_controlled_length, stream_id)
                elif isinstance(event, h2.events.TrailersReceived):
                    trailers = dict(event.headers)
                elif isinstance(event, (h2.events.StreamReset, h2.events.ConnectionTerminated)):
                    raise AssertionError(f"well-behaved connection: {event}")
                elif isinstance(event, h2.events.StreamEnded):
                    self.sock.sendall(self.conn.data_to_send())
                    return headers, body, trailers
            self.sock.sendall(self.conn.data_to_send())
        raise AssertionError("Health/Check did not finish in time")

    def assert_serving(self):
        headers, body, trailers = self.health_check()
        assert headers[":status"] == "200"
        assert trailers["grpc-status"] == "0", trailers
        assert body == b"\x00\x00\x00\x00\x02\x08\x01"  # HealthCheckResponse{status: SERVING}


def assert_gateway_serving(gateway):
    assert gateway.process.poll() is None, f"the gateway died:\n{gateway.log_text()[-3000:]}"
    with grpc.insecure_channel(gateway.plaintext_target) as channel:
        response = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT)
    assert response.status == health_pb2.HealthCheckResponse.SERVING


@pytest.fixture
def port(gateway):
    yield gateway.plaintext_port
    assert_gateway_serving(gateway)


# 1. SETTINGS_MAX_CONCURRENT_STREAMS


def test_max_concurrent_streams_refuses_the_101st_stream_before_settings_ack(port):
    with WellBehavedClient(port) as good, RawPeer(port, ack_settings=False) as bad:
        assert bad.server_settings[SETTINGS_MAX_CONCURRENT_STREAMS] == 100
        good.assert_serving()
        # 101 requests that stay open (no END_STREAM): until the client acknowledges the
        # SETTINGS, nghttp2 refuses the stream over the limit with RST_STREAM REFUSED_STREAM.
        bad.send(b"".join(frame(HEADERS, END_HEADERS, 1 + 2 * i, bad.header_block(request_headers())) for i in range(101)))
        refused = bad.read_until(lambda f: f.type == RST_STREAM)
        assert refused is not None and refused.stream_id == 201 and refused.error_code == REFUSED_STREAM
        # The 100 admitted streams go on: finish the first one.
        bad.send(frame(DATA, END_STREAM, 1, EMPTY_GRPC_MESSAGE))
        trailers = bad.read_until(lambda f: f.type == HEADERS and f.stream_id == 1 and f.flags & END_STREAM)
        assert trailers is not None
        assert bad.resets() == [refused]
        assert bad.goaway(timeout=0.2) is None
        good.assert_serving()


def test_max_concurrent_streams_exceeded_after_settings_ack_is_a_connection_error(port):
    with WellBehavedClient(port) as good, RawPeer(port) as bad:
        bad.send(b"".join(frame(HEADERS, END_HEADERS, 1 + 2 * i, bad.header_block(request_headers())) for i in range(101)))
        # Once the limit is acknowledged, nghttp2 treats stream 101 as a PROTOCOL_ERROR.
        goaway = bad.assert_calmed(b"max concurrent streams exceeded", code=PROTOCOL_ERROR)
        assert goaway.last_stream_id == 199
        good.assert_serving()


# 2. Header lists: max_header_list_size and the HPACK bomb


def test_header_list_over_16_kib_resets_the_stream_only(port):
    with WellBehavedClient(port) as good, RawPeer(port) as bad:
        assert bad.server_settings[SETTINGS_MAX_HEADER_LIST_SIZE] == 16_384
        block = bad.header_block(request_headers(extra=[("x-big", "a" * 17_000)]))
        assert len(block) > 9_000  # Huffman-coded: the list is over the limit, not the frames
        bad.send(frame(HEADERS, 0, 1, block[:9_000]) + frame(CONTINUATION, END_HEADERS, 1, block[9_000:]))
        reset = bad.read_until(lambda f: f.type == RST_STREAM)
        # nghttp2 answers a refused header block with INTERNAL_ERROR.
        assert reset is not None and reset.stream_id == 1 and reset.error_code == INTERNAL_ERROR
        # The connection is fine: a normal request on it works.
        bad.send(frame(HEADERS, END_HEADERS, 3, bad.header_block(request_headers())) + frame(DATA, END_STREAM, 3, EMPTY_GRPC_MESSAGE))
        assert bad.read_until(lambda f: f.type == HEADERS and f.stream_id == 3 and f.flags & END_STREAM) is not None
        good.assert_serving()


def test_hpack_bomb_is_refused_and_repeating_it_gets_enhance_your_calm(port):
    with WellBehavedClient(port) as good, RawPeer(port) as bad:
        # One 1000-byte header enters the HPACK dynamic table (index 62, the newest entry),
        # then 1000 one-byte references to it: ~1 MB of header list from ~1 KB of wire.
        bomb = [("x-bomb", "b" * 1000)]
        reference = bytes([0x80 | 62])
        stream_id, refused = 1, 0
        for _ in range(10):
            batch = []
            for _ in range(25):
                batch.append(frame(HEADERS, END_HEADERS, stream_id, bad.header_block(request_headers(extra=bomb)) + reference * 1000))
                stream_id += 2
            if not bad.send(b"".join(batch)):
                break
            last = stream_id - 2
            if bad.read_until(lambda f: f.type == GOAWAY or (f.type == RST_STREAM and f.stream_id == last)) is None:
                break
            if any(f.type == GOAWAY for f in bad.received):
                break
            refused = len(bad.resets(INTERNAL_ERROR))
        # The first bombs are refused one stream at a time...
        assert refused >= 75, refused
        assert all(f.error_code == INTERNAL_ERROR for f in bad.resets())
        # ...and each costs two glitches (the oversized list and the reset it provokes), so
        # about the 100th exhausts the burst of 200.
        bad.assert_calmed(b"too many no-op or invalid frames")
        good.assert_serving()


# 3. Rapid Reset (CVE-2023-44487)


def test_rapid_reset_gets_enhance_your_calm(port):
    with WellBehavedClient(port) as good, RawPeer(port) as bad:
        good.assert_serving()
        attack = b"".join(
            frame(HEADERS, END_HEADERS, sid, bad.header_block(request_headers())) + frame(RST_STREAM, 0, sid, CANCEL.to_bytes(4, "big"))
            for sid in range(1, 4001, 2))
        bad.send(attack)
        goaway = bad.assert_calmed(b"too many stream resets (Rapid Reset)")
        assert goaway.last_stream_id < 1000  # cut off near the burst of 200, not after 2000 streams
        good.assert_serving()


# 4. CONTINUATION flood (CVE-2024-27316)


def test_eight_continuations_are_accepted(port):
    with RawPeer(port) as peer:
        block = peer.header_block(request_headers())
        # HEADERS with the first 4 bytes, then 8 CONTINUATIONs: 7 of 4 bytes and the rest.
        continuations = [block[4 + 4 * i:8 + 4 * i] for i in range(7)] + [block[32:]]
        frames = frame(HEADERS, 0, 1, block[:4]) + b"".join(frame(CONTINUATION, 0, 1, piece) for piece in continuations[:-1])
        frames += frame(CONTINUATION, END_HEADERS, 1, continuations[-1])
        peer.send(frames + frame(DATA, END_STREAM, 1, EMPTY_GRPC_MESSAGE))
        assert peer.read_until(lambda f: f.type == HEADERS and f.flags & END_STREAM) is not None


def test_continuation_flood_gets_enhance_your_calm(port):
    with WellBehavedClient(port) as good, RawPeer(port) as bad:
        block = bad.header_block(request_headers())
        bad.send(frame(HEADERS, 0, 1, block[:4]))
        bad.flood(frame(CONTINUATION, 0, 1, b""), 100)
        # nghttp2 (max_continuations 8) fails the session with NGHTTP2_ERR_TOO_MANY_CONTINUATIONS
        # and queues no GOAWAY of its own; the handler answers ENHANCE_YOUR_CALM.
        bad.assert_calmed(b"too many CONTINUATION frames")
        good.assert_serving()


# 5. Empty DATA frames


def test_empty_data_flood_gets_enhance_your_calm(port):
    with WellBehavedClient(port) as good, RawPeer(port) as bad:
        bad.send(frame(HEADERS, END_HEADERS, 1, bad.header_block(request_headers())))
        bad.flood(frame(DATA, 0, 1, b""), 2000)
        bad.assert_calmed(b"empty DATA frame")
        good.assert_serving()


def test_empty_data_flood_on_a_stream_the_server_reset_gets_enhance_your_calm(port):
    # nghttp2 drops DATA for a stream it has reset without telling the application; the
    # handler still sees every frame header.
    with WellBehavedClient(port) as good, RawPeer(port) as bad:
        bad.send(frame(HEADERS, END_HEADERS, 1, bad.header_block(request_headers(extra=[("x-big", "a" * 17_000)]))))
        assert bad.read_until(lambda f: f.type == RST_STREAM) is not None
        bad.flood(frame(DATA, 0, 1, b""), 2000)
        bad.assert_calmed(b"empty DATA frame")
        good.assert_serving()


# 6. Zero-increment WINDOW_UPDATE


def test_zero_window_update_on_a_stream_is_a_connection_protocol_error(port):
    # nghttp2 1.52 answers a zero increment, on a stream or the connection, with GOAWAY
    # PROTOCOL_ERROR at once (RFC 9113 allows a stream error; nghttp2 is stricter), so a flood
    # never gets as far as the glitch limiter.
    with WellBehavedClient(port) as good, RawPeer(port) as bad:
        bad.send(frame(HEADERS, END_HEADERS, 1, bad.header_block(request_headers())))
        bad.flood(frame(WINDOW_UPDATE, 0, 1, (0).to_bytes(4, "big")), 500)
        bad.assert_calmed(b"WINDOW_UPDATE: window_size_increment == 0", code=PROTOCOL_ERROR)
        assert bad.resets() == []
        good.assert_serving()


# 7. PRIORITY and unknown frame types


def test_a_few_priority_and_unknown_frames_are_tolerated(port):
    with RawPeer(port) as peer:
        peer.send(frame(PRIORITY, 0, 3, struct.pack(">IB", 0, 15)) * 50 + frame(0x42, 0, 0, b"ext") * 50)
        peer.send(frame(HEADERS, END_HEADERS, 1, peer.header_block(request_headers())) + frame(DATA, END_STREAM, 1, EMPTY_GRPC_MESSAGE))
        assert peer.read_until(lambda f: f.type == HEADERS and f.flags & END_STREAM) is not None
        assert peer.goaway(timeout=0.2) is None


def test_priority_flood_gets_enhance_your_calm(port):
    with WellBehavedClient(port) as good, RawPeer(port) as bad:
        bad.flood(frame(PRIORITY, 0, 3, struct.pack(">IB", 0, 15)), 2000)
        bad.assert_calmed(b"PRIORITY frame")
        good.assert_serving()


@pytest.mark.parametrize("frame_type", [0x0A, 0x10, 0x42, 0xFF], ids=["altsvc", "priority_update", "0x42", "0xff"])
def test_unknown_frame_type_flood_gets_enhance_your_calm(port, frame_type):
    with WellBehavedClient(port) as good, RawPeer(port) as bad:
        bad.flood(frame(frame_type, 0, 0, b"ext"), 2000)
        bad.assert_calmed(b"unknown frame type")
        good.assert_serving()


# 8. MadeYouReset (CVE-2025-8671): frames that make the server reset streams


MADE_YOU_RESET = {
    # The increment overflows the stream's send window: RST_STREAM FLOW_CONTROL_ERROR.
    "window_update_overflow": (FLOW_CONTROL_ERROR, lambda peer, sid: (
        frame(HEADERS, END_HEADERS, sid, peer.header_block(request_headers()))
        + frame(WINDOW_UPDATE, 0, sid, (0x7FFFFFFF).to_bytes(4, "big")))),
    # A connection-specific header is malformed in HTTP/2: RST_STREAM PROTOCOL_ERROR.
    "forbidden_header": (PROTOCOL_ERROR, lambda peer, sid: frame(
        HEADERS, END_HEADERS, sid, peer.header_block(request_headers(extra=[("connection", "keep-alive")])))),
}


@pytest.mark.parametrize("vector", sorted(MADE_YOU_RESET))
def test_made_you_reset_gets_enhance_your_calm(port, vector):
    code, provoke = MADE_YOU_RESET[vector]
    with WellBehavedClient(port) as good, RawPeer(port) as bad:
        sid = 1
        for _ in range(16):  # batches of 25 keep fewer than 100 streams open at a time
            batch = b"".join(provoke(bad, sid + 2 * i) for i in range(25))
            last = sid + 48
            sid += 50
            if not bad.send(batch):
                break
            found = bad.read_until(lambda f: f.type == GOAWAY or (f.type == RST_STREAM and f.stream_id == last))
            if found is None or found.type == GOAWAY:
                break
        provoked = bad.resets(code)
        assert len(provoked) >= 75, len(provoked)
        assert len(provoked) == len(bad.resets())
        # Each costs two glitches (nghttp2's invalid-frame report and our reset).
        bad.assert_calmed(b"too many no-op or invalid frames")
        good.assert_serving()


def test_data_on_a_half_closed_stream_is_a_connection_error(port):
    # The other MadeYouReset vector, DATA after END_STREAM: nghttp2 makes it a connection
    # error STREAM_CLOSED at the first frame, so there is nothing to repeat.
    with WellBehavedClient(port) as good, RawPeer(port) as bad:
        bad.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, bad.header_block(request_headers(path="/switchyard.diagnostics.Echo/Unary"))))
        bad.send(frame(DATA, 0, 1, EMPTY_GRPC_MESSAGE))
        bad.assert_calmed(b"DATA: stream", code=STREAM_CLOSED)
        good.assert_serving()


# 9. PING and SETTINGS floods; keepalive enforcement


def test_third_ping_too_soon_gets_too_many_pings(port):
    with WellBehavedClient(port) as good, RawPeer(port) as bad:
        # The first PING sets the clock; the next two are strikes 1 and 2, tolerated.
        for i in range(3):
            bad.send(frame(PING, 0, 0, i.to_bytes(8, "big")))
            ack = bad.read_until(lambda f: f.type == PING and f.flags & ACK and f.payload == i.to_bytes(8, "big"))
            assert ack is not None
        assert bad.goaway(timeout=0.2) is None
        # The third one too soon (strike 3 > 2).
        bad.send(frame(PING, 0, 0, (3).to_bytes(8, "big")))
        goaway = bad.assert_calmed(b"too_many_pings")
        assert goaway.debug_data == b"too_many_pings"
        good.assert_serving()


def test_ping_flood_without_reading_is_closed_and_memory_stays_bounded(gateway, port):
    pid = gateway.process.pid
    before = vm_rss_kib(pid)
    with WellBehavedClient(port) as good, RawPeer(port) as bad:
        bad.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        bad.flood(frame(PING, 0, 0, b"12345678"), 200_000, chunk=5000)  # ~3.4 MB, never read
        assert vm_rss_kib(pid) - before < 100 * 1024
        bad.assert_calmed(b"too_many_pings")
        good.assert_serving()
    assert vm_rss_kib(pid) - before < 100 * 1024


def test_settings_flood_without_reading_ends_at_max_outbound_ack(gateway, port):
    # SETTINGS have no strike rule: nghttp2's max_outbound_ack (1000 acknowledgements queued,
    # not yet sent) ends the connection, and the handler answers ENHANCE_YOUR_CALM.
    pid = gateway.process.pid
    before = vm_rss_kib(pid)
    with WellBehavedClient(port) as good, RawPeer(port) as bad:
        bad.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        bad.flood(frame(SETTINGS, 0, 0), 200_000, chunk=5000)  # 1.8 MB, never read
        assert vm_rss_kib(pid) - before < 100 * 1024
        bad.assert_calmed(b"too many SETTINGS or PING frames left unacknowledged")
        good.assert_serving()
    assert vm_rss_kib(pid) - before < 100 * 1024


# 10. Slowloris: connections that never finish the preface


def test_connections_stuck_in_the_preface_do_not_starve_others(port):
    peers = []
    try:
        for i in range(50):
            peer = RawPeer(port, preface=False)
            peer.send(PREFACE[: i % len(PREFACE)])
            peers.append(peer)
        with WellBehavedClient(port) as good:
            good.assert_serving()
    finally:
        for peer in peers:
            peer.sock.close()


def test_connection_that_never_finishes_the_preface_is_closed(port):
    # The gateway fixture runs with --handshake-timeout 1500ms.
    with RawPeer(port, preface=False) as peer:
        peer.send(PREFACE[:10])
        assert peer.wait_closed(timeout=3.0)
