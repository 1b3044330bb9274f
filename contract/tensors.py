"""TensorProto <-> numpy by TensorFlow's rules, for any TensorProto message class.

One codec for the client (its own protos, package `mnistserving.tfs`), the server
(TensorFlow's `tensorflow.core.framework.tensor_pb2`), the REST API and the benchmarks.
The two message classes share field numbers, field names and DataType values, so the
codec reads a message by its fields (duck typing) and builds one from the class it is
given: it imports neither, and neither side's protos are forced on the other.

TensorFlow's rules (tensorflow/core/framework/tensor.cc, Tensor::FromProto, which TF
Serving calls on every input; tf.make_ndarray agrees):
  * `tensor_content` holds the elements' bytes, row-major, little-endian on every
    platform TensorFlow runs on; its length must match the shape exactly.
  * Otherwise the typed repeated field of the dtype (`float_val`, `int_val`, ...) holds
    the values. Fewer values than elements repeat the last one; none means zeros; more
    values than elements is an error.
  * `half_val` holds float16 bit patterns in int32 slots; `scomplex_val`/`dcomplex_val`
    hold interleaved (real, imaginary) pairs.

The fill rule lets a few bytes on the wire declare any size, so nothing is allocated
before the declared size is checked against the caller's limit in bytes.
"""

from __future__ import annotations

import math
from typing import Any, Protocol, TypeVar

import numpy as np

# tensorflow.DataType (tensorflow/core/framework/types.proto), value -> name; the values
# are fixed by the wire format, so this table cannot drift from either proto package.
DATA_TYPES: dict[int, str] = {
    0: "DT_INVALID",
    1: "DT_FLOAT",
    2: "DT_DOUBLE",
    3: "DT_INT32",
    4: "DT_UINT8",
    5: "DT_INT16",
    6: "DT_INT8",
    7: "DT_STRING",
    8: "DT_COMPLEX64",
    9: "DT_INT64",
    10: "DT_BOOL",
    11: "DT_QINT8",
    12: "DT_QUINT8",
    13: "DT_QINT32",
    14: "DT_BFLOAT16",
    15: "DT_QINT16",
    16: "DT_QUINT16",
    17: "DT_UINT16",
    18: "DT_COMPLEX128",
    19: "DT_HALF",
    20: "DT_RESOURCE",
    21: "DT_VARIANT",
    22: "DT_UINT32",
    23: "DT_UINT64",
    24: "DT_FLOAT8_E5M2",
    25: "DT_FLOAT8_E4M3FN",
    26: "DT_FLOAT8_E4M3FNUZ",
    27: "DT_FLOAT8_E4M3B11FNUZ",
    28: "DT_FLOAT8_E5M2FNUZ",
    29: "DT_INT4",
    30: "DT_UINT4",
    31: "DT_INT2",
    32: "DT_UINT2",
    33: "DT_FLOAT4_E2M1FN",
}
_ENUM = {name: value for value, name in DATA_TYPES.items()}
DT_INVALID, DT_STRING, DT_HALF = _ENUM["DT_INVALID"], _ENUM["DT_STRING"], _ENUM["DT_HALF"]

