"""Our protobuf codec against tritonclient's generated Python stubs (protobuf's own runtime).

Messages that tritonclient encodes are decoded by `switchyard proto decode`, re-encoded by our
encoder, and parsed back by tritonclient: the result must equal the original, field by field.
Hypothesis generates the messages; hostile inputs must give a precise error, never a crash.
"""
import struct

from hypothesis import HealthCheck, given, settings, strategies as st
from tritonclient.grpc import model_config_pb2 as mc
from tritonclient.grpc import service_pb2 as pb

DATATYPES = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
             "FP16", "FP32", "FP64", "BYTES", "BF16"]
INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
UINT32 = st.integers(0, 2**32 - 1)
UINT64 = st.integers(0, 2**64 - 1)
names = st.text(max_size=12)


def fill_parameter(param, choice):
    kind, value = choice
    setattr(param, kind, value)


parameter_choices = st.one_of(
    st.tuples(st.just("bool_param"), st.booleans()),
    st.tuples(st.just("int64_param"), INT64),
    st.tuples(st.just("string_param"), names),
    st.tuples(st.just("double_param"), st.floats(allow_nan=False)),
    st.tuples(st.just("uint64_param"), UINT64),
)
parameter_maps = st.dictionaries(names, parameter_choices, max_size=3)


@st.composite
def tensor_contents(draw):
    contents = pb.InferTensorContents()
    small = {"max_size": 20}
    which = draw(st.sets(st.sampled_from(["bool", "int", "int64", "uint", "uint64", "fp32", "fp64", "bytes"]), max_size=3))
    if "bool" in which:
        contents.bool_contents.extend(draw(st.lists(st.booleans(), **small)))
    if "int" in which:
        contents.int_contents.extend(draw(st.lists(INT32, **small)))
    if "int64" in which:
        contents.int64_contents.extend(draw(st.lists(INT64, **small)))
    if "uint" in which:
        contents.uint_contents.extend(draw(st.lists(UINT32, **small)))
    if "uint64" in which:
        contents.uint64_contents.extend(draw(st.lists(UINT64, **small)))
    if "fp32" in which:
        contents.fp32_contents.extend(draw(st.lists(st.floats(width=32, allow_nan=False), **small)))
    if "fp64" in which:
        contents.fp64_contents.extend(draw(st.lists(st.floats(allow_nan=False), **small)))
    if "bytes" in which:
        contents.bytes_contents.extend(draw(st.lists(st.binary(max_size=16), max_size=5)))
    return contents


@st.composite
def infer_requests(draw):
    request = pb.ModelInferRequest(model_name=draw(names), model_version=draw(st.sampled_from(["", "1", "2"])), id=draw(names))
    for key, choice in draw(parameter_maps).items():
        fill_parameter(request.parameters[key], choice)
    for _ in range(draw(st.integers(0, 3))):
        tensor = request.inputs.add(name=draw(names), datatype=draw(st.sampled_from(DATATYPES)))
        tensor.shape.extend(draw(st.lists(st.integers(-1, 2**40), max_size=4)))
        for key, choice in draw(parameter_maps).items():
            fill_parameter(tensor.parameters[key], choice)
        if draw(st.booleans()):
            tensor.contents.CopyFrom(draw(tensor_contents()))
    for _ in range(draw(st.integers(0, 2))):
        output = request.outputs.add(name=draw(names))
        for key, choice in draw(parameter_maps).items():
            fill_parameter(output.parameters[key], choice)
    request.raw_input_contents.extend(draw(st.lists(st.binary(max_size=64), max_size=3)))
    return request


@st.composite
def infer_responses(draw):
    response = pb.ModelInferResponse(model_name=draw(names), model_version=draw(names), id=draw(names))
    for key, choice in draw(parameter_maps).items():
        fill_parameter(response.parameters[key], choice)
    for _ in range(draw(st.integers(0, 3))):
        tensor = response.outputs.add(name=draw(names), datatype=draw(st.sampled_from(DATATYPES)))
        tensor.shape.extend(draw(st.lists(st.integers(0, 2**20), max_size=4)))
        if draw(st.booleans()):
            tensor.contents.CopyFrom(draw(tensor_contents()))
    response.raw_output_contents.extend(draw(st.lists(st.binary(max_size=64), max_size=3)))
    return response


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(request=infer_requests())
def test_infer_requests_from_tritonclient_round_trip(proto_decoder, request):
    decoder = getattr(test_infer_requests_from_tritonclient_round_trip, "decoder", None)
    if decoder is None:
        decoder = test_infer_requests_from_tritonclient_round_trip.decoder = proto_decoder("inference.ModelInferRequest")
    ok, payload = decoder.decode(request.SerializeToString())
    assert ok, payload.decode()
    assert pb.ModelInferRequest.FromString(payload) == request


