"""What a hostile or careless client can make the server do: bounded.

One server, started with small limits, serves the TF1 half_plus_two test model (no
training needed); each test sends it something too big, too slow or too long and checks
the clear error or the closed connection. Parsing large REST bodies off the event loop
and the whole-request timeout are checked in-process.

Past 400 lines on purpose: the cases share one server started with small limits, which
takes seconds to start.
"""

from __future__ import annotations

import asyncio
import json
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
import numpy as np
import pytest
import tensorflow as tf
from aiohttp.test_utils import TestClient, TestServer
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from serving import config, errors, rest, server
from serving.flags import IMPLEMENTED as FLAGS
from serving.manager import Manager, Options
from tests.certs import CertificateAuthority, ssl_config_text
from tests.conftest import RunningServer, free_port, running_server
from tests.serving import http2, testmodels

MAX_BYTES = 64 << 10
MAX_ROWS = 4
SHORT_MS = 1000  # the idle and body timeouts the test server runs with


@dataclass(frozen=True)
class Server:
    running: RunningServer
    rest_port: int

    def stub(self, **options) -> prediction_service_pb2_grpc.PredictionServiceStub:
        channel = grpc.insecure_channel(self.running.target, options=list(options.items()))
        return prediction_service_pb2_grpc.PredictionServiceStub(channel)


@pytest.fixture(scope="module")
def model_base(tmp_path_factory: pytest.TempPathFactory):
    return testmodels.half_plus_two_tf1(tmp_path_factory.mktemp("limits") / "tf1")


@pytest.fixture(scope="module")
def limited(model_base) -> Iterator[Server]:
    rest_port = free_port()
    flags = [
        "--model_name=tf1",
        f"--model_base_path={model_base}",
        f"--rest_api_port={rest_port}",
        "--listen_address=127.0.0.1",
        f"--max_request_bytes={MAX_BYTES}",
        f"--max_request_rows={MAX_ROWS}",
        f"--rest_api_idle_timeout_in_ms={SHORT_MS}",
        f"--rest_api_body_timeout_in_ms={SHORT_MS}",
        f"--grpc_channel_arguments=grpc.max_connection_idle_ms={SHORT_MS}",
    ]
    with running_server(flags, model_name="tf1") as running:
        running.wait_for_log("Exporting HTTP/REST API at:localhost:")
        yield Server(running, rest_port)


def predict_request(x: np.ndarray, name: str = "tf1") -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = name
    request.inputs["x"].CopyFrom(tf.make_tensor_proto(x.astype(np.float32)))
    return request


