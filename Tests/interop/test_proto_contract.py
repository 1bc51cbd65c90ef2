"""The .proto contract in Protos/ against independently generated descriptors.

The references are the generated modules that tritonclient ships (service_pb2, model_config_pb2)
and grpcio's health and reflection packages: every message, enum and service they define must
exist in ours with the same fields (name, number, type, label, type name, oneof), enum values and
methods. Definitions only we have (newer fields of the published protos) are allowed.
"""
import importlib
import subprocess
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

REPO = Path(__file__).resolve().parents[2]
PROTO_FILES = [
    "inference/grpc_service.proto",
    "inference/model_config.proto",
    "grpc/health/v1/health.proto",
    "grpc/reflection/v1/reflection.proto",
    "grpc/reflection/v1alpha/reflection.proto",
    "switchyard/worker.proto",
]
REFERENCE_MODULES = [
    "tritonclient.grpc.service_pb2",
    "tritonclient.grpc.model_config_pb2",
    "grpc_health.v1.health_pb2",
    "grpc_reflection.v1alpha.reflection_pb2",
]


def index_file(fdp):
    """full name -> DescriptorProto / EnumDescriptorProto / ServiceDescriptorProto."""
    msgs, enums, services = {}, {}, {}
    pkg = fdp.package

    def walk(prefix, mlist, elist):
        for e in elist:
            enums[f"{prefix}.{e.name}"] = e
        for m in mlist:
            name = f"{prefix}.{m.name}"
            msgs[name] = m
            walk(name, m.nested_type, m.enum_type)

    walk(pkg, fdp.message_type, fdp.enum_type)
    for s in fdp.service:
        services[f"{pkg}.{s.name}"] = s
    return msgs, enums, services


def field_sig(m, f):
    oneof = None
    if f.HasField("oneof_index") and not f.proto3_optional:
        oneof = m.oneof_decl[f.oneof_index].name
    return {
        "number": f.number,
        "type": descriptor_pb2.FieldDescriptorProto.Type.Name(f.type),
        "label": descriptor_pb2.FieldDescriptorProto.Label.Name(f.label),
        "type_name": f.type_name,
        "oneof": oneof,
        "proto3_optional": f.proto3_optional,
        "json_name": f.json_name or None,
    }


def compare_message(name, theirs, ours, diffs):
    tf = {f.name: f for f in theirs.field}
    of = {f.name: f for f in ours.field}
    for fname, f in tf.items():
        if fname not in of:
            diffs.append(f"message {name}: field '{fname}' missing in ours")
            continue
        ts, os_ = field_sig(theirs, f), field_sig(ours, of[fname])
        # json_name is only filled in by some generators; compare when both set.
        if ts["json_name"] is None or os_["json_name"] is None:
            ts.pop("json_name"); os_.pop("json_name")
        for k in ts:
            if ts[k] != os_[k]:
                diffs.append(f"message {name}.{fname}: {k} theirs={ts[k]!r} ours={os_[k]!r}")
    for fname in of:
        if fname not in tf:
            diffs.append(f"message {name}: extra field '{fname}' in ours (#{of[fname].number})")
    tn = {f.number for f in theirs.field}
    for f in ours.field:
        if f.name not in tf and f.number in tn:
            diffs.append(f"message {name}: field number {f.number} reused under another name")
    if theirs.options.map_entry != ours.options.map_entry:
        diffs.append(f"message {name}: map_entry theirs={theirs.options.map_entry} ours={ours.options.map_entry}")
    t_oneofs = [o.name for o in theirs.oneof_decl if not o.name.startswith("_")]
    o_oneofs = [o.name for o in ours.oneof_decl if not o.name.startswith("_")]
    if t_oneofs != o_oneofs:
        diffs.append(f"message {name}: oneofs theirs={t_oneofs} ours={o_oneofs}")
    if list(theirs.reserved_range) != list(ours.reserved_range) or list(theirs.reserved_name) != list(ours.reserved_name):
        diffs.append(f"message {name}: reserved ranges/names differ")


