"""Requests larger than the inline-inspection limit (256 KiB) are inspected off the event loop and
still answered correctly, on unary calls and mixed with small ones on a stream, and are refused
with the same precise messages as small ones."""
import numpy as np
import pytest
import tritonclient.grpc as triton
from tritonclient.grpc import service_pb2, service_pb2_grpc
from tritonclient.utils import InferenceServerException

import grpc


@pytest.fixture
def client(inference_gateway):
    c = triton.InferenceServerClient(inference_gateway.plaintext_target)
    yield c
    c.close()


def identity_request(request_id, size):
    request = service_pb2.ModelInferRequest(model_name="simple_identity", id=request_id)
    request.inputs.add(name="INPUT0", datatype="BYTES", shape=[1, 1])
    payload = (request_id.encode() * (size // max(1, len(request_id)) + 1))[:size]
    request.raw_input_contents.append(len(payload).to_bytes(4, "little") + payload)
    return request, payload


def test_a_large_unary_request_is_answered(client):
    payload = np.array([[b"x" * (3 * 1024 * 1024)]], dtype=np.object_)
    inputs = [triton.InferInput("INPUT0", [1, 1], "BYTES")]
    inputs[0].set_data_from_numpy(payload)
    result = client.infer("simple_identity", inputs)
    assert result.as_numpy("OUTPUT0")[0][0] == payload[0][0]


def test_a_large_invalid_request_gets_the_precise_message(client):
    a = np.zeros((1, 16), np.int32)
    big = np.zeros((1, 100_000), np.int32)
    inputs = [triton.InferInput("INPUT0", [1, 100_000], "INT32"), triton.InferInput("INPUT1", [1, 16], "INT32")]
    inputs[0].set_data_from_numpy(big)
    inputs[1].set_data_from_numpy(a)
    with pytest.raises(InferenceServerException) as error:
        client.infer("simple", inputs)
    assert "INVALID_ARGUMENT" in str(error.value.status())
    assert "input 'INPUT0' has shape [1, 100000]; model 'simple' expects [-1, 16]" in error.value.message()


def test_large_and_small_messages_on_one_stream_are_all_answered(inference_gateway):
    with grpc.insecure_channel(inference_gateway.plaintext_target,
                               options=[("grpc.max_send_message_length", 64 << 20),
                                        ("grpc.max_receive_message_length", 64 << 20)]) as channel:
        stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
        sizes = [10, 2 * 1024 * 1024, 20, 1024 * 1024, 30]
        requests = [identity_request(f"r{i}", size) for i, size in enumerate(sizes)]
        responses = list(stub.ModelStreamInfer(iter([r for r, _ in requests]), timeout=30))
        assert [r.error_message for r in responses] == [""] * len(sizes)
        by_id = {r.infer_response.id: r.infer_response.raw_output_contents[0][4:] for r in responses}
        assert sorted(by_id) == sorted(f"r{i}" for i in range(len(sizes)))
        for request, payload in requests:
            assert by_id[request.id] == payload, request.id
