"""A grpcio server for the Swift client's interop tests (Tests/H2TransportTests/GRPCClientTests.swift).

It serves `switchyard.diagnostics.Echo` with generic handlers (payloads are opaque bytes) and
`grpc.health.v1.Health` from grpcio-health-checking, the same contract as Switchyard's own echo
diagnostic service:

- `Unary` answers with the request bytes. Request metadata named `echo-*` comes back as response
  headers and, renamed `echo-trailer-*`, as trailers; `x-echo-delay-ms` waits before answering
  (ending early if the call is cancelled); `x-echo-status` (a code number) and `x-echo-message`
  end the call with that status instead. Response headers also say what the server saw:
  `x-seen-user-agent`, `x-seen-timeout-ms` (time remaining at arrival, when there is a deadline).
- `Stream` (bidirectional) echoes every message as it arrives, with the same headers and trailers.

Usage: grpcio_echo_server.py PORT (0 picks a free one). Prints "READY <port>" on stdout once it
listens, and stops when its stdin closes, so it never outlives the test that started it.
"""
import sys
import time
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

SERVICE = "switchyard.diagnostics.Echo"


def _echo_metadata(context):
    headers = [(key, value) for key, value in context.invocation_metadata() if key.startswith("echo-")]
    trailers = [("echo-trailer-" + key[len("echo-"):], value) for key, value in headers]
    return headers, trailers


def _seen(context):
    seen = []
    for key, value in context.invocation_metadata():
        if key == "user-agent":
            seen.append(("x-seen-user-agent", value))
    remaining = context.time_remaining()
    if remaining is not None:
        seen.append(("x-seen-timeout-ms", str(int(remaining * 1000))))
    return seen


def _first(context, name):
    for key, value in context.invocation_metadata():
        if key == name:
            return value
    return None


def unary(request, context):
    headers, trailers = _echo_metadata(context)
    delay = int(_first(context, "x-echo-delay-ms") or 0)
    if delay:
        until = time.monotonic() + delay / 1000
        while time.monotonic() < until and context.is_active():
            time.sleep(0.005)
        if not context.is_active():
            return b""
    code = _first(context, "x-echo-status")
    if code is not None:
        status = next(candidate for candidate in grpc.StatusCode if candidate.value[0] == int(code))
        context.set_trailing_metadata(trailers)
        context.abort(status, _first(context, "x-echo-message") or "")
    context.send_initial_metadata(headers + _seen(context))
    context.set_trailing_metadata(trailers)
    return request


def stream(requests, context):
    headers, trailers = _echo_metadata(context)
    context.send_initial_metadata(headers + _seen(context))
    for request in requests:
        yield request
    context.set_trailing_metadata(trailers)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=16),
        options=[("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)],
    )
    server.add_generic_rpc_handlers((
        grpc.method_handlers_generic_handler(SERVICE, {
            "Unary": grpc.unary_unary_rpc_method_handler(unary),
            "Stream": grpc.stream_stream_rpc_method_handler(stream),
        }),
    ))
    health_servicer = health.HealthServicer()
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_servicer.set(SERVICE, health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print(f"READY {bound}", flush=True)
    sys.stdin.read()  # until the test closes our stdin (or exits)
    server.stop(grace=0).wait()


if __name__ == "__main__":
    main()
