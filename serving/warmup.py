"""Replaying a version's warm-up records before it becomes AVAILABLE, as TF Serving does.

The first request to a freshly loaded model pays for memory allocation and the runtime's
first-run work; replaying recorded requests at load time moves that cost off the first
user. Predict, Classify, Regress and MultiInference records replay on the version
itself, synchronously, without resolving their ModelSpecs (as TF Serving replays them).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import grpc
from tensorflow_serving.apis import prediction_log_pb2

from serving import inference, predict
from serving.servable import Servable, ServingError

log = logging.getLogger("serving")

# log_type -> how to replay that record on the version being loaded.
_REPLAY: dict[str, Callable[[Servable, prediction_log_pb2.PredictionLog], object]] = {
    "predict_log": lambda s, record: predict.predict(s, record.predict_log.request),
    "classify_log": lambda s, record: inference.classify(s, record.classify_log.request),
    "regress_log": lambda s, record: inference.regress(s, record.regress_log.request),
    "multi_inference_log": lambda s, record: inference.multi_inference(
        s, record.multi_inference_log.request
    ),
}


def replay(servable: Servable, iterations: int = 1) -> None:
    """Every record, `iterations` times each (--num_request_iterations_for_warmup)."""
    count = 0
    for raw in servable.warmup_requests():
        record = prediction_log_pb2.PredictionLog.FromString(raw)
        kind = record.WhichOneof("log_type")
        try:
            if kind in _REPLAY:
                for _ in range(iterations):
                    _REPLAY[kind](servable, record)
            elif kind is not None:  # a record of no type is skipped, as TF Serving does
                raise ServingError(
                    grpc.StatusCode.UNIMPLEMENTED, f"Unsupported log_type for warmup: {kind}"
                )
        except ServingError as exc:
            raise ServingError(exc.code, f"Warm-up request {count} failed: {exc.message}") from exc
        count += 1
    if count:
        log.info(
            "Finished reading warmup data for model %s version %d: %d records",
            servable.name,
            servable.version,
            count,
        )
