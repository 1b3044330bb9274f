"""The client's side of the shared tensor codec (contract.tensors): its own message class,
its size limit, and the dtypes the SDK exchanges. What it raises on a response tensor it
cannot read, TensorDecodeError, lives with the client's other errors (client.errors)
and is importable from here too, where it always was.

Requests always go out as `tensor_content` (one copy of the array's little-endian bytes).
Responses are read from whichever encoding the server chose: TF Serving itself answers
with `tensor_content`, other servers with the typed repeated fields, under TensorFlow's
rules (a short typed field repeats its last value), as the server reads requests.
"""

from __future__ import annotations

import numpy as np

from client.errors import TensorDecodeError
from client.protos import tfs_pb2
from contract import tensors as codec

# The most a response tensor may make the client allocate; bounds what a broken or
# hostile server can cost (1 GiB is 2^28 float32).
MAX_TENSOR_BYTES = 1 << 30
# The real-valued numeric types: the client's messages have no complex fields, and no
# MNIST tensor is a string.
_EXCHANGED = frozenset(e for e, (d, _) in codec.CODECS.items() if d.kind in "biuf")

__all__ = [
    "MAX_TENSOR_BYTES",
    "TensorDecodeError",
    "dtype_name",
    "shape_of",
    "to_numpy",
    "to_proto",
]


def dtype_name(enum: int) -> str:
    """'float32' for DT_FLOAT, or the DataType name for types the client does not read."""
    if enum in _EXCHANGED:
        return codec.numpy_dtype(enum).name
    return codec.dtype_name(enum)


def shape_of(proto: tfs_pb2.TensorShapeProto) -> tuple[int | None, ...] | None:
    """The shape with None for unknown (-1) dimensions, or None for an unknown rank."""
    if proto.unknown_rank:
        return None
    return tuple(d.size if d.size >= 0 else None for d in proto.dim)


def to_proto(array: np.ndarray) -> tfs_pb2.TensorProto:
    """Encode `array` as TensorProto.tensor_content (little-endian, row-major)."""
    array = np.asarray(array)
    if codec.dtype_enum(array.dtype) not in _EXCHANGED:
        raise TypeError(f"cannot send a {array.dtype} array; use one of {_supported()}")
    return codec.from_numpy(array, tfs_pb2.TensorProto, as_content=True)


def to_numpy(proto: tfs_pb2.TensorProto) -> np.ndarray:
    """Decode a TensorProto from either encoding, checking its size against the shape."""
    if proto.dtype not in _EXCHANGED:
        raise TensorDecodeError(f"unsupported tensor dtype {dtype_name(proto.dtype)}")
    try:
        return codec.to_numpy(proto, max_bytes=MAX_TENSOR_BYTES, holder="client")
    except codec.TensorError as exc:
        raise TensorDecodeError(str(exc)) from exc


def _supported() -> str:
    return ", ".join(sorted(codec.numpy_dtype(e).name for e in _EXCHANGED))
