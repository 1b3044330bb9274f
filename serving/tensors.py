"""The server's side of the shared tensor codec (contract.tensors): TensorFlow's message
class and the server's size limit, bound once so the services, REST and the benchmarks
call `to_numpy(proto)` / `from_numpy(array)` without repeating them.

A request declares its tensor's shape; nothing is allocated until the declared size is
checked against MAX_TENSOR_BYTES and against the bytes actually sent, so a
10^12-element declaration costs nothing.
"""

from __future__ import annotations

import numpy as np
from tensorflow.core.framework import tensor_pb2

from contract import tensors as codec
from contract.tensors import TensorError, dtype_name, numpy_dtype, short_dtype

__all__ = [
    "MAX_TENSOR_BYTES",
    "TensorError",
    "dtype_name",
    "from_numpy",
    "numpy_dtype",
    "short_dtype",
    "to_numpy",
]

# The largest tensor a request may make the server allocate. TensorFlow's fill rule
# (fewer values than elements repeat the last one) lets a few bytes on the wire declare
# any size, so the bound is on the declared size, checked before allocating
# (512 MiB is ~170,000 MNIST images in one request). Read at each call, so tests may
# lower it.
MAX_TENSOR_BYTES = 512 << 20


def to_numpy(proto: tensor_pb2.TensorProto) -> np.ndarray:
    """Decode either encoding (tensor_content or the typed *_val field)."""
    return codec.to_numpy(proto, max_bytes=MAX_TENSOR_BYTES, holder="server")


def from_numpy(array: np.ndarray, *, as_content: bool = False) -> tensor_pb2.TensorProto:
    """Encode as TF Serving does: typed fields by default, tensor_content on request."""
    return codec.from_numpy(array, tensor_pb2.TensorProto, as_content=as_content)
