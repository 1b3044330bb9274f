"""A reusable locust User for TF Serving's gRPC Predict, built on the client SDK.

gRPC's C core does its own blocking I/O, which gevent cannot switch away from, so
without grpc's gevent integration every call blocks the whole locust process: measured
here, 32 users then behave like one (250 req/s at 3 ms each, against 600 req/s with
it). With it, calls yield to other users as HTTP requests do. It must be switched on
before the first channel exists: this module does it on import, and channels are only
created when users start.

Requests reuse the SDK's pieces (channel options and TLS, ModelSpec and PredictRequest
building, response checking, error classes) rather than `client.Client`, because a
load test needs three things Client does not expose: the response size for locust's
statistics, a version label chosen per request, and no retries (a retried UNAVAILABLE
would hide the failure and inflate the latency of the call that reports it).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any, ClassVar

import grpc
import grpc.experimental.gevent
from locust import User, constant
from locust.exception import StopUser

from client import _rpc as rpc
from client._channel import ChannelSpec, channel_spec, open_channel
from client._results import Prediction
from client.errors import ClientError, from_rpc_error
from client.protos import tfs_pb2
from loadtest import hooks, options
from loadtest.digits import Digits
from loadtest.digits import load as load_digits

grpc.experimental.gevent.init_gevent()

SIGNATURE = "serving_default"


def _sized_response(data: bytes) -> tuple[int, Any]:
    """Deserialize a PredictResponse, keeping its wire size for locust's statistics."""
    return len(data), rpc.PREDICT.response.FromString(data)


class GrpcUser(User):
    """One simulated client: its own channel and connection, a closed request loop.

    A user sends its next request as soon as the previous one is answered, so the user
    count is the number of requests in flight. Each user has its own HTTP/2 connection
    (a local subchannel pool), as independent clients would: behind a Kubernetes
    Service, connections, not requests, are what kube-proxy spreads over the pods.

    Subclasses write tasks that call `predict_digits`. Requests are recorded in locust's
    statistics as request_type "grpc" under the given name; wrong digits are counted
    in hooks.TALLY (see loadtest/correctness.py for why they are not failures).
    """

    abstract = True
    wait_time: ClassVar[Callable[..., float]] = constant(0)

    settings: options.Settings
    digits: Digits
    rng: random.Random

    def on_start(self) -> None:
        try:
            self.settings = options.settings(self.environment.parsed_options, self.host)
        except ValueError as exc:  # only from the web UI: the command line is checked at init
            raise StopUser(f"cannot start a user: {exc}") from None
        self.digits = load_digits()
        self.rng = random.Random()
        spec = channel_spec(self.settings.target, tls=self.settings.tls)
        own_connection = ChannelSpec(
            spec.target, (*spec.options, ("grpc.use_local_subchannel_pool", 1)), spec.credentials
        )
        self._channel = open_channel(own_connection)
        self._predict = self._channel.unary_unary(
            rpc.PREDICT.path,
            request_serializer=rpc.PREDICT.request.SerializeToString,
            response_deserializer=_sized_response,
        )
        self._specs: dict[str | None, tfs_pb2.ModelSpec] = {}

    def on_stop(self) -> None:
        channel = getattr(self, "_channel", None)
        if channel is not None:
            channel.close()
            self._channel = None

    def predict_digits(
        self, count: int = 1, *, name: str = "Predict", label: str | None = None
    ) -> list[Prediction] | None:
        """One Predict with `count` random test digits, timed, recorded and checked.

        Returns the predictions, or None when the call failed (recorded as a failure).
        """
        images, labels = self.digits.pick(self.rng, count)
        request = rpc.predict_request(self._spec(label), images)
        size, error, predictions = 0, None, None
        start = time.perf_counter()
        try:
            size, response = self._predict(request, timeout=self.settings.request_timeout)
        except grpc.RpcError as exc:
            error = from_rpc_error(exc, f"Predict {self.settings.model}", self.settings.target)
        elapsed_ms = (time.perf_counter() - start) * 1000
        if error is None:
            try:
                predictions = rpc.predictions(response, count)
            except ClientError as exc:  # answered OK, but not with what MNIST returns
                error = exc
        self.environment.events.request.fire(
            request_type="grpc",
            name=name,
            response_time=elapsed_ms,
            response_length=size,
            exception=error,
            context={"label": label, "digits": count},
        )
        if predictions is not None:
            wrong = sum(p.digit != int(y) for p, y in zip(predictions, labels, strict=True))
            hooks.TALLY.add(name, predictions[0].version, count, wrong)
        return predictions

    def _spec(self, label: str | None) -> tfs_pb2.ModelSpec:
        spec = self._specs.get(label)
        if spec is None:
            spec = self._specs[label] = rpc.model_spec(self.settings.model, None, label, SIGNATURE)
        return spec
