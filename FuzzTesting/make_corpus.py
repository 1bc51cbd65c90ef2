#!/usr/bin/env python3
"""Writes the seed corpus under Corpus/<Target>/ with independent encoders.

The messages are encoded by tritonclient's, grpcio-health-checking's and grpcio-reflection's
generated protobuf code, and the worker payloads by code that grpc_tools.protoc generates from
Protos/switchyard/worker.proto at run time, so the seeds do not depend on our own encoder.

Run with the repository's venv (scripts/bootstrap.sh makes it):
    ../.venv/bin/python make_corpus.py
It rewrites the corpus folders from scratch; the output is deterministic.
"""
import importlib
import shutil
import struct
import sys
import tempfile
from pathlib import Path

from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2
from grpc_tools import protoc
from tritonclient.grpc import model_config_pb2 as mc
from tritonclient.grpc import service_pb2 as svc

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CORPUS = HERE / "Corpus"
MAX_FILE = 4096


def worker_pb2():
    """switchyard.worker, generated from the repository's .proto into a temporary folder."""
    proto_dir = REPO / "Protos" / "switchyard"
    with tempfile.TemporaryDirectory(prefix="worker-pb2-") as out:
        if protoc.main(["protoc", f"-I{proto_dir}", f"--python_out={out}", str(proto_dir / "worker.proto")]) != 0:
            sys.exit("protoc failed on Protos/switchyard/worker.proto")
        sys.path.insert(0, out)
        try:
            return importlib.import_module("worker_pb2")
        finally:
            sys.path.remove(out)


def param(**kw):
    return svc.InferParameter(**kw)


# --- ModelInferRequest -------------------------------------------------------------------

def infer_simple_raw():
    r = svc.ModelInferRequest(model_name="simple", model_version="1", id="req-1")
    for name in ("INPUT0", "INPUT1"):
        r.inputs.add(name=name, datatype="INT32", shape=[1, 16])
        r.raw_input_contents.append(struct.pack("<16i", *range(16)))
    r.outputs.add(name="OUTPUT0")
    r.outputs.add(name="OUTPUT1")
    return r


def infer_simple_typed():
    r = svc.ModelInferRequest(model_name="simple", id="typed")
    for name in ("INPUT0", "INPUT1"):
        t = r.inputs.add(name=name, datatype="INT32", shape=[1, 16])
        t.contents.int_contents.extend(range(-8, 8))
    return r


def infer_string_raw():
    r = svc.ModelInferRequest(model_name="simple_string")
    for name in ("INPUT0", "INPUT1"):
        r.inputs.add(name=name, datatype="BYTES", shape=[1, 16])
        r.raw_input_contents.append(b"".join(struct.pack("<I", len(s)) + s for s in (str(i).encode() for i in range(16))))
    return r


def infer_string_typed():
    r = svc.ModelInferRequest(model_name="simple_identity", model_version="3")
    t = r.inputs.add(name="INPUT0", datatype="BYTES", shape=[3])
    t.contents.bytes_contents.extend([b"", b"hello", "\u00e9t\u00e9".encode()])
    return r


def infer_repeat_with_parameters():
    r = svc.ModelInferRequest(model_name="repeat_int32", id="stream-7")
    r.parameters["sequence_id"].CopyFrom(param(int64_param=42))
    r.parameters["sequence_start"].CopyFrom(param(bool_param=True))
    r.parameters["priority"].CopyFrom(param(uint64_param=2**63 + 5))
    r.parameters["timeout"].CopyFrom(param(double_param=1.5))
    r.parameters["tag"].CopyFrom(param(string_param="canary"))
    r.parameters["empty"].CopyFrom(param())
    t = r.inputs.add(name="IN", datatype="INT32", shape=[4])
    t.contents.int_contents.extend([4, 3, 2, 1])
    t = r.inputs.add(name="DELAY", datatype="UINT32", shape=[4])
    t.contents.uint_contents.extend([0, 1, 2, 2**32 - 1])
    t = r.inputs.add(name="WAIT", datatype="UINT32", shape=[1])
    t.parameters["shared_memory_region"].CopyFrom(param(string_param="shm0"))
    t.parameters["shared_memory_byte_size"].CopyFrom(param(int64_param=4))
    o = r.outputs.add(name="OUT")
    o.parameters["classification"].CopyFrom(param(int64_param=3))
    o.parameters["binary_data"].CopyFrom(param(bool_param=False))
    return r


