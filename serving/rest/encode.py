"""What the REST API writes: results as TF Serving's JSON, byte for byte where it
matters to clients (float digits, b64 objects, row and columnar layouts).

Predict outputs are written from numpy arrays, one JSON text per value assembled into
the nesting, rather than through `json.dumps` of nested lists: TF Serving's float
format (6 significant digits when they read back exactly) and its `_bytes` rule have
no `json` equivalent. Classify and regress results, model status and metadata are
written from the gRPC response protos the shared code paths return.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping

import numpy as np
from google.protobuf import json_format
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_status_pb2,
    model_pb2,
    regression_pb2,
)

from serving.errors import bounded, invalid
from serving.servable import Servable

# ---- predict ----------------------------------------------------------------------------


def predict_json(outputs: Mapping[str, np.ndarray], aliases: list[str], columnar: bool) -> str:
    """TF Serving's response: {"predictions": ...} per row, or {"outputs": ...} whole
    (`columnar`: the request sent "inputs"); a single output is written without its
    name, several as objects keyed by name."""
    tokens = {alias: _tokens(alias, np.asarray(outputs[alias])) for alias in aliases}
    single = len(aliases) == 1
    if columnar:
        if single:
            return '{"outputs": ' + _nest(tokens[aliases[0]]) + "}"
        fields = ", ".join(f"{json.dumps(a)}: {_nest(tokens[a])}" for a in aliases)
        return '{"outputs": {' + fields + "}}"
    batch = None
    for alias in aliases:
        if tokens[alias].ndim == 0:
            raise invalid(f"Tensor name: {alias} has no shape information ")
        rows = tokens[alias].shape[0]
        if batch is not None and rows != batch:
            raise invalid(
                f"Tensor name: {alias} has inconsistent batch size: {rows} expecting: {batch}"
            )
        batch = rows
    if single:
        items = [_nest(row) for row in tokens[aliases[0]]]
    else:
        keys = {alias: json.dumps(alias) for alias in aliases}
        items = [
            "{" + ", ".join(f"{keys[a]}: {_nest(tokens[a][i])}" for a in aliases) + "}"
            for i in range(batch or 0)
        ]
    return '{"predictions": [' + ", ".join(items) + "]}"


def _tokens(alias: str, array: np.ndarray) -> np.ndarray:
    """Each value's JSON text, in an object array of the tensor's shape."""
    flat = array.ravel()
    kind = array.dtype.kind
    if kind == "f" and array.dtype in (np.float32, np.float64):
        texts = float_texts(flat)
    elif kind in "iu":
        texts = [str(v) for v in flat.tolist()]
    elif kind == "b":
        texts = ["true" if v else "false" for v in flat.tolist()]
    elif kind in "OS":
        as_bytes = alias.endswith("_bytes")  # TF Serving's marker for binary outputs
        texts = [_string_text(v, as_bytes) for v in flat.tolist()]
    else:
        raise invalid(f"Failed to write JSON value for tensor type: {array.dtype.name}")
    tokens = np.empty(len(texts), dtype=object)
    tokens[:] = texts
    return tokens.reshape(array.shape)


def float_texts(flat: np.ndarray) -> list[str]:
    """TF Serving's float text: 6 significant digits when that reads back as the same
    value, else 9 (float32) or 17 (float64); '.0' on whole numbers; NaN, Infinity."""
    values = flat.tolist()
    texts = [f"{v:.6g}" for v in values]
    finite = np.isfinite(flat)
    with np.errstate(all="ignore"):
        back = np.array(texts).astype(flat.dtype)
    full = ".9g" if flat.dtype == np.float32 else ".17g"
    for i in np.flatnonzero(finite & (back != flat)).tolist():
        texts[i] = format(values[i], full)
    for i, text in enumerate(texts):
        if not finite[i]:
            value = values[i]
            texts[i] = "NaN" if value != value else ("-Infinity" if value < 0 else "Infinity")
        elif "." not in text and "e" not in text:
            texts[i] = text + ".0"
    return texts


def _string_text(value: bytes | str, as_bytes: bool) -> str:
    raw = value if isinstance(value, bytes) else str(value).encode()
    if not as_bytes:
        try:
            return json.dumps(raw.decode("utf-8"), ensure_ascii=False)
        except UnicodeDecodeError:
            pass  # not text: sent as base64 rather than as invalid JSON
    return '{"b64": "' + base64.b64encode(raw).decode("ascii") + '"}'


def _nest(tokens: np.ndarray | str) -> str:
    if isinstance(tokens, str):  # one element of a 1-D token array
        return tokens
    if tokens.ndim == 0:
        return tokens.item()
    if tokens.ndim == 1:
        return "[" + ", ".join(tokens.tolist()) + "]"
    return "[" + ", ".join(_nest(t) for t in tokens) + "]"


# ---- classify and regress ---------------------------------------------------------------


def classification_json(result: classification_pb2.ClassificationResult) -> str:
    """{"results": [[[label, score], ...], ...]}: one list of classes per example."""
    if not result.classifications:
        raise invalid("Cannot convert empty ClassificationResults to JSON")
    rows = []
    for classifications in result.classifications:
        classes = classifications.classes
        scores = float_texts(np.array([c.score for c in classes], dtype=np.float32))
        pairs = (
            f"[{json.dumps(c.label, ensure_ascii=False)}, {score}]"
            for c, score in zip(classes, scores, strict=True)
        )
        rows.append("[" + ", ".join(pairs) + "]")
    return '{"results": [' + ", ".join(rows) + "]}"


def regression_json(result: regression_pb2.RegressionResult) -> str:
    """{"results": [value, ...]}: one number per example."""
    if not result.regressions:
        raise invalid("Cannot convert empty RegressionResults to JSON")
    values = np.array([r.value for r in result.regressions], dtype=np.float32)
    return '{"results": [' + ", ".join(float_texts(values)) + "]}"


# ---- status, metadata, errors -----------------------------------------------------------


def status_json(response: get_model_status_pb2.GetModelStatusResponse) -> str:
    """GetModelStatusResponse as TF Serving prints it (JSON names, defaults included)."""
    return json_format.MessageToJson(response, always_print_fields_with_no_presence=True, indent=1)


def metadata_json(servable: Servable) -> str:
    """GetModelMetadataResponse as TF Serving prints it: model_spec, then the
    SignatureDefMap under metadata.signature_def, proto field names kept."""
    spec = model_pb2.ModelSpec(name=servable.name)
    spec.version.value = servable.version
    signatures = servable.signature_def_map()
    options = {"preserving_proto_field_name": True, "always_print_fields_with_no_presence": True}
    document = {
        "model_spec": json_format.MessageToDict(spec, **options),
        "metadata": {"signature_def": json_format.MessageToDict(signatures, **options)},
    }
    return json.dumps(document, indent=1)


def error_json(message: str) -> str:
    """{"error": message}, the message bounded (it may echo much of the request). A lone
    surrogate the request sent as a JSON escape ("\\ud800") and the message quotes
    becomes U+FFFD: it has no UTF-8, and the response must be UTF-8."""
    text = bounded(message).encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    return json.dumps({"error": text}, ensure_ascii=False)
