"""TensorProto <-> numpy, without per-element Python loops and without trusting sizes.

A request declares its tensor's shape; nothing is allocated until the declared size is
checked against a hard limit and against the bytes actually sent, so a 10^12-element
declaration costs nothing.
"""

from __future__ import annotations

import math

import numpy as np
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2

from serving.limits import tensor_size_problem

# The largest tensor a request may make the server allocate. TensorFlow's fill rule
# (fewer values than elements repeat the last one) lets a few bytes on the wire declare
# any size, so the bound is on the declared size, checked before allocating
# (512 MiB is ~170,000 MNIST images in one request).
MAX_TENSOR_BYTES = 512 << 20


class TensorError(ValueError):
    """A TensorProto that cannot become an array; the message says why."""


# DataType -> (numpy dtype, typed field of TensorProto)
_CODECS: dict[int, tuple[np.dtype, str]] = {
    types_pb2.DT_FLOAT: (np.dtype(np.float32), "float_val"),
    types_pb2.DT_DOUBLE: (np.dtype(np.float64), "double_val"),
    types_pb2.DT_INT32: (np.dtype(np.int32), "int_val"),
    types_pb2.DT_UINT8: (np.dtype(np.uint8), "int_val"),
    types_pb2.DT_INT16: (np.dtype(np.int16), "int_val"),
    types_pb2.DT_INT8: (np.dtype(np.int8), "int_val"),
    types_pb2.DT_UINT16: (np.dtype(np.uint16), "int_val"),
    types_pb2.DT_INT64: (np.dtype(np.int64), "int64_val"),
    types_pb2.DT_UINT32: (np.dtype(np.uint32), "uint32_val"),
    types_pb2.DT_UINT64: (np.dtype(np.uint64), "uint64_val"),
    types_pb2.DT_BOOL: (np.dtype(np.bool_), "bool_val"),
    types_pb2.DT_HALF: (np.dtype(np.float16), "half_val"),
    types_pb2.DT_COMPLEX64: (np.dtype(np.complex64), "scomplex_val"),
    types_pb2.DT_COMPLEX128: (np.dtype(np.complex128), "dcomplex_val"),
    types_pb2.DT_STRING: (np.dtype(object), "string_val"),
}
_BY_NUMPY = {dtype: enum for enum, (dtype, _) in _CODECS.items() if dtype != np.dtype(object)}


def dtype_name(enum: int) -> str:
    try:
        return types_pb2.DataType.Name(enum)
    except ValueError:
        return f"DataType({enum})"


def short_dtype(enum: int) -> str:
    """TensorFlow's own spelling ('float', 'int64'), as its runtime errors use."""
    return dtype_name(enum).removeprefix("DT_").lower()


def numpy_dtype(enum: int) -> np.dtype:
    if enum not in _CODECS:
        raise TensorError(f"unsupported dtype {dtype_name(enum)}")
    return _CODECS[enum][0]


def declared_shape(proto: tensor_pb2.TensorProto) -> tuple[int, ...]:
    if proto.tensor_shape.unknown_rank:
        raise TensorError("tensor shape has unknown rank; a concrete shape is required")
    dims = tuple(d.size for d in proto.tensor_shape.dim)
    if any(d < 0 for d in dims):
        raise TensorError(f"tensor shape {list(dims)} has a negative dimension")
    return dims


def check_size(shape: tuple[int, ...], dtype_enum: int) -> int:
    """The element count, once the declared size is known to be allocatable."""
    itemsize = 8 if dtype_enum == types_pb2.DT_STRING else numpy_dtype(dtype_enum).itemsize
    problem = tensor_size_problem(shape, itemsize, MAX_TENSOR_BYTES)
    if problem is not None:
        raise TensorError(problem)
    return math.prod(shape)


def to_numpy(proto: tensor_pb2.TensorProto) -> np.ndarray:
    """Decode either encoding (tensor_content or the typed *_val field)."""
    if proto.dtype == types_pb2.DT_INVALID:
        raise TensorError("tensor has no dtype (DT_INVALID)")
    dtype = numpy_dtype(proto.dtype)
    shape = declared_shape(proto)
    count = check_size(shape, proto.dtype)
    if proto.tensor_content:
        if proto.dtype == types_pb2.DT_STRING:
            raise TensorError("DT_STRING tensors must use string_val, not tensor_content")
        expected = count * dtype.itemsize
        if len(proto.tensor_content) != expected:
            raise TensorError(
                f"tensor_content holds {len(proto.tensor_content)} bytes, but shape "
                f"{list(shape)} of {dtype_name(proto.dtype)} needs {expected}"
            )
        return np.frombuffer(proto.tensor_content, dtype=dtype).reshape(shape)
    return _from_typed_field(proto, dtype, shape, count)


def _from_typed_field(
    proto: tensor_pb2.TensorProto, dtype: np.dtype, shape: tuple[int, ...], count: int
) -> np.ndarray:
    field = _CODECS[proto.dtype][1]
    values = getattr(proto, field)
    complex_pairs = field in ("scomplex_val", "dcomplex_val")
    n = len(values) // 2 if complex_pairs else len(values)
    if n > count:
        raise TensorError(
            f"{field} holds {n} values, more than the {count} that shape {list(shape)} has"
        )
    if proto.dtype == types_pb2.DT_STRING:
        flat = np.empty(n, dtype=object)
        flat[:] = list(values)
    elif proto.dtype == types_pb2.DT_HALF:
        flat = np.array(values, dtype=np.uint16).view(np.float16)
    elif complex_pairs:
        pairs = np.array(values, dtype=np.float32 if field == "scomplex_val" else np.float64)
        flat = pairs.reshape(-1, 2) @ np.array([1, 1j])
    else:
        try:
            flat = np.array(values, dtype=dtype)
        except OverflowError as exc:
            raise TensorError(f"{field} value out of range for {dtype_name(proto.dtype)}") from exc
    flat = flat.astype(dtype, copy=False)
    if n == count:
        return flat.reshape(shape)
    # TensorFlow's rule: fewer values than elements repeat the last value; none means zeros.
    if n == 0:
        return np.full(count, b"" if dtype.kind == "O" else 0, dtype=dtype).reshape(shape)
    out = np.empty(count, dtype=dtype)
    out[:n] = flat
    out[n:] = flat[-1]
    return out.reshape(shape)


def from_numpy(array: np.ndarray, *, as_content: bool = False) -> tensor_pb2.TensorProto:
    """Encode as TF Serving does: typed fields by default, tensor_content on request."""
    array = np.asarray(array)
    proto = tensor_pb2.TensorProto(
        tensor_shape=tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in array.shape]
        )
    )
    if array.dtype == object or array.dtype.kind in "SU":
        proto.dtype = types_pb2.DT_STRING
        proto.string_val.extend(
            v if isinstance(v, bytes) else str(v).encode() for v in array.ravel().tolist()
        )
        return proto
    enum = _BY_NUMPY.get(array.dtype)
    if enum is None:
        raise TensorError(f"cannot encode numpy dtype {array.dtype}")
    proto.dtype = enum
    if as_content:
        proto.tensor_content = np.ascontiguousarray(array).tobytes()
        return proto
    field = _CODECS[enum][1]
    flat = array.ravel()
    if enum == types_pb2.DT_HALF:
        flat = flat.view(np.uint16)
    elif flat.dtype.kind == "c":
        flat = flat.view(flat.real.dtype)  # interleaved (real, imag) pairs
    getattr(proto, field).extend(flat.tolist())
    return proto
