"""Client and AsyncClient behaviour against the scripted in-process fake (no real model):
batching and order, retries only on UNAVAILABLE, deadlines, raised message limits,
malformed responses, readiness, argument checks, and the seams: interceptors, channel
options, per-call versions.

Past 400 lines on purpose: both clients are checked case by case against one scripted
fake server, so each behaviour's sync and async tests sit side by side.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import grpc
import numpy as np
import pytest

from client import (
    AsyncClient,
    Client,
    ClientError,
    DeadlineExceeded,
    ImageError,
    InvalidInput,
    MalformedResponse,
    ModelNotFound,
    RetryPolicy,
    ServerError,
    Unavailable,
    UsageError,
)
from client.preprocess import preprocess
from tests.client.fake_server import Script, fake_digit, fake_server
from tests.client.test_preprocess import digit

FAST_RETRIES = RetryPolicy(retries=3, initial_backoff=0.01, max_backoff=0.05)


def batch(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 28, 28), dtype=np.float32)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Seen(grpc.UnaryUnaryClientInterceptor):
    """Every call the channel makes, as (method, version asked for, status code)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object, grpc.StatusCode]] = []

    def intercept_unary_unary(self, continuation, client_call_details, request):
        outcome = continuation(client_call_details, request)
        error = outcome.exception()
        code = error.code() if error is not None else grpc.StatusCode.OK
        self.calls.append((client_call_details.method.rsplit("/", 1)[-1], asked(request), code))
        return outcome


