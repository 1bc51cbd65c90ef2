#!/usr/bin/env python3
"""A Switchyard worker in Python: serves one ONNX model through onnxruntime.

The gateway starts it as a command backend (docs/configuration.md, `backend: {command: [...]}`)
and tells it where to listen and what to call itself through SWITCHYARD_* environment
variables; it speaks the worker protocol of docs/worker-protocol.md on that Unix socket:
HELLO (with the model's inputs and outputs read from the ONNX file), INFER_REQUEST batched
with the others queued at the same time (up to max_batch_size rows), PING/PONG, CANCEL, and a
graceful exit on SIGTERM. Needs only onnxruntime and numpy (requirements.txt).

    python3 worker.py --model model.onnx [--max-batch-size 8] [--max-queue-delay-us 0] [--threads 1]

Run by hand (outside the gateway) it takes --socket, --name and --version too.
"""

import argparse
import asyncio
import concurrent.futures
import os
import signal
import struct
import sys
import time

import numpy as np
import onnxruntime as ort

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wire  # noqa: E402

# Frame kinds (Protos/switchyard/worker.proto, FrameKind).
HELLO, INFER_REQUEST, INFER_RESPONSE, STREAM_END, CANCEL, PING, PONG, ERROR, PAUSE, RESUME = range(1, 11)
HEAD = struct.Struct(">IBQ")  # length, kind, request id
MAX_FRAME = 64 * 1024 * 1024 + 4096

# gRPC status codes.
INVALID_ARGUMENT, DEADLINE_EXCEEDED, NOT_FOUND, INTERNAL, UNAVAILABLE = 3, 4, 5, 13, 14

# ONNX element type -> (protocol datatype, ModelConfig TYPE_* number, numpy dtype).
ONNX_TYPES = {
    "tensor(bool)": ("BOOL", 1, np.bool_),
    "tensor(uint8)": ("UINT8", 2, np.uint8),
    "tensor(uint16)": ("UINT16", 3, np.uint16),
    "tensor(uint32)": ("UINT32", 4, np.uint32),
    "tensor(uint64)": ("UINT64", 5, np.uint64),
    "tensor(int8)": ("INT8", 6, np.int8),
    "tensor(int16)": ("INT16", 7, np.int16),
    "tensor(int32)": ("INT32", 8, np.int32),
    "tensor(int64)": ("INT64", 9, np.int64),
    "tensor(float16)": ("FP16", 10, np.float16),
    "tensor(float)": ("FP32", 11, np.float32),
    "tensor(double)": ("FP64", 12, np.float64),
}
# InferTensorContents field that may carry each datatype (when raw_input_contents is not used).
CONTENTS_FIELD = {"BOOL": 1, "INT8": 2, "INT16": 2, "INT32": 2, "INT64": 3, "UINT8": 4, "UINT16": 4,
                  "UINT32": 4, "UINT64": 5, "FP32": 6, "FP64": 7}

DEFAULT_MAX_BATCH_SIZE = 8


