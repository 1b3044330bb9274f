"""What Client and AsyncClient share: configuration, input checks, batching, retry bookkeeping.

Only the act of calling differs between the two (blocking vs. awaiting), so everything
else lives here once and the two classes stay thin.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
import numpy as np

from client import _rpc as rpc
from client._channel import (
    DEFAULT_TARGET,
    MAX_MESSAGE_BYTES,
    ChannelOption,
    ChannelSpec,
    RetryPolicy,
    TLSConfig,
    channel_spec,
)
from client._results import ModelStatus
from client.errors import (
    ClientError,
    DeadlineExceeded,
    ModelNotFound,
    RpcFailed,
    Unavailable,
    UsageError,
    UsageTypeError,
    from_rpc_error,
    status_code,
)
from client.protos import tfs_pb2

DEFAULT_BATCH_SIZE = 64


@dataclass(frozen=True)
class VersionChoice:
    """Which version of the model a call asks for: a number, a label, or (neither) the
    newest the server has."""

    number: int | None = None
    label: str | None = None

    def __str__(self) -> str:
        if self.number is not None:
            return f"version {self.number}"
        return "" if self.label is None else f"version label {self.label!r}"


def version_choice(version: int | None, version_label: str | None) -> VersionChoice:
    if version is not None and version_label is not None:
        raise UsageError("pass version or version_label, not both")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise UsageTypeError(f"version must be an int, got {version!r}")
    if version is not None and version < 1:
        raise UsageError(f"version must be a positive integer, got {version}")
    if version_label is not None and not isinstance(version_label, str):
        raise UsageTypeError(f"version_label must be a str, got {version_label!r}")
    if version_label is not None and not version_label.strip():
        raise UsageError("version_label must not be empty")
    return VersionChoice(version, version_label)


@dataclass(frozen=True)
class ClientConfig:
    """A client's constructor arguments, checked: what every call starts from."""

    target: str
    model: str
    version: VersionChoice
    signature: str
    timeout: float
    retry: RetryPolicy
    channel: ChannelSpec

    def choose(self, version: int | None, version_label: str | None) -> VersionChoice:
        """A call's own version or label, replacing the client's; the client's if neither."""
        if version is None and version_label is None:
            return self.version
        return version_choice(version, version_label)

    def spec(
        self, *, signature: bool = True, version: VersionChoice | None = None
    ) -> tfs_pb2.ModelSpec:
        chosen = self.version if version is None else version
        return rpc.model_spec(
            self.model, chosen.number, chosen.label, self.signature if signature else None
        )

    def call_name(self, method: rpc.Method, version: VersionChoice | None = None) -> str:
        chosen = str(self.version if version is None else version)
        return f"{method.name} {self.model}" + (f" {chosen}" if chosen else "")


class BaseClient:
    """The constructor and properties Client and AsyncClient share (see Client's docs)."""

    def __init__(
        self,
        target: str | None = None,
        model: str = "mnist",
        *,
        version: int | None = None,
        version_label: str | None = None,
        signature: str = "serving_default",
        timeout: float = 10.0,
        tls: TLSConfig | bool | None = None,
        retries: int | RetryPolicy = 3,
        max_message_bytes: int = MAX_MESSAGE_BYTES,
        channel_options: Sequence[ChannelOption] = (),
        interceptors: Sequence[Any] = (),
    ) -> None:
        chosen = version_choice(version, version_label)
        if not model:
            raise UsageError("model name must not be empty")
        check_timeout(timeout)
        if isinstance(retries, bool) or not isinstance(retries, int | RetryPolicy):
            raise UsageTypeError(f"retries must be an int or a RetryPolicy, got {retries!r}")
        retry = RetryPolicy(retries=retries) if isinstance(retries, int) else retries
        if retry.retries < 0:
            raise UsageError(f"retries must be >= 0, got {retry.retries}")
        target = target or DEFAULT_TARGET
        spec = channel_spec(
            target,
            tls=tls,
            max_message_bytes=max_message_bytes,
            options=channel_options,
            interceptors=self._checked_interceptors(interceptors),
        )
        self._config = ClientConfig(target, model, chosen, signature, float(timeout), retry, spec)
        # Client opens its channel now; AsyncClient at its first call, inside its loop.
        self._channel: Any = self._open_channel()
        self._stubs: dict[str, Any] = {} if self._channel is None else stubs(self._channel)
        self._is_closed = False

    # The interceptors the channel takes (grpc's for Client, grpc.aio's for AsyncClient),
    # and their name in the error for anything else: grpc itself would only refuse one
    # when the channel opens, AsyncClient's at its first call.
    _INTERCEPTOR_TYPES: tuple[type, ...] = ()
    _INTERCEPTOR_KIND = ""

    @classmethod
    def _checked_interceptors(cls, interceptors: Sequence[Any]) -> tuple[Any, ...]:
        if isinstance(interceptors, str | bytes) or not isinstance(interceptors, Sequence):
            raise UsageTypeError(f"interceptors must be a list, got {interceptors!r}")
        for interceptor in interceptors:
            if not isinstance(interceptor, cls._INTERCEPTOR_TYPES):
                raise UsageTypeError(
                    f"{cls.__name__} takes {cls._INTERCEPTOR_KIND} as interceptors, "
                    f"got {interceptor!r}"
                )
        return tuple(interceptors)

    @property
    def target(self) -> str:
        return self._config.target

    @property
    def model(self) -> str:
        return self._config.model

    def __repr__(self) -> str:
        state = "closed" if self._closed() else "open"
        return f"{type(self).__name__}({self.target!r}, {self.model!r}, {state})"

    def _open_channel(self) -> Any:
        raise NotImplementedError

    def _closed(self) -> bool:
        return self._is_closed