class AioSeen(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    async def intercept_unary_unary(self, continuation, client_call_details, request):
        method = client_call_details.method
        method = method.decode() if isinstance(method, bytes) else method
        self.calls.append((method.rsplit("/", 1)[-1], asked(request)))
        return await continuation(client_call_details, request)


def asked(request) -> object:
    """The version a request's ModelSpec asks for: a number, a label, or None."""
    spec = request.model_spec
    if spec.HasField("version"):
        return spec.version.value
    return spec.version_label or None


def test_predict_tensor_batches_and_keeps_order():
    x = batch(150)
    with fake_server() as (target, script), Client(target) as client:
        predictions = client.predict_tensor(x, batch_size=64)
    assert script.batch_sizes == [64, 64, 22]
    assert [p.digit for p in predictions] == [fake_digit(image) for image in x]
    assert all(
        p.confidence == pytest.approx(0.91) and len(p.probabilities) == 10 for p in predictions
    )
    assert {(p.model, p.version) for p in predictions} == {("mnist", 1)}


def test_predict_many_preprocesses_each_image_in_order():
    images = [digit(i) for i in range(10)] + [255 - digit(10)]
    with fake_server() as (target, script), Client(target) as client:
        predictions = client.predict_many(iter(images), batch_size=4)  # any iterable
        single = client.predict(images[3])
    assert script.batch_sizes == [4, 4, 3, 1]
    expected = [fake_digit(preprocess(image)) for image in images]
    assert [p.digit for p in predictions] == expected
    assert single.digit == expected[3]


def test_predict_many_stops_at_an_unusable_image_before_its_batch_is_sent():
    images = [digit(0), digit(1), b"not a picture", digit(3)]
    with (
        fake_server() as (target, script),
        Client(target) as client,
        pytest.raises(ImageError, match=r"images\[2\] <13 bytes>"),
    ):
        client.predict_many(images, batch_size=2)
    assert script.batch_sizes == [2]  # the first batch went; the one holding it did not


def test_predict_batches_yields_each_batch_and_fails_images_one_by_one():
    from tests.client.test_preprocess import encode, page

    images = [encode(page(digit(i))) for i in range(3)] + [b"not a picture", digit(4)]
    names = [f"photo-{i}" for i in range(5)]
    kept = []

    def keep_picture(index, picture):
        kept.append(index)
        return picture.size

    with fake_server() as (target, script), Client(target) as client:
        batches = client.predict_batches(
            images, batch_size=2, names=names, keep_picture=keep_picture
        )
        first = next(batches)
        assert script.batch_sizes == [2]  # answered before the next batch is prepared
        rest = list(batches)
    assert [len(b) for b in [first, *rest]] == [2, 2, 1]
    results = [result for b in [first, *rest] for result in b]
    assert [r.index for r in results] == [0, 1, 2, 3, 4]
    assert [r.name for r in results] == names
    assert script.batch_sizes == [2, 1, 1]  # the unusable image is not sent
    bad = results[3]
    assert bad.prediction is None and bad.digit is None
    assert isinstance(bad.error, ImageError) and str(bad.error).startswith("photo-3: ")
    for result in results[:3] + results[4:]:
        assert result.error is None
        assert result.prediction.digit == fake_digit(preprocess(images[result.index]))
        assert result.digit.shape == (28, 28)
    assert kept == [0, 1, 2]  # decoded pictures only: an array has none
    assert [r.picture for r in results[:3]] == [page(digit(0)).size] * 3


def test_predict_batches_checks_its_arguments_at_once_and_raises_failed_calls():
    with Client(f"127.0.0.1:{closed_port()}", retries=0, timeout=2) as client:
        with pytest.raises(TypeError, match="use predict"):
            client.predict_batches("digit.png")  # before any iteration
        with pytest.raises(ValueError, match="batch_size"):
            client.predict_batches([digit(0)], batch_size=0)
        with pytest.raises(UsageError, match="names ran out at image 1"):
            list(client.predict_batches([digit(0), digit(1)], names=["a"]))
        with pytest.raises(UsageError, match="more names than images"):
            list(client.predict_batches([digit(0)], names=["a", "b"]))
        with pytest.raises(Unavailable):
            list(client.predict_batches([digit(0)]))


def test_retries_unavailable_then_succeeds():
    script = Script(failures=[grpc.StatusCode.UNAVAILABLE] * 2)
    with fake_server(script) as (target, _), Client(target, retries=FAST_RETRIES) as client:
        client.predict_tensor(batch(1))
    assert script.calls["Predict"] == 3


def test_gives_up_after_the_retries():
    script = Script(failures=[grpc.StatusCode.UNAVAILABLE] * 5)
    policy = RetryPolicy(retries=2, initial_backoff=0.01)
    with (
        fake_server(script) as (target, _),
        Client(target, retries=policy) as client,
        pytest.raises(Unavailable, match="after 3 attempts") as caught,
    ):
        client.predict_tensor(batch(1))
    assert script.calls["Predict"] == 3
    assert isinstance(caught.value.__cause__, grpc.RpcError)
    assert "scripted UNAVAILABLE" in str(caught.value)


def test_retries_zero_makes_one_attempt():
    script = Script(failures=[grpc.StatusCode.UNAVAILABLE] * 2)
    with (
        fake_server(script) as (target, _),
        Client(target, retries=0) as client,
        pytest.raises(Unavailable) as caught,
    ):
        client.predict_tensor(batch(1))
    assert script.calls["Predict"] == 1
    assert "attempts" not in str(caught.value)


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.INTERNAL,
    ],
)
def test_other_failures_are_not_retried(code):
    script = Script(failures=[code])
    with (
        fake_server(script) as (target, _),
        Client(target, retries=FAST_RETRIES) as client,
        pytest.raises(ClientError) as caught,
    ):
        client.predict_tensor(batch(1))
    assert script.calls["Predict"] == 1
    assert caught.value.code is code
    assert not isinstance(caught.value, grpc.RpcError)


def test_timeout_default_and_per_call_override():
    script = Script(delay=0.5)
    with fake_server(script) as (target, _), Client(target, timeout=0.1) as client:
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded) as caught:
            client.predict_tensor(batch(1))
        assert time.monotonic() - started < 0.45
        assert isinstance(caught.value, TimeoutError)
        assert client.predict_tensor(batch(1), timeout=5.0)  # the override lets it finish


def test_the_timeout_bounds_the_retries_too():
    script = Script(failures=[grpc.StatusCode.UNAVAILABLE] * 1000)
    policy = RetryPolicy(retries=1000, initial_backoff=0.05, max_backoff=0.05)
    with fake_server(script) as (target, _), Client(target, retries=policy, timeout=0.5) as client:
        started = time.monotonic()
        with pytest.raises((Unavailable, DeadlineExceeded)):
            client.status()
        assert time.monotonic() - started < 1.5


