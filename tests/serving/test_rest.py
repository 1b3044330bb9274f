"""The REST API checked as a TF Serving REST client sees it: paths, JSON, errors, codes.

Requests go over real HTTP (aiohttp's test server on 127.0.0.1) to an app built on a
real Manager holding the quick MNIST model and a small "toy" SavedModel with string,
float, double, int64 and multi-input signatures.

Past 400 lines on purpose: every case shares the one app and its two loaded models, which
cost seconds to build; split, each file would build them again.
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass

import grpc
import numpy as np
import pytest
import tensorflow as tf
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestClient, TestServer
from tensorflow_serving.apis import model_pb2

from serving import config, rest, tensors
from serving.manager import Manager, Options
from serving.servable import ServingError
from training.data import load, scale

# Shapes are the graph's business (as in TF Serving), except a placeholder's rank.
RANK = "but the graph's placeholder for it takes rank"

STATUS_OK = {
    "model_version_status": [
        {
            "version": "1",
            "state": "AVAILABLE",
            "status": {"error_code": "OK", "error_message": ""},
        }
    ]
}


class Toy(tf.Module):
    """Signatures for what MNIST lacks: strings, one output, several inputs, doubles."""

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="payload")])
    def echo(self, payload):
        return {"payload_bytes": tf.identity(payload)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="payload")])
    def lengths(self, payload):
        return {"length": tf.strings.length(payload)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="payload")])
    def upper(self, payload):
        return {"text": tf.strings.upper(payload)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def identity(self, x):
        return {"y": tf.identity(x)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float64, name="x")])
    def identity64(self, x):
        return {"y": tf.identity(x)}

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.float32, name="a"),
            tf.TensorSpec([None, 2], tf.int64, name="b"),
        ]
    )
    def combine(self, a, b):
        total = a + tf.cast(tf.reduce_sum(b, axis=1), tf.float32)
        return {"total": total, "positive": total > 0}


@pytest.fixture(scope="module")
def manager(quick_model, tmp_path_factory) -> Manager:
    toy = Toy()
    toy_base = tmp_path_factory.mktemp("toy") / "toy"
    tf.saved_model.save(
        toy,
        str(toy_base / "1"),
        signatures={
            "serving_default": toy.echo,
            "lengths": toy.lengths,
            "upper": toy.upper,
            "identity": toy.identity,
            "identity64": toy.identity64,
            "combine": toy.combine,
        },
    )
    manager = Manager(Options(enable_warmup=False))
    model_config = config.single_model("mnist", str(quick_model.base_path))
    model_config.model_config_list.config.add(
        name="toy", base_path=str(toy_base), model_platform="tensorflow"
    )
    manager.apply_config(model_config, require_available=False)
    # Labels may only name versions that are already AVAILABLE, as in TF Serving.
    model_config.model_config_list.config[0].version_labels["stable"] = 1
    manager.apply_config(model_config)
    return manager


@pytest.fixture(scope="module")
def digits():
    mnist = load()
    return scale(mnist.x_test[:100]), mnist.y_test[:100]


async def direct(servable, signature, arrays):
    return servable.run(signature, arrays)


@dataclass
class Reply:
    status: int
    text: str
    headers: dict

    def json(self):
        return json.loads(self.text)

    @property
    def error(self) -> str:
        assert self.status >= 400, self.text
        return self.json()["error"]


def exchange(
    manager, calls, *, run_model=direct, app_hook=None, timeout_s=30.0, **options
) -> list[Reply]:
    """Send (method, path[, body[, headers]]) requests in order over one app and client."""

    async def scenario():
        app = rest.build_app(manager, run_model, timeout_s=timeout_s, **options)
        if app_hook is not None:
            app_hook(app)
        replies = []
        async with TestClient(TestServer(app)) as client:
            for method, path, *rest_of_call in calls:
                body = rest_of_call[0] if rest_of_call else None
                headers = rest_of_call[1] if len(rest_of_call) > 1 else None
                if isinstance(body, dict | list):
                    body = json.dumps(body)
                response = await client.request(method, path, data=body, headers=headers)
                replies.append(Reply(response.status, await response.text(), response.headers))
        return replies

    return asyncio.run(scenario())


def one(manager, method, path, body=None, **options) -> Reply:
    return exchange(manager, [(method, path, body)], **options)[0]


def predict(manager, body, path="/v1/models/mnist:predict", **options) -> Reply:
    return one(manager, "POST", path, body, **options)


def run_direct(manager, images):
    servable = manager.resolve(model_pb2.ModelSpec(name="mnist"))
    return servable.run(servable.signature(""), {"images": images})


def significant_digits(text: str) -> int:
    mantissa = text.lstrip("-").split("e")[0].replace(".", "")
    return len(mantissa.lstrip("0").rstrip("0")) or 1


def tagged(text: str):
    """The JSON with every number tagged by how it was written: ('int'|'float', text)."""
    return json.loads(
        text,
        parse_int=lambda s: ("int", s),
        parse_float=lambda s: ("float", s),
        parse_constant=lambda s: ("float", s),
    )


# ---- status ---------------------------------------------------------------------------


def test_status_for_model_version_and_label_as_tf_serving_prints_it(manager):
    replies = exchange(
        manager,
        [
            ("GET", "/v1/models/mnist"),
            ("GET", "/v1/models/mnist/versions/1"),
            ("GET", "/v1/models/mnist/labels/stable"),
            ("GET", "/V1/MODELS/mnist"),  # TF Serving matches paths case-insensitively
            ("GET", "/v1/models/mn%69st"),  # and URL-decodes the model name
        ],
    )
    for reply in replies:
        assert reply.status == 200, reply.text
        assert reply.headers["Content-Type"] == "application/json"
        assert reply.json() == STATUS_OK


def test_status_errors_carry_tf_serving_messages_and_http_codes(manager):
    replies = exchange(
        manager,
        [
            ("GET", "/v1/models/nope"),
            ("GET", "/v1/models/mnist/versions/7"),
            ("GET", "/v1/models/mnist/labels/canary"),
            ("GET", "/v1/models"),
            ("GET", "/v1/models/mnist/versions/99999999999999999999"),
        ],
    )
    assert [r.status for r in replies] == [404, 404, 400, 400, 400]
    assert replies[0].error == "Could not find any versions of model nope"
    assert replies[1].error == "Could not find version 7 of model mnist"
    assert replies[2].error == "Unrecognized servable version label: canary"
    assert replies[3].error == "Missing model name in request."
    assert replies[4].error == "Failed to convert version: 99999999999999999999 to numeric."


# ---- metadata -------------------------------------------------------------------------


def test_metadata_is_the_signature_def_map_in_tf_serving_json(manager):
    replies = exchange(
        manager,
        [
            ("GET", "/v1/models/mnist/metadata"),
            ("GET", "/v1/models/mnist/versions/1/metadata"),
            ("GET", "/v1/models/mnist/labels/stable/metadata"),
        ],
    )
    for reply in replies:
        assert reply.status == 200, reply.text
        document = reply.json()
        assert document["model_spec"] == {"name": "mnist", "version": "1", "signature_name": ""}
        signature = document["metadata"]["signature_def"]["signature_def"]["serving_default"]
        assert signature["method_name"] == "tensorflow/serving/predict"
        images = signature["inputs"]["images"]
        assert images["dtype"] == "DT_FLOAT"
        assert [d["size"] for d in images["tensor_shape"]["dim"]] == ["-1", "28", "28", "1"]
        outputs = signature["outputs"]
        assert outputs["probabilities"]["dtype"] == "DT_FLOAT"
        assert [d["size"] for d in outputs["probabilities"]["tensor_shape"]["dim"]] == ["-1", "10"]
        assert outputs["classes"]["dtype"] == "DT_INT64"


def test_metadata_of_unknown_model_or_version_is_404(manager):
    replies = exchange(
        manager,
        [("GET", "/v1/models/nope/metadata"), ("GET", "/v1/models/mnist/versions/3/metadata")],
    )
    assert [r.status for r in replies] == [404, 404]
    assert replies[0].error == "Servable not found for request: Latest(nope)"
    assert replies[1].error == "Servable not found for request: Specific(mnist, 3)"


# ---- predict: MNIST -------------------------------------------------------------------


def test_row_format_predicts_the_digits_exactly_as_the_model_does(manager, digits):
    images, labels = digits  # 100 images: a ~1 MB body, parsed off the event loop
    reply = predict(manager, {"instances": images.tolist()})
    assert reply.status == 200, reply.text[:500]
    predictions = reply.json()["predictions"]
    assert len(predictions) == 100
    assert all(set(p) == {"classes", "probabilities"} for p in predictions)
    expected = run_direct(manager, images)
    classes = np.array([p["classes"] for p in predictions])
    probabilities = np.array([p["probabilities"] for p in predictions], dtype=np.float32)
    np.testing.assert_array_equal(classes, expected["classes"])
    # Nine significant digits: every float32 reads back bit for bit.
    np.testing.assert_array_equal(probabilities, expected["probabilities"])
    assert (classes == labels).mean() >= 0.9
    # JSON types as TF Serving writes them: int64 as integers, float32 as decimals.
    for item in tagged(reply.text)["predictions"]:
        assert item["classes"][0] == "int"
        assert all(kind == "float" for kind, _ in item["probabilities"])
        assert all(significant_digits(text) <= 9 for _, text in item["probabilities"])


def test_columnar_format_answers_outputs_by_name(manager, digits):
    images = digits[0][:3]
    expected = run_direct(manager, images)
    for body in ({"inputs": {"images": images.tolist()}}, {"inputs": images.tolist()}):
        reply = predict(manager, body)
        assert reply.status == 200, reply.text[:500]
        outputs = reply.json()["outputs"]
        assert set(outputs) == {"classes", "probabilities"}
        assert outputs["classes"] == expected["classes"].tolist()
        assert np.array(outputs["probabilities"]).shape == (3, 10)
        np.testing.assert_array_equal(
            np.array(outputs["probabilities"], dtype=np.float32), expected["probabilities"]
        )


def test_named_instances_versions_labels_and_integer_pixels(manager, digits):
    image = digits[0][0]
    binary = (image > 0.5).astype(int).tolist()  # JSON integers are fine for a float input
    replies = exchange(
        manager,
        [
            ("POST", "/v1/models/mnist:predict", {"instances": [{"images": image.tolist()}]}),
            ("POST", "/v1/models/mnist/versions/1:predict", {"instances": [image.tolist()]}),
            ("POST", "/v1/models/mnist/labels/stable:predict", {"instances": [image.tolist()]}),
            ("POST", "/v1/models/mnist:predict", {"instances": [binary]}),
            ("POST", "/v1/models/mnist/versions/2:predict", {"instances": [image.tolist()]}),
            ("POST", "/v1/models/mnist/labels/canary:predict", {"instances": [image.tolist()]}),
        ],
    )
    assert [r.status for r in replies] == [200, 200, 200, 200, 404, 400]
    expected = int(run_direct(manager, image[None])["classes"][0])
    assert [r.json()["predictions"][0]["classes"] for r in replies[:3]] == [expected] * 3
    assert 0 <= replies[3].json()["predictions"][0]["classes"] <= 9
    assert replies[4].error == "Servable not found for request: Specific(mnist, 2)"
    assert replies[5].error == "Unrecognized servable version label: canary"


def test_signature_name_selects_and_is_checked(manager):
    replies = exchange(
        manager,
        [
            ("POST", "/v1/models/mnist:predict", {"signature_name": "nope", "instances": [1]}),
            ("POST", "/v1/models/mnist:predict", {"signature_name": 3, "instances": [1]}),
            ("POST", "/v1/models/toy:predict", {"signature_name": "lengths", "inputs": ["abc"]}),
        ],
    )
    assert [r.status for r in replies] == [400, 400, 200]
    assert replies[0].error == 'Serving signature name: "nope" not found in signature def'
    assert replies[1].error.endswith("'signature_name' key must be a string value.")
    assert replies[2].json() == {"outputs": [3]}


# ---- predict: formats on the toy model ------------------------------------------------


def test_b64_values_decode_to_bytes_and_bytes_outputs_encode(manager):
    raw = b"\x00\xff\x10binary"
    b64 = base64.b64encode(raw).decode()
    replies = exchange(
        manager,
        [
            ("POST", "/v1/models/toy:predict", {"instances": [{"b64": b64}, "héllo"]}),
            ("POST", "/v1/models/toy:predict", {"inputs": [{"b64": b64}]}),
            (
                "POST",
                "/v1/models/toy:predict",
                {"signature_name": "lengths", "instances": [{"b64": b64}, "héllo"]},
            ),
            (
                "POST",
                "/v1/models/toy:predict",
                {"signature_name": "upper", "instances": ["abc", {"b64": b64}]},
            ),
        ],
    )
    assert all(r.status == 200 for r in replies), [r.text for r in replies]
    # "payload_bytes" ends in _bytes: TF Serving writes its values as {"b64": ...}.
    assert replies[0].json() == {
        "predictions": [{"b64": b64}, {"b64": base64.b64encode("héllo".encode()).decode()}]
    }
    assert replies[1].json() == {"outputs": [{"b64": b64}]}
    assert replies[2].json() == {"predictions": [len(raw), len("héllo".encode())]}
    # A plain string output is text; bytes that are not UTF-8 come back as base64.
    upper_raw = raw.upper()
    assert replies[3].json() == {
        "predictions": ["ABC", {"b64": base64.b64encode(upper_raw).decode()}]
    }


def test_b64_errors_are_clear(manager, digits):
    replies = exchange(
        manager,
        [
            ("POST", "/v1/models/toy:predict", {"instances": [{"b64": "!!!not base64"}]}),
            ("POST", "/v1/models/toy:predict", {"instances": [{"b64": "QQ==", "x": 1}]}),
            ("POST", "/v1/models/toy:predict", {"instances": [5]}),
            # A lone b64 object is a scalar, and this signature wants a vector.
            ("POST", "/v1/models/toy:predict", {"inputs": {"b64": "QUJD"}}),
            # MNIST has no string input: a b64 object is a type error, not a crash.
            ("POST", "/v1/models/mnist:predict", {"inputs": {"images": {"b64": "QUJD"}}}),
        ],
    )
    assert [r.status for r in replies] == [400] * 5
    assert replies[0].error.endswith("Unable to base64 decode")
    # An object that is not exactly {"b64": str} names an input, and "x" is not one.
    assert "does not have named input: b64" in replies[1].error
    assert replies[2].error.endswith("JSON Value: 5 Type: Number is not of expected type: string")
    assert replies[3].error == (
        f"input 'payload' of signature 'serving_default' has shape [], {RANK} 1 "
        "(declared shape [-1])"
    )
    assert replies[4].error == (
        'JSON Value: {"b64":"QUJD"} Type: Object is not of expected type: float'
    )


def test_floats_are_written_with_tf_servings_digits(manager):
    # NaN and Infinity are accepted in requests and written back, as TF Serving does.
    body = (
        '{"signature_name": "identity", "instances": '
        "[0.1, 1, 1e-05, 16777217, 0.1000001, 123456789, -0.0, 1e39, NaN, -Infinity, 2.5]}"
    )
    body64 = '{"signature_name": "identity64", "inputs": [0.1, 2, 0.3333333333333333, 1e100]}'
    replies = exchange(
        manager,
        [("POST", "/v1/models/toy:predict", body), ("POST", "/v1/models/toy:predict", body64)],
    )
    assert replies[0].status == 200, replies[0].text
    assert replies[0].text == (
        '{"predictions": [0.1, 1.0, 1e-05, 16777216.0, 0.100000098, 123456792.0, -0.0, '
        "Infinity, NaN, -Infinity, 2.5]}"
    )
    assert replies[1].text == '{"outputs": [0.1, 2.0, 0.33333333333333331, 1e+100]}'


def test_several_inputs_need_named_instances(manager):
    path = "/v1/models/toy:predict"
    sig = {"signature_name": "combine"}
    replies = exchange(
        manager,
        [
            ("POST", path, {**sig, "instances": [{"a": 1.5, "b": [1, 2]}, {"a": -9, "b": [3, 4]}]}),
            ("POST", path, {**sig, "inputs": {"a": [1.5, -9], "b": [[1, 2], [3, 4]], "c": 0}}),
            ("POST", path, {**sig, "instances": [[1.5]]}),
            ("POST", path, {**sig, "instances": [{"a": 1.5}]}),
            ("POST", path, {**sig, "instances": [{"a": 1.5, "b": [1.5, 2]}]}),
            ("POST", path, {**sig, "inputs": {"a": [1.5]}}),
            ("POST", path, {**sig, "inputs": [1.5]}),
            ("POST", path, {**sig, "instances": [{"a": 1.5, "b": [1, 2]}, [1]]}),
            ("POST", path, {**sig, "inputs": {"a": [1.5], "b": [[2**63, 0]]}}),
            ("POST", path, {**sig, "inputs": {"a": [1.5], "b": [[True, 0]]}}),
        ],
    )
    assert [r.status for r in replies] == [200, 200] + [400] * 8
    assert replies[0].json() == {
        "predictions": [{"positive": True, "total": 4.5}, {"positive": False, "total": -2.0}]
    }
    assert replies[1].json() == {"outputs": {"positive": [True, False], "total": [4.5, -2.0]}}
    assert replies[2].error.startswith("instances is a plain list, but expecting list of objects")
    assert replies[3].error == (
        "Failed to process element: 0 of 'instances' list. JSON object: {\"a\":1.5} "
        "keys must be equal to: a,b"
    )
    assert replies[4].error == (
        "Failed to process element: 0 key: b of 'instances' list. Error: INVALID_ARGUMENT: "
        "JSON Value: 1.5 Type: Number is not of expected type: int64"
    )
    assert replies[5].error == "Missing named input: b in 'inputs' object."
    assert replies[6].error.startswith("inputs is a plain value/list, but expecting an object")
    assert replies[7].error == "Expecting object but got list at item 1 of input list"
    assert replies[8].error.startswith("JSON Value out of range for int64: ")
    assert replies[9].error == "JSON Value: true Type: True is not of expected type: int64"


# ---- predict: bad requests ------------------------------------------------------------


def test_malformed_bodies_are_400_with_the_reason(manager):
    replies = exchange(
        manager,
        [
            ("POST", "/v1/models/mnist:predict", b""),
            ("POST", "/v1/models/mnist:predict", '{"instances": [1,'),
            ("POST", "/v1/models/mnist:predict", b"\xff\xfe\x00garbage"),
            ("POST", "/v1/models/mnist:predict", "[1, 2]"),
            ("POST", "/v1/models/mnist:predict", {"instances": []}),
            ("POST", "/v1/models/mnist:predict", {"instances": 5}),
            ("POST", "/v1/models/mnist:predict", {"instances": [1], "inputs": [1]}),
            ("POST", "/v1/models/mnist:predict", {"examples": [1]}),
            ("POST", "/v1/models/mnist:predict", "[" * 100_000),
            ("POST", "/v1/models/mnist:predict", '{"inputs": ' + "[" * 70 + "0.5" + "]" * 70 + "}"),
            ("POST", "/v1/models/mnist:predict", '{"inputs": ' + "9" * 5000 + "}"),
        ],
    )
    assert [r.status for r in replies] == [400] * 11, [r.text[:200] for r in replies]
    assert replies[0].error == "JSON Parse error: The document is empty"
    assert replies[1].error.startswith("JSON Parse error: ")
    assert replies[2].error.startswith("JSON Parse error: ")
    assert replies[3].error == "JSON Value: [1,2] Is not object"
    assert replies[4].error.endswith("No values in 'instances' array")
    assert replies[5].error.endswith("Expecting 'instances' to be an list/array")
    assert "expecting only one of 'inputs' or 'instances' keys to exist" in replies[6].error
    assert replies[7].error == "Missing 'inputs' or 'instances' key"
    assert replies[8].error == "JSON Parse error: the document is nested too deeply"
    assert replies[9].error.endswith("has more than 64 dimensions")
    assert replies[10].error.startswith("JSON Parse error: ")


def test_wrong_keys_shapes_and_types_are_400_naming_the_problem(manager, digits):
    image = digits[0][0].tolist()
    ragged_inside = [row[:] for row in image]
    ragged_inside[5] = ragged_inside[5][:27]
    one_bool = [[pixel[:] for pixel in row] for row in image]
    one_bool[3][4] = [True]  # JSON true is not a number, even among numbers
    replies = exchange(
        manager,
        [
            ("POST", "/v1/models/mnist:predict", {"instances": [{"pixels": image}]}),
            ("POST", "/v1/models/mnist:predict", {"inputs": {"pixels": [image]}}),
            ("POST", "/v1/models/mnist:predict", {"instances": [image]}),
            ("POST", "/v1/models/mnist:predict", {"instances": np.array(image)[..., 0].tolist()}),
            ("POST", "/v1/models/mnist:predict", {"instances": [image, image[:27]]}),
            ("POST", "/v1/models/mnist:predict", {"instances": [ragged_inside]}),
            ("POST", "/v1/models/mnist:predict", {"instances": [[[["x"]] * 28] * 28]}),
            ("POST", "/v1/models/mnist:predict", {"instances": [one_bool]}),
            ("POST", "/v1/models/mnist:predict", {"instances": [[[[None]] * 28] * 28]}),
            ("POST", "/v1/models/mnist:predict", {"instances": [[[0.5] * 28] * 28]}),
        ],
    )
    assert [r.status for r in replies] == [400, 400, 200, 400, 400, 400, 400, 400, 400, 400]
    assert replies[0].error == (
        "Failed to process element: 0 key: pixels of 'instances' list. Error: "
        "INVALID_ARGUMENT: JSON object: does not have named input: pixels"
    )
    assert replies[1].error == "Missing named input: images in 'inputs' object."
    assert replies[3].error == (
        f"input 'images' of signature 'serving_default' has shape [28, 28], {RANK} 4 "
        "(declared shape [-1, 28, 28, 1])"
    )
    assert replies[4].error == (
        "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: "
        "Expecting tensor size: 784 but got: 756"
    )
    assert replies[5].error.endswith(
        "Encountered list at unexpected size: 27 at level: 1 expected size: 28"
    )
    assert replies[6].error.endswith('JSON Value: "x" Type: String is not of expected type: float')
    assert replies[7].error.endswith("JSON Value: true Type: True is not of expected type: float")
    assert replies[8].error.endswith("JSON Value: null Type: Null is not of expected type: float")
    assert replies[9].error == (
        f"input 'images' of signature 'serving_default' has shape [1, 28, 28], {RANK} 4 "
        "(declared shape [-1, 28, 28, 1])"
    )


def test_huge_bodies_and_tensors_are_refused_and_the_server_keeps_serving(
    manager, digits, monkeypatch
):
    image = digits[0][0].tolist()
    big = json.dumps({"instances": [image] * 40})  # ~370 KB, over a 64 KiB limit
    replies = exchange(
        manager,
        [
            ("POST", "/v1/models/mnist:predict", big),
            ("POST", "/v1/models/mnist:predict", {"instances": [image]}),
        ],
        max_body_bytes=64 << 10,
    )
    assert replies[0].status == 413
    assert replies[0].error == (
        "Request body is larger than the server's limit of 65536 bytes "
        "(--max_request_bytes raises it)"
    )
    assert replies[1].status == 200

    monkeypatch.setattr(tensors, "MAX_TENSOR_BYTES", 4 * 784 * 3)
    replies = exchange(
        manager,
        [
            ("POST", "/v1/models/mnist:predict", {"instances": [image] * 3}),
            ("POST", "/v1/models/mnist:predict", {"instances": [image] * 4}),
            ("POST", "/v1/models/mnist:predict", {"inputs": [image] * 4}),
        ],
    )
    assert [r.status for r in replies] == [200, 400, 400]
    limit = "more than the server's limit of 9408 bytes per tensor"
    assert replies[1].error.endswith(limit) and replies[2].error.endswith(limit)
    assert "tensor shape [4, 28, 28, 1] declares 3136 elements" in replies[2].error


# ---- paths, methods, other APIs -------------------------------------------------------


def test_unknown_paths_and_methods_answer_as_tf_serving(manager):
    replies = exchange(
        manager,
        [
            ("GET", "/nope"),
            ("GET", "/v1/nope"),
            ("POST", "/v1/models/mnist"),
            ("GET", "/v1/models/mnist:predict"),
            ("DELETE", "/v1/models/mnist"),
            ("POST", "/v1/models/mnist:explain"),
            ("POST", "/v1/models/mnist:classify", {"examples": []}),
            ("POST", "/v1/models/mnist/versions/1:regress", {"examples": []}),
        ],
    )
    assert [r.status for r in replies] == [404, 400, 400, 400, 400, 400, 400, 400]
    assert replies[1].error == "Malformed request: GET /v1/nope"
    assert replies[2].error == "Malformed request: POST /v1/models/mnist"
    assert replies[3].error == "Malformed request: GET /v1/models/mnist:predict"
    assert replies[4].error == "Malformed request: DELETE /v1/models/mnist"
    assert replies[5].error == "Malformed request: POST /v1/models/mnist:explain"
    assert replies[6].error == "JSON Value: {\"examples\":[]} 'examples' value is an empty array"
    assert replies[7].error == replies[6].error


def test_cors_preflight_and_headers(manager):
    calls = [
        ("OPTIONS", "/v1/models/mnist:predict", None, {"Origin": "https://example.com"}),
        ("OPTIONS", "/v1/models/mnist:predict"),
        ("GET", "/v1/models/mnist"),
    ]
    plain = exchange(manager, calls)
    assert [r.status for r in plain] == [200, 400, 200]
    assert plain[0].text == ""
    assert plain[1].error == "Origin header is missing in CORS preflight"
    assert "Access-Control-Allow-Origin" not in plain[2].headers
    cors = exchange(manager, calls, enable_cors=True)
    assert [r.status for r in cors] == [200, 400, 200]
    assert all(r.headers["Access-Control-Allow-Origin"] == "*" for r in cors)
    assert all(r.headers["Access-Control-Allow-Methods"] == "POST, GET" for r in cors)


# ---- timeouts, errors from the runner, the metrics hook, start and stop ---------------


def test_a_predict_past_the_timeout_is_504_and_others_are_not_held_up(manager, digits):
    release = asyncio.Event()

    async def stuck(servable, signature, arrays):
        await asyncio.wait_for(release.wait(), 10)
        return servable.run(signature, arrays)

    image = digits[0][0].tolist()
    replies = exchange(
        manager,
        [
            ("POST", "/v1/models/mnist:predict", {"instances": [image]}),
            ("GET", "/v1/models/mnist"),
        ],
        run_model=stuck,
        timeout_s=0.2,
    )
    assert replies[0].status == 504
    assert replies[0].error == "Timed out waiting for notification"
    assert replies[1].status == 200


def test_errors_from_the_model_runner_map_to_tf_servings_http_codes(manager, digits):
    codes = {
        grpc.StatusCode.UNAVAILABLE: 503,
        grpc.StatusCode.INVALID_ARGUMENT: 400,
        grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
        grpc.StatusCode.INTERNAL: 500,
    }
    image = digits[0][0].tolist()
    for code, http_status in codes.items():

        async def failing(servable, signature, arrays, code=code):
            raise ServingError(code, f"runner says {code.name}")

        reply = predict(manager, {"instances": [image]}, run_model=failing)
        assert (reply.status, reply.error) == (http_status, f"runner says {code.name}")

    async def broken(servable, signature, arrays):
        raise RuntimeError("boom")

    reply = predict(manager, {"instances": [image]}, run_model=broken)
    assert (reply.status, reply.error) == (500, "RuntimeError: boom")


def test_routes_added_after_build_are_served_and_requests_are_observed(manager):
    seen = []

    async def metrics(request):
        return web.Response(text="# metrics\n", content_type="text/plain")

    def add_metrics(app):
        app.router.add_get("/monitoring/prometheus/metrics", metrics)

    replies = exchange(
        manager,
        [
            ("GET", "/monitoring/prometheus/metrics"),
            ("GET", "/v1/models/mnist"),
            ("POST", "/v1/models/nope:predict", {"instances": [1]}),
        ],
        app_hook=add_metrics,
        on_request=lambda *args: seen.append(args),
    )
    assert [r.status for r in replies] == [200, 200, 404]
    assert replies[0].text == "# metrics\n"
    assert [(m, api, code) for m, api, code, _ in seen] == [
        ("mnist", "", grpc.StatusCode.OK),  # TF Serving labels GETs with no API
        ("nope", "predict", grpc.StatusCode.NOT_FOUND),
    ]
    assert all(seconds >= 0 for *_, seconds in seen)


def test_start_listens_and_stop_refuses_new_connections(manager):
    async def scenario():
        runner = await rest.start(
            rest.build_app(manager, direct, timeout_s=30), 0, shutdown_timeout=5
        )
        port = rest.bound_port(runner)
        url = f"http://127.0.0.1:{port}/v1/models/mnist"
        async with ClientSession() as session, session.get(url) as response:
            first = (response.status, await response.json())
        await rest.stop(runner)
        async with ClientSession() as session:
            with pytest.raises(OSError):
                await session.get(url)
        return first

    assert asyncio.run(scenario()) == (200, STATUS_OK)


def test_start_on_a_busy_port_raises_oserror(manager):
    async def scenario():
        runner = await rest.start(
            rest.build_app(manager, direct, timeout_s=30), 0, shutdown_timeout=5
        )
        try:
            with pytest.raises(OSError, match="cannot listen"):
                await rest.start(
                    rest.build_app(manager, direct, timeout_s=30),
                    rest.bound_port(runner),
                    shutdown_timeout=5,
                )
        finally:
            await rest.stop(runner)

    asyncio.run(scenario())


def test_stop_lets_an_in_flight_predict_finish(manager, digits):
    started = asyncio.Event()

    async def slow(servable, signature, arrays):
        started.set()
        await asyncio.sleep(0.5)
        return servable.run(signature, arrays)

    async def scenario():
        app = rest.build_app(manager, slow, timeout_s=30)
        runner = await rest.start(app, 0, shutdown_timeout=10)
        url = f"http://127.0.0.1:{rest.bound_port(runner)}/v1/models/mnist:predict"
        async with ClientSession() as session:
            call = asyncio.ensure_future(
                session.post(url, json={"instances": [digits[0][0].tolist()]})
            )
            await asyncio.wait_for(started.wait(), 10)
            await rest.stop(runner)  # returns once the in-flight request is answered
            response = await call
            return response.status, await response.json()

    status, document = asyncio.run(scenario())
    assert status == 200
    assert len(document["predictions"]) == 1
