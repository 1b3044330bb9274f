"""TF Serving's REST JSON as numpy arrays: its rules, shapes and error messages.

This is the costly part of a large REST request (a 28 MB body takes seconds), and
`json.loads` holds the GIL for all of it, so a thread does not keep the event loop
free. The REST API runs it in a worker process instead; this module therefore imports
no TensorFlow (a worker starts in a fraction of a second and stays small), and what it
takes and returns pickles: the signature's input types as `JsonType`s, numpy arrays,
`ServingError`s.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass

import grpc
import numpy as np

from contract.tensors import tensor_size_problem
from serving.errors import ServingError, invalid

MAX_RANK = 64  # numpy's limit


@dataclass(frozen=True)
class JsonType:
    """What converting JSON to one input needs to know of its TensorFlow dtype."""

    name: str  # TensorFlow's short name ("float"), as its messages say
    numpy: np.dtype | None  # None: a dtype numpy cannot hold
    max_bytes: int  # the per-tensor limit (tensors.MAX_TENSOR_BYTES)

    @property
    def string(self) -> bool:
        return self.numpy is not None and self.numpy.kind == "O"

    def accepted(self) -> frozenset | None:
        """The JSON value types this dtype takes; None when it takes none."""
        if self.numpy is None:
            return None
        return _ACCEPTED.get(f"{self.numpy.kind}{self.numpy.itemsize}")


STRING = JsonType("string", np.dtype(object), 0)


def signature_name(doc: dict) -> str:
    """The body's "signature_name" ("" when absent), checked as TF Serving checks it."""
    name = doc.get("signature_name", "")
    if not isinstance(name, str):
        raise invalid(
            f"JSON Value: {excerpt(doc)} not formatted correctly. "
            "'signature_name' key must be a string value."
        )
    return name


def decode_predict(
    body: bytes, signatures: Mapping[str, Mapping[str, JsonType]] | ServingError, default: str
) -> tuple[str, dict[str, np.ndarray], bool]:
    """A predict body as (signature name, input arrays, columnar), in TF Serving's order
    of checks: the JSON, signature_name, the model (`signatures` is the error resolving
    it, if that failed), the signature, then the tensors. What a worker process runs."""
    doc = parse_json(body)
    name = signature_name(doc)
    if isinstance(signatures, ServingError):
        raise signatures
    name = name or default
    if name not in signatures:
        raise invalid(f'Serving signature name: "{name}" not found in signature def')
    arrays, columnar = decode_inputs(doc, name, signatures[name])
    return name, arrays, columnar


def parse_json(body: bytes) -> dict:
    if not body:
        raise invalid("JSON Parse error: The document is empty")
    try:
        doc = json.loads(body)
    except json.JSONDecodeError as exc:
        raise invalid(f"JSON Parse error: {exc.msg} at offset: {exc.pos}") from None
    except ValueError as exc:  # not UTF-8/16/32, an integer of over 4300 digits
        raise invalid(f"JSON Parse error: {exc}") from None
    except RecursionError:
        raise invalid("JSON Parse error: the document is nested too deeply") from None
    if not isinstance(doc, dict):
        raise invalid(f"JSON Value: {excerpt(doc)} Is not object")
    return doc


def decode_inputs(
    doc: dict, signature_name: str, inputs: Mapping[str, JsonType]
) -> tuple[dict[str, np.ndarray], bool]:
    """The request's tensors in the signature's dtypes, and whether it was columnar."""
    dtypes = dict(sorted(inputs.items()))
    if not dtypes:
        raise invalid(f"Failed to get input map for signature: {signature_name}")
    has_instances, has_inputs = "instances" in doc, "inputs" in doc
    if has_instances and has_inputs:
        raise invalid(
            f"JSON Value: {excerpt(doc)} Not formatted correctly expecting only one of "
            "'inputs' or 'instances' keys to exist "
        )
    if has_instances:
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise invalid(f"JSON Value: {excerpt(doc)} Expecting 'instances' to be an list/array")
        if not instances:
            raise invalid(f"JSON Value: {excerpt(doc)} No values in 'instances' array")
        return _from_instances(instances, dtypes), False
    if has_inputs:
        return _from_inputs(doc["inputs"], dtypes), True
    raise invalid("Missing 'inputs' or 'instances' key")