def infer_all_content_types():
    r = svc.ModelInferRequest(model_name="mixed")
    c = r.inputs.add(name="B", datatype="BOOL", shape=[3]).contents
    c.bool_contents.extend([True, False, True])
    c = r.inputs.add(name="I64", datatype="INT64", shape=[3]).contents
    c.int64_contents.extend([-(2**63), 0, 2**63 - 1])
    c = r.inputs.add(name="U64", datatype="UINT64", shape=[2]).contents
    c.uint64_contents.extend([0, 2**64 - 1])
    c = r.inputs.add(name="F32", datatype="FP32", shape=[3]).contents
    c.fp32_contents.extend([0.5, -0.0, float("inf")])
    c = r.inputs.add(name="F64", datatype="FP64", shape=[2]).contents
    c.fp64_contents.extend([3.25, float("nan")])
    return r


def infer_with_unknown_fields():
    # Known fields, then fields a newer client might send: varint 99, fixed32 100, fixed64 101,
    # bytes 102 and a (deprecated) group 103 holding a varint, all of which must be kept.
    body = svc.ModelInferRequest(model_name="simple", id="future").SerializeToString(deterministic=True)
    extra = bytes([0x98, 0x06, 0x2A])  # 99: varint 42
    extra += bytes([0xA5, 0x06]) + struct.pack("<I", 7)  # 100: fixed32
    extra += bytes([0xA9, 0x06]) + struct.pack("<Q", 9)  # 101: fixed64
    extra += bytes([0xB2, 0x06, 0x03]) + b"abc"  # 102: bytes
    extra += bytes([0xBB, 0x06, 0x08, 0x01, 0xBC, 0x06])  # 103: group { 1: varint 1 }
    return body + extra


def infer_unpacked_shape():
    # Shape as unpacked varints (proto2 style), which a proto3 parser must also accept, and
    # model_name given twice (the last one wins).
    tensor = b"\x0a\x06INPUT0" + b"\x12\x05INT32" + b"\x18\x01" + b"\x18\x10"
    return b"\x0a\x03old" + b"\x0a\x06simple" + b"\x2a" + bytes([len(tensor)]) + tensor


# --- Worker frames ---------------------------------------------------------------------------

def frame(kind, request_id, payload=b""):
    return struct.pack(">IBQ", 1 + 8 + len(payload), kind, request_id) + payload


def worker_corpus(w):
    HELLO, INFER_REQUEST, INFER_RESPONSE, STREAM_END, CANCEL, PING, PONG, ERROR = range(1, 9)
    hello = w.Hello(protocol_version=1, pid=4242, worker_id="simple-0")
    hello.models.add(name="simple", versions=["1"], max_batch_size=8)
    hello.models.add(name="repeat_int32", versions=["1", "2"], decoupled=True)

    request = w.InferRequest(model_name="simple", model_version="1",
                             request=infer_simple_raw().SerializeToString(deterministic=True),
                             deadline_unix_nanos=1_700_000_000_000_000_000)
    response = svc.ModelInferResponse(model_name="simple", model_version="1", id="req-1")
    for name in ("OUTPUT0", "OUTPUT1"):
        response.outputs.add(name=name, datatype="INT32", shape=[1, 16])
        response.raw_output_contents.append(struct.pack("<16i", *range(16)))
    response.parameters["triton_final_response"].CopyFrom(param(bool_param=True))
    infer_response = w.InferResponse(response=response.SerializeToString(deterministic=True), final=True)
    failed = w.InferResponse(status=w.Status(code=5, message="model 'nope' not found"), final=True)

    return {
        "hello": frame(HELLO, 0, hello.SerializeToString(deterministic=True)),
        "gateway-to-worker": frame(INFER_REQUEST, 7, request.SerializeToString(deterministic=True))
        + frame(PING, 0, w.Ping(nonce=99, sent_unix_nanos=1_700_000_000_123_456_789).SerializeToString(deterministic=True))
        + frame(CANCEL, 7, w.Cancel(reason="client cancelled").SerializeToString(deterministic=True)),
        "worker-to-gateway": frame(PONG, 0, w.Pong(nonce=99, sent_unix_nanos=5, in_flight=2, queued=1).SerializeToString(deterministic=True))
        + frame(INFER_RESPONSE, 7, infer_response.SerializeToString(deterministic=True))
        + frame(INFER_RESPONSE, 8, failed.SerializeToString(deterministic=True))
        + frame(STREAM_END, 8),
        "error-connection": frame(ERROR, 0, w.Status(code=14, message="worker shutting down").SerializeToString(deterministic=True)),
        "empty-payloads": b"".join(frame(kind, 1) for kind in range(0, 10)),
        "unknown-kind-then-ping": frame(200, 3, b"\x08\x01") + frame(PING, 0, w.Ping(nonce=1).SerializeToString(deterministic=True)),
        "truncated-second-frame": frame(PING, 0, w.Ping(nonce=2).SerializeToString(deterministic=True))
        + frame(HELLO, 0, hello.SerializeToString(deterministic=True))[:20],
        "request-typed-contents": frame(INFER_REQUEST, 9, w.InferRequest(
            model_name="repeat_int32", request=infer_repeat_with_parameters().SerializeToString(deterministic=True)).SerializeToString(deterministic=True)),
    }


