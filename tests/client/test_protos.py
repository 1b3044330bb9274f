"""Our minimal TF Serving messages against tensorflow-serving-api's, on the wire, both ways.

This module imports TensorFlow (through tensorflow-serving-api) on purpose: the point is
that both sets of descriptors live in one process without colliding, and that bytes
written by either side parse on the other.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import descriptor
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    predict_pb2,
)
from tensorflow_serving.apis import status_pb2 as tf_status_pb2

from client import _rpc as rpc
from client.protos import tfs_pb2
from tests.protoc import assert_generated_code_current

ROOT = Path(__file__).resolve().parents[2]

# our message -> TF's message of the same meaning
PAIRS = [
    (tfs_pb2.TensorShapeProto, tensor_shape_pb2.TensorShapeProto),
    (tfs_pb2.TensorProto, tensor_pb2.TensorProto),
    (tfs_pb2.ModelSpec, model_pb2.ModelSpec),
    (tfs_pb2.PredictRequest, predict_pb2.PredictRequest),
    (tfs_pb2.PredictResponse, predict_pb2.PredictResponse),
    (tfs_pb2.TensorInfo, meta_graph_pb2.TensorInfo),
    (tfs_pb2.SignatureDef, meta_graph_pb2.SignatureDef),
    (tfs_pb2.SignatureDefMap, get_model_metadata_pb2.SignatureDefMap),
    (tfs_pb2.GetModelMetadataRequest, get_model_metadata_pb2.GetModelMetadataRequest),
    (tfs_pb2.GetModelMetadataResponse, get_model_metadata_pb2.GetModelMetadataResponse),
    (tfs_pb2.StatusProto, tf_status_pb2.StatusProto),
    (tfs_pb2.GetModelStatusRequest, get_model_status_pb2.GetModelStatusRequest),
    (tfs_pb2.ModelVersionStatus, get_model_status_pb2.ModelVersionStatus),
    (tfs_pb2.GetModelStatusResponse, get_model_status_pb2.GetModelStatusResponse),
]


def _compare(ours: descriptor.Descriptor, theirs: descriptor.Descriptor) -> None:
    for field in ours.fields:
        other = theirs.fields_by_name.get(field.name)
        where = f"{ours.full_name}.{field.name}"
        assert other is not None, f"{where} has no counterpart in {theirs.full_name}"
        assert field.number == other.number, where
        assert field.type == other.type, where
        assert field.is_repeated == other.is_repeated, where
        if field.enum_type is not None:
            theirs_values = {v.name: v.number for v in other.enum_type.values}
            for value in field.enum_type.values:
                assert theirs_values.get(value.name) == value.number, f"{where}: {value.name}"
        if field.message_type is not None and field.message_type.file is ours.file:
            _compare(field.message_type, other.message_type)
        elif field.message_type is not None:  # a well-known type: the very same one
            assert field.message_type.full_name == other.message_type.full_name, where


@pytest.mark.parametrize(("ours", "theirs"), PAIRS, ids=lambda p: p.DESCRIPTOR.name)
def test_field_numbers_and_types_match(ours, theirs):
    _compare(ours.DESCRIPTOR, theirs.DESCRIPTOR)
    assert ours.DESCRIPTOR.full_name.startswith("mnistserving.tfs.")


def test_status_codes_and_dtypes_match():
    theirs = tf_status_pb2.StatusProto.DESCRIPTOR.fields_by_name["error_code"].enum_type
    for value in tfs_pb2.ErrorCode.DESCRIPTOR.values:
        assert theirs.values_by_name[value.name].number == value.number
    for value in tfs_pb2.DataType.DESCRIPTOR.values:
        assert types_pb2.DataType.Value(value.name) == value.number


def test_our_predict_request_parses_as_tf_serving_s():
    batch = np.random.default_rng(0).random((3, 28, 28), dtype=np.float32)
    spec = rpc.model_spec("mnist", 4, None, "serving_default")
    wire = rpc.predict_request(spec, batch).SerializeToString()
    theirs = predict_pb2.PredictRequest.FromString(wire)
    assert theirs.model_spec.name == "mnist"
    assert theirs.model_spec.version.value == 4
    assert theirs.model_spec.signature_name == "serving_default"
    assert list(theirs.output_filter) == ["probabilities"]
    tensor = theirs.inputs["images"]
    assert tensor.dtype == types_pb2.DT_FLOAT
    np.testing.assert_array_equal(tf.make_ndarray(tensor), batch[..., np.newaxis])

    labelled = rpc.model_spec("mnist", None, "canary", None)
    theirs_spec = model_pb2.ModelSpec.FromString(labelled.SerializeToString())
    assert theirs_spec.WhichOneof("version_choice") == "version_label"
    assert theirs_spec.version_label == "canary"


@pytest.mark.parametrize("content", [True, False], ids=["tensor_content", "float_val"])
def test_tf_serving_predict_response_parses_as_ours(content):
    probabilities = np.random.default_rng(1).dirichlet(np.ones(10), size=5).astype(np.float32)
    response = predict_pb2.PredictResponse()
    response.model_spec.name = "mnist"
    response.model_spec.version.value = 3
    response.model_spec.signature_name = "serving_default"
    tensor = tf.make_tensor_proto(probabilities)
    if not content:  # the typed-field encoding some servers use
        tensor.ClearField("tensor_content")
        tensor.float_val.extend(probabilities.ravel().tolist())
    response.outputs["probabilities"].CopyFrom(tensor)
    response.outputs["classes"].CopyFrom(tf.make_tensor_proto(probabilities.argmax(axis=1)))

    ours = tfs_pb2.PredictResponse.FromString(response.SerializeToString())
    predictions = rpc.predictions(ours, 5)
    assert [p.digit for p in predictions] == probabilities.argmax(axis=1).tolist()
    np.testing.assert_allclose([p.probabilities for p in predictions], probabilities, rtol=1e-6)
    assert {(p.model, p.version) for p in predictions} == {("mnist", 3)}


def test_tf_serving_metadata_response_parses_as_ours():
    signature = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/predict")
    signature.inputs["images"].name = "serving_default_images:0"
    signature.inputs["images"].dtype = types_pb2.DT_FLOAT
    signature.inputs["images"].tensor_shape.CopyFrom(tf.TensorShape([None, 28, 28, 1]).as_proto())
    signature.outputs["probabilities"].dtype = types_pb2.DT_FLOAT
    signature.outputs["probabilities"].tensor_shape.CopyFrom(tf.TensorShape([None, 10]).as_proto())
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    signature_map.signature_def["serving_default"].CopyFrom(signature)
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = "mnist"
    response.model_spec.version.value = 2
    response.metadata["signature_def"].Pack(signature_map)

    meta = rpc.metadata(tfs_pb2.GetModelMetadataResponse.FromString(response.SerializeToString()))
    assert (meta.model, meta.version) == ("mnist", 2)
    sig = meta.signatures["serving_default"]
    assert sig.method_name == "tensorflow/serving/predict"
    assert sig.inputs["images"].dtype == "float32"
    assert sig.inputs["images"].shape == (None, 28, 28, 1)
    assert sig.outputs["probabilities"].shape == (None, 10)


def test_tf_serving_status_response_parses_as_ours():
    response = get_model_status_pb2.GetModelStatusResponse()
    available = response.model_version_status.add(version=1)
    available.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
    broken = response.model_version_status.add(version=2)
    broken.state = get_model_status_pb2.ModelVersionStatus.END
    broken.status.error_code = 13  # INTERNAL
    broken.status.error_message = "could not load"

    status = rpc.status(
        tfs_pb2.GetModelStatusResponse.FromString(response.SerializeToString()), "m"
    )
    assert [(v.version, v.state, v.error_code) for v in status.versions] == [
        (2, "END", "INTERNAL"),
        (1, "AVAILABLE", "OK"),
    ]
    assert status.versions[0].error_message == "could not load"
    assert status.available == (1,)


def test_fields_we_do_not_define_survive_a_round_trip_through_ours():
    theirs = predict_pb2.PredictRequest()
    theirs.model_spec.name = "mnist"
    theirs.client_id = b"abc"
    theirs.request_options.deterministic_mode = 1
    theirs.inputs["images"].CopyFrom(tf.make_tensor_proto(np.zeros((1, 2), np.float32)))
    ours = tfs_pb2.PredictRequest.FromString(theirs.SerializeToString())
    again = predict_pb2.PredictRequest.FromString(ours.SerializeToString())
    assert again == theirs


def test_generated_code_is_up_to_date(tmp_path):
    """The committed tfs_pb2.py is what `make protos` makes from tfs.proto today."""
    pytest.importorskip("grpc_tools")
    assert_generated_code_current(ROOT / "client" / "protos" / "tfs.proto", tmp_path)
