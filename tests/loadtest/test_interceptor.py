"""The interceptor that reports gRPC calls to locust (loadtest/interceptor.py).

Run in-process against the scripted fake server, with a recorder standing in for
locust's request event (the module does not import locust, which would patch pytest's
process for gevent); tests/loadtest/test_grpc_user.py checks it with locust's own.
"""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from client import Client, ClientError, InvalidInput, MalformedResponse, RetryPolicy
from loadtest.interceptor import LocustInterceptor
from tests.client.fake_server import Script, fake_server


class Recorder:
    """Stands in for locust's `environment.events.request`."""

    def __init__(self) -> None:
        self.fired: list[dict] = []

    def fire(self, **kwargs) -> None:
        self.fired.append(kwargs)


class ResponseSizes(grpc.UnaryUnaryClientInterceptor):
    """The size of each response, measured apart from the interceptor under test."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def intercept_unary_unary(self, continuation, client_call_details, request):
        outcome = continuation(client_call_details, request)
        if outcome.exception() is None:
            self.sizes.append(len(outcome.result().SerializeToString()))
        return outcome


def ticks(step: float):
    """A clock that advances `step` seconds per reading."""
    now = [100.0]

    def clock() -> float:
        now[0] += step
        return now[0]

    return clock


def images(n: int) -> np.ndarray:
    return np.random.default_rng(0).random((n, 28, 28), dtype=np.float32)


def client(target: str, interceptor: LocustInterceptor, *others, retries=0) -> Client:
    return Client(target, retries=retries, interceptors=[*others, interceptor])


def test_every_call_is_one_request_event_named_by_its_method():
    events, sizes = Recorder(), ResponseSizes()
    timing = LocustInterceptor(events, clock=ticks(0.25))
    with fake_server() as (target, _), client(target, timing, sizes) as mnist:
        mnist.predict_tensor(images(3))
        mnist.status()
    assert events.fired == [
        {
            "request_type": "grpc",
            "name": "Predict",
            "response_time": 250.0,
            "response_length": sizes.sizes[0],
            "exception": None,
            "context": {},
        },
        {
            "request_type": "grpc",
            "name": "GetModelStatus",
            "response_time": 250.0,
            "response_length": sizes.sizes[1],
            "exception": None,
            "context": {},
        },
    ]
    assert sizes.sizes[0] > 3 * 10 * 4  # three rows of ten float32 probabilities


def test_a_failed_call_is_reported_with_its_grpc_error():
    events = Recorder()
    script = Script(failures=[grpc.StatusCode.INVALID_ARGUMENT])
    with (
        fake_server(script) as (target, _),
        client(target, LocustInterceptor(events)) as mnist,
        pytest.raises(InvalidInput),  # outside a request block the client raises as ever
    ):
        mnist.predict_tensor(images(1))
    [event] = events.fired
    assert event["response_length"] == 0
    assert isinstance(event["exception"], grpc.RpcError)
    assert event["exception"].code() is grpc.StatusCode.INVALID_ARGUMENT


def test_a_request_block_names_its_calls_and_reports_them_when_it_ends():
    events = Recorder()
    timing = LocustInterceptor(events)
    with fake_server() as (target, _), client(target, timing) as mnist:
        with timing.request("Predict batch=2", digits=2):
            mnist.predict_tensor(images(2))
            assert events.fired == []  # not yet: the block may still refuse the answer
        mnist.predict_tensor(images(1))
    assert [(e["name"], e["context"], e["exception"]) for e in events.fired] == [
        ("Predict batch=2", {"digits": 2}, None),
        ("Predict", {}, None),
    ]


def test_a_failure_in_a_block_is_the_client_s_error_and_ends_the_block():
    events = Recorder()
    timing = LocustInterceptor(events)
    script = Script(failures=[grpc.StatusCode.INVALID_ARGUMENT])
    after = []
    with (
        fake_server(script) as (target, _),
        client(target, timing) as mnist,
        timing.request("Predict"),
    ):
        mnist.predict_tensor(images(1))
        after.append("ran")
    assert after == []
    [event] = events.fired
    assert isinstance(event["exception"], InvalidInput)  # what the client made of it
    assert "Predict mnist on" in str(event["exception"])


def test_an_answer_the_client_refuses_is_a_failure_with_its_size():
    events = Recorder()
    timing = LocustInterceptor(events)
    with (
        fake_server(Script(mode="nan")) as (target, _),
        client(target, timing) as mnist,
        timing.request("Predict"),
    ):
        mnist.predict_tensor(images(2))
    [event] = events.fired
    assert isinstance(event["exception"], MalformedResponse)
    assert event["response_length"] > 0  # it was answered


def test_each_retry_is_a_request_of_its_own():
    events = Recorder()
    timing = LocustInterceptor(events)
    script = Script(failures=[grpc.StatusCode.UNAVAILABLE] * 2)
    fast = RetryPolicy(retries=3, initial_backoff=0.01, max_backoff=0.05)
    with (
        fake_server(script) as (target, _),
        client(target, timing, retries=fast) as mnist,
        timing.request("Predict"),
    ):
        mnist.predict_tensor(images(1))
    codes = [e["exception"] and e["exception"].code() for e in events.fired]
    assert codes == [grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNAVAILABLE, None]


def test_what_a_block_cannot_report_is_raised():
    events = Recorder()
    timing = LocustInterceptor(events)
    with fake_server() as (target, _):
        closed = client(target, timing)
        closed.close()
        with pytest.raises(ClientError, match="closed"), timing.request("Predict"):
            closed.predict_tensor(images(1))  # no call was made: nothing to fail
        with client(target, timing) as mnist:
            with pytest.raises(KeyError), timing.request("Predict"):
                mnist.predict_tensor(images(1))
                raise KeyError("a bug in the test")
            with (
                pytest.raises(RuntimeError, match="opened inside request 'outer'"),
                timing.request("outer"),
                timing.request("inner"),
            ):
                pass
    assert [(e["name"], e["exception"]) for e in events.fired] == [("Predict", None)]
