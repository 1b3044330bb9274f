"""The gRPC status -> exception table, row by row."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from client import errors
from client.errors import (
    ClientError,
    DeadlineExceeded,
    InvalidInput,
    ModelNotFound,
    RpcFailed,
    ServerError,
    Unavailable,
    from_rpc_error,
)

# Written out independently of client.errors.STATUS_ERRORS, so a changed row fails here.
EXPECTED = {
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


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


def test_every_failure_status_has_a_row():
    assert set(errors.STATUS_ERRORS) == set(grpc.StatusCode) - {grpc.StatusCode.OK}


@pytest.mark.parametrize("code", sorted(EXPECTED, key=lambda c: c.value[0]), ids=lambda c: c.name)
def test_status_maps_to_its_exception(code):
    error = from_rpc_error(FakeRpcError(code, "what the server said"), "Predict mnist", "host:1")
    assert type(error) is EXPECTED[code]
    assert isinstance(error, RpcFailed) and isinstance(error, ClientError)
    assert error.code is code
    assert error.details == "what the server said"
    assert str(error) == f"Predict mnist on host:1 failed: {code.name}: what the server said"


def test_python_exception_families():
    """Callers may catch by meaning with the standard hierarchy, too."""
    assert issubclass(DeadlineExceeded, TimeoutError)
    assert issubclass(Unavailable, ConnectionError)
    assert issubclass(ModelNotFound, LookupError)
    assert issubclass(InvalidInput, ValueError)
    assert issubclass(errors.ImageError, ValueError)
    assert not issubclass(ServerError, OSError)


def test_an_rpc_error_without_a_status_is_unknown():
    class Bare(grpc.RpcError):
        pass

    error = from_rpc_error(Bare(), "GetModelStatus mnist", "h:1")
    assert type(error) is ServerError and error.code is grpc.StatusCode.UNKNOWN
    assert str(error) == "GetModelStatus mnist on h:1 failed: UNKNOWN"


def test_details_that_raise_are_survived():
    class Broken(grpc.RpcError):
        def code(self):
            return grpc.StatusCode.INTERNAL

        def details(self):
            raise RuntimeError("no details")

    error = from_rpc_error(Broken(), "Predict mnist", "h:1")
    assert type(error) is ServerError and error.details == ""


def test_argument_errors_are_client_errors_and_what_they_were_before():
    """Misuse raised plain ValueError and TypeError, which `except ClientError` missed."""
    from client import Client, UsageError, UsageTypeError

    with pytest.raises(UsageError, match="not both") as caught:
        Client("localhost:1", version=1, version_label="stable")
    assert isinstance(caught.value, ClientError) and isinstance(caught.value, ValueError)
    with pytest.raises(UsageTypeError, match="must be an int") as wrong_type:
        Client("localhost:1", version="1")
    assert isinstance(wrong_type.value, UsageError) and isinstance(wrong_type.value, TypeError)
    with pytest.raises(UsageError, match="bad port"):
        Client("localhost:http")
    with Client("localhost:1") as client:
        with pytest.raises(UsageError, match="shape"):
            client.predict_tensor(np.zeros((2, 32, 32)))
        with pytest.raises(UsageTypeError, match="use predict"):
            client.predict_many("digit.png")
        with pytest.raises(UsageError, match="timeout"):
            client.status(timeout=0)
