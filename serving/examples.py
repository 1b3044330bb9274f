"""The tf.Example inputs of Classify, Regress and MultiInference.

A request's `Input` becomes the 1-D string tensor that a classify or regress signature
takes as `inputs`: one serialized tf.Example per row. With a context, each row is the
context's bytes followed by the example's bytes. Protobuf parsing merges concatenated
messages and lets a later map entry replace an earlier one, so every example carries the
context's features and its own win where both name one: TF Serving's semantics, without
ever parsing or merging an Example here.

TF Serving's REST API writes Examples as JSON objects; `example_from_json` turns one into
a tf.Example with its rules (ints -> int64_list, floats -> float_list, strings and
{"b64": ...} -> bytes_list, true/false -> 1/0) and error messages.
"""

from __future__ import annotations

import base64
import binascii

import numpy as np
from tensorflow.core.example import example_pb2, feature_pb2
from tensorflow_serving.apis import input_pb2

from serving.servable import invalid

_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1


def serialized_examples(message: input_pb2.Input) -> np.ndarray:
    """The examples as a 1-D object array of serialized tf.Example bytes.

    An Input with no examples (none listed, or no `kind` set at all) is refused with
    TF Serving's INVALID_ARGUMENT "Input is empty.": a model cannot run on zero rows.
    """
    kind = message.WhichOneof("kind")
    if kind == "example_list":
        examples, context = message.example_list.examples, b""
    elif kind == "example_list_with_context":
        with_context = message.example_list_with_context
        examples, context = with_context.examples, with_context.context.SerializeToString()
    else:
        examples, context = (), b""
    if not examples:
        raise invalid("Input is empty.")
    rows = np.empty(len(examples), dtype=object)
    rows[:] = [context + example.SerializeToString() for example in examples]
    return rows


# ---- REST JSON -> tf.Example ------------------------------------------------------------

_KIND_NAMES = {"bytes_list": "bytes", "float_list": "float", "int64_list": "int64"}


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


def _add_uniform(feature: feature_pb2.Feature, values: list) -> bool:
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


def _add_value(feature: feature_pb2.Feature, name: str, value: object) -> None:
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


def _add_integer(feature: feature_pb2.Feature, name: str, value: int) -> None:
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


def _expect_kind(feature: feature_pb2.Feature, name: str, kind: str):
    """The list `kind` of `feature`, unless the feature already holds another kind."""
    current = feature.WhichOneof("kind")
    if current is not None and current != kind:
        raise invalid(
            f"Unexpected element type in feature: {name} expecting type: {_KIND_NAMES[current]}"
        )
    return getattr(feature, kind)


def _utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def is_b64(value: object) -> bool:
    """TF Serving's binary value: an object whose only key is "b64", a string."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def decode_b64(text: str) -> bytes:
    """Standard base64, padding optional (as TF Serving decodes it)."""
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise invalid("Unable to base64 decode") from None


def json_type(value: object) -> str:
    """The JSON type's name as TF Serving's messages spell it."""
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    return {dict: "Object", list: "Array", str: "String"}.get(type(value), "Number")
