"""Size checks shared by the TensorProto decoder and the REST API's JSON worker.

Free of TensorFlow, so the worker process that parses JSON bodies imports only numpy.
"""

from __future__ import annotations

import math

MAX_DIMENSION = 2**31 - 1


def tensor_size_problem(shape: tuple[int, ...], itemsize: int, max_bytes: int) -> str | None:
    """Why a tensor of `shape` must not be allocated, or None when it may be."""
    count = math.prod(shape)
    if count * itemsize > max_bytes:
        return (
            f"tensor shape {list(shape)} declares {count} elements ({count * itemsize} bytes), "
            f"more than the server's limit of {max_bytes} bytes per tensor"
        )
    if any(d > MAX_DIMENSION for d in shape):  # e.g. [0, 2**62]: no elements, numpy refuses
        return f"tensor shape {list(shape)} has a dimension over {MAX_DIMENSION}"
    return None
