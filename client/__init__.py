"""Client SDK for the MNIST model behind TensorFlow Serving's gRPC API, without TensorFlow.

    from client import Client

    with Client("localhost:8500") as mnist:
        prediction = mnist.predict("digit.jpg")
        print(prediction.digit, prediction.confidence)
        if prediction.is_uncertain():  # confidence under MIN_CONFIDENCE (0.9)
            ...

Pictures are preprocessed the way MNIST itself was made (see client.preprocess), so photos
of handwritten digits work, not only 28x28 crops. Everything raised on purpose is a
`ClientError`; see client.errors for the gRPC status each subclass stands for.
"""

from client._aio import AsyncClient
from client._channel import RetryPolicy, TLSConfig, resolve_target
from client._results import (
    MIN_CONFIDENCE,
    ImageResult,
    ModelMetadata,
    ModelStatus,
    Prediction,
    SignatureSpec,
    TensorSpec,
    VersionStatus,
)
from client._sync import Client
from client.errors import (
    ClientError,
    DeadlineExceeded,
    ImageError,
    InvalidInput,
    MalformedResponse,
    ModelNotFound,
    RpcFailed,
    ServerError,
    Unavailable,
    UsageError,
    UsageTypeError,
)

__all__ = [
    "MIN_CONFIDENCE",
    "AsyncClient",
    "Client",
    "ClientError",
    "DeadlineExceeded",
    "ImageError",
    "ImageResult",
    "InvalidInput",
    "MalformedResponse",
    "ModelMetadata",
    "ModelNotFound",
    "ModelStatus",
    "Prediction",
    "RetryPolicy",
    "RpcFailed",
    "ServerError",
    "SignatureSpec",
    "TLSConfig",
    "TensorSpec",
    "Unavailable",
    "UsageError",
    "UsageTypeError",
    "VersionStatus",
    "resolve_target",
]
