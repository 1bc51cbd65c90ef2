"""The gRPC layer end to end against grpcio clients: the real `switchyard serve` process over h2c,
TLS and mutual TLS — health Check/Watch/List, reflection, metadata, large and compressed messages,
deadlines, cancellation, streaming and protocol errors."""
import subprocess
import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from google.protobuf.descriptor_pool import DescriptorPool

from conftest import REPO

MB = 1024 * 1024
ECHO_UNARY = "/switchyard.diagnostics.Echo/Unary"
ECHO_STREAM = "/switchyard.diagnostics.Echo/Stream"
OPTIONS = [("grpc.max_receive_message_length", 64 * MB), ("grpc.max_send_message_length", 64 * MB)]


def plaintext_channel(gateway):
    return grpc.insecure_channel(gateway.plaintext_target, options=OPTIONS)


def tls_channel(gateway, client_cert=False):
    root = (gateway.certs / "ca.pem").read_bytes()
    if client_cert:
        creds = grpc.ssl_channel_credentials(
            root, (gateway.certs / "client-key.pem").read_bytes(), (gateway.certs / "client.pem").read_bytes())
    else:
        creds = grpc.ssl_channel_credentials(root)
    return grpc.secure_channel(gateway.tls_target, creds, options=OPTIONS)


@pytest.fixture(params=["h2c", "tls", "mtls"])
def channel(request, gateway):
    ch = {"h2c": lambda: plaintext_channel(gateway), "tls": lambda: tls_channel(gateway),
          "mtls": lambda: tls_channel(gateway, client_cert=True)}[request.param]()
    yield ch
    ch.close()


def echo(channel):
    return channel.unary_unary(ECHO_UNARY, request_serializer=None, response_deserializer=None)


def test_health_check_reports_serving(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    assert stub.Check(health_pb2.HealthCheckRequest(), timeout=5).status == health_pb2.HealthCheckResponse.SERVING
    response = stub.Check(health_pb2.HealthCheckRequest(service="grpc.health.v1.Health"), timeout=5)
    assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_health_check_of_an_unknown_service_is_not_found(channel):
    with pytest.raises(grpc.RpcError) as error:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=5)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert "no.such.Service" in error.value.details()


def test_health_watch_streams_the_current_status(gateway):
    with plaintext_channel(gateway) as ch:
        stream = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest(), timeout=1)
        first = next(stream)
        assert first.status == health_pb2.HealthCheckResponse.SERVING
        unknown = next(health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest(service="later.Service"), timeout=1))
        assert unknown.status == health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
        with pytest.raises(grpc.RpcError) as error:
            next(stream)
        assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED


def test_reflection_lists_services_and_serves_descriptors(gateway):
    with plaintext_channel(gateway) as ch:
        database = ProtoReflectionDescriptorDatabase(ch)
        services = set(database.get_services())
        assert {"grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"} <= services
        pool = DescriptorPool(database)
        service = pool.FindServiceByName("inference.GRPCInferenceService")
        assert service.methods_by_name["ModelStreamInfer"].client_streaming
        request = pool.FindMessageTypeByName("inference.ModelInferRequest")
        assert request.fields_by_name["raw_input_contents"].number == 7
        with pytest.raises(KeyError):
            pool.FindMessageTypeByName("inference.NoSuchMessage")


def test_metadata_and_trailers_round_trip(channel):
    payload = b"\x00\x01binary\xff"
    response, call = echo(channel).with_call(
        payload, timeout=5,
        metadata=[("echo-text", "hello world"), ("echo-data-bin", b"\x00\xff\x10"), ("other", "not echoed")])
    assert response == payload
    initial = dict(call.initial_metadata())
    trailing = dict(call.trailing_metadata())
    assert initial["echo-text"] == "hello world"
    assert initial["echo-data-bin"] == b"\x00\xff\x10"
    assert "other" not in initial
    assert trailing["echo-trailer-text"] == "hello world"
    assert trailing["echo-trailer-data-bin"] == b"\x00\xff\x10"


def test_a_status_from_the_handler_reaches_the_client_with_its_message(channel):
    with pytest.raises(grpc.RpcError) as error:
        echo(channel)(b"", timeout=5, metadata=[("x-echo-status", "8"), ("x-echo-message", "quota 100%: try later")])
    assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.value.details() == "quota 100%: try later"


