"""Timing gRPC calls for locust: a client interceptor that reports each one as a request.

locust's statistics come from its `request` event; an HTTP user fires it from its HTTP
client, and a gRPC user from an interceptor on its channel, which sees every unary call
whatever code made it. Each call is reported with request_type "grpc", its time from
sending (serialization included) to the decoded response, the response message's size,
and its error if it failed.

A call's name in the statistics is its method ("Predict") unless a `request` block names
it. The block also decides what failed: a call that was answered can still be no answer
(a response the client refuses as malformed), and the client says so only after the
interceptor is done. So inside a block the call's report waits for the block's end, and
a ClientError raised in the block is that call's failure (locust's HTTP users do the
same with `catch_response`). locust is not imported here: only its event is used, so
this module also works, and is tested, in a process that locust has not patched.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc

from client import ClientError

REQUEST_TYPE = "grpc"


class RequestEvent(Protocol):
    """locust's `environment.events.request` (an EventHook): what the reports go to."""

    def fire(self, **kwargs: Any) -> Any: ...


@dataclass
class Timed:
    """One finished call, as locust's request event takes it."""

    name: str
    response_time: float  # milliseconds
    response_length: int  # bytes of the response message; 0 if there was none
    exception: BaseException | None
    context: dict[str, Any] = field(default_factory=dict)

    def report(self, event: RequestEvent) -> None:
        event.fire(
            request_type=REQUEST_TYPE,
            name=self.name,
            response_time=self.response_time,
            response_length=self.response_length,
            exception=self.exception,
            context=self.context,
        )


@dataclass
class _Block:
    name: str
    context: dict[str, Any]
    calls: list[Timed] = field(default_factory=list)


class LocustInterceptor(grpc.UnaryUnaryClientInterceptor):
    """Reports every unary call on its channel to `event`, timed with `clock` (seconds).

    One per channel and per locust user: the open `request` block is this object's
    state, and a user makes one call at a time.
    """

    def __init__(self, event: RequestEvent, clock: Callable[[], float] = time.perf_counter) -> None:
        self._event = event
        self._clock = clock
        self._block: _Block | None = None

    def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.ClientCallDetails, Any], Any],
        client_call_details: grpc.ClientCallDetails,
        request: Any,
    ) -> Any:
        start = self._clock()
        # A blocking call's outcome: done when it returns, raising only from result().
        outcome = continuation(client_call_details, request)
        elapsed_ms = (self._clock() - start) * 1000
        error = outcome.exception()
        size = 0 if error is not None else outcome.result().ByteSize()
        block = self._block
        if block is None:
            method = client_call_details.method.rsplit("/", 1)[-1]
            Timed(method, elapsed_ms, size, error).report(self._event)
        else:
            block.calls.append(Timed(block.name, elapsed_ms, size, error, block.context))
        return outcome

    @contextlib.contextmanager
    def request(self, name: str, **context: Any) -> Iterator[None]:
        """Report the calls made in the block under `name`, with `context`, at its end.

        A ClientError raised in the block becomes the failure of its last call and
        ends the block; the caller carries on, as after any failed request. It is
        raised on when the block made no call, and other exceptions always are (they are
        errors of the test, which locust counts apart).
        """
        if self._block is not None:
            raise RuntimeError(f"request {name!r} opened inside request {self._block.name!r}")
        block = self._block = _Block(name, context)
        try:
            yield
        except ClientError as exc:
            if not block.calls:
                raise
            block.calls[-1].exception = exc
        finally:
            self._block = None
            for call in block.calls:
                call.report(self._event)
