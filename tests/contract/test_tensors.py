"""The shared codec with both message classes: the client's own protos and TensorFlow's.

TensorFlow's fill rule, byte order and size limit, and that the codec forces neither
proto package (nor TensorFlow) on whoever imports it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tensorflow.core.framework import tensor_pb2, types_pb2

from client.protos import tfs_pb2
from contract import tensors as codec

CLASSES = [tfs_pb2.TensorProto, tensor_pb2.TensorProto]
REAL = [np.float32, np.float64, np.int32, np.uint8, np.int16, np.int8, np.uint16, np.int64]
REAL += [np.uint32, np.uint64, np.bool_, np.float16]
BIG = 1 << 30


def tensor(message, dtype: int, *dims: int, **fields):
    proto = message(dtype=dtype, **fields)
    for size in dims:
        proto.tensor_shape.dim.add(size=size)
    return proto


@pytest.mark.parametrize("message", CLASSES, ids=lambda m: m.DESCRIPTOR.full_name)
@pytest.mark.parametrize("as_content", [False, True])
@pytest.mark.parametrize("dtype", REAL, ids=lambda d: np.dtype(d).name)
def test_both_message_classes_round_trip(message, as_content, dtype):
    array = (np.arange(24).reshape(2, 3, 4) % 7 - 3).astype(dtype)
    proto = codec.from_numpy(array, message, as_content=as_content)
    assert isinstance(proto, message)
    assert bool(proto.tensor_content) == as_content
    back = codec.to_numpy(proto, max_bytes=BIG)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize("as_content", [False, True])
def test_the_wire_bytes_are_the_same_for_both_classes(as_content):
    array = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    ours = codec.from_numpy(array, tfs_pb2.TensorProto, as_content=as_content)
    theirs = codec.from_numpy(array, tensor_pb2.TensorProto, as_content=as_content)
    assert ours.SerializeToString() == theirs.SerializeToString()
    crossed = tensor_pb2.TensorProto.FromString(ours.SerializeToString())
    np.testing.assert_array_equal(codec.to_numpy(crossed, max_bytes=BIG), array)


def test_complex_and_strings_need_fields_only_tensorflow_has():
    values = np.array([1 + 2j, 3 - 4j], np.complex64)
    proto = codec.from_numpy(values, tensor_pb2.TensorProto)
    assert list(proto.scomplex_val) == [1, 2, 3, -4]
    np.testing.assert_array_equal(codec.to_numpy(proto, max_bytes=BIG), values)
    with pytest.raises(codec.TensorError, match="TensorProto has no scomplex_val field"):
        codec.from_numpy(values, tfs_pb2.TensorProto)
    strings = codec.from_numpy(np.array([b"a", "b"], object), tfs_pb2.TensorProto)
    assert codec.to_numpy(strings, max_bytes=BIG).tolist() == [b"a", b"b"]


@pytest.mark.parametrize("message", CLASSES, ids=lambda m: m.DESCRIPTOR.full_name)
def test_fill_rule(message):
    short = tensor(message, types_pb2.DT_INT32, 2, 3, int_val=[4, 5])
    assert codec.to_numpy(short, max_bytes=BIG).tolist() == [[4, 5, 5], [5, 5, 5]]
    empty = tensor(message, types_pb2.DT_FLOAT, 3)
    assert codec.to_numpy(empty, max_bytes=BIG).tolist() == [0, 0, 0]
    no_strings = tensor(message, types_pb2.DT_STRING, 2)
    assert codec.to_numpy(no_strings, max_bytes=BIG).tolist() == [b"", b""]
    long = tensor(message, types_pb2.DT_INT64, 2, int64_val=[1, 2, 3])
    with pytest.raises(codec.TensorError, match="int64_val holds 3 values, more than the 2"):
        codec.to_numpy(long, max_bytes=BIG)


@pytest.mark.parametrize("message", CLASSES, ids=lambda m: m.DESCRIPTOR.full_name)
def test_tensor_content_is_little_endian(message):
    big_endian = np.array([1.5, -2.0, 3.25], ">f4")
    proto = codec.from_numpy(big_endian, message, as_content=True)
    assert proto.dtype == types_pb2.DT_FLOAT
    assert proto.tensor_content == np.array([1.5, -2.0, 3.25], "<f4").tobytes()
    typed = codec.from_numpy(big_endian, message)
    assert list(typed.float_val) == [1.5, -2.0, 3.25]
    halves = codec.from_numpy(np.array([1.0, -2.5], ">f2"), message)
    assert list(halves.half_val) == np.array([1.0, -2.5], np.float16).view(np.uint16).tolist()
    wire = tensor(message, types_pb2.DT_UINT16, 2, tensor_content=b"\x01\x00\x00\x01")
    assert codec.to_numpy(wire, max_bytes=BIG).tolist() == [1, 256]


def test_the_size_limit_is_in_bytes_and_checked_before_allocating():
    at_limit = tensor(tensor_pb2.TensorProto, types_pb2.DT_FLOAT, 4, float_val=[1])
    assert codec.to_numpy(at_limit, max_bytes=16).tolist() == [1, 1, 1, 1]
    over = tensor(tfs_pb2.TensorProto, types_pb2.DT_DOUBLE, 1 << 20, 1 << 20, double_val=[1])
    with pytest.raises(
        codec.TensorError,
        match=r"declares 1099511627776 elements \(8796093022208 bytes\), more than the "
        r"client's limit of 16 bytes per tensor",
    ):
        codec.to_numpy(over, max_bytes=16, holder="client")
    wide = tensor(tfs_pb2.TensorProto, types_pb2.DT_FLOAT, 0, 2**62)
    with pytest.raises(codec.TensorError, match="has a dimension over"):
        codec.to_numpy(wide, max_bytes=BIG)


def test_data_types_match_both_proto_packages():
    tensorflow_names = {v: n for n, v in types_pb2.DataType.items() if v < 100}  # no _REF
    assert tensorflow_names == codec.DATA_TYPES
    assert {v: codec.dtype_name(v) for _, v in tfs_pb2.DataType.items()} == {
        v: n for n, v in tfs_pb2.DataType.items()
    }
    assert codec.dtype_name(999) == "DataType(999)"
    assert codec.short_dtype(types_pb2.DT_INT64) == "int64"
    fields = set(tensor_pb2.TensorProto.DESCRIPTOR.fields_by_name)
    assert {field for _, field in codec.CODECS.values()} <= fields


def test_importing_the_codec_loads_neither_side():
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, contract.tensors; print(' '.join(sys.modules))"],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert not [m for m in loaded if m.split(".")[0] in ("tensorflow", "client", "serving")]
    assert "google.protobuf" not in loaded
