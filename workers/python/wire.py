"""A small protobuf wire codec for the messages a Switchyard worker reads and writes.

Only what the worker protocol needs: the worker messages of Protos/switchyard/worker.proto, and
inference.ModelInferRequest / ModelInferResponse / ModelConfig of Protos/inference/. Unknown
fields are skipped, as protobuf's rules say; repeated scalars are read packed or not.
Standard library only.
"""

import struct

VARINT, FIXED64, LENGTH, FIXED32 = 0, 1, 2, 5


class WireError(ValueError):
    """Bytes that are not a valid encoding of the expected message."""


# ---------------------------------------------------------------- reading

def read_varint(data, pos):
    result = 0
    shift = 0
    while True:
        if pos >= len(data):
            raise WireError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise WireError("varint longer than 10 bytes")


def fields(data):
    """Yields (field number, wire type, value) of a message: an int for varints and fixed
    fields (raw bits), a memoryview for length-delimited ones."""
    data = memoryview(data)
    pos = 0
    end = len(data)
    while pos < end:
        key, pos = read_varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0")
        if wire == VARINT:
            value, pos = read_varint(data, pos)
        elif wire == FIXED64:
            if pos + 8 > end:
                raise WireError("truncated fixed64")
            value = int.from_bytes(data[pos:pos + 8], "little")
            pos += 8
        elif wire == LENGTH:
            size, pos = read_varint(data, pos)
            if pos + size > end:
                raise WireError(f"field {number} claims {size} bytes, {end - pos} remain")
            value = data[pos:pos + size]
            pos += size
        elif wire == FIXED32:
            if pos + 4 > end:
                raise WireError("truncated fixed32")
            value = int.from_bytes(data[pos:pos + 4], "little")
            pos += 4
        else:
            raise WireError(f"wire type {wire} of field {number} is not supported")
        yield number, wire, value


def signed64(value):
    return value - (1 << 64) if value >= 1 << 63 else value


def signed32(value):
    value &= 0xFFFFFFFF
    return value - (1 << 32) if value >= 1 << 31 else value


def text(value):
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError as error:
        raise WireError(f"a string field is not UTF-8: {error}") from None


def packed_varints(wire, value):
    """The values of a repeated varint field, packed (LENGTH) or one per occurrence."""
    if wire == VARINT:
        return [value]
    if wire != LENGTH:
        raise WireError("a repeated integer field has the wrong wire type")
    out = []
    pos = 0
    while pos < len(value):
        item, pos = read_varint(value, pos)
        out.append(item)
    return out


# ---------------------------------------------------------------- writing

def varint(value):
    if value < 0:
        value += 1 << 64
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def key(number, wire):
    return varint((number << 3) | wire)


def f_varint(number, value):
    """A varint field; omitted when 0 (proto3 default)."""
    return key(number, VARINT) + varint(int(value)) if value else b""


def f_bytes(number, value, always=False):
    """A length-delimited field (bytes, string or message); omitted when empty unless `always`."""
    if isinstance(value, str):
        value = value.encode("utf-8")
    if not value and not always:
        return b""
    return key(number, LENGTH) + varint(len(value)) + bytes(value)


def f_packed(number, values):
    """A packed repeated varint field (int32/int64/uint64 …)."""
    if not values:
        return b""
    body = b"".join(varint(int(v)) for v in values)
    return key(number, LENGTH) + varint(len(body)) + body


# ---------------------------------------------------------------- the messages

class InferInputTensor:
    __slots__ = ("name", "datatype", "shape", "contents")

    def __init__(self):
        self.name = ""
        self.datatype = ""
        self.shape = []
        self.contents = None  # {field number: [values or bytes chunks]} of InferTensorContents


class ModelInferRequest:
    """inference.ModelInferRequest, with what a worker needs of it."""

    def __init__(self, data):
        self.model_name = ""
        self.model_version = ""
        self.id = ""
        self.inputs = []
        self.requested_outputs = []
        self.raw_input_contents = []
        for number, wire, value in fields(data):
            if number == 1 and wire == LENGTH:
                self.model_name = text(value)
            elif number == 2 and wire == LENGTH:
                self.model_version = text(value)
            elif number == 3 and wire == LENGTH:
                self.id = text(value)
            elif number == 5 and wire == LENGTH:
                self.inputs.append(_input_tensor(value))
            elif number == 6 and wire == LENGTH:
                for n, w, v in fields(value):
                    if n == 1 and w == LENGTH:
                        self.requested_outputs.append(text(v))
            elif number == 7 and wire == LENGTH:
                self.raw_input_contents.append(value)
            elif number in (1, 2, 3, 5, 6, 7):
                raise WireError(f"ModelInferRequest field {number} has wire type {wire}")


def _input_tensor(data):
    tensor = InferInputTensor()
    for number, wire, value in fields(data):
        if number == 1 and wire == LENGTH:
            tensor.name = text(value)
        elif number == 2 and wire == LENGTH:
            tensor.datatype = text(value)
        elif number == 3:
            tensor.shape.extend(signed64(v) for v in packed_varints(wire, value))
        elif number == 5 and wire == LENGTH:
            tensor.contents = _contents(value)
    return tensor


# InferTensorContents: field number -> (struct format of one element, wire type when unpacked)
CONTENTS_FIELDS = {
    1: ("bool", VARINT),
    2: ("int32", VARINT),
    3: ("int64", VARINT),
    4: ("uint32", VARINT),
    5: ("uint64", VARINT),
    6: ("<f", FIXED32),
    7: ("<d", FIXED64),
    8: ("bytes", LENGTH),
}


