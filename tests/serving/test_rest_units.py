"""The REST API's parts on their own: the URL parser, the JSON encoder, the handlers
and the app's routing, without a model or TensorFlow running anything.

tests/serving/test_rest.py checks the whole API over HTTP with real models; these pin
the seams between the parts, so a regression points at the part that has it.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import grpc
import numpy as np
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from tensorflow_serving.apis import classification_pb2, regression_pb2
from yarl import URL

from serving import rest
from serving.errors import ServingError
from serving.manager import State
from serving.rest import encode, paths
from serving.rest.handlers import OFFLOAD_BYTES, Handlers
from serving.rest.workers import ParserPool

# ---- paths --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "route"),
    [
        ("GET", "/v1/models/m", ("m", None, None, "status")),
        ("GET", "/v1/models/m/versions/3", ("m", 3, None, "status")),
        ("GET", "/v1/models/m/labels/canary", ("m", None, "canary", "status")),
        ("GET", "/v1/models/m/metadata", ("m", None, None, "metadata")),
        ("GET", "/v1/models/m/versions/3/metadata", ("m", 3, None, "metadata")),
        ("GET", "/V1/MODELS/m/METADATA", ("m", None, None, "status")),  # as TF Serving
        ("GET", "/v1/models", ("", None, None, "status")),  # the handler refuses it
        ("GET", "/v1/models/versions/1", ("", 1, None, "status")),
        ("GET", "/v1/models/a%3Apredict", ("a:predict", None, None, "status")),
        ("GET", "/v1/models/a%2Fb/labels/x%20y", ("a/b", None, "x y", "status")),
        ("POST", "/v1/models/m:predict", ("m", None, None, "predict")),
        ("POST", "/v1/models/m/versions/2:classify", ("m", 2, None, "classify")),
        ("POST", "/V1/Models/m/labels/l:regress", ("m", None, "l", "regress")),
    ],
)
def test_paths_parse_tf_servings_url_grammar(method, path, route):
    assert paths.is_api(path)
    parsed = paths.parse(method, path)
    assert (parsed.name, parsed.version, parsed.label, parsed.action) == route


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/nope"),
        ("POST", "/v1/models/m"),
        ("GET", "/v1/models/m:predict"),
        ("POST", "/v1/models/m:PREDICT"),  # the pattern matches, the verb does not
        ("POST", "/v1/models/m:explain"),
        ("DELETE", "/v1/models/m"),
        ("HEAD", "/v1/models/m"),
        ("GET", "/v1/models/m/versions/x"),
    ],
)
def test_paths_refuse_other_api_paths_as_malformed(method, path):
    with pytest.raises(ServingError) as caught:
        paths.parse(method, path)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.message == f"Malformed request: {method} {path}"


def test_paths_refuse_versions_beyond_int64_and_build_the_model_spec():
    with pytest.raises(ServingError, match="Failed to convert version: 9223372036854775808 to"):
        paths.parse("GET", "/v1/models/m/versions/9223372036854775808")
    assert paths.parse("GET", "/v1/models/m/versions/9223372036854775807").version == 2**63 - 1
    spec = paths.parse("POST", "/v1/models/m/labels/stable:predict").spec()
    assert (spec.name, spec.version_label, spec.HasField("version")) == ("m", "stable", False)
    spec = paths.parse("GET", "/v1/models/m/versions/4").spec()
    assert (spec.name, spec.version.value) == ("m", 4)


def test_paths_label_metrics_with_the_verb_for_posts_only():
    assert paths.parse("POST", "/v1/models/m:regress").api_label == "regress"
    assert paths.parse("GET", "/v1/models/m/metadata").api_label == ""
    assert paths.parse("GET", "/v1/models/m").api_label == ""


def test_paths_outside_v1_are_not_the_apis():
    assert not paths.is_api("/v2/models/m")
    assert not paths.is_api("/%761/models/m")  # /v1/ only once decoded
    assert not paths.is_api("/v1")
    assert paths.is_api("/V1/anything")


# ---- encode -------------------------------------------------------------------------------


def test_encode_rows_and_columns_single_and_several_outputs():
    probabilities = np.array([[0.5, 0.25], [1.0, 0.0]], dtype=np.float32)
    classes = np.array([0, 0], dtype=np.int64)
    outputs = {"probabilities": probabilities, "classes": classes}
    assert encode.predict_json(outputs, ["classes"], columnar=False) == '{"predictions": [0, 0]}'
    assert encode.predict_json(outputs, ["classes"], columnar=True) == '{"outputs": [0, 0]}'
    assert json.loads(encode.predict_json(outputs, ["classes", "probabilities"], False)) == {
        "predictions": [
            {"classes": 0, "probabilities": [0.5, 0.25]},
            {"classes": 0, "probabilities": [1.0, 0.0]},
        ]
    }
    assert encode.predict_json(outputs, ["probabilities"], True) == (
        '{"outputs": [[0.5, 0.25], [1.0, 0.0]]}'
    )
    assert json.loads(encode.predict_json(outputs, ["classes", "probabilities"], True)) == {
        "outputs": {"classes": [0, 0], "probabilities": [[0.5, 0.25], [1.0, 0.0]]}
    }


def test_encode_refuses_rows_it_cannot_line_up():
    outputs = {"a": np.zeros(2, np.float32), "b": np.zeros(3, np.float32), "s": np.float32(1)}
    with pytest.raises(ServingError, match="Tensor name: b has inconsistent batch size: 3 exp"):
        encode.predict_json(outputs, ["a", "b"], columnar=False)
    with pytest.raises(ServingError, match="Tensor name: s has no shape information"):
        encode.predict_json(outputs, ["s"], columnar=False)
    assert encode.predict_json(outputs, ["s"], columnar=True) == '{"outputs": 1.0}'
    with pytest.raises(ServingError, match="tensor type: complex64"):
        encode.predict_json({"c": np.zeros(1, np.complex64)}, ["c"], columnar=True)


def test_encode_floats_strings_and_bytes_as_tf_serving_writes_them():
    floats = np.array([0.1, 1 / 3, 2.0, np.nan, -np.inf, 1e-7], dtype=np.float32)
    assert encode.float_texts(floats) == [
        "0.1",
        "0.333333343",
        "2.0",
        "NaN",
        "-Infinity",
        "1e-07",
    ]
    assert encode.float_texts(np.array([1 / 3], dtype=np.float64)) == ["0.33333333333333331"]
    strings = np.array([b"caf\xc3\xa9", b"\xff"], dtype=object)
    assert (
        encode.predict_json({"s": strings}, ["s"], True) == '{"outputs": ["café", {"b64": "/w=="}]}'
    )
    assert encode.predict_json({"s_bytes": strings}, ["s_bytes"], True) == (
        '{"outputs": [{"b64": "Y2Fmw6k="}, {"b64": "/w=="}]}'
    )
    flags = np.array([[True], [False]])
    assert encode.predict_json({"f": flags}, ["f"], False) == '{"predictions": [[true], [false]]}'


def test_encode_classify_regress_and_errors():
    result = classification_pb2.ClassificationResult()
    result.classifications.add().classes.add(label="7", score=0.5)
    assert encode.classification_json(result) == '{"results": [[["7", 0.5]]]}'
    regression = regression_pb2.RegressionResult()
    regression.regressions.add(value=1.5)
    assert encode.regression_json(regression) == '{"results": [1.5]}'
    with pytest.raises(ServingError, match="Cannot convert empty ClassificationResults"):
        encode.classification_json(classification_pb2.ClassificationResult())
    with pytest.raises(ServingError, match="Cannot convert empty RegressionResults"):
        encode.regression_json(regression_pb2.RegressionResult())
    assert json.loads(encode.error_json("é")) == {"error": "é"}
    quoted = encode.error_json('JSON Value: ["\ud800"] Is not object').encode()  # UTF-8
    assert json.loads(quoted) == {"error": 'JSON Value: ["\ufffd\ufffd\ufffd"] Is not object'}
    assert len(json.loads(encode.error_json("x" * 100_000))["error"]) < 1100  # bounded


# ---- handlers and the app, on a stub manager ----------------------------------------------


class StubManager:
    """Answers status for "m" version 1 only; resolves nothing."""

    def status(self, name, version):
        if name != "m" or version not in (None, 1):
            raise ServingError(grpc.StatusCode.NOT_FOUND, f"no {name} {version}")
        return [(1, State.AVAILABLE, None)]

    def resolve(self, spec):
        raise ServingError(grpc.StatusCode.NOT_FOUND, f"Servable not found: {spec.name}")


async def no_model(servable, signature, arrays):
    raise AssertionError("the stub has no model to run")


def test_handlers_answer_status_without_a_grpc_servicer():
    handlers = Handlers(StubManager(), no_model, ParserPool())
    text = asyncio.run(handlers.serve(paths.parse("GET", "/v1/models/m"), b""))
    assert json.loads(text)["model_version_status"][0]["state"] == "AVAILABLE"
    with pytest.raises(ServingError, match="Missing model name in request"):
        asyncio.run(handlers.serve(paths.parse("GET", "/v1/models"), b""))
    with pytest.raises(ServingError, match="no m 2"):
        asyncio.run(handlers.serve(paths.parse("GET", "/v1/models/m/versions/2"), b""))


def test_handlers_check_a_predict_body_before_the_model():
    handlers = Handlers(StubManager(), no_model, ParserPool())
    route = paths.parse("POST", "/v1/models/m:predict")
    with pytest.raises(ServingError, match="JSON Parse error"):
        asyncio.run(handlers.serve(route, b"{"))
    with pytest.raises(ServingError, match="Servable not found: m"):
        asyncio.run(handlers.serve(route, b'{"instances": [1]}'))


class RecordingPool(ParserPool):
    """A one-process pool that notes what it was given to run."""

    def __init__(self):
        super().__init__(1)
        self.ran: list[str] = []

    async def run(self, function, *args):
        self.ran.append(function.__name__)
        return await super().run(function, *args)


@pytest.mark.parametrize("verb", ["classify", "regress"])
def test_handlers_parse_a_large_examples_body_in_a_worker_before_the_model(verb):
    pool = RecordingPool()
    handlers = Handlers(StubManager(), no_model, pool)
    route = paths.parse("POST", f"/v1/models/m:{verb}")
    large = json.dumps({"examples": [{"x": [1.0] * 10}] * 2_000 + [{"x": None}]}).encode()
    assert len(large) >= OFFLOAD_BYTES
    try:
        with pytest.raises(ServingError, match="JSON Parse error"):
            asyncio.run(handlers.serve(route, b"{"))
        with pytest.raises(ServingError, match="Servable not found: m"):
            asyncio.run(handlers.serve(route, b'{"examples": [{"x": 1.0}]}'))
        assert pool.ran == []  # small bodies: in-process
        with pytest.raises(ServingError) as info:
            asyncio.run(handlers.serve(route, large))
        assert info.value.message == "Feature: x has element with unexpected JSON type: Null"
        assert pool.ran == ["decode_examples"]
        with pytest.raises(ServingError, match="Servable not found: m"):
            asyncio.run(handlers.serve(route, large.replace(b"null", b"2.0")))
    finally:
        pool.close()


def test_the_worker_processes_decoders_import_neither_tensorflow_nor_aiohttp():
    code = "import sys, serving.jsonexamples, serving.jsontensors; print(' '.join(sys.modules))"
    loaded = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).parents[2],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "serving.protos.example_pb2" in loaded
    assert not [m for m in loaded if m.split(".")[0] in ("tensorflow", "aiohttp")]
    assert not [m for m in loaded if m.startswith(("serving.rest", "serving.servable"))]


def test_app_serves_added_exact_paths_first_and_v1_paths_only_when_undecoded():
    async def metrics(request):
        return web.Response(text="metrics")

    async def scenario() -> list[tuple[int, str]]:
        app = rest.build_app(StubManager(), no_model, timeout_s=5)
        app.router.add_get("/v1/metrics", metrics)  # an exact path inside /v1/
        replies = []
        async with TestClient(TestServer(app)) as client:
            for path in ("/v1/metrics", "/v1/models/m", "/%761/models/m", "/v1"):
                response = await client.get(URL(path, encoded=True))  # sent as written
                replies.append((response.status, await response.text()))
        return replies

    replies = asyncio.run(scenario())
    assert [status for status, _ in replies] == [200, 200, 404, 404]
    assert replies[0][1] == "metrics"
    assert json.loads(replies[1][1])["model_version_status"][0]["version"] == "1"