def test_unreachable_server_is_unavailable_not_a_hang():
    target = f"127.0.0.1:{closed_port()}"
    with Client(target, retries=FAST_RETRIES, timeout=5) as client:
        started = time.monotonic()
        with pytest.raises(Unavailable, match=f"Predict mnist on {target} failed: UNAVAILABLE"):
            client.predict_tensor(batch(1))
        assert time.monotonic() - started < 3


def test_retries_outlast_a_server_restart():
    """The server comes up 0.4 s after the first attempt; the retries reach it."""
    port = closed_port()
    started = threading.Event()
    stop = threading.Event()

    def serve_later():
        time.sleep(0.4)
        with fake_server(port=port):
            started.set()
            stop.wait(10)

    thread = threading.Thread(target=serve_later)
    thread.start()
    try:
        policy = RetryPolicy(retries=8, initial_backoff=0.1, max_backoff=0.4)
        with Client(f"127.0.0.1:{port}", retries=policy, timeout=5) as client:
            assert client.predict_tensor(batch(1))
        assert started.is_set()
    finally:
        stop.set()
        thread.join(10)


def test_message_limits_are_raised_both_ways():
    """A 6 MB request and a 8 MB response: both over gRPC's 4 MB default."""
    x = batch(2000)
    with fake_server(Script(mode="padded")) as (target, _), Client(target) as client:
        predictions = client.predict_tensor(x, batch_size=2000)
    assert len(predictions) == 2000


@pytest.mark.parametrize(
    ("mode", "message"),
    [
        ("bad_shape", r"has shape \(2, 9\), expected \(2, 10\)"),
        ("no_output", "no 'probabilities'"),
        ("nan", r"'probabilities' of image 1 are not finite"),
        ("negative", r"'probabilities' of image 1 are not in \[0, 1\] \(-0\.5\.\.0\.91\)"),
        ("unnormalized", r"'probabilities' of image 1 sum to 0.5, not 1"),
    ],
)
def test_malformed_responses_are_errors_of_their_own(mode, message):
    """NaN or negative probabilities used to pass as answers (and as invalid JSON)."""
    with (
        fake_server(Script(mode=mode)) as (target, _),
        Client(target) as client,
        pytest.raises(MalformedResponse, match=message) as caught,
    ):
        client.predict_tensor(batch(2))
    assert isinstance(caught.value, ServerError)  # what callers caught before


def test_metadata_and_its_type_check():
    with fake_server() as (target, script), Client(target) as client:
        meta = client.metadata()
        assert meta.signatures["serving_default"].inputs["images"].shape == (None, 28, 28, 1)
        script.mode = "bad_any"
        with pytest.raises(ServerError, match="unexpected signature_def type"):
            client.metadata()


def test_wait_until_ready_polls_until_available():
    script = Script(loading_polls=3)
    with fake_server(script) as (target, _), Client(target) as client:
        status = client.wait_until_ready(10, poll=0.01)
    assert status.available == (1,)
    assert script.calls["GetModelStatus"] == 4


def test_wait_until_ready_gives_up_with_what_it_saw():
    script = Script(loading_polls=10_000)
    with (
        fake_server(script) as (target, _),
        Client(target) as client,
        pytest.raises(DeadlineExceeded, match=r"not ready after 0\.3 s.*version 1 LOADING"),
    ):
        client.wait_until_ready(0.3, poll=0.05)
    with (
        Client(f"127.0.0.1:{closed_port()}", retries=0) as client,
        pytest.raises(DeadlineExceeded, match="UNAVAILABLE"),
    ):
        client.wait_until_ready(0.3, poll=0.05)


def test_an_interceptor_sees_every_call_retries_included():
    seen = Seen()
    script = Script(failures=[grpc.StatusCode.UNAVAILABLE] * 2)
    with (
        fake_server(script) as (target, _),
        Client(target, retries=FAST_RETRIES, interceptors=[seen]) as client,
    ):
        client.predict_tensor(batch(3))
        client.status()
        client.metadata()
    unavailable, ok = grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.OK
    assert seen.calls == [
        ("Predict", None, unavailable),
        ("Predict", None, unavailable),
        ("Predict", None, ok),
        ("GetModelStatus", None, ok),
        ("GetModelMetadata", None, ok),
    ]