# DataType -> (numpy dtype, the typed repeated field that carries it): the types numpy
# has a twin for. DT_STRING becomes an object array of bytes.
CODECS: dict[int, tuple[np.dtype, str]] = {
    _ENUM["DT_FLOAT"]: (np.dtype(np.float32), "float_val"),
    _ENUM["DT_DOUBLE"]: (np.dtype(np.float64), "double_val"),
    _ENUM["DT_INT32"]: (np.dtype(np.int32), "int_val"),
    _ENUM["DT_UINT8"]: (np.dtype(np.uint8), "int_val"),
    _ENUM["DT_INT16"]: (np.dtype(np.int16), "int_val"),
    _ENUM["DT_INT8"]: (np.dtype(np.int8), "int_val"),
    _ENUM["DT_UINT16"]: (np.dtype(np.uint16), "int_val"),
    _ENUM["DT_INT64"]: (np.dtype(np.int64), "int64_val"),
    _ENUM["DT_UINT32"]: (np.dtype(np.uint32), "uint32_val"),
    _ENUM["DT_UINT64"]: (np.dtype(np.uint64), "uint64_val"),
    _ENUM["DT_BOOL"]: (np.dtype(np.bool_), "bool_val"),
    _ENUM["DT_HALF"]: (np.dtype(np.float16), "half_val"),
    _ENUM["DT_COMPLEX64"]: (np.dtype(np.complex64), "scomplex_val"),
    _ENUM["DT_COMPLEX128"]: (np.dtype(np.complex128), "dcomplex_val"),
    _ENUM["DT_STRING"]: (np.dtype(object), "string_val"),
}
_BY_NUMPY = {dtype: enum for enum, (dtype, _) in CODECS.items() if dtype.kind != "O"}
_COMPLEX_FIELDS = {"scomplex_val": np.float32, "dcomplex_val": np.float64}
# numpy refuses larger dimensions even where the product is 0 (e.g. [0, 2**62])
MAX_DIMENSION = 2**31 - 1


class TensorError(ValueError):
    """A TensorProto that cannot become an array, or an array that cannot become one."""


class _Shape(Protocol):
    dim: Any
    unknown_rank: bool


class _Tensor(Protocol):
    """The fields of TensorProto the codec reads: both proto packages have them."""

    dtype: int
    tensor_shape: _Shape
    tensor_content: bytes


T = TypeVar("T")


def dtype_name(enum: int) -> str:
    """TensorFlow's name of a DataType ('DT_FLOAT'), as TF Serving's errors spell it."""
    return DATA_TYPES.get(enum, f"DataType({enum})")


def short_dtype(enum: int) -> str:
    """TensorFlow's runtime spelling ('float', 'int64'), as its kernel errors use."""
    return dtype_name(enum).removeprefix("DT_").lower()


def numpy_dtype(enum: int) -> np.dtype:
    """The numpy dtype of a DataType; TensorError for types numpy has no twin for."""
    if enum not in CODECS:
        raise TensorError(f"unsupported dtype {dtype_name(enum)}")
    return CODECS[enum][0]


def dtype_enum(dtype: np.dtype) -> int | None:
    """The DataType of a numeric numpy dtype, whatever its byte order, or None."""
    return _BY_NUMPY.get(dtype.newbyteorder("="))


def tensor_size_problem(
    shape: tuple[int, ...], itemsize: int, max_bytes: int, holder: str = "server"
) -> str | None:
    """Why a tensor of `shape` must not be allocated, or None when it may be. `holder`
    names whose limit `max_bytes` is, for the message."""
    count = math.prod(shape)
    if count * itemsize > max_bytes:
        return (
            f"tensor shape {list(shape)} declares {count} elements ({count * itemsize} bytes), "
            f"more than the {holder}'s limit of {max_bytes} bytes per tensor"
        )
    if any(d > MAX_DIMENSION for d in shape):
        return f"tensor shape {list(shape)} has a dimension over {MAX_DIMENSION}"
    return None


def declared_shape(proto: _Tensor) -> tuple[int, ...]:
    """The shape a tensor declares, which must be concrete to decode it."""
    if proto.tensor_shape.unknown_rank:
        raise TensorError("tensor has no concrete shape: unknown rank")
    dims = tuple(d.size for d in proto.tensor_shape.dim)
    if any(d < 0 for d in dims):
        raise TensorError(f"tensor has no concrete shape: {list(dims)} has a negative dimension")
    return dims