class RequestError(Exception):
    """A request that fails with a gRPC status; the message goes to the client as it is."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.message = message


def log(level, message, **metadata):
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".%03dZ" % (int(time.time() * 1000) % 1000)
    extra = "".join(f" {k}={v}" for k, v in metadata.items() if v not in (None, ""))
    try:
        print(f"[{WORKER_ID}] {stamp} {level} {message}{extra}", file=sys.stderr, flush=True)
    except OSError:
        pass  # stderr is a pipe to the gateway; once the gateway is gone, a log line must not stop the worker


WORKER_ID = "python-worker"
LOG_LEVELS = ["trace", "debug", "info", "notice", "warning", "error", "critical"]
LOG_THRESHOLD = 2


def debug(message, **metadata):
    if LOG_THRESHOLD <= 1:
        log("debug", message, **metadata)


class Tensor:
    """One input or output of the model: its name, datatype and shape without the batch
    dimension when the model batches (-1 for a dimension of any size)."""

    def __init__(self, meta, batching):
        if meta.type not in ONNX_TYPES:
            raise SystemExit(f"the ONNX model's tensor '{meta.name}' has type {meta.type}, which this worker does not serve "
                             f"(numeric and bool tensors only; a scikit-learn classifier needs options={{'zipmap': False}})")
        self.name = meta.name
        self.datatype, self.type_number, self.dtype = ONNX_TYPES[meta.type]
        dims = [d if isinstance(d, int) and d >= 0 else -1 for d in meta.shape]
        self.dims = dims[1:] if batching else dims

    def shape_text(self, batching):
        return "[" + ", ".join(str(d) for d in ([-1] if batching else []) + self.dims) + "]"


class Model:
    """The ONNX session and what the protocol says about it."""

    def __init__(self, path, name, version, max_batch_size, max_queue_delay_us, threads):
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])
        self.name = name
        self.version = version
        inputs = self.session.get_inputs()
        outputs = self.session.get_outputs()

        def dynamic_first(meta):
            return len(meta.shape) > 0 and not (isinstance(meta.shape[0], int) and meta.shape[0] >= 0)

        # The model batches when every input and output has a first dimension of any size.
        batchable = all(dynamic_first(m) for m in inputs + outputs)
        self.max_batch_size = (max_batch_size or DEFAULT_MAX_BATCH_SIZE) if batchable else 0
        self.batching = self.max_batch_size > 0
        self.max_queue_delay_us = max_queue_delay_us if self.batching else 0
        self.inputs = [Tensor(m, self.batching) for m in inputs]
        self.outputs = [Tensor(m, self.batching) for m in outputs]
        self.inputs_by_name = {t.name: t for t in self.inputs}
        self.outputs_by_name = {t.name: t for t in self.outputs}
        self.config = wire.model_config(
            name, "onnxruntime_onnx", self.max_batch_size,
            [(t.name, t.type_number, t.dims) for t in self.inputs],
            [(t.name, t.type_number, t.dims) for t in self.outputs],
            max_queue_delay_us=self.max_queue_delay_us)

    def expected(self):
        return ", ".join(f"{t.name} {t.datatype} {t.shape_text(self.batching)}" for t in self.inputs)

    def decode(self, request_bytes):
        """A ModelInferRequest as (request, {input name: array}, batch size); raises
        RequestError with INVALID_ARGUMENT for anything that does not fit the model."""
        try:
            request = wire.ModelInferRequest(request_bytes)
        except wire.WireError as error:
            raise RequestError(INVALID_ARGUMENT, f"the ModelInferRequest is not valid protobuf: {error}") from None
        if request.raw_input_contents and len(request.raw_input_contents) != len(request.inputs):
            raise RequestError(INVALID_ARGUMENT, f"the request has {len(request.inputs)} inputs but "
                               f"{len(request.raw_input_contents)} raw_input_contents; give one per input, in order")
        arrays = {}
        batch = None
        for index, tensor in enumerate(request.inputs):
            spec = self.inputs_by_name.get(tensor.name)
            if spec is None:
                raise RequestError(INVALID_ARGUMENT, f"model '{self.name}' has no input '{tensor.name}'; its inputs are {self.expected()}")
            if tensor.name in arrays:
                raise RequestError(INVALID_ARGUMENT, f"input '{tensor.name}' is given twice")
            if tensor.datatype != spec.datatype:
                raise RequestError(INVALID_ARGUMENT, f"input '{tensor.name}' of model '{self.name}' is {spec.datatype}, "
                                   f"not {tensor.datatype or 'an empty datatype'}")
            shape = list(tensor.shape)
            wanted = ([-1] if self.batching else []) + spec.dims
            fits = len(shape) == len(wanted) and all(w == -1 or w == s for w, s in zip(wanted, shape)) and all(s >= 0 for s in shape)
            if not fits:
                raise RequestError(INVALID_ARGUMENT, f"input '{tensor.name}' has shape {shape}, but model '{self.name}' "
                                   f"expects {spec.shape_text(self.batching)} (-1: any size)")
            if self.batching:
                if batch is None:
                    batch = shape[0]
                elif shape[0] != batch:
                    raise RequestError(INVALID_ARGUMENT, f"input '{tensor.name}' has batch size {shape[0]}, another input {batch}; "
                                       f"every input needs the same first dimension")
                if shape[0] < 1 or shape[0] > self.max_batch_size:
                    raise RequestError(INVALID_ARGUMENT, f"batch size {shape[0]} of input '{tensor.name}' is outside 1 to "
                                       f"{self.max_batch_size} (max_batch_size of model '{self.name}')")
            count = int(np.prod(shape, dtype=np.int64))
            if request.raw_input_contents:
                raw = request.raw_input_contents[index]
                size = count * np.dtype(spec.dtype).itemsize
                if len(raw) != size:
                    raise RequestError(INVALID_ARGUMENT, f"input '{tensor.name}' has {len(raw)} bytes of raw contents; shape {shape} "
                                       f"of {spec.datatype} needs {size}")
                array = np.frombuffer(raw, dtype=spec.dtype).reshape(shape)
            else:
                field = CONTENTS_FIELD.get(spec.datatype)
                values = (tensor.contents or {}).get(field, []) if field else []
                if len(values) != count:
                    raise RequestError(INVALID_ARGUMENT, f"input '{tensor.name}' has {len(values)} elements in its contents; shape "
                                       f"{shape} needs {count}")
                array = np.asarray(values, dtype=spec.dtype).reshape(shape)
            arrays[tensor.name] = array
        missing = [t.name for t in self.inputs if t.name not in arrays]
        if missing:
            raise RequestError(INVALID_ARGUMENT, f"the request lacks input(s) {', '.join(missing)} of model '{self.name}'; "
                               f"its inputs are {self.expected()}")
        unknown = [name for name in request.requested_outputs if name not in self.outputs_by_name]
        if unknown:
            raise RequestError(INVALID_ARGUMENT, f"model '{self.name}' has no output '{unknown[0]}'; its outputs are "
                               + ", ".join(t.name for t in self.outputs))
        return request, arrays, (batch or 1)

    def encode(self, request, results):
        """The ModelInferResponse bytes for one request's slice of the outputs."""
        wanted = request.requested_outputs or [t.name for t in self.outputs]
        outputs = []
        for name in wanted:
            spec = self.outputs_by_name[name]
            array = np.ascontiguousarray(results[name], dtype=spec.dtype)
            outputs.append((name, spec.datatype, list(array.shape), array.tobytes()))
        return wire.model_infer_response(self.name, self.version, request.id, outputs)