def test_a_call_can_ask_for_another_version_than_the_client():
    seen = Seen()
    with (
        fake_server() as (target, script),
        Client(target, version_label="stable", interceptors=[seen]) as client,
    ):
        client.predict_tensor(batch(1))
        client.predict_tensor(batch(1), version_label="canary")
        client.predict_tensor(batch(1), version=2)
        client.predict(digit(0), version_label="canary")
        client.predict_many([digit(1)], version=3)
        list(client.predict_batches([digit(2)], version_label="canary"))
        client.status()
        script.failures = [grpc.StatusCode.NOT_FOUND]
        with pytest.raises(ModelNotFound, match="Predict mnist version label 'canary' on"):
            client.predict_tensor(batch(1), version_label="canary")
    assert [version for _, version, _ in seen.calls] == [
        "stable",
        "canary",
        2,
        "canary",
        3,
        "canary",
        "stable",
        "canary",
    ]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"version": 1, "version_label": "stable"}, UsageError, "not both"),
        ({"version_label": " "}, UsageError, "version_label must not be empty"),
        ({"version_label": 2}, TypeError, "version_label must be a str"),
        ({"version": "2"}, TypeError, "version must be an int"),
        ({"version": 0}, UsageError, "positive"),
    ],
)
def test_a_call_s_version_is_checked_before_anything_is_sent(kwargs, error, message):
    with fake_server() as (target, script), Client(target) as client:
        with pytest.raises(error, match=message):
            client.predict_tensor(batch(1), **kwargs)
        with pytest.raises(error, match=message):
            Client(target, **kwargs)
    assert script.calls == {}


def test_channel_options_reach_the_channel():
    """A receive limit under the response's size: the channel must refuse the answer."""
    limit = [("grpc.max_receive_message_length", 300)]
    with fake_server() as (target, _), Client(target, channel_options=limit) as client:
        assert client.predict_tensor(batch(1))  # about 100 bytes back
        with pytest.raises(ServerError, match="RESOURCE_EXHAUSTED"):
            client.predict_tensor(batch(20))  # about 900


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"interceptors": [object()]}, "Client takes grpc.UnaryUnaryClientInterceptor"),
        ({"interceptors": Seen()}, "interceptors must be a list"),
        ({"channel_options": [("grpc.lb_policy_name",)]}, "channel_options must be"),
        ({"channel_options": [("grpc.x", True)]}, "channel_options must be"),
        ({"channel_options": [(1, 1)]}, "channel_options must be"),
    ],
)
def test_seams_refuse_what_grpc_cannot_use(kwargs, message):
    with pytest.raises(TypeError, match=message):
        Client("localhost:1", **kwargs)


def test_closed_client_says_so():
    with fake_server() as (target, _):
        client = Client(target)
        client.close()
        client.close()  # idempotent
        with pytest.raises(ClientError, match="closed"):
            client.predict_tensor(batch(1))


def test_argument_checks():
    with pytest.raises(ValueError, match="not both"):
        Client("localhost:1", version=1, version_label="stable")
    with pytest.raises(ValueError, match="positive"):
        Client("localhost:1", version=0)
    with pytest.raises(ValueError, match="timeout"):
        Client("localhost:1", timeout=0)
    with pytest.raises(ValueError, match="retries"):
        Client("localhost:1", retries=-1)
    with Client("localhost:1") as client:
        with pytest.raises(ValueError, match="batch_size"):
            client.predict_many([digit(0)], batch_size=0)
        with pytest.raises(TypeError, match="use predict"):
            client.predict_many("digit.png")
        with pytest.raises(ValueError, match=r"shape \(n, 28, 28\)"):
            client.predict_tensor(np.zeros((2, 32, 32)))
        with pytest.raises(ValueError, match=r"in \[0, 1\]"):
            client.predict_tensor(np.full((1, 28, 28), 255.0))
        with pytest.raises(ValueError, match="timeout"):
            client.predict_tensor(batch(1), timeout=-1)
    with pytest.raises(ClientError, match="bad port"):
        Client("localhost:http")


# --- the asyncio twin ---


