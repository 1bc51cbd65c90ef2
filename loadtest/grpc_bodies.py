#!/usr/bin/env python3
"""Request bodies and response checks for loadtest/inference-path.sh.

  grpc_bodies.py body FILE [K] [ROWS]  K (default 1) gRPC-framed ModelInferRequests for `simple`
                                      (INPUT0 = 0..15, INPUT1 = 1, INT32 [1,16], raw_input_contents),
                                      concatenated: K = 1 is a unary ModelInfer body, K > 1 a
                                      ModelStreamInfer body. ROWS (default 1) makes the tensors
                                      [ROWS,16] (each row INPUT0 = 0..15): 64 bytes per row and input
  grpc_bodies.py check FILE K STREAM [ROWS]
                                      FILE is the response body (gRPC frames) of one call with
                                      that body: checks K messages that decode (ModelInferResponse,
                                      or ModelStreamInferResponse when STREAM is 1) with OUTPUT0 =
                                      INPUT0 + INPUT1 and OUTPUT1 = INPUT0 - INPUT1
  grpc_bodies.py response FILE [ROWS] [K]
                                      the answer to `body FILE K ROWS`, built by hand: one
                                      gRPC-framed ModelInferResponse (K = 0, the default) or K
                                      ModelStreamInferResponses (what a static upstream serves)
  grpc_bodies.py wait-ready HOST:PORT waits (up to 50 s) until model `simple` is ready (h2c)
  grpc_bodies.py stats                reads host:port lines on stdin and answers each with
                                      "success_count fail_count" of model `simple` from that
                                      gateway's ModelStatistics (h2c); one process for a whole run

The body is built by hand (protobuf wire format, standard library only) so that it does not
depend on the implementation under test; the checks decode with tritonclient's service_pb2.
"""
import struct
import sys

INPUT0 = list(range(16))
INPUT1 = [1] * 16


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number: int, wire_type: int, payload: bytes) -> bytes:
    key = varint(number << 3 | wire_type)
    if wire_type == 2:
        return key + varint(len(payload)) + payload
    return key + payload


def infer_request(rows: int = 1) -> bytes:
    """ModelInferRequest {model_name: "simple", inputs: [INPUT0, INPUT1 INT32 [rows,16]], raw_input_contents}."""
    message = field(1, 2, b"simple")
    for name in (b"INPUT0", b"INPUT1"):
        shape = varint(rows) + varint(16)  # packed repeated int64
        tensor = field(1, 2, name) + field(2, 2, b"INT32") + field(3, 2, shape)
        message += field(5, 2, tensor)
    for values in (INPUT0, INPUT1):
        message += field(7, 2, struct.pack(f"<{16 * rows}i", *(values * rows)))
    return message


def infer_response(rows: int = 1) -> bytes:
    """The ModelInferResponse that `simple` gives to infer_request(rows): model_name, model_version
    "1", outputs OUTPUT0 (sum) and OUTPUT1 (difference), INT32 [rows,16], raw_output_contents."""
    message = field(1, 2, b"simple") + field(2, 2, b"1")
    shape = varint(rows) + varint(16)
    for name in (b"OUTPUT0", b"OUTPUT1"):
        message += field(5, 2, field(1, 2, name) + field(2, 2, b"INT32") + field(3, 2, shape))
    sums = [a + b for a, b in zip(INPUT0, INPUT1)] * rows
    differences = [a - b for a, b in zip(INPUT0, INPUT1)] * rows
    for values in (sums, differences):
        message += field(6, 2, struct.pack(f"<{16 * rows}i", *values))
    return message


def grpc_frame(message: bytes) -> bytes:
    return b"\x00" + struct.pack(">I", len(message)) + message


def frames(data: bytes):
    offset = 0
    while offset < len(data):
        if len(data) - offset < 5:
            raise ValueError(f"truncated gRPC frame header at byte {offset}")
        flag, length = data[offset], struct.unpack(">I", data[offset + 1:offset + 5])[0]
        if flag != 0:
            raise ValueError(f"compressed frame (flag {flag}) at byte {offset}")
        payload = data[offset + 5:offset + 5 + length]
        if len(payload) != length:
            raise ValueError(f"truncated gRPC message at byte {offset}")
        yield payload
        offset += 5 + length


def check_response(response, rows: int = 1) -> None:
    outputs = {o.name: i for i, o in enumerate(response.outputs)}
    if set(outputs) != {"OUTPUT0", "OUTPUT1"}:
        raise ValueError(f"outputs {sorted(outputs)}")
    if rows == 0:
        # An empty batch: empty outputs (or none in raw_output_contents at all).
        if any(response.raw_output_contents):
            raise ValueError("non-empty outputs for an empty batch")
        return
    got0 = struct.unpack(f"<{16 * rows}i", response.raw_output_contents[outputs["OUTPUT0"]])
    got1 = struct.unpack(f"<{16 * rows}i", response.raw_output_contents[outputs["OUTPUT1"]])
    if list(got0) != [a + b for a, b in zip(INPUT0, INPUT1)] * rows or list(got1) != [a - b for a, b in zip(INPUT0, INPUT1)] * rows:
        raise ValueError(f"wrong sums/differences: {got0[:16]} {got1[:16]}")


def check(path: str, count: int, stream: bool, rows: int = 1) -> None:
    from tritonclient.grpc import service_pb2

    with open(path, "rb") as f:
        messages = list(frames(f.read()))
    if len(messages) != count:
        raise SystemExit(f"{path}: {len(messages)} response messages, expected {count}")
    for payload in messages:
        if stream:
            reply = service_pb2.ModelStreamInferResponse.FromString(payload)
            if reply.error_message:
                raise SystemExit(f"{path}: stream error: {reply.error_message}")
            check_response(reply.infer_response, rows)
        else:
            check_response(service_pb2.ModelInferResponse.FromString(payload), rows)
    print(f"{path}: {count} {'stream ' if stream else ''}response message(s) decode, OUTPUT0/OUTPUT1 correct")


def stats() -> None:
    import tritonclient.grpc as triton

    clients = {}
    for line in sys.stdin:
        address = line.strip()
        if address not in clients:
            clients[address] = triton.InferenceServerClient(address)
        s = clients[address].get_inference_statistics("simple").model_stats[0].inference_stats
        print(s.success.count, s.fail.count, flush=True)


def wait_ready(address: str) -> None:
    import time

    import tritonclient.grpc as triton

    client = triton.InferenceServerClient(address)
    for _ in range(500):
        try:
            if client.is_model_ready("simple"):
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise SystemExit(f"model simple not ready at {address}")


def main() -> None:
    command = sys.argv[1]
    if command == "body":
        k = int(sys.argv[3]) if len(sys.argv) > 3 else 1
        rows = int(sys.argv[4]) if len(sys.argv) > 4 else 1
        with open(sys.argv[2], "wb") as f:
            f.write(grpc_frame(infer_request(rows)) * k)
    elif command == "check":
        check(sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1", int(sys.argv[5]) if len(sys.argv) > 5 else 1)
    elif command == "response":
        rows = int(sys.argv[3]) if len(sys.argv) > 3 else 1
        k = int(sys.argv[4]) if len(sys.argv) > 4 else 0
        reply = infer_response(rows)
        with open(sys.argv[2], "wb") as f:
            f.write(grpc_frame(reply) if k == 0 else grpc_frame(field(2, 2, reply)) * k)
    elif command == "wait-ready":
        wait_ready(sys.argv[2])
    elif command == "stats":
        stats()
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
