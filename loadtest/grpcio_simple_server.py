#!/usr/bin/env python3
"""A grpcio server of the built-in `simple` model, the Python baseline of loadtest/suite.sh.

It serves `inference.GRPCInferenceService/ModelInfer` and `/ModelStreamInfer` (bidirectional)
with grpcio's generic handlers: requests and responses are raw bytes, decoded and encoded here by
hand (protobuf wire format), so nothing is generated with protoc at test time. The model is
Triton's `simple`: INT32 INPUT0 and INPUT1 of shape [B,16] in raw_input_contents → OUTPUT0 =
INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1 (two's-complement wrap-around, as numpy's int32), the
answer byte for byte what `loadtest/grpc_bodies.py response` builds (and what Switchyard sends).
A request it cannot serve ends with INVALID_ARGUMENT (unary) or an error_message (stream).

usage: grpcio_simple_server.py PORT [--tls CERT KEY] [--threads N]
Prints "READY <port>" on stdout once it listens; stops on SIGTERM or SIGINT.
"""
import signal
import sys
import threading
from concurrent import futures

import grpc
import numpy as np

import grpc_bodies  # beside this file: the wire-format encoder the suite's request bodies use
from grpc_bodies import varint

SERVICE = "inference.GRPCInferenceService"


def read_varint(data: bytes, offset: int):
    result = shift = 0
    while True:
        if offset >= len(data):
            raise ValueError("truncated varint")
        byte = data[offset]
        offset += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, offset
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def fields(data: bytes):
    """Yields (number, wire type, value) of a message: ints for varint/fixed, bytes for length-delimited."""
    offset = 0
    while offset < len(data):
        key, offset = read_varint(data, offset)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, offset = read_varint(data, offset)
        elif wire_type == 2:
            length, offset = read_varint(data, offset)
            value = data[offset:offset + length]
            if len(value) != length:
                raise ValueError("truncated field")
            offset += length
        elif wire_type == 1:
            value, offset = data[offset:offset + 8], offset + 8
        elif wire_type == 5:
            value, offset = data[offset:offset + 4], offset + 4
        else:
            raise ValueError(f"wire type {wire_type}")
        yield number, wire_type, value


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field."""
    return grpc_bodies.field(number, 2, payload)


def infer(request: bytes) -> bytes:
    """ModelInferRequest bytes → ModelInferResponse bytes; ValueError for a request `simple` refuses."""
    model = request_id = b""
    inputs, raw = [], []
    for number, wire_type, value in fields(request):
        if number == 1 and wire_type == 2:
            model = value
        elif number == 3 and wire_type == 2:
            request_id = value
        elif number == 5 and wire_type == 2:
            name = datatype = b""
            shape = []
            for n, w, v in fields(value):
                if n == 1:
                    name = v
                elif n == 2:
                    datatype = v
                elif n == 3 and w == 2:  # packed
                    offset = 0
                    while offset < len(v):
                        dim, offset = read_varint(v, offset)
                        shape.append(dim)
                elif n == 3 and w == 0:
                    shape.append(v)
                elif n == 5:
                    raise ValueError("typed contents are not supported; send raw_input_contents")
            inputs.append((name, datatype, shape))
        elif number == 7 and wire_type == 2:
            raw.append(value)
    if model != b"simple":
        raise ValueError(f"unknown model {model.decode(errors='replace')!r}")
    if [i[0] for i in inputs] != [b"INPUT0", b"INPUT1"] or len(raw) != 2:
        raise ValueError("expected inputs INPUT0 and INPUT1 in raw_input_contents")
    shape = inputs[0][2]
    for name, datatype, s in inputs:
        if datatype != b"INT32" or s != shape or len(s) != 2 or s[1] != 16 or s[0] < 1:
            raise ValueError(f"input {name.decode()}: expected INT32 [B,16], got {datatype.decode()} {s}")
    size = shape[0] * 16 * 4
    if len(raw[0]) != size or len(raw[1]) != size:
        raise ValueError("raw_input_contents do not match the shapes")
    a = np.frombuffer(raw[0], dtype="<i4")
    b = np.frombuffer(raw[1], dtype="<i4")
    packed_shape = varint(shape[0]) + varint(16)
    response = field(1, b"simple") + field(2, b"1")
    if request_id:
        response += field(3, request_id)
    for name in (b"OUTPUT0", b"OUTPUT1"):
        response += field(5, field(1, name) + field(2, b"INT32") + field(3, packed_shape))
    return response + field(6, (a + b).astype("<i4").tobytes()) + field(6, (a - b).astype("<i4").tobytes())


def model_infer(request: bytes, context) -> bytes:
    try:
        return infer(request)
    except ValueError as error:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))


def model_stream_infer(requests, context):
    for request in requests:
        try:
            yield field(2, infer(request))
        except ValueError as error:
            yield field(1, str(error).encode())


def main() -> None:
    args = sys.argv[1:]
    port = int(args.pop(0))
    tls = threads = None
    while args:
        option = args.pop(0)
        if option == "--tls":
            tls = (args.pop(0), args.pop(0))
        elif option == "--threads":
            threads = int(args.pop(0))
        else:
            raise SystemExit(__doc__)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads or 32),
        options=[("grpc.so_reuseport", 0), ("grpc.max_receive_message_length", 16 << 20)],
    )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, {
        "ModelInfer": grpc.unary_unary_rpc_method_handler(model_infer),
        "ModelStreamInfer": grpc.stream_stream_rpc_method_handler(model_stream_infer),
    }),))
    address = f"127.0.0.1:{port}"
    if tls:
        with open(tls[0], "rb") as cert, open(tls[1], "rb") as key:
            credentials = grpc.ssl_server_credentials([(key.read(), cert.read())])
        port = server.add_secure_port(address, credentials)
    else:
        port = server.add_insecure_port(address)
    server.start()
    print(f"READY {port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=None)


if __name__ == "__main__":
    main()
