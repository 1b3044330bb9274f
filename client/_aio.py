"""The asyncio client (grpc.aio): Client's API with awaitable calls, for high concurrency.

Thousands of requests can be in flight on one channel without a thread each.
Preprocessing runs in a worker thread so decoding a large photo never stalls the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Iterator
from types import TracebackType
from typing import Any

import grpc
import numpy as np

from client import _batches as batching
from client import _core as core
from client import _rpc as rpc
from client._channel import open_aio_channel
from client._results import ImageResult, ModelMetadata, ModelStatus, Prediction
from client.preprocess import ImageInput, preprocess

# Batches of one predict_many call in flight at once: enough to overlap network and
# server time, few enough not to crowd out other callers on the same channel.
MAX_CONCURRENT_BATCHES = 4


class AsyncClient(core.BaseClient):
    """Client's asyncio twin; the same arguments, the same methods, awaited.

        async with AsyncClient("localhost:8500") as client:
            predictions = await client.predict_many(paths)

    The channel is opened on first use, inside the running event loop. `interceptors`
    are grpc.aio's (grpc.aio.UnaryUnaryClientInterceptor and its kin).
    """

    _INTERCEPTOR_TYPES = (grpc.aio.ClientInterceptor,)
    _INTERCEPTOR_KIND = "grpc.aio.UnaryUnaryClientInterceptor (or another grpc.aio one)"

    def _open_channel(self) -> None:  # the channel waits for the first call, in its loop
        return None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel; idempotent. Calls made afterwards raise ClientError."""
        self._is_closed = True
        if self._channel is not None:
            channel, self._channel = self._channel, None
            await channel.close()

    async def predict(
        self,
        image: ImageInput,
        *,
        timeout: float | None = None,
        version: int | None = None,
        version_label: str | None = None,
    ) -> Prediction:
        """Preprocess one image (path, bytes, file, PIL image or array) and classify it."""
        chosen = self._config.choose(version, version_label)
        digit = await asyncio.to_thread(preprocess, image)
        return (await self._predict_batch(core.digits_batch([digit]), timeout, chosen))[0]

    async def predict_many(
        self,
        images: Iterable[ImageInput],
        *,
        batch_size: int = core.DEFAULT_BATCH_SIZE,
        timeout: float | None = None,
        version: int | None = None,
        version_label: str | None = None,
    ) -> list[Prediction]:
        """Classify many images, `batch_size` per Predict call; results in input order.

        Up to MAX_CONCURRENT_BATCHES batches are in flight at once; `timeout` applies
        to each Predict call. An image that cannot be used raises ImageError naming it
        before anything is sent.
        """
        chosen = self._config.choose(version, version_label)
        prepared = batching.prepared_batches(images, batch_size)
        batches = await asyncio.to_thread(list, prepared)
        for batch in batches:
            batching.raise_first_error(batch)  # so every batch has its digits to send
        digits = [batching.to_send(b) for b in batches]
        return await self._predict_batches(digits, timeout, chosen)

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
    ) -> AsyncIterator[list[ImageResult]]:
        """Client.predict_batches, for `async for`: each batch is prepared in a worker
        thread and sent once the one before it is answered."""
        chosen = self._config.choose(version, version_label)
        prepared = batching.prepared_batches(
            images, batch_size, names=names, keep_picture=keep_picture
        )
        return self._answered(prepared, timeout, chosen)

    async def predict_tensor(
        self,
        images: np.ndarray,
        *,
        batch_size: int = core.DEFAULT_BATCH_SIZE,
        timeout: float | None = None,
        version: int | None = None,
        version_label: str | None = None,
    ) -> list[Prediction]:
        """Classify already MNIST-format images: (n, 28, 28) floats in [0, 1]."""
        core.check_batch_size(batch_size)
        chosen = self._config.choose(version, version_label)
        chunks = core.chunks(core.as_batch(images), batch_size)
        return await self._predict_batches(chunks, timeout, chosen)

    async def metadata(self, *, timeout: float | None = None) -> ModelMetadata:
        """The model's signatures: input and output names, dtypes and shapes."""
        request = rpc.metadata_request(self._config.spec(signature=False))
        return rpc.metadata(await self._call(rpc.GET_MODEL_METADATA, request, timeout))

    async def status(self, *, timeout: float | None = None) -> ModelStatus:
        """The model's versions and their states (LOADING, AVAILABLE, ...)."""
        request = rpc.status_request(self._config.spec(signature=False))
        response = await self._call(rpc.GET_MODEL_STATUS, request, timeout)
        return rpc.status(response, self._config.model)

    async def wait_until_ready(self, timeout: float = 30.0, *, poll: float = 0.2) -> ModelStatus:
        """Wait until the model (the requested version, if any) is AVAILABLE."""
        wait = core.ReadyWait(self._config, timeout, poll)
        while (attempt_timeout := wait.attempt_timeout()) is not None:
            try:
                status = await self.status(timeout=attempt_timeout)
            except core.NOT_READY as exc:
                wait.not_ready(exc)
            else:
                if wait.ready(status):
                    return status
            await asyncio.sleep(wait.pause())
        raise wait.expired()

    async def _predict_batches(
        self, batches: list[np.ndarray], timeout: float | None, version: core.VersionChoice
    ) -> list[Prediction]:
        limit = asyncio.Semaphore(MAX_CONCURRENT_BATCHES)

        async def one(batch: np.ndarray) -> list[Prediction]:
            async with limit:
                return await self._predict_batch(batch, timeout, version)

        tasks = [asyncio.ensure_future(one(batch)) for batch in batches]
        try:
            done = await asyncio.gather(*tasks)
        finally:
            for task in tasks:  # one batch failed: do not leave the others running
                task.cancel()
        return [prediction for batch in done for prediction in batch]

    async def _answered(
        self,
        batches: Iterator[list[ImageResult]],
        timeout: float | None,
        version: core.VersionChoice,
    ) -> AsyncIterator[list[ImageResult]]:
        while (batch := await asyncio.to_thread(next, batches, None)) is not None:
            digits = batching.to_send(batch)
            predictions = (
                [] if digits is None else await self._predict_batch(digits, timeout, version)
            )
            yield batching.answered(batch, predictions)

    async def _predict_batch(
        self, batch: np.ndarray, timeout: float | None, version: core.VersionChoice
    ) -> list[Prediction]:
        request = rpc.predict_request(self._config.spec(version=version), batch)
        response = await self._call(rpc.PREDICT, request, timeout, version)
        return rpc.predictions(response, len(batch))

    def _stub(self, method: rpc.Method) -> Any:
        if self._is_closed:
            raise core.closed_error()
        if self._channel is None:
            self._channel = open_aio_channel(self._config.channel)
            self._stubs = core.stubs(self._channel)
        return self._stubs[method.path]

    async def _call(
        self,
        method: rpc.Method,
        request: Any,
        timeout: float | None,
        version: core.VersionChoice | None = None,
    ) -> Any:
        stub = self._stub(method)
        attempts = core.Attempts(self._config, method, timeout, version)
        while True:
            try:
                return await stub(request, timeout=attempts.next_attempt())
            except grpc.RpcError as error:
                failure, delay = attempts.failed(error)
                if delay is None:
                    raise failure from error
            except grpc.aio.UsageError as error:  # the channel was closed under a call
                raise core.closed_error() from error
            await asyncio.sleep(delay)  # only reached after a retryable failure