def test_async_batches_in_order_concurrently():
    x = batch(300)

    async def run(target):
        async with AsyncClient(target) as client:
            return await client.predict_tensor(x, batch_size=32)

    with fake_server(Script(delay=0.05)) as (target, script):
        started = time.monotonic()
        predictions = asyncio.run(run(target))
        elapsed = time.monotonic() - started
    assert [p.digit for p in predictions] == [fake_digit(image) for image in x]
    assert sorted(script.batch_sizes) == sorted([32] * 9 + [12])
    assert elapsed < 10 * 0.05  # 10 batches of 50 ms, overlapped


def test_async_predict_many_and_predict():
    images = [digit(i) for i in range(5)]

    async def run(target):
        async with AsyncClient(target) as client:
            many = await client.predict_many(images, batch_size=2)
            one = await client.predict(images[4])
            status = await client.wait_until_ready(5, poll=0.01)
            meta = await client.metadata()
            return many, one, status, meta

    with fake_server(Script(loading_polls=1)) as (target, _):
        many, one, status, meta = asyncio.run(run(target))
    expected = [fake_digit(preprocess(image)) for image in images]
    assert [p.digit for p in many] == expected and one.digit == expected[4]
    assert status.available == (1,) and "serving_default" in meta.signatures


def test_async_predict_batches_yields_results_with_their_failures():
    images = [digit(0), b"not a picture", digit(2)]

    async def run(target):
        async with AsyncClient(target) as client:
            return [batch async for batch in client.predict_batches(images, batch_size=2)]

    with fake_server() as (target, script):
        batches = asyncio.run(run(target))
    assert [[r.index for r in b] for b in batches] == [[0, 1], [2]]
    assert script.batch_sizes == [1, 1]
    results = [r for b in batches for r in b]
    assert isinstance(results[1].error, ImageError) and results[1].prediction is None
    assert [r.prediction.digit for r in (results[0], results[2])] == [
        fake_digit(preprocess(images[0])),
        fake_digit(preprocess(images[2])),
    ]


def test_async_retries_only_unavailable_and_times_out():
    async def run(target, script):
        async with AsyncClient(target, retries=FAST_RETRIES, timeout=0.2) as client:
            await client.predict_tensor(batch(1))
            assert script.calls["Predict"] == 3
            script.failures = [grpc.StatusCode.INVALID_ARGUMENT]
            with pytest.raises(InvalidInput):
                await client.predict_tensor(batch(1))
            assert script.calls["Predict"] == 4
            script.delay = 0.5
            with pytest.raises(DeadlineExceeded):
                await client.predict_tensor(batch(1))
        with pytest.raises(ClientError, match="closed"):
            await client.status()

    script = Script(failures=[grpc.StatusCode.UNAVAILABLE] * 2)
    with fake_server(script) as (target, _):
        asyncio.run(run(target, script))


def test_async_interceptors_see_every_call_and_its_version():
    seen = AioSeen()

    async def run(target):
        async with AsyncClient(target, retries=FAST_RETRIES, interceptors=[seen]) as client:
            await client.predict_tensor(batch(1))
            await client.predict_tensor(batch(1), version_label="canary")
            await client.predict(digit(0), version=2)
            await client.predict_many([digit(1)], version_label="stable")
            async for _ in client.predict_batches([digit(2)], version=4):
                pass
            await client.status()

    script = Script(failures=[grpc.StatusCode.UNAVAILABLE])
    with fake_server(script) as (target, _):
        asyncio.run(run(target))
    assert seen.calls == [
        ("Predict", None),
        ("Predict", None),  # the retry
        ("Predict", "canary"),
        ("Predict", 2),
        ("Predict", "stable"),
        ("Predict", 4),
        ("GetModelStatus", None),
    ]
    with pytest.raises(TypeError, match=r"AsyncClient takes grpc\.aio\."):
        AsyncClient("localhost:1", interceptors=[Seen()])  # grpc's, not grpc.aio's


def test_batches_keep_the_model_s_channel_axis():
    """Preprocessed batches are shaped (n, 28, 28, 1) once, as the model takes them,
    not stripped of the channel axis and given it back before sending."""
    from client import _core as core

    for shape in [(28, 28), (3, 28, 28), (3, 28, 28, 1)]:
        assert core.as_batch(np.zeros(shape, np.float32)).shape[1:] == (28, 28, 1)
    assert core.digits_batch([np.zeros((28, 28), np.float32)] * 2).shape == (2, 28, 28, 1)
