"""The model contract: one set of names, one pixel scaling, one list of version states,
and the model training builds answers to them."""

from __future__ import annotations

import numpy as np
from tensorflow_serving.apis import get_model_status_pb2

from client import _rpc as rpc
from client.protos import tfs_pb2
from contract import mnist
from contract.states import State
from training import data


def test_scale_is_what_the_signature_takes():
    images = np.array([[[0, 51], [255, 128]]], np.uint8)
    scaled = mnist.scale(images)
    assert scaled.dtype == np.float32 and scaled.shape == (1, 2, 2, 1)
    np.testing.assert_array_equal(scaled[0, :, :, 0], np.array([[0, 0.2], [1, 128 / 255]], "f4"))
    assert data.scale is mnist.scale  # training's name for it is the same function


def test_states_are_tf_servings_in_both_proto_packages():
    for enum in (get_model_status_pb2.ModelVersionStatus.State, tfs_pb2.ModelVersionStatus.State):
        assert {name: number for name, number in enum.items()} == {s.name: s for s in State}


def test_the_client_sends_and_reads_the_contracts_names():
    assert (rpc.INPUT, rpc.OUTPUT, rpc.CLASSES) == (
        mnist.INPUT,
        mnist.PROBABILITIES,
        mnist.NUM_CLASSES,
    )


def test_the_trained_model_has_the_contracts_names():
    from training.model import build_model

    model = build_model()
    assert model.input_shape == (None, *mnist.IMAGE_SHAPE)
    assert model.inputs[0].name == mnist.INPUT
    assert model.layers[-1].name == mnist.PROBABILITIES
    assert model.output_shape == (None, mnist.NUM_CLASSES)
