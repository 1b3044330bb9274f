"""The server's own copies of TensorFlow messages (serving/protos/example.proto) against
TensorFlow's, field by field, and the committed generated code against protoc's."""

from __future__ import annotations

from pathlib import Path

import pytest
from tensorflow.core.example import example_pb2 as tf_example_pb2
from tensorflow.core.example import feature_pb2 as tf_feature_pb2

from serving.protos import example_pb2
from tests.client.test_protos import _compare
from tests.protoc import assert_generated_code_current

ROOT = Path(__file__).resolve().parents[2]

PAIRS = [
    (example_pb2.Example, tf_example_pb2.Example),
    (example_pb2.Features, tf_feature_pb2.Features),
    (example_pb2.Feature, tf_feature_pb2.Feature),
    (example_pb2.BytesList, tf_feature_pb2.BytesList),
    (example_pb2.FloatList, tf_feature_pb2.FloatList),
    (example_pb2.Int64List, tf_feature_pb2.Int64List),
]


@pytest.mark.parametrize(("ours", "theirs"), PAIRS, ids=lambda p: p.DESCRIPTOR.name)
def test_example_fields_match_tensorflow_s(ours, theirs):
    _compare(ours.DESCRIPTOR, theirs.DESCRIPTOR)
    assert ours.DESCRIPTOR.full_name.startswith("mnist_serving.example.")
    for field in ours.DESCRIPTOR.fields:  # packed or not changes the bytes
        other = theirs.DESCRIPTOR.fields_by_name[field.name]
        assert field.is_packed == other.is_packed, field.full_name


def test_an_example_written_by_ours_is_tensorflow_s_byte_for_byte():
    ours = example_pb2.Example()
    theirs = tf_example_pb2.Example()
    for message in (ours, theirs):
        features = message.features.feature
        features["f"].float_list.value.extend([1.5, -2.0])
        features["i"].int64_list.value.extend([-(2**63), 7])
        features["b"].bytes_list.value.append(b"\xff\x00")
        features["empty"].SetInParent()
    wire = ours.SerializeToString(deterministic=True)
    assert wire == theirs.SerializeToString(deterministic=True)
    assert tf_example_pb2.Example.FromString(ours.SerializeToString()) == theirs


def test_generated_code_is_up_to_date(tmp_path):
    """The committed example_pb2.py is what `make protos` makes from example.proto."""
    pytest.importorskip("grpc_tools")
    assert_generated_code_current(ROOT / "serving" / "protos" / "example.proto", tmp_path)


def test_server_configs_generated_code_is_up_to_date(tmp_path):
    """The same for server_configs.proto (batching and monitoring config files)."""
    pytest.importorskip("grpc_tools")
    assert_generated_code_current(ROOT / "serving" / "protos" / "server_configs.proto", tmp_path)
