"""TF Serving's REST API (`--rest_api_port`) on aiohttp, in the gRPC server's event loop.

Paths, JSON formats, error messages and HTTP codes follow tensorflow_model_server's
REST handler, so a client written against TF Serving's REST API works unchanged. Every
request resolves through the same Manager as gRPC and runs through the same
`run_model` callable, so REST and gRPC requests batch together.

One module per job:
    app       the aiohttp app: routing, timeouts, size limits, errors -> HTTP, metrics
    paths     TF Serving's URL grammar -> a Route
    handlers  a Route and its body -> the JSON answer, calling the shared code paths
    decode    classify/regress bodies -> requests; signatures -> the JSON decoder's types
    encode    results -> TF Serving's JSON (predictions/outputs, results, status, errors)
    workers   the processes that parse large predict bodies off the event loop
Predict bodies -> arrays is `serving.jsontensors`, outside this package so the workers
import neither aiohttp nor TensorFlow.
"""

from serving.rest.app import (
    DEFAULT_BODY_TIMEOUT_S,
    DEFAULT_IDLE_TIMEOUT_S,
    DEFAULT_MAX_BODY_BYTES,
    TIMEOUT_MESSAGE,
    RequestObserver,
    bound_port,
    build_app,
    start,
    stop,
)
from serving.rest.handlers import RunModel

__all__ = [
    "DEFAULT_BODY_TIMEOUT_S",
    "DEFAULT_IDLE_TIMEOUT_S",
    "DEFAULT_MAX_BODY_BYTES",
    "TIMEOUT_MESSAGE",
    "RequestObserver",
    "RunModel",
    "bound_port",
    "build_app",
    "start",
    "stop",
]