def stubs(channel: grpc.Channel | grpc.aio.Channel) -> dict[str, Any]:
    """A callable per TF Serving method, keyed by path, serializing our messages."""
    return {
        method.path: channel.unary_unary(
            method.path,
            request_serializer=method.request.SerializeToString,
            response_deserializer=method.response.FromString,
        )
        for method in rpc.METHODS
    }


def check_timeout(timeout: float) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
        raise UsageError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


def check_batch_size(batch_size: int) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise UsageError(f"batch_size must be a positive integer, got {batch_size!r}")
    return batch_size


def as_batch(x: np.ndarray) -> np.ndarray:
    """Check an already-preprocessed batch: (n, 28, 28[, 1]) in [0, 1], as float32 in the
    model's input shape (n, 28, 28, 1). A single (28, 28) digit is a batch of one."""
    a = np.asarray(x)
    if a.ndim == 2:
        a = a[np.newaxis]
    if a.ndim == 3:
        a = a[..., np.newaxis]  # the channel axis, added once: a view, nothing copied
    if a.shape[1:] != (28, 28, 1):
        shape = np.shape(x)
        raise UsageError(f"expected images of shape (n, 28, 28) or (n, 28, 28, 1), got {shape}")
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise UsageError(f"expected a numeric array, got {a.dtype}")
    a = a.astype(np.float32, copy=False)
    if a.size and (not np.isfinite(a).all() or a.min() < 0 or a.max() > 1):
        raise UsageError("preprocessed images must hold finite values in [0, 1]")
    return a


def digits_batch(digits: list[np.ndarray]) -> np.ndarray:
    """Preprocessed (28, 28) digits as one batch in the model's input shape (n, 28, 28, 1)."""
    return np.stack(digits)[..., np.newaxis]


def chunks(x: np.ndarray, batch_size: int) -> list[np.ndarray]:
    return [x[i : i + batch_size] for i in range(0, len(x), batch_size)]


class Attempts:
    """The retry loop's state for one call: the deadline, and when to try again.

    The timeout bounds the whole call, retries included: each attempt gets what is
    left, and a backoff that would overrun the deadline is not slept.

    Why a loop of our own (in Client._call and AsyncClient._call) and not gRPC's
    `retryPolicy` in the service config the channel already sends: measured against the
    test server (grpcio 1.85.1), gRPC's policy clamps maxAttempts at 5, so `retries` over
    4 silently stop there; it never retries a request over its 256 KiB per-call retry
    buffer (`grpc.per_rpc_retry_buffer_size`), which a Predict of about 84 images or more
    exceeds (64 were retried, 128 failed at the first UNAVAILABLE); and its retries are
    invisible, so the error cannot say how many attempts were made. (Its deadline does
    span all attempts, as ours does: gRFC A6.)
    """

    def __init__(
        self,
        config: ClientConfig,
        method: rpc.Method,
        timeout: float | None,
        version: VersionChoice | None = None,
    ) -> None:
        self.config = config
        self.call_name = config.call_name(method, version)
        self.timeout = check_timeout(config.timeout if timeout is None else timeout)
        self.deadline = time.monotonic() + self.timeout
        self._delays: Iterator[float] | None = None  # made at the first failure: seeding costs
        self.count = 0

    def next_attempt(self) -> float:
        """The timeout for the next attempt (what is left); DeadlineExceeded if nothing is."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded(
                f"{self.call_name} on {self.config.target} did not "
                f"finish within {self.timeout:g} s",
                code=grpc.StatusCode.DEADLINE_EXCEEDED,
            )
        self.count += 1
        return left

    def failed(self, error: grpc.RpcError) -> tuple[RpcFailed, float | None]:
        """The exception for `error`, and the seconds to wait before retrying (or None)."""
        failure = from_rpc_error(error, self.call_name, self.config.target)
        if status_code(error) != grpc.StatusCode.UNAVAILABLE:
            return failure, None
        if self._delays is None:
            self._delays = self.config.retry.delays(random.Random())
        delay = next(self._delays, None)
        if delay is None or time.monotonic() + delay >= self.deadline:
            if self.count > 1:
                failure.args = (f"{failure.args[0]} (after {self.count} attempts)",)
            return failure, None
        return failure, delay


# While waiting for readiness, these mean "not yet" rather than "failed".
NOT_READY = (Unavailable, ModelNotFound, DeadlineExceeded)


class ReadyWait:
    """The polling loop of wait_until_ready, shared by both clients."""

    def __init__(self, config: ClientConfig, timeout: float, poll: float) -> None:
        self.config = config
        self.timeout = check_timeout(timeout)
        self.deadline = time.monotonic() + self.timeout
        self.poll = poll
        self.last = "no answer yet"

    def attempt_timeout(self) -> float | None:
        """The timeout for the next status call, or None once the time is up."""
        left = self.deadline - time.monotonic()
        return min(left, max(self.poll, 1.0)) if left > 0 else None

    def ready(self, status: ModelStatus) -> bool:
        if status.available:
            return True
        states = ", ".join(f"version {v.version} {v.state}" for v in status.versions)
        self.last = states or "no versions"
        return False

    def not_ready(self, error: ClientError) -> None:
        self.last = str(error)

    def pause(self) -> float:
        return min(self.poll, max(0.0, self.deadline - time.monotonic()))

    def expired(self) -> DeadlineExceeded:
        return DeadlineExceeded(
            f"{self.config.model} on {self.config.target} not ready after "
            f"{self.timeout:g} s (last: {self.last})",
            code=grpc.StatusCode.DEADLINE_EXCEEDED,
        )


def closed_error() -> ClientError:
    return ClientError("the client is closed")
