"""Predict and metadata on models that are not ours, answered as TF Serving answers them.

One server, with the flags TF Serving's own model-server tests use (a REST port, a UNIX
socket beside the TCP port), serves a TF1 graph (placeholders, tf.Example parsing in the
graph) and a native TF2 export from `testmodels`. The SignatureDef's declared shapes do
not gate a request: the graph decides, as in a TensorFlow session in TF Serving.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np
import pytest
from tensorflow.core.framework import types_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from serving import tensors
from tests.conftest import RunningServer, free_port, running_server
from tests.serving import testmodels

VERSION = 123


@dataclass(frozen=True)
class Server:
    running: RunningServer
    rest: str
    socket: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("conformance")
    tf1 = testmodels.half_plus_two_tf1(root / "tf1", VERSION)
    tf2 = testmodels.half_plus_two_tf2(root / "tf2", VERSION)
    config = root / "models.config"
    config.write_text(
        "model_config_list {\n"
        f'  config {{ name: "tf1" base_path: "{tf1}" model_platform: "tensorflow" }}\n'
        f'  config {{ name: "tf2" base_path: "{tf2}" model_platform: "tensorflow" }}\n'
        "}\n"
    )
    rest_port, socket = free_port(), root / "tf-serving.sock"
    flags = [
        f"--model_config_file={config}",
        f"--rest_api_port={rest_port}",
        f"--grpc_socket_path={socket}",
        "--rest_api_timeout_in_ms=5000",
        "--grpc_channel_arguments=grpc.max_connection_age_ms=2000,grpc.lb_policy_name=grpclb",
    ]
    with running_server(flags, model_name="tf1") as running:
        running.wait_for_log("Exporting HTTP/REST API at:localhost:")
        yield Server(running, f"http://127.0.0.1:{rest_port}", socket)


def predict(target: str, model: str, x, *, signature: str = "", dtype=types_pb2.DT_FLOAT):
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    request.inputs["x"].CopyFrom(tensors.from_numpy(np.asarray(x)))
    request.inputs["x"].dtype = dtype
    with grpc.insecure_channel(target) as channel:
        return prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(
            request, timeout=20
        )


def post(server: Server, path: str, body) -> tuple[int, dict]:
    request = urllib.request.Request(server.rest + path, data=json.dumps(body).encode())
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_tf1_input_declared_minus_one_by_one_takes_a_vector(server):
    # The signature declares x as [-1, 1]; TF Serving feeds [1] to the graph and answers.
    response = predict(server.running.target, "tf1", np.array([1.0], np.float32))
    y = tensors.to_numpy(response.outputs["y"])
    assert y.tolist() == [2.5] and y.shape == (1,)
    assert (response.model_spec.name, response.model_spec.version.value) == ("tf1", VERSION)
    assert response.model_spec.signature_name == "serving_default"
    # The shape the signature declares works as well, batched.
    batch = predict(server.running.target, "tf1", np.array([[2.0], [4.0]], np.float32))
    assert tensors.to_numpy(batch.outputs["y"]).tolist() == [[3.0], [4.0]]


def test_tf2_signature_declared_one_runs_on_three(server):
    # tf.function traced for [1]; the graph itself broadcasts, so TF Serving answers.
    response = predict(server.running.target, "tf2", np.array([2.0, 3.0, 4.0], np.float32))
    assert tensors.to_numpy(response.outputs["y"]).tolist() == [3.0, 3.5, 4.0]


def test_rest_rows_and_columns_on_a_tf1_graph(server):
    assert post(server, "/v1/models/tf1:predict", {"instances": [2.0, 3.0, 4.0]}) == (
        200,
        {"predictions": [3.0, 3.5, 4.0]},
    )
    assert post(server, "/v1/models/tf1:predict", {"inputs": [2.0, 3.0, 4.0]}) == (
        200,
        {"outputs": [3.0, 3.5, 4.0]},
    )
    status, body = post(
        server,
        "/v1/models/tf1:predict",
        {"signature_name": "predict_x2", "instances": [{"x": [2.0], "x2": [4.0]}]},
    )
    assert (status, body) == (200, {"predictions": [{"y": [3.0], "y3": [5.0]}]})


def test_dtype_mismatch_and_graph_failures_are_invalid_argument(server):
    with pytest.raises(grpc.RpcError) as info:
        predict(server.running.target, "tf1", np.array([1], np.int32), dtype=types_pb2.DT_INT32)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details().startswith("Expects arg[0] to be float but int32 is provided")
    # The graph's own failure (a string that is no tf.Example), in TensorFlow's words.
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "tf1"
    request.model_spec.signature_name = "classify_x_to_y"
    request.inputs["inputs"].CopyFrom(tensors.from_numpy(np.array([b"not an example"], object)))
    with grpc.insecure_channel(server.running.target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Predict(request, timeout=20)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "Could not parse example input" in info.value.details()
    # ... and the server goes on serving.
    assert tensors.to_numpy(
        predict(server.running.target, "tf1", np.array([2.0], np.float32)).outputs["y"]
    ).tolist() == [3.0]


def test_unix_domain_socket(server):
    response = predict(f"unix:{server.socket}", "tf1", np.array([2.0], np.float32))
    assert tensors.to_numpy(response.outputs["y"]).tolist() == [3.0]
    assert "Running gRPC ModelServer at UNIX socket" in server.running.log()


def test_metadata_lists_every_signature_def_as_tf_serving_does(server):
    request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
    request.model_spec.name = "tf2"
    with grpc.insecure_channel(server.running.target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = stub.GetModelMetadata(request, timeout=20)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    # TF2 writes the init op as a SignatureDef too; TF Serving reports it with the rest.
    assert set(signatures.signature_def) == {
        "serving_default",
        "classify_x_to_y",
        "regress_x_to_y",
        "regress_x_to_y2",
        "__saved_model_init_op",
    }
    assert signatures.signature_def["classify_x_to_y"].method_name == testmodels.PREDICT
    with urllib.request.urlopen(f"{server.rest}/v1/models/tf1/metadata", timeout=20) as reply:
        document = json.loads(reply.read())
    tf1 = document["metadata"]["signature_def"]["signature_def"]
    assert tf1["regress_x_to_y"]["method_name"] == testmodels.REGRESS
    assert tf1["serving_default"]["inputs"]["x"]["tensor_shape"]["dim"][0]["size"] == "-1"
