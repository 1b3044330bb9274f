"""numpy <-> TensorProto in the client, both encodings, and malformed tensors."""

from __future__ import annotations

import numpy as np
import pytest

from client import tensors
from client.errors import ClientError, TensorDecodeError
from client.protos import tfs_pb2


def shaped(proto: tfs_pb2.TensorProto, *dims: int) -> tfs_pb2.TensorProto:
    proto.tensor_shape.dim.extend(tfs_pb2.TensorShapeProto.Dim(size=d) for d in dims)
    return proto


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64, np.uint8, np.bool_])
def test_round_trip_through_tensor_content(dtype):
    array = (np.arange(24).reshape(2, 3, 4) % 7).astype(dtype)
    proto = tensors.to_proto(array)
    assert proto.tensor_content and not proto.float_val
    back = tensors.to_numpy(proto)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_big_endian_input_is_sent_little_endian():
    array = np.arange(6, dtype=">f4").reshape(2, 3)
    proto = tensors.to_proto(array)
    assert proto.dtype == tfs_pb2.DT_FLOAT
    assert proto.tensor_content == array.astype("<f4").tobytes()


def test_typed_fields_are_decoded():
    floats = shaped(tfs_pb2.TensorProto(dtype=tfs_pb2.DT_FLOAT, float_val=[0.5, 1.5]), 2, 1)
    np.testing.assert_array_equal(tensors.to_numpy(floats), [[0.5], [1.5]])
    ints = shaped(tfs_pb2.TensorProto(dtype=tfs_pb2.DT_INT64, int64_val=[7, 2, 9]), 3)
    assert tensors.to_numpy(ints).tolist() == [7, 2, 9]
    halves = np.array([1.0, -2.5], np.float16)
    half = shaped(
        tfs_pb2.TensorProto(dtype=tfs_pb2.DT_HALF, half_val=halves.view(np.uint16).tolist()), 2
    )
    np.testing.assert_array_equal(tensors.to_numpy(half), halves)


def test_one_value_fills_the_tensor():
    proto = shaped(tfs_pb2.TensorProto(dtype=tfs_pb2.DT_FLOAT, float_val=[0.25]), 2, 2)
    np.testing.assert_array_equal(tensors.to_numpy(proto), np.full((2, 2), 0.25, np.float32))


def test_a_short_typed_field_repeats_its_last_value_as_the_server_does():
    proto = shaped(tfs_pb2.TensorProto(dtype=tfs_pb2.DT_FLOAT, float_val=[1, 2, 3]), 2, 2)
    np.testing.assert_array_equal(tensors.to_numpy(proto), [[1, 2], [3, 3]])


@pytest.mark.parametrize(
    ("proto", "message"),
    [
        (
            shaped(tfs_pb2.TensorProto(dtype=tfs_pb2.DT_FLOAT, tensor_content=b"\0" * 12), 2, 2),
            "holds 12 bytes",
        ),
        (
            shaped(tfs_pb2.TensorProto(dtype=tfs_pb2.DT_FLOAT, float_val=[1, 2, 3, 4, 5]), 2, 2),
            "holds 5 values, more than the 4",
        ),
        (shaped(tfs_pb2.TensorProto(dtype=tfs_pb2.DT_STRING), 1), "unsupported tensor dtype"),
        (shaped(tfs_pb2.TensorProto(dtype=tfs_pb2.DT_FLOAT), -1, 10), "no concrete shape"),
        (
            shaped(tfs_pb2.TensorProto(dtype=tfs_pb2.DT_FLOAT, float_val=[1]), 1 << 20, 1 << 20),
            "declares 1099511627776 elements .* more than the client's limit",
        ),
    ],
)
def test_malformed_tensors_are_refused(proto, message):
    with pytest.raises(TensorDecodeError, match=message):
        tensors.to_numpy(proto)


def test_the_decode_error_is_a_client_error_importable_from_both_modules():
    assert issubclass(TensorDecodeError, ClientError)
    assert tensors.TensorDecodeError is TensorDecodeError


def test_unsupported_numpy_dtype():
    with pytest.raises(TypeError, match="cannot send a complex64 array"):
        tensors.to_proto(np.zeros(2, np.complex64))


def test_names_and_shapes():
    assert tensors.dtype_name(tfs_pb2.DT_FLOAT) == "float32"
    assert tensors.dtype_name(tfs_pb2.DT_STRING) == "DT_STRING"
    assert tensors.dtype_name(999) == "DataType(999)"
    unknown = tfs_pb2.TensorShapeProto(unknown_rank=True)
    assert tensors.shape_of(unknown) is None
    assert tensors.shape_of(shaped(tfs_pb2.TensorProto(), -1, 28).tensor_shape) == (None, 28)