class Pending:
    """A request waiting for, or in, a batch."""

    __slots__ = ("connection", "request_id", "request", "arrays", "batch", "deadline", "received", "input_ns", "log_id")

    def __init__(self, connection, request_id, request, arrays, batch, deadline, received, input_ns, log_id):
        self.connection = connection
        self.request_id = request_id
        self.request = request
        self.arrays = arrays
        self.batch = batch
        self.deadline = deadline
        self.received = received
        self.input_ns = input_ns
        self.log_id = log_id


class Worker:
    """The socket server, the batch queue and the model executor."""

    def __init__(self, model, socket_path, parent_pid):
        self.model = model
        self.socket_path = socket_path
        self.parent_pid = parent_pid
        self.queue = []
        self.queue_event = asyncio.Event()
        self.executing = 0
        self.connections = set()
        self.stopping = False
        self.server = None
        # One model instance: batches run one at a time, off the event loop (onnxruntime
        # releases the GIL), so pings are answered while a batch computes.
        self.executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="onnx")

    async def serve(self):
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass
        self.server = await asyncio.start_unix_server(self.accept, path=self.socket_path, limit=MAX_FRAME + 16)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        log("info", "listening", socket=self.socket_path, model=self.model.name, version=self.model.version,
            max_batch_size=self.model.max_batch_size, inputs=self.model.expected().replace(" ", "_"))
        batcher = asyncio.create_task(self.batch_loop())
        watcher = asyncio.create_task(self.watch_parent(stop))
        await stop.wait()
        await self.shutdown()
        batcher.cancel()
        watcher.cancel()

    async def shutdown(self):
        """SIGTERM: no new connections, socket file removed, new requests refused, those in
        flight finish (at most 5 s), then the connections close."""
        self.stopping = True
        log("info", "stopping: finishing requests in flight", queued=len(self.queue), executing=self.executing)
        self.server.close()
        try:
            os.unlink(self.socket_path)
        except FileNotFoundError:
            pass
        deadline = time.monotonic() + 5
        while (self.queue or self.executing) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for connection in list(self.connections):
            connection.close()
        self.executor.shutdown(wait=False, cancel_futures=True)
        log("info", "stopped")

    async def watch_parent(self, stop):
        """Exit when the gateway is gone: the parent pid changes when it dies."""
        if self.parent_pid and os.getppid() != self.parent_pid:
            log("warning", "the gateway that started this worker is gone; exiting", parent_pid=self.parent_pid)
            os._exit(0)
        start_parent = os.getppid()
        while True:
            await asyncio.sleep(1)
            if os.getppid() != start_parent:
                log("warning", "parent process exited; exiting")
                os._exit(0)

    async def accept(self, reader, writer):
        connection = Connection(self, reader, writer)
        self.connections.add(connection)
        debug("gateway connected")
        try:
            await connection.run()
        finally:
            self.connections.discard(connection)
            connection.close()

    # ------------------------------------------------------------ batching

    def enqueue(self, pending):
        self.queue.append(pending)
        self.queue_event.set()

    async def batch_loop(self):
        loop = asyncio.get_running_loop()
        while True:
            while not self.queue:
                self.queue_event.clear()
                await self.queue_event.wait()
            delay = self.model.max_queue_delay_us / 1e6
            if delay > 0 and self.rows_queued() < self.model.max_batch_size:
                end = time.monotonic() + delay
                while self.rows_queued() < self.model.max_batch_size and time.monotonic() < end:
                    self.queue_event.clear()
                    try:
                        await asyncio.wait_for(self.queue_event.wait(), end - time.monotonic())
                    except asyncio.TimeoutError:
                        break
            batch = self.take_batch()
            if not batch:
                continue
            self.executing += len(batch)
            try:
                await self.execute(batch, loop)
            finally:
                self.executing -= len(batch)

    def rows_queued(self):
        return sum(p.batch for p in self.queue)

    def take_batch(self):
        """The oldest live requests that fit together: same shapes but the first dimension,
        at most max_batch_size rows (one request when the model does not batch)."""
        now = time.time_ns()
        live = []
        for pending in self.queue:
            if pending.connection.is_cancelled(pending.request_id):
                continue
            if pending.deadline and now > pending.deadline:
                pending.connection.reply_error(pending.request_id, DEADLINE_EXCEEDED,
                                               "the deadline passed while the request waited in the worker's queue")
                continue
            live.append(pending)
        self.queue = live
        if not live:
            return []
        first = live[0]
        if not self.model.batching:
            self.queue = live[1:]
            return [first]

        def key(p):
            return tuple((name, a.shape[1:]) for name, a in sorted(p.arrays.items()))

        batch, rest, rows = [], [], 0
        for pending in live:
            if key(pending) == key(first) and rows + pending.batch <= self.model.max_batch_size:
                batch.append(pending)
                rows += pending.batch
            else:
                rest.append(pending)
        self.queue = rest
        return batch

    async def execute(self, batch, loop):
        started = time.monotonic_ns()
        if len(batch) == 1:
            feeds = batch[0].arrays
        else:
            feeds = {t.name: np.concatenate([p.arrays[t.name] for p in batch]) for t in self.model.inputs}
        names = [t.name for t in self.model.outputs]
        try:
            values = await loop.run_in_executor(self.executor, self.model.session.run, names, feeds)
        except Exception as error:  # onnxruntime's own message says what went wrong
            message = f"model '{self.model.name}' failed to run: {str(error).strip().splitlines()[-1] if str(error).strip() else error}"
            log("error", message)
            for pending in batch:
                pending.connection.reply_error(pending.request_id, INTERNAL, message)
            return
        inferred = time.monotonic_ns()
        offset = 0
        for position, pending in enumerate(batch):
            encode_start = time.monotonic_ns()
            if self.model.batching:
                results = {n: v[offset:offset + pending.batch] for n, v in zip(names, values)}
            else:
                results = dict(zip(names, values))
            offset += pending.batch
            try:
                body = self.model.encode(pending.request, results)
            except Exception as error:
                pending.connection.reply_error(pending.request_id, INTERNAL, f"cannot encode the outputs: {error}")
                continue
            timing = (max(0, started - pending.received - pending.input_ns), pending.input_ns, inferred - started,
                      time.monotonic_ns() - encode_start, position == 0)
            pending.connection.reply(pending.request_id, body, timing)
        debug("batch done", requests=len(batch), rows=offset, infer_us=(inferred - started) // 1000)


class Connection:
    """One gateway connection: reads frames, writes answers."""

    def __init__(self, worker, reader, writer):
        self.worker = worker
        self.reader = reader
        self.writer = writer
        self.in_flight = set()
        self.cancelled = set()
        self.closed = False

    def close(self):
        if not self.closed:
            self.closed = True
            self.writer.close()

    def send(self, kind, request_id, payload=b""):
        if self.closed:
            return
        self.writer.write(HEAD.pack(9 + len(payload), kind, request_id) + payload)

    def is_cancelled(self, request_id):
        return self.closed or request_id in self.cancelled

    def finish(self, request_id):
        self.in_flight.discard(request_id)
        self.cancelled.discard(request_id)

    def reply(self, request_id, body, timing):
        if request_id in self.in_flight and not self.is_cancelled(request_id):
            self.send(INFER_RESPONSE, request_id, wire.infer_response(body, final=True, timing=timing))
        self.finish(request_id)

    def reply_error(self, request_id, code, message):
        if request_id in self.in_flight and not self.is_cancelled(request_id):
            self.send(INFER_RESPONSE, request_id, wire.infer_response(code=code, message=message, final=True))
        self.finish(request_id)

    async def run(self):
        model = self.worker.model
        self.send(HELLO, 0, wire.hello(os.getpid(), WORKER_ID, model.name, [model.version], model.max_batch_size, model.config))
        while True:
            try:
                head = await self.reader.readexactly(4)
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            (length,) = struct.unpack(">I", head)
            if length < 9 or length > MAX_FRAME:
                log("error", "framing error: closing the connection", length=length)
                break
            try:
                body = await self.reader.readexactly(length)
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            kind = body[0]
            (request_id,) = struct.unpack(">Q", body[1:9])
            self.handle(kind, request_id, memoryview(body)[9:])
        # The gateway is gone: drop this connection's requests.
        self.cancelled.update(self.in_flight)
        self.closed = True

    def handle(self, kind, request_id, payload):
        if kind == PING:
            try:
                nonce, sent = wire.ping(payload)
            except wire.WireError:
                return
            queued = len(self.worker.queue)
            self.send(PONG, 0, wire.pong(nonce, sent, self.worker.executing, queued))
        elif kind == INFER_REQUEST:
            self.infer(request_id, payload)
        elif kind == CANCEL or (kind == ERROR and request_id != 0):
            if request_id in self.in_flight:
                self.cancelled.add(request_id)
        # STREAM_END, PAUSE, RESUME (this model answers once) and unknown kinds are ignored.

    def infer(self, request_id, payload):
        received = time.monotonic_ns()
        if request_id in self.in_flight:
            self.send(ERROR, request_id, wire.status(INVALID_ARGUMENT, f"request id {request_id} is already in flight on this connection"))
            return
        self.in_flight.add(request_id)
        model = self.worker.model
        log_id = ""
        try:
            frame = wire.InferRequest(payload)
            log_id = frame.request_id
            if self.worker.stopping:
                raise RequestError(UNAVAILABLE, f"worker {WORKER_ID} is shutting down; the gateway will send this to another worker")
            if frame.model_name and frame.model_name != model.name:
                raise RequestError(NOT_FOUND, f"worker {WORKER_ID} serves model '{model.name}', not '{frame.model_name}'")
            if frame.model_version and frame.model_version != model.version:
                raise RequestError(NOT_FOUND, f"model '{model.name}' has no version '{frame.model_version}' on worker "
                                   f"{WORKER_ID}; it serves version {model.version}")
            if frame.deadline_unix_nanos and time.time_ns() > frame.deadline_unix_nanos:
                raise RequestError(DEADLINE_EXCEEDED, "the deadline had passed when the request reached the worker")
            request, arrays, batch = model.decode(frame.request)
        except wire.WireError as error:
            debug(f"request {request_id} failed: {error}", request_id=log_id)
            self.reply_error(request_id, INVALID_ARGUMENT, f"the INFER_REQUEST payload is not valid protobuf: {error}")
            return
        except RequestError as error:
            debug(f"request {request_id} failed: {error.message}", request_id=log_id)
            self.reply_error(request_id, error.code, error.message)
            return
        self.worker.enqueue(Pending(self, request_id, request, arrays, batch, frame.deadline_unix_nanos, received,
                                    time.monotonic_ns() - received, log_id))


def main():
    global WORKER_ID, LOG_THRESHOLD
    environment = os.environ
    parser = argparse.ArgumentParser(description="Serve one ONNX model as a Switchyard worker (docs/worker-protocol.md).")
    parser.add_argument("--model", required=True, help="the .onnx file")
    parser.add_argument("--socket", default=environment.get("SWITCHYARD_WORKER_SOCKET"),
                        help="Unix socket to listen on (default: $SWITCHYARD_WORKER_SOCKET)")
    parser.add_argument("--name", default=environment.get("SWITCHYARD_MODEL"), help="model name (default: $SWITCHYARD_MODEL)")
    parser.add_argument("--version", default=environment.get("SWITCHYARD_MODEL_VERSION", "1"),
                        help="model version (default: $SWITCHYARD_MODEL_VERSION or 1)")
    parser.add_argument("--max-batch-size", type=int, default=None,
                        help=f"largest batch when the model's first dimension is dynamic (default: $SWITCHYARD_MAX_BATCH_SIZE or {DEFAULT_MAX_BATCH_SIZE})")
    parser.add_argument("--max-queue-delay-us", type=int, default=None,
                        help="how long a batch that is not full waits for more requests (default: $SWITCHYARD_MAX_QUEUE_DELAY_US or 0)")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (default: its own choice)")
    arguments = parser.parse_args()
    if not arguments.socket:
        parser.error("no socket: give --socket or set SWITCHYARD_WORKER_SOCKET (the gateway sets it)")
    name = arguments.name or os.path.splitext(os.path.basename(arguments.model))[0]
    WORKER_ID = environment.get("SWITCHYARD_WORKER_ID") or f"worker-{os.getpid()}"
    level = environment.get("SWITCHYARD_LOG_LEVEL", "info")
    LOG_THRESHOLD = LOG_LEVELS.index(level) if level in LOG_LEVELS else 2
    # The gateway's configuration (environment) wins over the command's own flags.
    max_batch_size = int(environment.get("SWITCHYARD_MAX_BATCH_SIZE") or arguments.max_batch_size or 0)
    max_queue_delay_us = int(environment.get("SWITCHYARD_MAX_QUEUE_DELAY_US") or arguments.max_queue_delay_us or 0)
    parent_pid = int(environment.get("SWITCHYARD_PARENT_PID") or 0)
    try:
        model = Model(arguments.model, name, arguments.version, max_batch_size, max_queue_delay_us, arguments.threads)
    except SystemExit as error:
        log("error", f"cannot serve {arguments.model}: {error}")
        sys.exit(2)
    except Exception as error:
        log("error", f"cannot load {arguments.model}: {error}")
        sys.exit(2)
    asyncio.run(Worker(model, arguments.socket, parent_pid).serve())
    sys.exit(0)


if __name__ == "__main__":
    main()