def _contents(data):
    """InferTensorContents as {field number: [python values]}."""
    out = {}
    for number, wire, value in fields(data):
        kind = CONTENTS_FIELDS.get(number)
        if kind is None:
            continue
        items = out.setdefault(number, [])
        fmt, _ = kind
        if fmt == "bytes":
            items.append(bytes(value))
        elif fmt in ("<f", "<d"):
            size = 4 if fmt == "<f" else 8
            if wire == LENGTH:
                if len(value) % size:
                    raise WireError(f"packed field {number} is not a whole number of elements")
                items.extend(x[0] for x in struct.iter_unpack(fmt, value))
            elif (wire == FIXED32 and size == 4) or (wire == FIXED64 and size == 8):
                items.append(struct.unpack(fmt, value.to_bytes(size, "little"))[0])
            else:
                raise WireError(f"contents field {number} has wire type {wire}")
        else:
            raw = packed_varints(wire, value)
            if fmt == "int32":
                items.extend(signed32(v) for v in raw)
            elif fmt == "int64":
                items.extend(signed64(v) for v in raw)
            elif fmt == "bool":
                items.extend(bool(v) for v in raw)
            else:
                items.extend(raw)
    return out


def model_infer_response(model_name, model_version, request_id, outputs):
    """inference.ModelInferResponse; `outputs`: [(name, datatype, shape, raw bytes)]; the
    tensors travel in raw_output_contents, one per output, in order."""
    parts = [f_bytes(1, model_name), f_bytes(2, model_version), f_bytes(3, request_id)]
    for name, datatype, shape, _ in outputs:
        parts.append(f_bytes(5, f_bytes(1, name) + f_bytes(2, datatype) + f_packed(3, shape), always=True))
    for _, _, _, raw in outputs:
        parts.append(f_bytes(6, raw, always=True))
    return b"".join(parts)


def model_config(name, platform, max_batch_size, inputs, outputs, max_queue_delay_us=None):
    """inference.ModelConfig; inputs and outputs: [(name, TYPE_* number, dims)]."""
    parts = [f_bytes(1, name), f_bytes(2, platform), f_varint(4, max_batch_size)]
    for tensor_name, data_type, dims in inputs:
        parts.append(f_bytes(5, f_bytes(1, tensor_name) + f_varint(2, data_type) + f_packed(4, dims), always=True))
    for tensor_name, data_type, dims in outputs:
        parts.append(f_bytes(6, f_bytes(1, tensor_name) + f_varint(2, data_type) + f_packed(3, dims), always=True))
    if max_batch_size > 0 and max_queue_delay_us is not None:
        parts.append(f_bytes(11, f_varint(2, max_queue_delay_us), always=True))
    return b"".join(parts)


def hello(pid, worker_id, model_name, versions, max_batch_size, config):
    """switchyard.worker.Hello with one ModelDescriptor."""
    descriptor = (f_bytes(1, model_name) + b"".join(f_bytes(2, v) for v in versions)
                  + f_varint(3, max_batch_size) + f_bytes(5, config, always=True))
    return f_varint(1, 1) + f_varint(2, pid) + f_bytes(3, descriptor, always=True) + f_bytes(4, worker_id)


class InferRequest:
    """switchyard.worker.InferRequest."""

    def __init__(self, data):
        self.model_name = ""
        self.model_version = ""
        self.request = b""
        self.deadline_unix_nanos = 0
        self.traceparent = ""
        self.request_id = ""
        for number, wire, value in fields(data):
            if number == 1 and wire == LENGTH:
                self.model_name = text(value)
            elif number == 2 and wire == LENGTH:
                self.model_version = text(value)
            elif number == 3 and wire == LENGTH:
                self.request = value
            elif number == 4 and wire == VARINT:
                self.deadline_unix_nanos = signed64(value)
            elif number == 5 and wire == LENGTH:
                self.traceparent = text(value)
            elif number == 7 and wire == LENGTH:
                self.request_id = text(value)


def status(code, message):
    """switchyard.worker.Status."""
    return f_varint(1, code) + f_bytes(2, message)


def infer_response(response=b"", code=0, message="", final=True, timing=None):
    """switchyard.worker.InferResponse; `timing`: (queue, input, infer, output ns, counts_execution)."""
    body = f_bytes(1, response)
    if code:
        body += f_bytes(2, status(code, message), always=True)
    body += f_varint(3, 1 if final else 0)
    if timing is not None:
        queue, compute_input, compute_infer, compute_output, counts = timing
        body += f_bytes(4, f_varint(1, queue) + f_varint(2, compute_input) + f_varint(3, compute_infer)
                        + f_varint(4, compute_output) + f_varint(5, 1 if counts else 0), always=True)
    return body


def ping(data):
    """switchyard.worker.Ping as (nonce, sent_unix_nanos)."""
    nonce = sent = 0
    for number, wire, value in fields(data):
        if number == 1 and wire == VARINT:
            nonce = value
        elif number == 2 and wire == VARINT:
            sent = signed64(value)
    return nonce, sent


def pong(nonce, sent, in_flight, queued):
    """switchyard.worker.Pong."""
    return f_varint(1, nonce) + f_varint(2, sent) + f_varint(3, in_flight) + f_varint(4, queued)
