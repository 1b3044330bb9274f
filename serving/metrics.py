"""Prometheus metrics under TF Serving's names, so its dashboards and alerts work here.

TF Serving exports TensorFlow's monitoring metrics with '/' turned into ':' (e.g.
`:tensorflow:serving:request_count`), latencies as histograms in microseconds, and
counters without the `_total` suffix prometheus_client adds; the exposition below
drops that suffix so the names match exactly.

Every label value is bounded, so no caller can grow the page. TF Serving labels a request
with the model name it asked for, which lets any caller create series at will (3,000
random names made a 23 MB page; one name of 10 MB, a 401 MB one). Here a request is labelled
with its model's name only when that model is configured (the manager says which are);
any other name, the empty one included, is counted under UNKNOWN_MODEL. And any value
longer than MAX_LABEL_CHARS (a long configured name or base path) is shortened.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from contextlib import contextmanager

import grpc
import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Histogram

prometheus_client.disable_created_metrics()  # TF Serving exports no *_created series

REGISTRY = CollectorRegistry(auto_describe=True)
DEFAULT_PATH = "/monitoring/prometheus/metrics"

UNKNOWN_MODEL = ""
"""The model_name of requests for no configured model. The empty name is the one no
request can be served under ("ModelSpec has no name specified"), so it never mixes a
served model's requests with the rest; it is also what TF Serving records for a request
without a name."""
MAX_LABEL_CHARS = 256
_configured_models: frozenset[str] = frozenset()


def _exponential(scale: float, growth: float, count: int) -> list[float]:
    """TensorFlow's Buckets::Exponential bucket limits."""
    return [scale * growth**i for i in range(count - 1)]


# Scale 10, power 1.8, 33 buckets: 10 us to ~20 minutes, as TF Serving's latencies.
_LATENCY_BUCKETS = _exponential(10, 1.8, 33)

REQUEST_COUNT = Counter(
    ":tensorflow:serving:request_count",
    "The total number of requests.",
    ["model_name", "status"],
    registry=REGISTRY,
)
REQUEST_LATENCY = Histogram(
    ":tensorflow:serving:request_latency",
    "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
    ["model_name", "API", "entrypoint"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
LOAD_LATENCY = Counter(
    ":tensorflow:cc:saved_model:load_latency",
    "Latency in microseconds for SavedModels that were successfully loaded.",
    ["model_path"],
    registry=REGISTRY,
)
LOAD_ATTEMPT_COUNT = Counter(
    ":tensorflow:cc:saved_model:load_attempt_count",
    "The number of times a SavedModel was attempted to be loaded.",
    ["model_path", "status"],
    registry=REGISTRY,
)
WARMUP_LATENCY = Histogram(
    ":tensorflow:serving:model_warmup_latency",
    "Distribution of wall time (in microseconds) for warming up the model.",
    ["model_path", "status"],
    buckets=_LATENCY_BUCKETS,
    registry=REGISTRY,
)
QUEUING_LATENCY = Histogram(
    ":tensorflow:serving:batching_session:queuing_latency",
    "Distribution of wall time spent (in microseconds) in queuing",
    ["thread_pool_name"],
    # Scale 100, power 1.2, 52 buckets: 100 us to ~1 s, as TF Serving's.
    buckets=_exponential(100, 1.2, 52),
    registry=REGISTRY,
)

_COUNTER_NAMES = [
    ":tensorflow:serving:request_count",
    ":tensorflow:cc:saved_model:load_latency",
    ":tensorflow:cc:saved_model:load_attempt_count",
]


def set_model_names(names: Iterable[str]) -> None:
    """The configured models: the only names requests are counted under."""
    global _configured_models
    _configured_models = frozenset(names)


def configured_model_names() -> frozenset[str]:
    return _configured_models


def bounded(value: str) -> str:
    """`value`, or its start and end around an ellipsis when longer than MAX_LABEL_CHARS
    (both ends, so a base path keeps its model and its version)."""
    if len(value) <= MAX_LABEL_CHARS:
        return value
    half = (MAX_LABEL_CHARS - 1) // 2
    return f"{value[:half]}…{value[-half:]}"


def observe_request(
    model: str, api: str, entrypoint: str, status: str | grpc.StatusCode, seconds: float
) -> None:
    """Count and time one request; `model` is what the request asked for."""
    model = bounded(model) if model in _configured_models else UNKNOWN_MODEL
    if isinstance(status, grpc.StatusCode):  # REST reports the code, gRPC its name
        status = status.name
    api, entrypoint, status = bounded(api), bounded(entrypoint), bounded(status)
    REQUEST_COUNT.labels(model, status).inc()
    REQUEST_LATENCY.labels(model, api, entrypoint).observe(seconds * 1e6)


def observe_load(model_path: str, status: str, seconds: float | None = None) -> None:
    """Count one SavedModel load attempt; `seconds` is the time of a successful one."""
    LOAD_ATTEMPT_COUNT.labels(bounded(model_path), status).inc()
    if seconds is not None:
        LOAD_LATENCY.labels(bounded(model_path)).inc(seconds * 1e6)


@contextmanager
def timed_warmup(model_path: str):
    started = time.monotonic()
    status = "OK"
    try:
        yield
    except Exception:
        status = "ERROR"
        raise
    finally:
        WARMUP_LATENCY.labels(bounded(model_path), status).observe(
            (time.monotonic() - started) * 1e6
        )


def exposition() -> bytes:
    """The text format, with TF Serving's counter names (no `_total`)."""
    text = prometheus_client.generate_latest(REGISTRY).decode()
    for name in _COUNTER_NAMES:
        text = text.replace(f"{name}_total", name)
    return text.encode()


CONTENT_TYPE = prometheus_client.CONTENT_TYPE_LATEST
