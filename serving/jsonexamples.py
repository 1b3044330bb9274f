"""TF Serving's REST classify and regress bodies as serialized tf.Examples: its rules and
error messages.

Like predict's tensors (`serving.jsontensors`), a large body is parsed in a worker
process, off the event loop, so this module imports no TensorFlow: the Examples are
built with the project's own copy of TensorFlow's Example messages
(`serving/protos/example.proto`, the same field numbers and so the same bytes), and what
it returns pickles. A body becomes the rows a classify or regress signature takes as
`inputs`, exactly as the gRPC API's `serving.examples.serialized_examples` makes them:
with a context, each row is the context's bytes followed by the example's, which
protobuf parsing merges with the example's features winning.

An example is a JSON object of feature name -> value or list of values: ints become an
int64_list, floats a float_list, strings and {"b64": ...} a bytes_list, true/false 1/0.
"""

from __future__ import annotations

import numpy as np

from serving.errors import invalid
from serving.jsontensors import (
    decode_b64,
    excerpt,
    is_b64,
    json_type,
    parse_json,
    signature_name,
)
from serving.protos import example_pb2

_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1
_KIND_NAMES = {"bytes_list": "bytes", "float_list": "float", "int64_list": "int64"}


def decode_examples(body: bytes) -> tuple[str, np.ndarray]:
    """A body {"signature_name": ..., "context": {...}, "examples": [{...}, ...]} as
    (signature name, 1-D object array of serialized tf.Examples), its checks in TF
    Serving's order. What a worker process runs."""
    doc = parse_json(body)
    name = signature_name(doc)
    context = example_from_json(doc["context"]).SerializeToString() if "context" in doc else b""
    if "examples" not in doc:
        # TF Serving says "classify" for :regress too.
        raise invalid(
            f"JSON Value: {excerpt(doc)} When method is classify, key 'examples' is expected "
            "and was not found"
        )
    listed = doc["examples"]
    if not isinstance(listed, list):
        raise invalid(f"JSON Value: {excerpt(doc)} Expecting 'examples' value to be an list/array")
    if not listed:
        raise invalid(f"JSON Value: {excerpt(doc)} 'examples' value is an empty array")
    rows = np.empty(len(listed), dtype=object)
    rows[:] = [context + example_from_json(item).SerializeToString() for item in listed]
    return name, rows


def example_from_json(value: object) -> example_pb2.Example:
    """One JSON object of feature name -> value or list of values, as a tf.Example."""
    if not isinstance(value, dict):
        raise invalid(f"Example must be JSON object but got JSON {json_type(value)}")
    example = example_pb2.Example()
    features = example.features.feature
    for name, content in value.items():
        feature = features[name]  # an empty list still names the feature, with no kind
        values = content if isinstance(content, list) else [content]
        if not _add_uniform(feature, values):
            for item in values:
                _add_value(feature, name, item)
    return example


def _add_uniform(feature: example_pb2.Feature, values: list) -> bool:
    """The common case, a list of one JSON type, added in one call; False when the
    values need the element-by-element walk (mixed types, or something to refuse)."""
    types = set(map(type, values))
    if types == {float}:
        feature.float_list.value.extend(values)
    elif types == {str}:
        feature.bytes_list.value.extend(_utf8(v) for v in values)
    elif types == {int} and min(values) >= _INT64_MIN and max(values) <= _INT64_MAX:
        feature.int64_list.value.extend(values)
    else:
        return False
    return True


def _add_value(feature: example_pb2.Feature, name: str, value: object) -> None:
    """One JSON value appended to `feature`; every value of a feature must be one kind."""
    if isinstance(value, bool):
        _expect_kind(feature, name, "int64_list").value.append(int(value))
    elif isinstance(value, str):
        _expect_kind(feature, name, "bytes_list").value.append(_utf8(value))
    elif isinstance(value, float):
        _expect_kind(feature, name, "float_list").value.append(value)
    elif isinstance(value, int):
        _add_integer(feature, name, value)
    elif is_b64(value):
        kind = _expect_kind(feature, name, "bytes_list")
        kind.value.append(decode_b64(value["b64"]))
    else:  # null, a nested list, an object that is not {"b64": ...}
        raise invalid(f"Feature: {name} has element with unexpected JSON type: {json_type(value)}")


def _add_integer(feature: example_pb2.Feature, name: str, value: int) -> None:
    # A JSON integer beyond both int64 and uint64 is read as a double, as TF Serving's
    # parser reads it; one that only uint64 holds is refused.
    if _INT64_MIN <= value <= _INT64_MAX:
        _expect_kind(feature, name, "int64_list").value.append(value)
    elif _INT64_MAX < value <= _UINT64_MAX:
        _expect_kind(feature, name, "int64_list")
        raise invalid(f"Feature: {name} has uint64_t element. Only int64_t is supported.")
    else:
        try:
            number = float(value)
        except OverflowError:
            raise invalid(f"Feature: {name} has a number too large for a double") from None
        _expect_kind(feature, name, "float_list").value.append(number)


def _expect_kind(feature: example_pb2.Feature, name: str, kind: str):
    """The list `kind` of `feature`, unless the feature already holds another kind."""
    current = feature.WhichOneof("kind")
    if current is not None and current != kind:
        raise invalid(
            f"Unexpected element type in feature: {name} expecting type: {_KIND_NAMES[current]}"
        )
    return getattr(feature, kind)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")