def to_numpy(proto: _Tensor, *, max_bytes: int, holder: str = "server") -> np.ndarray:
    """Decode either encoding, refusing before allocating a tensor over `max_bytes`."""
    if proto.dtype == DT_INVALID:
        raise TensorError("tensor has no dtype (DT_INVALID)")
    dtype = numpy_dtype(proto.dtype)
    shape = declared_shape(proto)
    itemsize = 8 if proto.dtype == DT_STRING else dtype.itemsize  # one pointer per string
    problem = tensor_size_problem(shape, itemsize, max_bytes, holder)
    if problem is not None:
        raise TensorError(problem)
    count = math.prod(shape)
    if proto.tensor_content:
        if proto.dtype == DT_STRING:
            raise TensorError("DT_STRING tensors must use string_val, not tensor_content")
        expected = count * dtype.itemsize
        if len(proto.tensor_content) != expected:
            raise TensorError(
                f"tensor_content holds {len(proto.tensor_content)} bytes, but shape "
                f"{list(shape)} of {dtype_name(proto.dtype)} needs {expected}"
            )
        flat = np.frombuffer(proto.tensor_content, dtype=dtype.newbyteorder("<"))
        return flat.astype(dtype, copy=False).reshape(shape)  # a copy on big-endian only
    return _from_typed_field(proto, dtype, shape, count)


def _from_typed_field(
    proto: _Tensor, dtype: np.dtype, shape: tuple[int, ...], count: int
) -> np.ndarray:
    field = CODECS[proto.dtype][1]
    values = _typed_field(proto, field)
    pairs = _COMPLEX_FIELDS.get(field)
    n = len(values) // 2 if pairs else len(values)
    if n > count:
        raise TensorError(
            f"{field} holds {n} values, more than the {count} that shape {list(shape)} has"
        )
    if proto.dtype == DT_STRING:
        flat = np.empty(n, dtype=object)
        flat[:] = list(values)
    elif proto.dtype == DT_HALF:
        flat = np.array(values, dtype=np.uint16).view(np.float16)
    elif pairs:
        flat = np.array(values, dtype=pairs).reshape(-1, 2) @ np.array([1, 1j])
    else:
        try:
            flat = np.array(values, dtype=dtype)
        except OverflowError as exc:
            raise TensorError(f"{field} value out of range for {dtype_name(proto.dtype)}") from exc
    flat = flat.astype(dtype, copy=False)
    if n == count:
        return flat.reshape(shape)
    if n == 0:
        return np.full(count, b"" if dtype.kind == "O" else 0, dtype=dtype).reshape(shape)
    out = np.empty(count, dtype=dtype)
    out[:n] = flat
    out[n:] = flat[-1]
    return out.reshape(shape)


def from_numpy(array: np.ndarray, message: type[T], *, as_content: bool = False) -> T:
    """A `message` (a TensorProto class) holding `array`: in the typed field, as
    TF Serving answers by default, or in little-endian `tensor_content` (one copy of the
    buffer, the fast path). Strings (object, bytes or str arrays) always go in string_val.
    """
    array = np.asarray(array)
    proto: Any = message()
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    if array.dtype == object or array.dtype.kind in "SU":
        proto.dtype = DT_STRING
        proto.string_val.extend(
            v if isinstance(v, bytes) else str(v).encode() for v in array.ravel().tolist()
        )
        return proto
    enum = dtype_enum(array.dtype)
    if enum is None:
        raise TensorError(f"cannot encode numpy dtype {array.dtype}")
    proto.dtype = enum
    if as_content:
        little = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))
        proto.tensor_content = little.tobytes()
        return proto
    flat = array.astype(array.dtype.newbyteorder("="), copy=False).ravel()
    if enum == DT_HALF:
        flat = flat.view(np.uint16)
    elif flat.dtype.kind == "c":
        flat = flat.view(flat.real.dtype)  # interleaved (real, imaginary) pairs
    _typed_field(proto, CODECS[enum][1]).extend(flat.tolist())
    return proto


def _typed_field(proto: Any, field: str) -> Any:
    """A repeated value field; the client's messages leave out the complex ones."""
    try:
        return getattr(proto, field)
    except AttributeError:
        raise TensorError(f"{type(proto).__name__} has no {field} field") from None
