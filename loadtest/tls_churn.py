#!/usr/bin/env python3
"""TLS connection churn for loadtest/suite.sh: new connections per second, each one a full TLS
handshake (ALPN h2) plus the HTTP/2 connection preface and SETTINGS exchange, then closed.

usage: tls_churn.py HOST PORT SECONDS [--resume] [--threads N]

Each of N threads (default 4) connects, handshakes, sends the client preface and an empty
SETTINGS frame, reads until the server's first frame (its SETTINGS) has arrived, and closes; over
and over for SECONDS. With --resume, every connection after a thread's first offers the session
(TLS 1.3 ticket or TLS 1.2 session) of that thread's previous connection. Certificates are not
verified (the servers use the dev certificates).

Prints one line: "connections=N seconds=S rate=R resumed=K failed=F" (resumed: connections whose
session was resumed; a server that issues no tickets shows 0 with --resume).
"""
import socket
import ssl
import sys
import threading
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def churn(host, port, deadline, resume, counts, lock):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    session = None
    done = resumed = failed = 0
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=10) as raw:
                raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with context.wrap_socket(raw, server_hostname="localhost", session=session if resume else None) as tls:
                    if tls.selected_alpn_protocol() != "h2":
                        raise ConnectionError(f"ALPN {tls.selected_alpn_protocol()!r}")
                    tls.sendall(PREFACE)
                    received = b""
                    while len(received) < 9:  # the server's first frame header (its SETTINGS)
                        chunk = tls.recv(4096)
                        if not chunk:
                            raise ConnectionError("closed before SETTINGS")
                        received += chunk
                    if received[3] != 4:
                        raise ConnectionError(f"first frame type {received[3]}, not SETTINGS")
                    resumed += tls.session_reused
                    if resume:
                        session = tls.session
            done += 1
        except (OSError, ConnectionError):
            failed += 1
            session = None
    with lock:
        counts[0] += done
        counts[1] += resumed
        counts[2] += failed


def main() -> None:
    args = sys.argv[1:]
    if len(args) < 3:
        raise SystemExit(__doc__)
    host, port, seconds = args[0], int(args[1]), float(args[2])
    resume = "--resume" in args
    threads = int(args[args.index("--threads") + 1]) if "--threads" in args else 4
    counts, lock = [0, 0, 0], threading.Lock()
    start = time.monotonic()
    deadline = start + seconds
    workers = [threading.Thread(target=churn, args=(host, port, deadline, resume, counts, lock)) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.monotonic() - start
    print(f"connections={counts[0]} seconds={elapsed:.3f} rate={counts[0] / elapsed:.1f} resumed={counts[1]} failed={counts[2]}")


if __name__ == "__main__":
    main()