# --- Gateway requests --------------------------------------------------------------------------

def model_config_simple():
    c = mc.ModelConfig(name="simple", platform="tensorflow_graphdef", max_batch_size=8)
    c.input.add(name="INPUT0", data_type=mc.TYPE_INT32, dims=[16])
    c.input.add(name="INPUT1", data_type=mc.TYPE_INT32, dims=[16])
    c.output.add(name="OUTPUT0", data_type=mc.TYPE_INT32, dims=[16])
    c.output.add(name="OUTPUT1", data_type=mc.TYPE_INT32, dims=[16])
    c.instance_group.add(count=2, kind=mc.ModelInstanceGroup.KIND_CPU)
    c.dynamic_batching.preferred_batch_size.extend([4, 8])
    c.dynamic_batching.max_queue_delay_microseconds = 100
    c.version_policy.latest.num_versions = 1
    c.parameters["EXECUTION_ENV_PATH"].string_value = "/opt/env.tar.gz"
    c.metric_tags["team"] = "search"
    return c


def model_config_decoupled_sequence():
    c = mc.ModelConfig(name="repeat_int32", backend="python", max_batch_size=0)
    c.model_transaction_policy.decoupled = True
    c.input.add(name="IN", data_type=mc.TYPE_INT32, dims=[-1])
    c.input.add(name="DELAY", data_type=mc.TYPE_UINT32, dims=[-1])
    c.input.add(name="WAIT", data_type=mc.TYPE_UINT32, dims=[1], optional=True)
    c.output.add(name="OUT", data_type=mc.TYPE_INT32, dims=[1])
    c.output.add(name="IDX", data_type=mc.TYPE_UINT32, dims=[1], label_filename="labels.txt")
    s = c.sequence_batching
    s.max_sequence_idle_microseconds = 5_000_000
    ctl = s.control_input.add(name="START")
    ctl.control.add(kind=mc.ModelSequenceBatching.Control.CONTROL_SEQUENCE_START, int32_false_true=[0, 1])
    s.oldest.max_candidate_sequences = 4
    c.version_policy.specific.versions.extend([1, 3])
    c.optimization.priority = mc.ModelOptimizationPolicy.PRIORITY_MAX
    c.optimization.input_pinned_memory.enable = True
    w = c.model_warmup.add(name="warm", batch_size=1)
    w.inputs["IN"].data_type = mc.TYPE_INT32
    w.inputs["IN"].dims.extend([4])
    w.inputs["IN"].random_data = True
    return c


def model_config_ensemble():
    c = mc.ModelConfig(name="pipeline", platform="ensemble", max_batch_size=4)
    c.input.add(name="RAW", data_type=mc.TYPE_STRING, dims=[1])
    c.output.add(name="SCORES", data_type=mc.TYPE_FP32, dims=[10])
    step = c.ensemble_scheduling.step.add(model_name="preprocess", model_version=-1)
    step.input_map["IN"] = "RAW"
    step.output_map["OUT"] = "tensor"
    step = c.ensemble_scheduling.step.add(model_name="classifier", model_version=2)
    step.input_map["INPUT"] = "tensor"
    step.output_map["OUTPUT"] = "SCORES"
    c.response_cache.enable = True
    return c