def rpc_error(stub, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        stub.Predict(request, timeout=30)
    return info.value


def http(port: int, raw: bytes, *, wait: float = 10.0) -> bytes:
    """Send raw bytes to the REST port and return all it answers until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(raw)
        return read_until_closed(sock, wait)


def read_until_closed(sock: socket.socket, wait: float) -> bytes:
    """Everything received until the server closes; fails if it has not within `wait`."""
    sock.settimeout(wait)
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    except TimeoutError:
        raise AssertionError(f"the server kept the connection open for {wait} s") from None
    return received


def post(path: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + body


def json_reply(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


# ---- error messages do not echo unbounded input ---------------------------------------


def test_bounded_keeps_short_messages_and_cuts_long_ones_at_both_ends():
    assert errors.bounded("Servable not found") == "Servable not found"
    long = "Servable not found for request: Specific(" + "é" * 100_000 + ", 7)"
    cut = errors.bounded(long)
    assert len(cut.encode()) <= errors.MAX_MESSAGE_BYTES
    assert cut.startswith("Servable not found for request: Specific(é")
    assert cut.endswith("é, 7)")
    assert "bytes left out" in cut


def test_a_huge_model_name_comes_back_as_the_error_not_as_a_trailer_overflow(limited):
    name = "m" * 60_000  # under the 64 KiB request limit; its echo is not
    error = rpc_error(limited.stub(), predict_request(np.array([[1.0]]), name=name))
    assert error.code() == grpc.StatusCode.NOT_FOUND, error.details()
    assert error.details().startswith("Servable not found for request: Latest(mmm")
    assert len(error.details()) <= errors.MAX_MESSAGE_BYTES


def test_rest_errors_do_not_echo_a_huge_signature_name(limited):
    body = json.dumps({"signature_name": "s" * 60_000, "instances": [[1.0]]}).encode()
    status, reply = json_reply(http(limited.rest_port, post("/v1/models/tf1:predict", body)))
    assert status == 400
    assert reply["error"].startswith('Serving signature name: "sss')
    assert reply["error"].endswith('" not found in signature def')
    assert len(reply["error"].encode()) <= errors.MAX_MESSAGE_BYTES


# ---- request size and rows -------------------------------------------------------------


def test_grpc_messages_over_max_request_bytes_are_refused_before_they_are_read(limited):
    big = np.ones((MAX_BYTES // 4 + 1024, 1))  # a little over the limit as float_val
    error = rpc_error(limited.stub(), predict_request(big))
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f"vs. {MAX_BYTES})" in error.details()  # "Received message larger than max"


def test_requests_over_max_request_rows_are_refused_with_the_flag_to_raise(limited):
    stub = limited.stub()
    reply = stub.Predict(predict_request(np.full((MAX_ROWS, 1), 2.0)), timeout=30)
    assert tf.make_ndarray(reply.outputs["y"]).ravel().tolist() == [3.0] * MAX_ROWS
    error = rpc_error(stub, predict_request(np.full((MAX_ROWS + 1, 1), 2.0)))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == (
        f"input x has {MAX_ROWS + 1} rows (dimension 0), more than the {MAX_ROWS} the server "
        "takes in one request without batching; send smaller requests, or raise "
        "--max_request_rows"
    )
    body = json.dumps({"instances": [[2.0]] * (MAX_ROWS + 1)}).encode()
    status, reply = json_reply(http(limited.rest_port, post("/v1/models/tf1:predict", body)))
    assert (status, reply["error"]) == (400, error.details())


def test_rest_bodies_over_max_request_bytes_are_413(limited):
    body = b"[" + b"1," * MAX_BYTES + b"1]"
    status, reply = json_reply(http(limited.rest_port, post("/v1/models/tf1:predict", body)))
    assert status == 413
    assert reply["error"] == (
        f"Request body is larger than the server's limit of {MAX_BYTES} bytes "
        "(--max_request_bytes raises it)"
    )


# ---- connections that hold a descriptor and send nothing ---------------------------------


def test_idle_and_slowloris_rest_connections_are_closed(limited):
    assert http(limited.rest_port, b"", wait=10 * SHORT_MS / 1000) == b""  # sent nothing
    with socket.create_connection(("127.0.0.1", limited.rest_port), timeout=10) as sock:
        sock.sendall(b"GET /v1/models/tf1 HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        sock.settimeout(0.1)
        started, closed = time.monotonic(), False
        while not closed and time.monotonic() - started < 10 * SHORT_MS / 1000:
            try:  # a byte of a header every 0.1 s, never the end of the headers
                sock.sendall(b"a")
                closed = sock.recv(1) == b""
            except TimeoutError:
                continue
            except OSError:
                closed = True
        assert closed


def test_a_slow_rest_body_is_408_and_the_connection_closed(limited):
    head = b"POST /v1/models/tf1:predict HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
    started = time.monotonic()
    raw = http(limited.rest_port, head + b'{"instances": ')
    assert time.monotonic() - started < 10 * SHORT_MS / 1000
    status, reply = json_reply(raw)
    assert status == 408
    assert reply["error"] == (
        f"The request body did not arrive within {SHORT_MS} ms (--rest_api_body_timeout_in_ms)"
    )


def test_an_idle_grpc_connection_is_closed(limited):
    host, port = limited.running.target.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        # HTTP/2's client preface and an empty SETTINGS frame: a connection, no call.
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        read_until_closed(sock, 10 * SHORT_MS / 1000)


def test_grpc_connection_limits_have_defaults_that_channel_arguments_override(monkeypatch):
    captured: list = []
    monkeypatch.setattr(grpc.aio, "server", lambda options: captured.append(options))
    monkeypatch.setattr(server, "add_to_server", lambda *args: None)
    server.ModelServer(None, None, channel_arguments=[("grpc.max_connection_idle_ms", 5)])
    first: dict = {}
    for key, value in captured[0]:  # gRPC takes the first value given for a key
        first.setdefault(key, value)
    assert first["grpc.max_connection_idle_ms"] == 5
    assert first["grpc.keepalive_time_ms"] > 0
    assert first["grpc.keepalive_timeout_ms"] > 0
    assert 0 < first["grpc.server_handshake_timeout_ms"] <= 60_000
    assert first["grpc.max_receive_message_length"] == server.MAX_MESSAGE_BYTES
    assert 0 < dict(server.CONNECTION_ARGUMENTS)["grpc.max_connection_idle_ms"] <= 300_000


def test_grpc_connections_have_a_maximum_age_that_bounds_any_of_them():
    defaults = dict(server.CONNECTION_ARGUMENTS)
    age = defaults["grpc.max_connection_age_ms"]
    grace = defaults["grpc.max_connection_age_grace_ms"]
    assert 0 < grace < age
    assert age * 1.1 + grace <= 390_000  # 6.5 minutes, gRPC's +10% jitter included
    assert grace >= 2 * FLAGS["rest_api_timeout_in_ms"][1]  # room for any call
    help_text = FLAGS["grpc_channel_arguments"][2]
    for key, value in server.CONNECTION_ARGUMENTS:  # the flag's help says what they are
        assert f"{key}={value}" in help_text


def trickle(sock: socket.socket, seconds: float) -> tuple[list[bytes], float]:
    """Send one byte of the open call's message every 0.1 s, answering the server's
    SETTINGS and PINGs as a live client does, until the server closes the connection:
    the GOAWAY frames' debug data, and when it closed (seconds from now)."""
    started, reader, goaways = time.monotonic(), http2.FrameReader(), []
    while time.monotonic() - started < seconds:
        try:
            sock.sendall(http2.frame(http2.DATA, 0, 1, b"a"))
            if not select.select([sock], [], [], 0.1)[0]:
                continue
            data = sock.recv(65536)
        except (BrokenPipeError, ConnectionResetError):
            data = b""
        if not data:
            return goaways, time.monotonic() - started
        for kind, frame_flags, payload in reader.feed(data):
            if kind == http2.GOAWAY:
                goaways.append(payload[8:])
            elif kind in (http2.SETTINGS, http2.PING) and not frame_flags & http2.ACK:
                reply = payload if kind == http2.PING else b""
                sock.sendall(http2.frame(kind, http2.ACK, 0, reply))
    raise AssertionError(f"the server kept the trickling connection open for {seconds} s")


def test_a_grpc_message_trickled_in_is_cut_off_by_the_connection_age(model_base):
    # No deadline, pings answered, a call open: nothing else would end this connection.
    age_ms, grace_ms = 2000, 1000
    arguments = f"grpc.max_connection_age_ms={age_ms},grpc.max_connection_age_grace_ms={grace_ms}"
    flags = [
        "--model_name=tf1",
        f"--model_base_path={model_base}",
        f"--grpc_channel_arguments={arguments}",
    ]
    with running_server(flags, model_name="tf1") as running:
        host, port = running.target.split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                http2.PREFACE
                + http2.frame(http2.SETTINGS, 0, 0)
                + http2.request_headers("/tensorflow.serving.PredictionService/Predict")
                + http2.frame(http2.DATA, 0, 1, http2.message_prefix(1000))  # 100 s at 10 B/s
            )
            goaways, seconds = trickle(sock, 30)
    assert b"max_age" in goaways  # gRPC's reason for the GOAWAY: the connection's age
    earliest, latest = (0.9 * age_ms + grace_ms) / 1000, (1.1 * age_ms + grace_ms) / 1000
    assert earliest - 0.3 <= seconds <= latest + 2, seconds