def _from_instances(instances: list, dtypes: dict[str, JsonType]) -> dict[str, np.ndarray]:
    named = _is_named(instances[0])
    if not named and len(dtypes) > 1:
        raise invalid(
            "instances is a plain list, but expecting list of objects as multiple input "
            "tensors required as per tensorinfo_map"
        )
    rows: dict[str, list[np.ndarray]] = {alias: [] for alias in dtypes}
    for index, item in enumerate(instances):
        if named:
            if not _is_named(item):
                raise invalid(f"Expecting object but got list at item {index} of input list")
            for key, value in item.items():
                if key not in dtypes:
                    raise invalid(
                        f"Failed to process element: {index} key: {key} of 'instances' list. "
                        f"Error: INVALID_ARGUMENT: JSON object: does not have named input: {key}"
                    )
                _add_row(rows[key], value, dtypes[key], f"{index} key: {key}")
            if set(item) != set(dtypes):
                raise invalid(
                    f"Failed to process element: {index} of 'instances' list. JSON object: "
                    f"{excerpt(item)} keys must be equal to: {','.join(dtypes)}"
                )
        else:
            if _is_named(item):
                raise invalid(f"Expecting value/list but got object at item {index} of input list")
            alias = next(iter(dtypes))
            _add_row(rows[alias], item, dtypes[alias], str(index))
    arrays = {}
    for alias, items in rows.items():
        _check_size((len(items), *items[0].shape), dtypes[alias])
        arrays[alias] = np.stack(items)
    return arrays


def _add_row(rows: list[np.ndarray], value, dtype: JsonType, where: str) -> None:
    try:
        array = to_array(value, dtype)
        if rows and array.shape != rows[0].shape:
            first = rows[0]
            if array.size != first.size:
                raise invalid(f"Expecting tensor size: {first.size} but got: {array.size}")
            raise invalid(
                f"Expecting shape {_shape_text(first.shape)} but got: {_shape_text(array.shape)}"
            )
    except ServingError as exc:
        raise invalid(
            f"Failed to process element: {where} of 'instances' list. "
            f"Error: {exc.code.name}: {exc.message}"
        ) from None
    rows.append(array)


def _from_inputs(inputs, dtypes: dict[str, JsonType]) -> dict[str, np.ndarray]:
    if not isinstance(inputs, dict) or is_b64(inputs):
        if len(dtypes) > 1:
            raise invalid(
                "inputs is a plain value/list, but expecting an object as multiple input "
                "tensors required as per tensorinfo_map"
            )
        alias, dtype = next(iter(dtypes.items()))
        return {alias: to_array(inputs, dtype)}
    arrays = {}
    for alias, dtype in dtypes.items():  # like TF Serving, other keys are not read
        if alias not in inputs:
            raise invalid(f"Missing named input: {alias} in 'inputs' object.")
        arrays[alias] = to_array(inputs[alias], dtype)
    return arrays


def is_b64(value) -> bool:
    """TF Serving's binary value: an object whose only key is "b64", a string."""
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


def _is_named(value) -> bool:
    return isinstance(value, dict) and not is_b64(value)


# numpy kind and size -> the JSON (Python) types TF Serving accepts for the dtype; no
# entry (half, uint16, complex): TF Serving cannot convert JSON to it.
_NUMBER = frozenset((int, float))
_INTEGER = frozenset((int,))
_ACCEPTED: dict[str, frozenset] = {
    "f4": _NUMBER,
    "f8": _NUMBER,
    "i1": _INTEGER,
    "i2": _INTEGER,
    "i4": _INTEGER,
    "i8": _INTEGER,
    "u1": _INTEGER,
    "u4": _INTEGER,
    "u8": _INTEGER,
    "b1": frozenset((bool,)),
    "O8": frozenset((str,)),
}


def to_array(value, dtype: JsonType) -> np.ndarray:
    """One JSON value as a tensor of `dtype`: TF Serving's rules and messages. The shape
    comes from the first element at each level; every list must then match it."""
    accepted = dtype.accepted()
    if accepted is None:
        raise ServingError(
            grpc.StatusCode.UNIMPLEMENTED,
            f"Conversion of JSON Value: {excerpt(value)} to type: {dtype.name}",
        )
    shape = _dense_shape(value)
    _check_size(shape, dtype)
    if not dtype.string:
        leaves = _dense_leaves(value, shape, accepted)
        if leaves is not None:
            return _convert(leaves, dtype)
    # Strings, and anything the quick check refused: walk the value for the exact error.
    strings: list[bytes] = []
    _walk(value, 0, shape, dtype, accepted, strings)
    if dtype.string:
        array = np.empty(len(strings), dtype=object)
        array[:] = strings
        return array.reshape(shape)
    return _convert(value, dtype)