def gateway_corpus():
    # The selector byte indexes the table in Sources/FuzzGatewayRequests/main.swift.
    reflection = reflection_pb2.ServerReflectionRequest
    load = svc.RepositoryModelLoadRequest(model_name="simple")
    load.parameters["config"].string_param = '{"max_batch_size": 4}'
    load.parameters["file:1/model.savedmodel/saved_model.pb"].bytes_param = b"\x08\x01\x12\x04abcd"
    load.parameters["poll"].bool_param = True
    unload = svc.RepositoryModelUnloadRequest(model_name="simple")
    unload.parameters["unload_dependents"].bool_param = True
    trace = svc.TraceSettingRequest(model_name="simple")
    trace.settings["trace_level"].value.extend(["TIMESTAMPS", "TENSORS"])
    trace.settings["trace_rate"].value.append("1000")
    trace.settings["log_frequency"]  # present with no values: clears the setting
    logs = svc.LogSettingsRequest()
    logs.settings["log_verbose_level"].uint32_param = 1
    logs.settings["log_info"].bool_param = True
    logs.settings["log_format"].string_param = "ISO8601"
    entries = [
        ("model-infer", 0, infer_simple_raw()),
        ("health-server", 1, health_pb2.HealthCheckRequest()),
        ("health-service", 1, health_pb2.HealthCheckRequest(service="inference.GRPCInferenceService")),
        ("reflection-list", 2, reflection(host="localhost", list_services="*")),
        ("reflection-symbol", 2, reflection(file_containing_symbol="inference.GRPCInferenceService")),
        ("reflection-extension", 2, reflection(file_containing_extension=reflection_pb2.ExtensionRequest(
            containing_type="google.protobuf.FieldOptions", extension_number=50000))),
        ("model-config", 3, svc.ModelConfigRequest(name="simple", version="1")),
        ("model-metadata", 4, svc.ModelMetadataRequest(name="simple_string")),
        ("repository-load", 5, load),
        ("repository-unload", 6, unload),
        ("repository-index", 7, svc.RepositoryIndexRequest(repository_name="models", ready=True)),
        ("model-ready", 8, svc.ModelReadyRequest(name="simple", version="2")),
        ("model-statistics", 9, svc.ModelStatisticsRequest(name="simple")),
        ("shm-register", 14, svc.SystemSharedMemoryRegisterRequest(name="shm0", key="/shm0", offset=0, byte_size=1024)),
        ("trace-setting", 19, trace),
        ("log-settings", 20, logs),
        ("model-config-simple", 22, model_config_simple()),
        ("model-config-sequence", 22, model_config_decoupled_sequence()),
        ("model-config-ensemble", 22, model_config_ensemble()),
    ]
    return {name: bytes([selector]) + message.SerializeToString(deterministic=True) for name, selector, message in entries}


def main():
    w = worker_pb2()
    targets = {
        "FuzzModelInferRequest": {
            "simple-raw": infer_simple_raw().SerializeToString(deterministic=True),
            "simple-typed": infer_simple_typed().SerializeToString(deterministic=True),
            "string-raw": infer_string_raw().SerializeToString(deterministic=True),
            "string-typed": infer_string_typed().SerializeToString(deterministic=True),
            "repeat-parameters": infer_repeat_with_parameters().SerializeToString(deterministic=True),
            "all-content-types": infer_all_content_types().SerializeToString(deterministic=True),
            "name-only": svc.ModelInferRequest(model_name="simple").SerializeToString(deterministic=True),
            "header-only": svc.ModelInferRequest(model_name="simple", model_version="2", id="x").SerializeToString(deterministic=True),
            "unknown-fields": infer_with_unknown_fields(),
            "unpacked-shape": infer_unpacked_shape(),
        },
        "FuzzWorkerFrame": worker_corpus(w),
        "FuzzGatewayRequests": gateway_corpus(),
    }
    # The scan's differential target starts from the same requests as the full decode's.
    targets["FuzzModelInferRequestScan"] = dict(targets["FuzzModelInferRequest"])
    for target, files in targets.items():
        folder = CORPUS / target
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        assert len(files) < 20, f"{target}: {len(files)} files; keep the seed corpus under 20"
        for name, data in files.items():
            assert len(data) < MAX_FILE, f"{target}/{name} is {len(data)} bytes; keep seeds under {MAX_FILE}"
            (folder / name).write_bytes(data)
        print(f"{target}: {len(files)} files, {sum(map(len, files.values()))} bytes")


if __name__ == "__main__":
    main()