@pytest.mark.parametrize("size", [0, 1, 16 * 1024, 5 * MB, 20 * MB])
def test_large_messages_arrive_intact(gateway, size):
    payload = bytes((i * 7) & 0xFF for i in range(min(size, 1024))) * (size // 1024) + b"x" * (size % 1024)
    with plaintext_channel(gateway) as ch:
        assert echo(ch)(payload, timeout=30) == payload


def test_compressed_requests_and_responses(gateway):
    payload = b"compressible " * 100_000
    for compression in (grpc.Compression.Gzip, grpc.Compression.Deflate):
        with grpc.insecure_channel(gateway.plaintext_target, options=OPTIONS, compression=compression) as ch:
            assert echo(ch)(payload, timeout=10) == payload


def test_message_above_the_receive_limit_is_resource_exhausted(gateway):
    with plaintext_channel(gateway) as ch:
        with pytest.raises(grpc.RpcError) as error:
            echo(ch)(b"x" * (64 * MB + 1), timeout=30)
        assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # The connection is still good.
        assert echo(ch)(b"after", timeout=5) == b"after"


def test_deadline_exceeded_while_the_handler_works(gateway):
    with plaintext_channel(gateway) as ch:
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as error:
            echo(ch)(b"slow", timeout=0.3, metadata=[("x-echo-delay-ms", "3000")])
        assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert time.monotonic() - started < 2


def test_client_cancellation_reaches_the_handler(gateway):
    with plaintext_channel(gateway) as ch:
        future = echo(ch).future(b"to cancel", timeout=10, metadata=[("x-echo-delay-ms", "5000")])
        time.sleep(0.3)
        assert future.cancel()
        deadline = time.monotonic() + 5
        while "echo call cancelled" not in gateway.log_text() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "echo call cancelled" in gateway.log_text()


def test_bidirectional_stream_echoes_every_message_in_order(channel):
    stream = channel.stream_stream(ECHO_STREAM, request_serializer=None, response_deserializer=None)
    messages = [f"message {i}".encode() * (i % 50 + 1) for i in range(500)]
    assert list(stream(iter(messages), timeout=20)) == messages


def test_many_concurrent_calls_on_one_connection(gateway):
    with plaintext_channel(gateway) as ch:
        call = echo(ch)
        futures = [call.future(f"{i}".encode(), timeout=20) for i in range(300)]
        assert [f.result() for f in futures] == [f"{i}".encode() for i in range(300)]


def test_unknown_method_is_unimplemented(channel):
    with pytest.raises(grpc.RpcError) as error:
        channel.unary_unary("/no.such.Service/Method")(b"", timeout=5)
    assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "/no.such.Service/Method" in error.value.details()


def test_unary_method_with_two_request_messages_is_rejected(gateway):
    with plaintext_channel(gateway) as ch:
        stream_to_unary = ch.stream_unary("/grpc.health.v1.Health/Check", request_serializer=None, response_deserializer=None)
        request = health_pb2.HealthCheckRequest().SerializeToString()
        with pytest.raises(grpc.RpcError) as error:
            stream_to_unary(iter([request, request]), timeout=5)
        assert error.value.code() == grpc.StatusCode.INTERNAL


def test_malformed_request_message_is_invalid_argument(gateway):
    with plaintext_channel(gateway) as ch:
        check = ch.unary_unary("/grpc.health.v1.Health/Check", request_serializer=None, response_deserializer=None)
        with pytest.raises(grpc.RpcError) as error:
            check(b"\x0a\x05ab", timeout=5)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "grpc.health.v1.HealthCheckRequest" in error.value.details()


def nghttp(gateway, *args):
    return subprocess.run(
        ["nghttp", "-v", "--no-dep", *args], capture_output=True, text=True, timeout=10)


def test_non_grpc_content_type_gets_http_415(gateway):
    result = nghttp(gateway, "-H", ":method: POST", "-H", "content-type: text/plain",
                    f"http://{gateway.plaintext_target}/grpc.health.v1.Health/Check")
    assert ":status: 415" in result.stdout, result.stdout + result.stderr


def test_missing_te_trailers_is_refused_with_a_grpc_status(gateway):
    result = nghttp(gateway, "-H", ":method: POST", "-H", "content-type: application/grpc",
                    f"http://{gateway.plaintext_target}/grpc.health.v1.Health/Check")
    assert "grpc-status:" in result.stdout, result.stdout + result.stderr
    assert "grpc-status: 0" not in result.stdout


def test_unsupported_request_encoding_is_unimplemented_with_accepted_list(gateway):
    result = nghttp(gateway, "-H", ":method: POST", "-H", "content-type: application/grpc", "-H", "te: trailers",
                    "-H", "grpc-encoding: snappy", f"http://{gateway.plaintext_target}/grpc.health.v1.Health/Check")
    assert "grpc-status: 12" in result.stdout, result.stdout
    assert "grpc-accept-encoding: " in result.stdout and "gzip" in result.stdout


def test_openssl_client_negotiates_h2_with_tls13(gateway):
    result = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{gateway.tls_port}", "-alpn", "h2",
         "-CAfile", str(gateway.certs / "ca.pem"), "-servername", "localhost"],
        input="", capture_output=True, text=True, timeout=10)
    output = result.stdout + result.stderr
    assert "TLSv1.3" in output, output
    assert "ALPN protocol: h2" in output, output
    assert "Verify return code: 0 (ok)" in output, output