def compare_enum(name, theirs, ours, diffs):
    tv = [(v.name, v.number) for v in theirs.value]
    ov = [(v.name, v.number) for v in ours.value]
    if sorted(tv) != sorted(ov):
        diffs.append(f"enum {name}: values theirs={tv} ours={ov}")


def compare_service(name, theirs, ours, diffs):
    tm = {m.name: m for m in theirs.method}
    om = {m.name: m for m in ours.method}
    for mname, m in tm.items():
        if mname not in om:
            diffs.append(f"service {name}: method {mname} missing in ours")
            continue
        o = om[mname]
        for attr in ("input_type", "output_type", "client_streaming", "server_streaming"):
            if getattr(m, attr) != getattr(o, attr):
                diffs.append(f"service {name}.{mname}: {attr} theirs={getattr(m, attr)!r} ours={getattr(o, attr)!r}")
    for mname in om:
        if mname not in tm:
            diffs.append(f"service {name}: extra method {mname} in ours")



def our_descriptors(tmp_path):
    out = tmp_path / "switchyard.pb"
    subprocess.run(
        ["protoc", "--fatal_warnings", "-I", str(REPO / "Protos"), f"--descriptor_set_out={out}", *PROTO_FILES],
        check=True,
    )
    fds = descriptor_pb2.FileDescriptorSet()
    fds.ParseFromString(out.read_bytes())
    return fds


def compare(fds, references):
    """Differences between `references` (FileDescriptorProtos) and ours, plus what was compared."""
    ours_msgs, ours_enums, ours_services = {}, {}, {}
    for fdp in fds.file:
        assert fdp.syntax == "proto3", f"{fdp.name} is not proto3"
        m, e, s = index_file(fdp)
        ours_msgs.update(m)
        ours_enums.update(e)
        ours_services.update(s)
    diffs = []
    counts = {"messages": 0, "fields": 0, "enums": 0, "methods": 0}
    for fdp in references:
        tmsgs, tenums, tservices = index_file(fdp)
        for name, t in tmsgs.items():
            counts["messages"] += 1
            counts["fields"] += len(t.field)
            if name not in ours_msgs:
                diffs.append(f"message {name} missing in ours")
            else:
                compare_message(name, t, ours_msgs[name], diffs)
        for name, t in tenums.items():
            counts["enums"] += 1
            if name not in ours_enums:
                diffs.append(f"enum {name} missing in ours")
            else:
                compare_enum(name, t, ours_enums[name], diffs)
        for name, t in tservices.items():
            counts["methods"] += len(t.method)
            if name not in ours_services:
                diffs.append(f"service {name} missing in ours")
            else:
                compare_service(name, t, ours_services[name], diffs)
    # Fields and methods only we have come from newer published versions: allowed.
    real = [d for d in diffs if "extra field" not in d and "extra method" not in d]
    return real, counts


def reference_descriptors():
    references = []
    for name in REFERENCE_MODULES:
        module = importlib.import_module(name)
        fdp = descriptor_pb2.FileDescriptorProto()
        module.DESCRIPTOR.CopyToProto(fdp)
        references.append(fdp)
    return references


def test_protos_match_tritonclient_and_grpcio_descriptors(tmp_path):
    diffs, counts = compare(our_descriptors(tmp_path), reference_descriptors())
    assert diffs == []
    # tritonclient 2.41 + grpcio health/reflection: well over a hundred messages and 20+ methods.
    assert counts["messages"] > 100 and counts["methods"] >= 22, counts


def test_a_changed_field_number_is_caught(tmp_path):
    fds = our_descriptors(tmp_path)
    for fdp in fds.file:
        for message in fdp.message_type:
            if message.name == "ModelInferRequest":
                next(f for f in message.field if f.name == "raw_input_contents").number = 17
    diffs, _ = compare(fds, reference_descriptors())
    assert any("ModelInferRequest.raw_input_contents: number" in d for d in diffs), diffs