def _dense_leaves(value, shape: tuple[int, ...], accepted: frozenset) -> np.ndarray | None:
    """The values as an object array (pointers only: a long string cannot blow it up),
    or None unless it is exactly `shape` with only accepted leaf types (bool is not int)."""
    try:
        leaves = np.array(value, dtype=object)
    except ValueError:
        return None
    if leaves.shape != shape or not set(map(type, leaves.ravel().tolist())) <= accepted:
        return None
    return leaves


def _convert(values, dtype: JsonType) -> np.ndarray:
    target = dtype.numpy
    try:
        with np.errstate(over="ignore"):  # like TF Serving, 1e39 into float32 is inf
            if isinstance(values, np.ndarray):
                return values.astype(target)
            return np.array(values, dtype=target)
    except OverflowError as exc:  # out of range for an integer dtype, or beyond double
        raise invalid(f"JSON Value out of range for {dtype.name}: {exc}") from None


def _dense_shape(value) -> tuple[int, ...]:
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if len(shape) > MAX_RANK:
            raise invalid(f"JSON Value: {excerpt(value)} has more than {MAX_RANK} dimensions")
        if not value:
            break
        value = value[0]
    return tuple(shape)


def _check_size(shape: tuple[int, ...], dtype: JsonType) -> None:
    problem = tensor_size_problem(shape, dtype.numpy.itemsize, dtype.max_bytes)
    if problem is not None:
        raise invalid(problem)


def _walk(value, level: int, shape, dtype: JsonType, accepted: frozenset, strings: list) -> None:
    rank = len(shape)
    if not isinstance(value, list):
        if level != rank:
            raise invalid(
                f"JSON Value: {excerpt(value)} found at incorrect level: {level + 1} "
                f"in the JSON DOM. Expected at level: {rank}"
            )
        if dtype.string:
            strings.append(_string(value))
        elif type(value) not in accepted:
            raise _type_error(value, dtype)
        return
    if level >= rank:
        raise invalid(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(value) != shape[level]:
        raise invalid(
            f"Encountered list at unexpected size: {len(value)} at level: {level} "
            f"expected size: {shape[level]}"
        )
    for item in value:
        _walk(item, level + 1, shape, dtype, accepted, strings)


def _string(value) -> bytes:
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if not isinstance(value, dict):
        raise _type_error(value, STRING)
    if not is_b64(value):
        raise invalid(f"JSON Value: {excerpt(value)} not formatted correctly for base64 data")
    return decode_b64(value["b64"])


def decode_b64(text: str) -> bytes:
    """Standard base64, padding optional (as TF Serving decodes it)."""
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise invalid("Unable to base64 decode") from None


def _type_error(value, dtype: JsonType) -> ServingError:
    return invalid(
        f"JSON Value: {excerpt(value)} Type: {json_type(value)} is not of expected type: "
        f"{dtype.name}"
    )


def json_type(value) -> str:
    """The JSON type's name as TF Serving's messages spell it."""
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def excerpt(value, limit: int = 256) -> str:
    """Compact JSON of `value` for error messages, cut at `limit` characters without
    serializing more than that of a huge document."""
    parts: list[str] = []
    size = 0

    def emit(text: str) -> bool:
        nonlocal size
        parts.append(text)
        size += len(text)
        return size < limit

    def walk(item) -> bool:
        if isinstance(item, list):
            if not emit("["):
                return False
            for index, element in enumerate(item):
                if (index and not emit(",")) or not walk(element):
                    return False
            return emit("]")
        if isinstance(item, dict):
            if not emit("{"):
                return False
            for index, (key, element) in enumerate(item.items()):
                if (index and not emit(",")) or not emit(json.dumps(key) + ":"):
                    return False
                if not walk(element):
                    return False
            return emit("}")
        if isinstance(item, str):
            item = item[:limit]  # a huge string is not copied whole into a message
        return emit(json.dumps(item, ensure_ascii=False))

    walk(value)
    return "".join(parts)[:limit]


def _shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"
