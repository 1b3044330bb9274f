"""The client's exceptions: one base class, one subclass per way a call can fail.

Callers catch `ClientError` (or a subclass) and never `grpc.RpcError`: the gRPC error is
translated at the edge and kept as `__cause__`, so nothing about the transport leaks
into application code, yet the original is one attribute away when debugging.
"""

from __future__ import annotations

import grpc


class ClientError(Exception):
    """Base class of everything the client raises on purpose."""


class UsageError(ClientError, ValueError):
    """The client was called with an argument it cannot use (a timeout that is not
    positive, both a version and a label, an array not in MNIST form, a bad server
    address); nothing was sent. A ValueError too, as these were before they were
    ClientErrors, so `except ValueError` still catches them."""


class UsageTypeError(UsageError, TypeError):
    """An argument of the wrong type (a version that is not an int, one path where
    predict_many wants a list). A TypeError too, as these were before."""


class ImageError(ClientError, ValueError):
    """An input image cannot be used; the message names the file (or input) and why."""


class TensorDecodeError(ClientError):
    """A tensor in a response cannot become an array (bad dtype, shape or size).

    Raised by client.tensors.to_numpy; the clients' calls turn it into
    MalformedResponse, naming the output it was found in.
    """


class RpcFailed(ClientError):
    """The server (or the transport to it) answered a call with a non-OK status.

    `code` is the gRPC status code, `details` the server's own message.
    """

    def __init__(self, message: str, *, code: grpc.StatusCode, details: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.details = details


class ModelNotFound(RpcFailed, LookupError):
    """NOT_FOUND: no such model, or the requested version or label is not loaded."""


class InvalidInput(RpcFailed, ValueError):
    """The server rejected the request as asked: INVALID_ARGUMENT, OUT_OF_RANGE or
    FAILED_PRECONDITION (TF Serving's answer to an unknown signature name)."""


class Unavailable(RpcFailed, ConnectionError):
    """UNAVAILABLE: the server cannot be reached or is shutting down; retried first."""


class DeadlineExceeded(RpcFailed, TimeoutError):
    """The call did not finish within its timeout."""


class ServerError(RpcFailed):
    """Any other status: the server failed, refused or does not implement the call."""


class MalformedResponse(ServerError):
    """The call succeeded, but the response does not hold what it should: an output
    missing or misshapen, probabilities that are NaN, negative or do not sum to 1.

    A server bug or another model: trying again would get the same. It is a
    ServerError (status UNKNOWN), which is what such responses raised before.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, code=grpc.StatusCode.UNKNOWN)


# gRPC status -> exception class. Every code but OK has a row, so a new kind of failure
# can never surface as a bare grpc.RpcError.
STATUS_ERRORS: dict[grpc.StatusCode, type[RpcFailed]] = {
    grpc.StatusCode.CANCELLED: ServerError,
    grpc.StatusCode.UNKNOWN: ServerError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidInput,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.NOT_FOUND: ModelNotFound,
    grpc.StatusCode.ALREADY_EXISTS: ServerError,
    grpc.StatusCode.PERMISSION_DENIED: ServerError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ServerError,
    grpc.StatusCode.FAILED_PRECONDITION: InvalidInput,
    grpc.StatusCode.ABORTED: ServerError,
    grpc.StatusCode.OUT_OF_RANGE: InvalidInput,
    grpc.StatusCode.UNIMPLEMENTED: ServerError,
    grpc.StatusCode.INTERNAL: ServerError,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DATA_LOSS: ServerError,
    grpc.StatusCode.UNAUTHENTICATED: ServerError,
}


def from_rpc_error(error: grpc.RpcError, call: str, target: str) -> RpcFailed:
    """The exception to raise (`from error`) for a failed gRPC call.

    `call` names what was attempted ("Predict mnist") and `target` where, so the message
    alone is enough to act on.
    """
    code = status_code(error)
    details = _details(error)
    cls = STATUS_ERRORS.get(code, ServerError)
    message = f"{call} on {target} failed: {code.name}"
    if details:
        message += f": {details}"
    return cls(message, code=code, details=details)


def status_code(error: grpc.RpcError) -> grpc.StatusCode:
    code = getattr(error, "code", None)
    try:
        value = code() if callable(code) else None
    except Exception:  # an RpcError raised before the call had a status
        value = None
    return value if isinstance(value, grpc.StatusCode) else grpc.StatusCode.UNKNOWN


def _details(error: grpc.RpcError) -> str:
    details = getattr(error, "details", None)
    try:
        value = details() if callable(details) else None
    except Exception:
        value = None
    return value if isinstance(value, str) else ""