@SETTINGS
@given(response=infer_responses())
def test_infer_responses_from_tritonclient_round_trip(proto_decoder, response):
    decoder = getattr(test_infer_responses_from_tritonclient_round_trip, "decoder", None)
    if decoder is None:
        decoder = test_infer_responses_from_tritonclient_round_trip.decoder = proto_decoder("inference.ModelInferResponse")
    ok, payload = decoder.decode(response.SerializeToString())
    assert ok, payload.decode()
    assert pb.ModelInferResponse.FromString(payload) == response


def simple_request():
    request = pb.ModelInferRequest(model_name="simple", model_version="1", id="42")
    request.parameters["sequence_id"].uint64_param = 7
    for name in ("INPUT0", "INPUT1"):
        tensor = request.inputs.add(name=name, datatype="INT32")
        tensor.shape.extend([1, 16])
        request.raw_input_contents.append(struct.pack("<16i", *range(16)))
    request.outputs.add(name="OUTPUT0")
    return request


def test_the_simple_example_request_decodes_to_the_expected_fields(proto_decoder):
    ok, text = proto_decoder("inference.ModelInferRequest", "debug").decode(simple_request().SerializeToString())
    assert ok
    text = text.decode()
    assert 'modelName: "simple"' in text
    assert 'modelVersion: "1"' in text
    assert 'id: "42"' in text
    assert text.count('datatype: "INT32"') == 2
    assert "rawInputContents: <64 bytes: 0000000001000000" in text
    assert 'key: "sequence_id"' in text and "uint64: 7" in text


def test_model_config_and_statistics_round_trip(proto_decoder):
    config = mc.ModelConfig(name="simple", platform="switchyard", max_batch_size=8)
    config.input.add(name="INPUT0", data_type=mc.TYPE_INT32, dims=[16])
    config.output.add(name="OUTPUT0", data_type=mc.TYPE_INT32, dims=[16])
    config.dynamic_batching.max_queue_delay_microseconds = 100
    config.dynamic_batching.preferred_batch_size.extend([4, 8])
    config.instance_group.add(count=2, kind=mc.ModelInstanceGroup.KIND_CPU)
    config.parameters["key"].string_value = "value"
    response = pb.ModelConfigResponse(config=config)
    ok, payload = proto_decoder("inference.ModelConfigResponse").decode(response.SerializeToString())
    assert ok, payload.decode()
    assert pb.ModelConfigResponse.FromString(payload) == response

    stats = pb.ModelStatisticsResponse()
    model = stats.model_stats.add(name="simple", version="1", last_inference=1700000000000, inference_count=10, execution_count=5)
    model.inference_stats.success.count = 10
    model.inference_stats.success.ns = 12345
    model.batch_stats.add(batch_size=2).compute_infer.count = 5
    ok, payload = proto_decoder("inference.ModelStatisticsResponse").decode(stats.SerializeToString())
    assert ok, payload.decode()
    assert pb.ModelStatisticsResponse.FromString(payload) == stats


def test_hostile_inputs_give_precise_errors_and_the_decoder_goes_on(proto_decoder):
    decoder = proto_decoder("inference.ModelInferRequest")
    good = simple_request().SerializeToString()
    cases = {
        "truncated": (good[:-3], "runs past the end"),
        "overlong varint": (b"\xa0\x06" + b"\x80" * 10 + b"\x01", "varint longer than 10 bytes"),
        "length past end": (b"\x0a\xff\xff\xff\x0f" + b"x", "runs past the end"),
        "wrong wire type": (b"\x0d\x00\x00\x00\x00", "declared string"),
        "invalid utf-8": (b"\x0a\x02\xc3\x28", "not valid UTF-8"),
        "field zero": (b"\x00\x00", "field number 0"),
        "deep nesting": (b"\x9b\x06" * 200, "nested deeper than 100"),
    }
    for name, (data, expected) in cases.items():
        ok, message = decoder.decode(data)
        assert not ok, f"{name}: decoded"
        assert expected in message.decode(), f"{name}: {message.decode()}"
    ok, payload = decoder.decode(good)
    assert ok and pb.ModelInferRequest.FromString(payload) == simple_request()