# ---- the listening address, and REST beside gRPC's TLS ------------------------------------


def test_listen_address_binds_both_apis_to_it(limited):
    assert "Running gRPC ModelServer at 127.0.0.1:" in limited.running.log()
    grpc_port = int(limited.running.target.split(":")[1])
    for port in (grpc_port, limited.rest_port):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        with pytest.raises(OSError):  # another loopback address: not listened on
            socket.create_connection(("127.0.0.2", port), timeout=5).close()


def test_rest_under_ssl_config_says_it_is_plaintext(model_base, tmp_path):
    authority = CertificateAuthority()
    ssl_config = tmp_path / "ssl.config"
    ssl_config.write_text(ssl_config_text(authority.issue("localhost", server=True)))
    rest_port = free_port()
    flags = [
        "--model_name=tf1",
        f"--model_base_path={model_base}",
        f"--rest_api_port={rest_port}",
        f"--ssl_config_file={ssl_config}",
    ]
    with running_server(flags, model_name="tf1") as running:
        running.wait_for_log("the REST API on port")
        assert f"the REST API on port {rest_port} is plaintext HTTP" in running.log()
        raw = http(
            rest_port, b"GET /v1/models/tf1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        assert json_reply(raw)[0] == 200


# ---- REST: large bodies off the event loop; the timeout covers the whole request ---------


@pytest.fixture(scope="module")
def manager(model_base) -> Manager:
    manager = Manager(Options(enable_warmup=False))
    manager.apply_config(config.single_model("tf1", str(model_base)))
    return manager


async def direct(servable, signature, arrays):
    return servable.run(signature, arrays)


def loads_seconds(body: bytes) -> float:
    """How long json.loads holds the GIL, and so would stall the loop from a thread."""
    started = time.perf_counter()
    json.loads(body)
    return time.perf_counter() - started


def post_measuring_loop_lag(
    manager: Manager, path: str, body: bytes, warm: bytes
) -> tuple[int, dict, float]:
    """POST `body` to `path` and return the status, the reply and the event loop's worst
    lag meanwhile. `warm`, 64 KiB or more, is posted first: the parser processes' start
    is not what is measured."""

    async def scenario() -> tuple[int, dict, float]:
        app = rest.build_app(manager, direct, timeout_s=120)
        async with TestClient(TestServer(app)) as client:
            warmed = await client.post(path, data=warm)
            assert warmed.status == 200, await warmed.text()
            lag, done = 0.0, False

            async def tick():
                nonlocal lag
                while not done:
                    before = time.perf_counter()
                    await asyncio.sleep(0.01)
                    lag = max(lag, time.perf_counter() - before - 0.01)

            ticker = asyncio.create_task(tick())
            response = await client.post(path, data=body)
            done = True
            await ticker
            return response.status, await response.json(), lag

    return asyncio.run(scenario())


def test_a_large_body_is_parsed_without_stalling_the_event_loop(manager):
    body = json.dumps({"instances": [[0.123456]] * 600_000}).encode()  # ~8 MB
    parse_s = loads_seconds(body)
    warm = json.dumps({"instances": [[1.0]] * 10_000}).encode()
    status, _, lag = post_measuring_loop_lag(manager, "/v1/models/tf1:predict", body, warm)
    assert status == 200
    # In a thread, json.loads alone holds the GIL (and so the loop) for parse_s.
    assert lag < max(0.25, parse_s / 3), (lag, parse_s)


def test_a_large_classify_body_is_parsed_without_stalling_the_event_loop(manager):
    # 2,000 examples with 1,000 floats each in a feature the model does not read: ~20 MB,
    # whose json.loads takes long enough to show, and few rows, so that running the model
    # and writing the answer (on the loop here) cost little. The tf.Examples are built in
    # the worker process too (they used to be built in a thread, which had to import TF).
    rows = [{"x": 0.5, "pad": [0.123456] * 1_000} for _ in range(2_000)]
    body = json.dumps({"signature_name": "classify_x_to_y", "examples": rows}).encode()
    parse_s = loads_seconds(body)
    warm = json.dumps({"signature_name": "classify_x_to_y", "examples": rows[:10]}).encode()
    path = "/v1/models/tf1:classify"
    status, reply, lag = post_measuring_loop_lag(manager, path, body, warm)
    assert status == 200, reply
    assert len(reply["results"]) == len(rows)
    assert reply["results"][0] == [["", 2.25]] == reply["results"][-1]
    assert lag < max(0.25, parse_s / 3), (lag, parse_s)


def test_the_rest_timeout_covers_reading_the_body(manager):
    async def scenario() -> tuple[int, dict, float]:
        app = rest.build_app(manager, direct, timeout_s=0.3)
        async with TestServer(app) as test_server:
            reader, writer = await asyncio.open_connection("127.0.0.1", test_server.port)
            body = b'{"instances": [[1.0]]}'
            writer.write(post("/v1/models/tf1:predict", body)[: -len(body) // 2])
            started = time.monotonic()
            raw = await asyncio.wait_for(reader.read(), 10)  # the rest never comes
            writer.close()
            return *json_reply(raw), time.monotonic() - started

    status, reply, seconds = asyncio.run(scenario())
    assert (status, reply) == (504, {"error": rest.TIMEOUT_MESSAGE})
    assert seconds < 5
