"""TF Serving's methods by path, and the request/response translation both clients share.

The messages live under our own proto package (see client/protos/tfs.proto), so the
method paths are spelled out here rather than generated from a service definition:
gRPC routes by path, and these are TensorFlow Serving's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from google.protobuf import message as pb_message

from client import tensors
from client._results import (
    ModelMetadata,
    ModelStatus,
    Prediction,
    SignatureSpec,
    TensorSpec,
    VersionStatus,
)
from client.errors import MalformedResponse, TensorDecodeError
from client.protos import tfs_pb2
from contract.mnist import INPUT
from contract.mnist import NUM_CLASSES as CLASSES
from contract.mnist import PROBABILITIES as OUTPUT

SIGNATURE_DEF_TYPE = "tensorflow.serving.SignatureDefMap"  # how TF Serving packs the Any
# How far a row of probabilities may sum from 1: float32 softmax is within 1e-6.
SUM_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Method:
    path: str
    request: type[pb_message.Message]
    response: type[pb_message.Message]
    name: str  # for error messages


PREDICT = Method(
    "/tensorflow.serving.PredictionService/Predict",
    tfs_pb2.PredictRequest,
    tfs_pb2.PredictResponse,
    "Predict",
)
GET_MODEL_METADATA = Method(
    "/tensorflow.serving.PredictionService/GetModelMetadata",
    tfs_pb2.GetModelMetadataRequest,
    tfs_pb2.GetModelMetadataResponse,
    "GetModelMetadata",
)
GET_MODEL_STATUS = Method(
    "/tensorflow.serving.ModelService/GetModelStatus",
    tfs_pb2.GetModelStatusRequest,
    tfs_pb2.GetModelStatusResponse,
    "GetModelStatus",
)
METHODS = (PREDICT, GET_MODEL_METADATA, GET_MODEL_STATUS)


def model_spec(
    model: str, version: int | None, label: str | None, signature: str | None
) -> tfs_pb2.ModelSpec:
    spec = tfs_pb2.ModelSpec(name=model)
    if version is not None:
        spec.version.value = version
    elif label is not None:
        spec.version_label = label
    if signature is not None:
        spec.signature_name = signature
    return spec


def predict_request(spec: tfs_pb2.ModelSpec, batch: np.ndarray) -> tfs_pb2.PredictRequest:
    """A Predict for `batch`, float32 (n, 28, 28, 1) in [0, 1], asking only for
    probabilities. A batch without its channel axis, (n, 28, 28), is given one."""
    request = tfs_pb2.PredictRequest(model_spec=spec, output_filter=[OUTPUT])
    images = batch[..., np.newaxis] if batch.ndim == 3 else batch
    request.inputs[INPUT].CopyFrom(tensors.to_proto(images))
    return request


def predictions(response: Any, expected: int) -> list[Prediction]:
    """Read `expected` predictions out of a PredictResponse, checking what came back."""
    if OUTPUT not in response.outputs:
        got = ", ".join(sorted(response.outputs)) or "none"
        raise MalformedResponse(
            f"response has no {OUTPUT!r} output (got: {got}); is this the MNIST model?"
        )
    try:
        probabilities = tensors.to_numpy(response.outputs[OUTPUT])
    except TensorDecodeError as exc:
        raise MalformedResponse(f"bad {OUTPUT!r} tensor in response: {exc}") from exc
    if probabilities.shape != (expected, CLASSES):
        raise MalformedResponse(
            f"{OUTPUT!r} has shape {probabilities.shape}, expected ({expected}, {CLASSES})"
        )
    probabilities = probabilities.astype(np.float64)
    _check_probabilities(probabilities)
    digits = probabilities.argmax(axis=1).tolist()
    model, version = _served_by(response.model_spec)
    return [
        Prediction(digit, row[digit], tuple(row), model, version)
        for digit, row in zip(digits, probabilities.tolist(), strict=True)
    ]


def _check_probabilities(probabilities: np.ndarray) -> None:
    """Refuse rows that are not probabilities: NaN, infinite, outside [0, 1], or not
    summing to 1. A broken server's NaN would otherwise become an answer (and invalid
    JSON in the CLI's output), and scores of another model a confident one.

    The common case is settled by three reductions (NaN fails every comparison, so it
    falls through to the row-by-row diagnosis): the full check cost 16 µs a call, half
    the client's whole message cost per image in `make bench`."""
    sums = probabilities.sum(axis=1)
    if (
        probabilities.min() >= 0
        and probabilities.max() <= 1
        and np.abs(sums - 1).max(initial=0) <= SUM_TOLERANCE
    ):
        return
    finite = np.isfinite(probabilities).all(axis=1)
    in_range = finite & (probabilities >= 0).all(axis=1) & (probabilities <= 1).all(axis=1)
    normalized = in_range & (np.abs(sums - 1) <= SUM_TOLERANCE)
    if normalized.all():
        return
    i = int(np.argmin(normalized))
    row = probabilities[i]
    what = f"{OUTPUT!r} of image {i}"
    if not finite[i]:
        raise MalformedResponse(f"{what} are not finite (NaN or infinite): a server fault")
    if not in_range[i]:
        raise MalformedResponse(f"{what} are not in [0, 1] ({row.min():g}..{row.max():g})")
    raise MalformedResponse(f"{what} sum to {sums[i]:g}, not 1; is this the MNIST model?")


