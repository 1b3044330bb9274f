"""The blocking client: one channel, TF Serving's API, MNIST-faithful preprocessing."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import Any

import grpc
import numpy as np

from client import _batches as batching
from client import _core as core
from client import _rpc as rpc
from client._channel import open_channel
from client._results import ImageResult, ModelMetadata, ModelStatus, Prediction
from client.preprocess import ImageInput, preprocess


class Client(core.BaseClient):
    """A connection to a TF Serving (or compatible) server hosting the MNIST model.

    `target` is "host:port", several of them comma-separated, or "dns:///name:port"
    (the last two balance requests round-robin over every address). `timeout` is each
    call's default limit in seconds, retries included; every method takes `timeout=` to
    override it. Calls failing with UNAVAILABLE are retried `retries` times with
    exponential backoff and jitter (`retries=0`: never). Errors are
    `client.errors.ClientError` subclasses.

    The predict methods take `version=` or `version_label=` to ask one call for another
    version than the client's. `interceptors` (grpc.UnaryUnaryClientInterceptor and its
    kin) see every attempt of every call on the client's channel, retries included, and
    `channel_options` are gRPC channel arguments on top of the client's own: the seams
    for measuring calls (the load test times each one) or tuning the connection.

        with Client("localhost:8500") as client:
            print(client.predict("digit.png").digit)
    """

    _INTERCEPTOR_TYPES = (
        grpc.UnaryUnaryClientInterceptor,
        grpc.UnaryStreamClientInterceptor,
        grpc.StreamUnaryClientInterceptor,
        grpc.StreamStreamClientInterceptor,
    )
    _INTERCEPTOR_KIND = "grpc.UnaryUnaryClientInterceptor (or another grpc client interceptor)"

    def _open_channel(self) -> grpc.Channel:
        return open_channel(self._config.channel)

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel; idempotent. Calls made afterwards raise ClientError."""
        self._is_closed = True
        if self._channel is not None:
            channel, self._channel = self._channel, None
            channel.close()

    def predict(
        self,
        image: ImageInput,
        *,
        timeout: float | None = None,
        version: int | None = None,
        version_label: str | None = None,
    ) -> Prediction:
        """Preprocess one image (path, bytes, file, PIL image or array) and classify it."""
        digit = preprocess(image)
        return self.predict_tensor(
            digit, timeout=timeout, version=version, version_label=version_label
        )[0]

    def predict_many(
        self,
        images: Iterable[ImageInput],
        *,
        batch_size: int = core.DEFAULT_BATCH_SIZE,
        timeout: float | None = None,
        version: int | None = None,
        version_label: str | None = None,
    ) -> list[Prediction]:
        """Classify many images, `batch_size` per Predict call; results in input order.

        `timeout` applies to each Predict call. An image that cannot be used raises
        ImageError naming it, before its batch is sent.
        """
        chosen = self._config.choose(version, version_label)
        batches = batching.prepared_batches(images, batch_size)
        return [
            result.prediction
            for batch in self._answered(batches, timeout, chosen, strict=True)
            for result in batch
        ]

    def predict_batches(
        self,
        images: Iterable[ImageInput],
        *,
        batch_size: int = core.DEFAULT_BATCH_SIZE,
        timeout: float | None = None,
        names: Iterable[str] | None = None,
        keep_picture: batching.KeepPicture | None = None,
        version: int | None = None,
        version_label: str | None = None,
    ) -> Iterator[list[ImageResult]]:
        """predict_many, one batch at a time: yields each batch's ImageResults, in input
        order, as soon as its Predict call is answered, for callers that show progress.

        An image that cannot be used does not stop the others: its result carries the
        error and the rest of its batch is sent. A failed call still raises. `names`
        (one per image) is how errors name the images; `keep_picture(index, picture)`
        is given each decoded picture, and what it returns is kept as the result's
        `picture` (a thumbnail, say) while the picture itself is let go.
        """
        chosen = self._config.choose(version, version_label)
        batches = batching.prepared_batches(
            images, batch_size, names=names, keep_picture=keep_picture
        )
        return self._answered(batches, timeout, chosen, strict=False)

    def predict_tensor(
        self,
        images: np.ndarray,
        *,
        batch_size: int = core.DEFAULT_BATCH_SIZE,
        timeout: float | None = None,
        version: int | None = None,
        version_label: str | None = None,
    ) -> list[Prediction]:
        """Classify images that are already MNIST-format: (n, 28, 28) floats in [0, 1],
        white on black. Nothing is preprocessed; use predict_many for pictures.
        """
        core.check_batch_size(batch_size)
        chosen = self._config.choose(version, version_label)
        batch = core.as_batch(images)
        results: list[Prediction] = []
        for chunk in core.chunks(batch, batch_size):
            results += self._predict_batch(chunk, timeout, chosen)
        return results

    def metadata(self, *, timeout: float | None = None) -> ModelMetadata:
        """The model's signatures: input and output names, dtypes and shapes."""
        response = self._call(
            rpc.GET_MODEL_METADATA,
            rpc.metadata_request(self._config.spec(signature=False)),
            timeout,
        )
        return rpc.metadata(response)

    def status(self, *, timeout: float | None = None) -> ModelStatus:
        """The model's versions and their states (LOADING, AVAILABLE, ...)."""
        response = self._call(
            rpc.GET_MODEL_STATUS,
            rpc.status_request(self._config.spec(signature=False)),
            timeout,
        )
        return rpc.status(response, self._config.model)

    def wait_until_ready(self, timeout: float = 30.0, *, poll: float = 0.2) -> ModelStatus:
        """Block until the model (the requested version, if any) is AVAILABLE.

        Keeps asking while the server is unreachable or the model is not loaded yet;
        raises DeadlineExceeded after `timeout` seconds, saying what it last saw.
        """
        wait = core.ReadyWait(self._config, timeout, poll)
        while (attempt_timeout := wait.attempt_timeout()) is not None:
            try:
                status = self.status(timeout=attempt_timeout)
            except core.NOT_READY as exc:
                wait.not_ready(exc)
            else:
                if wait.ready(status):
                    return status
            time.sleep(wait.pause())
        raise wait.expired()

    def _answered(
        self,
        batches: Iterator[list[ImageResult]],
        timeout: float | None,
        version: core.VersionChoice,
        *,
        strict: bool,
    ) -> Iterator[list[ImageResult]]:
        """Each prepared batch sent and given its predictions; `strict`: an image that
        could not be used raises before its batch is sent (predict_many)."""
        for batch in batches:
            if strict:
                batching.raise_first_error(batch)
            digits = batching.to_send(batch)
            predictions = [] if digits is None else self._predict_batch(digits, timeout, version)
            yield batching.answered(batch, predictions)

    def _predict_batch(
        self, batch: np.ndarray, timeout: float | None, version: core.VersionChoice
    ) -> list[Prediction]:
        request = rpc.predict_request(self._config.spec(version=version), batch)
        return rpc.predictions(self._call(rpc.PREDICT, request, timeout, version), len(batch))

    def _call(
        self,
        method: rpc.Method,
        request: Any,
        timeout: float | None,
        version: core.VersionChoice | None = None,
    ) -> Any:
        if self._is_closed:
            raise core.closed_error()
        stub = self._stubs[method.path]
        attempts = core.Attempts(self._config, method, timeout, version)
        while True:
            try:
                return stub(request, timeout=attempts.next_attempt())
            except grpc.RpcError as error:
                failure, delay = attempts.failed(error)
                if delay is None:
                    raise failure from error
            except ValueError as error:  # the channel was closed under a running call
                raise core.closed_error() from error
            time.sleep(delay)  # only reached after a retryable failure