def metadata_request(spec: tfs_pb2.ModelSpec) -> tfs_pb2.GetModelMetadataRequest:
    return tfs_pb2.GetModelMetadataRequest(model_spec=spec, metadata_field=["signature_def"])


def metadata(response: Any) -> ModelMetadata:
    if "signature_def" not in response.metadata:
        raise MalformedResponse("metadata response has no 'signature_def' entry")
    packed = response.metadata["signature_def"]
    # Any.Unpack would insist on our own type name; the bytes are what matter.
    if packed.type_url.rsplit("/", 1)[-1] != SIGNATURE_DEF_TYPE:
        raise MalformedResponse(f"unexpected signature_def type {packed.type_url!r}")
    signature_map = tfs_pb2.SignatureDefMap()
    try:
        signature_map.ParseFromString(packed.value)
    except pb_message.DecodeError as exc:
        raise MalformedResponse(f"cannot parse signature_def: {exc}") from exc
    model, version = _served_by(response.model_spec)
    signatures = {
        key: SignatureSpec(
            method_name=sig.method_name,
            inputs={k: _tensor_spec(v) for k, v in sorted(sig.inputs.items())},
            outputs={k: _tensor_spec(v) for k, v in sorted(sig.outputs.items())},
        )
        for key, sig in sorted(signature_map.signature_def.items())
    }
    return ModelMetadata(model, version, signatures)


def status_request(spec: tfs_pb2.ModelSpec) -> tfs_pb2.GetModelStatusRequest:
    return tfs_pb2.GetModelStatusRequest(model_spec=spec)


def status(response: Any, model: str) -> ModelStatus:
    versions = [
        VersionStatus(
            version=v.version,
            state=_name(tfs_pb2.ModelVersionStatus.State, v.state),
            error_code=_name(tfs_pb2.ErrorCode, v.status.error_code),
            error_message=v.status.error_message,
        )
        for v in response.model_version_status
    ]
    versions.sort(key=lambda v: -v.version)
    return ModelStatus(model, tuple(versions))


def _tensor_spec(info: Any) -> TensorSpec:
    return TensorSpec(
        name=info.name,
        dtype=tensors.dtype_name(info.dtype),
        shape=tensors.shape_of(info.tensor_shape),
    )


def _served_by(spec: Any) -> tuple[str, int | None]:
    return spec.name, (spec.version.value if spec.HasField("version") else None)


def _name(enum: Any, value: int) -> str:
    return enum.Name(value) if value in enum.values() else str(value)
