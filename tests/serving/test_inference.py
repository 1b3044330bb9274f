"""Classify, Regress and MultiInference, over gRPC and REST, checked as TF Serving answers.

One server (batching on, so these requests take the batcher's path) serves the TF1 and
the TF2 half_plus_two models of `testmodels` side by side, the TF1 one with warm-up
records of all three kinds. The examples and result rules that need no model are
checked in-process against a fake servable, which can return any output at all.

Past 400 lines on purpose: the gRPC and REST cases share one server process with both
models loaded and warmed up; split, each file would start its own.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import grpc
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow.core.example import example_pb2, feature_pb2
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    inference_pb2,
    input_pb2,
    prediction_log_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from serving import examples, inference, jsonexamples, warmup
from serving import servable as servable_lib
from serving.servable import WARMUP_PATH, ServingError
from tests.conftest import RunningServer, free_port, running_server
from tests.serving import testmodels
from tests.serving.testmodels import CLASSIFY, PREDICT, REGRESS, example

VERSION = 123
INVALID = grpc.StatusCode.INVALID_ARGUMENT


# ---- the server -------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    running: RunningServer
    stub: prediction_service_pb2_grpc.PredictionServiceStub
    rest: str  # http://127.0.0.1:PORT


def _warmup_records() -> list[prediction_log_pb2.PredictionLog]:
    classify = classification_request("tf1", "classify_two", example(x=2.0))
    regress = regression_request("tf1", "regress_x_to_y", example(x=2.0))
    multi = multi_request(("tf1", "regress_x_to_y", REGRESS), ("tf1", "classify_two", CLASSIFY))
    multi.input.example_list.examples.add().CopyFrom(example(x=2.0))
    records = [prediction_log_pb2.PredictionLog() for _ in range(3)]
    records[0].classify_log.request.CopyFrom(classify)
    records[1].regress_log.request.CopyFrom(regress)
    records[2].multi_inference_log.request.CopyFrom(multi)
    return records


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("inference")
    tf1 = testmodels.half_plus_two_tf1(root / "tf1", VERSION)
    tf2 = testmodels.half_plus_two_tf2(root / "tf2", VERSION)
    records = tf1 / str(VERSION) / WARMUP_PATH
    records.parent.mkdir(parents=True)
    with tf.io.TFRecordWriter(str(records)) as writer:
        for record in _warmup_records():
            writer.write(record.SerializeToString())
    config = root / "models.config"
    config.write_text(
        "model_config_list {\n"
        + "".join(
            f'  config {{ name: "{name}" base_path: "{base}" model_platform: "tensorflow" }}\n'
            for name, base in (("tf1", tf1), ("tf2", tf2))
        )
        + "}\n"
    )
    rest_port = free_port()
    flags = [f"--model_config_file={config}", f"--rest_api_port={rest_port}", "--enable_batching"]
    with running_server(flags, model_name="tf1") as running:
        running.wait_for_log("Exporting HTTP/REST API at:localhost:")
        with grpc.insecure_channel(running.target) as channel:
            stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
            yield Server(running, stub, f"http://127.0.0.1:{rest_port}")


# ---- requests ---------------------------------------------------------------------------


def _input(input_message: input_pb2.Input, rows, context) -> None:
    if context is None:
        input_message.example_list.examples.extend(rows)
    else:
        input_message.example_list_with_context.context.CopyFrom(context)
        input_message.example_list_with_context.examples.extend(rows)


def classification_request(
    model: str, signature: str, *rows: example_pb2.Example, context=None
) -> classification_pb2.ClassificationRequest:
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    _input(request.input, rows, context)
    return request


def regression_request(
    model: str, signature: str, *rows: example_pb2.Example, context=None
) -> regression_pb2.RegressionRequest:
    request = regression_pb2.RegressionRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    _input(request.input, rows, context)
    return request


def multi_request(*tasks: tuple[str, str, str]) -> inference_pb2.MultiInferenceRequest:
    """tasks: (model, signature, method name); add the input yourself."""
    request = inference_pb2.MultiInferenceRequest()
    for model, signature, method in tasks:
        task = request.tasks.add(method_name=method)
        task.model_spec.name = model
        task.model_spec.signature_name = signature
    return request


def classes(result: classification_pb2.ClassificationResult) -> list[list[tuple[str, float]]]:
    return [[(c.label, c.score) for c in row.classes] for row in result.classifications]


def spec(message) -> tuple[str, int, str]:
    model_spec = message.model_spec
    return model_spec.name, model_spec.version.value, model_spec.signature_name


def rpc_error(call: Callable, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=30)
    return info.value


def post(url: str, body: object) -> tuple[int, object]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# ---- gRPC: what works -------------------------------------------------------------------


@pytest.mark.parametrize("model", ["tf1", "tf2"])
def test_classify_as_tf_serving_test(server: Server, model: str) -> None:
    response = server.stub.Classify(
        classification_request(model, "classify_x_to_y", example(x=2.0)), timeout=30
    )
    assert classes(response.result) == [[("", 3.0)]]
    assert spec(response) == (model, VERSION, "classify_x_to_y")


@pytest.mark.parametrize("model", ["tf1", "tf2"])
def test_regress_as_tf_serving_test(server: Server, model: str) -> None:
    request = regression_request(model, "regress_x_to_y", example(x=2.0), example(x=4.0))
    response = server.stub.Regress(request, timeout=30)
    assert [r.value for r in response.result.regressions] == [3.0, 4.0]
    assert spec(response) == (model, VERSION, "regress_x_to_y")


def test_classify_labels_and_scores(server: Server) -> None:
    rows = example(x=2.0), example(x=4.0)
    response = server.stub.Classify(classification_request("tf1", "classify_two", *rows))
    assert classes(response.result) == [
        [("low", 3.0), ("high", 4.0)],
        [("low", 4.0), ("high", 5.0)],
    ]
    only = server.stub.Classify(classification_request("tf1", "classify_classes_only", *rows))
    assert classes(only.result) == [[("low", 0.0), ("high", 0.0)]] * 2


def test_example_list_with_context(server: Server) -> None:
    """The context's features reach every example; an example's own value wins."""
    context = example(x=10.0, x2=1.0)
    request = regression_request(
        "tf1", "regress_x_to_y", example(x=2.0), example(), context=context
    )
    assert [r.value for r in server.stub.Regress(request).result.regressions] == [3.0, 7.0]
    request = classification_request("tf2", "classify_x_to_y", example(), context=context)
    assert classes(server.stub.Classify(request).result) == [[("", 7.0)]]


@pytest.mark.parametrize("model", ["tf1", "tf2"])
def test_multi_inference_as_tf_serving_test(server: Server, model: str) -> None:
    request = multi_request(
        (model, "regress_x_to_y", REGRESS),
        (model, "classify_x_to_y", CLASSIFY),
        (model, "regress_x_to_y2", REGRESS),
    )
    request.input.example_list.examples.add().CopyFrom(example(x=2.0))
    results = server.stub.MultiInference(request, timeout=30).results
    assert [r.WhichOneof("result") for r in results] == [
        "regression_result",
        "classification_result",
        "regression_result",
    ]
    assert results[0].regression_result.regressions[0].value == 3.0
    assert classes(results[1].classification_result) == [[("", 3.0)]]
    assert results[2].regression_result.regressions[0].value == 4.0
    assert [spec(r) for r in results] == [
        (model, VERSION, "regress_x_to_y"),
        (model, VERSION, "classify_x_to_y"),
        (model, VERSION, "regress_x_to_y2"),
    ]


def test_concurrent_classify_requests_each_get_their_rows(server: Server) -> None:
    """Batched together or not, every caller gets back its own examples' results."""
    futures = [
        server.stub.Classify.future(
            classification_request("tf1", "classify_two", *[example(x=float(i))] * (1 + i % 3))
        )
        for i in range(24)
    ]
    for i, future in enumerate(futures):
        expected = [("low", 0.5 * i + 2), ("high", 0.5 * i + 3)]
        assert classes(future.result(timeout=60).result) == [expected] * (1 + i % 3)


def test_warmup_replays_classify_regress_and_multi_inference(server: Server) -> None:
    log = server.running.log()
    assert f"Finished reading warmup data for model tf1 version {VERSION}: 3 records" in log


# ---- gRPC: TF Serving's errors ----------------------------------------------------------

_NO_SPEC = classification_pb2.ClassificationRequest()
_NO_SPEC.input.example_list.examples.add().CopyFrom(example(x=2.0))
_EXPECT_CLASSES = 'Expected classification signature outputs to contain at least one of "classes"'


@pytest.mark.parametrize(
    ("method", "request_message", "code", "message"),
    [
        ("Classify", _NO_SPEC, INVALID, "Missing ModelSpec"),
        (
            "Classify",
            classification_request("nope", "classify_x_to_y", example(x=2.0)),
            grpc.StatusCode.NOT_FOUND,
            "Servable not found for request: Latest(nope)",
        ),
        (
            "Classify",
            classification_request("tf1", "nope", example(x=2.0)),
            INVALID,
            "No signature was found with the name: nope",
        ),
        (  # the default signature is a predict one, with input "x"
            "Classify",
            classification_request("tf1", "", example(x=2.0)),
            INVALID,
            "No classification inputs found in SignatureDef: ",
        ),
        (
            "Classify",
            classification_request("tf2", "regress_x_to_y", example(x=2.0)),
            INVALID,
            _EXPECT_CLASSES,
        ),
        (
            "Regress",
            regression_request("tf1", "classify_two", example(x=2.0)),
            INVALID,
            "Expected one output Tensor.",
        ),
        (
            "Regress",
            regression_request("tf1", "classify_x_to_y", example(x=2.0)),
            INVALID,
            "No regression outputs found in SignatureDef: ",
        ),
        (
            "Regress",
            regression_request("tf1", "predict_x2", example(x=2.0)),
            INVALID,
            "Expected one input Tensor.",
        ),
        (
            "Regress",
            regression_request("tf1", "regress_x2_to_y3", example(x=2.0)),
            INVALID,
            "Expected input 'inputs' of signature 'regress_x2_to_y3' to take serialized "
            "tf.Examples (DT_STRING), but it is DT_FLOAT",
        ),
        ("Classify", classification_request("tf1", "classify_x_to_y"), INVALID, "Input is empty."),
        (
            "Regress",
            regression_request("tf2", "regress_x_to_y", context=example(x=1.0)),
            INVALID,
            "Input is empty.",
        ),
    ],
)
def test_classify_and_regress_errors(
    server: Server, method: str, request_message, code: grpc.StatusCode, message: str
) -> None:
    error = rpc_error(getattr(server.stub, method), request_message)
    assert error.code() == code, error.details()
    assert message in error.details()


def test_a_feature_of_the_wrong_type_is_the_models_error(server: Server) -> None:
    row = tf.train.Example()
    row.features.feature["x"].int64_list.value.append(2)
    error = rpc_error(server.stub.Regress, regression_request("tf1", "regress_x_to_y", row))
    assert error.code() == INVALID
    assert "Data types don't match" in error.details()


def _with_input(request: inference_pb2.MultiInferenceRequest):
    request.input.example_list.examples.add().CopyFrom(example(x=2.0))
    return request


@pytest.mark.parametrize(
    ("request_message", "code", "message"),
    [
        (_with_input(multi_request()), INVALID, "ModelSpec has no name specified."),
        (
            _with_input(
                multi_request(
                    ("tf1", "regress_x_to_y", REGRESS), ("tf2", "regress_x_to_y", REGRESS)
                )
            ),
            INVALID,
            "All ModelSpecs in a MultiInferenceRequest must access the same model name.",
        ),
        (
            _with_input(
                multi_request(("tf1", "regress_x_to_y", REGRESS), ("", "classify_two", CLASSIFY))
            ),
            INVALID,
            "Found ModelSpec with an empty model name.",
        ),
        (
            _with_input(
                multi_request(
                    ("tf1", "regress_x_to_y", REGRESS), ("tf1", "regress_x_to_y", REGRESS)
                )
            ),
            INVALID,
            "Duplicate evaluation of signature: regress_x_to_y",
        ),
        (  # checked task by task: the first one's signature cannot regress
            _with_input(multi_request(("tf1", "", REGRESS), ("tf1", "serving_default", REGRESS))),
            INVALID,
            "No regression inputs found in SignatureDef: ",
        ),
        (
            _with_input(multi_request(("tf1", "regress_x_to_y", PREDICT))),
            grpc.StatusCode.UNIMPLEMENTED,
            f"Unsupported signature method_name: {PREDICT}",
        ),
        (
            _with_input(multi_request(("tf1", "nope", CLASSIFY))),
            INVALID,
            "Requested signature not found in model graph: nope",
        ),
        (
            _with_input(multi_request(("tf1", "regress_x_to_y", CLASSIFY))),
            INVALID,
            _EXPECT_CLASSES,
        ),
        (
            multi_request(("tf1", "regress_x_to_y", REGRESS)),
            INVALID,
            "Input is empty.",
        ),
    ],
)
def test_multi_inference_errors(
    server: Server, request_message, code: grpc.StatusCode, message: str
) -> None:
    error = rpc_error(server.stub.MultiInference, request_message)
    assert error.code() == code, error.details()
    assert message in error.details()


# ---- REST -------------------------------------------------------------------------------


def test_rest_classify_and_regress_as_tf_serving_test(server: Server) -> None:
    body = {"signature_name": "classify_x_to_y", "examples": [{"x": 2.0}]}
    assert post(f"{server.rest}/v1/models/tf1:classify", body) == (200, {"results": [[["", 3.0]]]})
    body = {"signature_name": "regress_x_to_y", "examples": [{"x": 2.0}]}
    assert post(f"{server.rest}/v1/models/tf2:regress", body) == (200, {"results": [3.0]})


def test_rest_paths_context_lists_and_b64(server: Server) -> None:
    body = {
        "signature_name": "classify_two",
        "context": {"x": [10.0], "tag": {"b64": base64.b64encode(b"\xff\x00").decode()}},
        "examples": [{"x": 2.0, "words": ["a", "b"]}, {"flag": True}],
    }
    status, reply = post(f"{server.rest}/v1/models/tf1/versions/{VERSION}:classify", body)
    assert status == 200, reply
    assert reply == {"results": [[["low", 3.0], ["high", 4.0]], [["low", 7.0], ["high", 8.0]]]}
    body = {"signature_name": "regress_x_to_y2", "examples": [{"x": 1.0}, {"x": [-2.5]}]}
    assert post(f"{server.rest}/v1/models/tf1:regress", body) == (200, {"results": [3.5, 1.75]})


def test_rest_large_bodies_parsed_in_worker_processes_answer_alike(server: Server) -> None:
    # Over 64 KiB: parsed, and the tf.Examples built, in the server's TF-free workers.
    rows = [{"x": 2.0, "pad": [0.5] * 40}] * 500 + [{"x": [-2.5]}]
    body = {"signature_name": "regress_x_to_y2", "context": {"x": 9.0}, "examples": rows}
    assert len(json.dumps(body)) >= 64 << 10
    status, reply = post(f"{server.rest}/v1/models/tf1:regress", body)
    assert (status, reply) == (200, {"results": [4.0] * 500 + [1.75]})
    body = {"signature_name": "classify_two", "examples": [*rows, {"x": None}]}
    status, reply = post(f"{server.rest}/v1/models/tf1:classify", body)
    assert status == 400
    assert reply["error"] == "Feature: x has element with unexpected JSON type: Null"


@pytest.mark.parametrize(
    ("path", "body", "status", "error"),
    [
        ("tf1:classify", b"{", 400, "JSON Parse error: "),
        ("tf1:classify", [], 400, "JSON Value: [] Is not object"),
        (
            "tf1:classify",
            {"signature_name": 1, "examples": []},
            400,
            "not formatted correctly. 'signature_name' key must be a string value.",
        ),
        (
            "tf1:regress",
            {"signature_name": "regress_x_to_y"},
            400,
            'JSON Value: {"signature_name":"regress_x_to_y"} When method is classify, '
            "key 'examples' is expected and was not found",
        ),
        ("tf1:classify", {"examples": {}}, 400, "Expecting 'examples' value to be an list/array"),
        ("tf1:classify", {"examples": []}, 400, "'examples' value is an empty array"),
        (
            "tf1:classify",
            {"examples": [[1.0]]},
            400,
            "Example must be JSON object but got JSON Array",
        ),
        (
            "tf1:classify",
            {"context": 1, "examples": []},
            400,
            "Example must be JSON object but got JSON Number",
        ),
        (
            "tf1:classify",
            {"examples": [{"x": None}]},
            400,
            "Feature: x has element with unexpected JSON type: Null",
        ),
        (
            "tf1:classify",
            {"examples": [{"x": [1, 2.0]}]},
            400,
            "Unexpected element type in feature: x expecting type: int64",
        ),
        ("tf1:classify", {"examples": [{"x": {"b64": "!"}}]}, 400, "Unable to base64 decode"),
        (
            "tf1:regress",
            {"signature_name": "classify_two", "examples": [{"x": 1.0}]},
            400,
            "Expected one output Tensor.",
        ),
        (
            "tf1:classify",
            {"signature_name": "nope", "examples": [{"x": 1.0}]},
            400,
            "No signature was found with the name: nope",
        ),
        (
            "nope:classify",
            {"examples": [{"x": 1.0}]},
            404,
            "Servable not found for request: Latest(nope)",
        ),
        (
            "tf1/versions/7:regress",
            {"examples": [{"x": 1.0}]},
            404,
            "Servable not found for request: Specific(tf1, 7)",
        ),
    ],
)
def test_rest_errors(server: Server, path: str, body: object, status: int, error: str) -> None:
    got_status, reply = post(f"{server.rest}/v1/models/{path}", body)
    assert got_status == status, reply
    assert error in reply["error"]


# ---- in-process: examples ---------------------------------------------------------------


def test_serialized_examples_put_the_context_first() -> None:
    message = input_pb2.Input()
    _input(message, [example(x=2.0), example()], example(x=10.0, x2=1.0))
    rows = examples.serialized_examples(message)
    assert rows.shape == (2,) and rows.dtype == object
    merged = [example_pb2.Example.FromString(row) for row in rows]
    assert [list(m.features.feature["x"].float_list.value) for m in merged] == [[2.0], [10.0]]
    assert [list(m.features.feature["x2"].float_list.value) for m in merged] == [[1.0], [1.0]]
    plain = input_pb2.Input()
    _input(plain, [example(x=2.0)], None)
    assert examples.serialized_examples(plain).tolist() == [example(x=2.0).SerializeToString()]


def test_rest_examples_become_the_rows_grpc_examples_do() -> None:
    body = {"signature_name": "s", "context": {"x": 10.0, "x2": 1.0}, "examples": [{"x": 2.0}, {}]}
    name, rows = jsonexamples.decode_examples(json.dumps(body).encode())
    message = input_pb2.Input()
    _input(message, [example(x=2.0), example()], example(x=10.0, x2=1.0))
    expected = examples.serialized_examples(message)
    assert name == "s" and rows.shape == expected.shape and rows.dtype == object
    parse = example_pb2.Example.FromString
    assert [parse(row) for row in rows] == [parse(row) for row in expected]


@pytest.mark.parametrize(
    "text", ["", "example_list {}", "example_list_with_context { context {} }"]
)
def test_an_input_without_examples_is_empty(text: str) -> None:
    with pytest.raises(ServingError) as info:
        examples.serialized_examples(text_format.Parse(text, input_pb2.Input()))
    assert (info.value.code, info.value.message) == (INVALID, "Input is empty.")


def _feature(text: str) -> feature_pb2.Feature:
    return text_format.Parse(text, feature_pb2.Feature())


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (2.0, "float_list { value: 2 }"),
        ([1.5, float("inf")], "float_list { value: [1.5, inf] }"),
        (3, "int64_list { value: 3 }"),
        ([True, False, 7], "int64_list { value: [1, 0, 7] }"),
        ([-(2**63), 2**63 - 1], f"int64_list {{ value: [{-(2**63)}, {2**63 - 1}] }}"),
        (2**64, "float_list { value: 1.8446744073709552e+19 }"),  # a double, as TF Serving
        ("héllo", 'bytes_list { value: "h\\303\\251llo" }'),
        (["a", {"b64": "/wA"}], 'bytes_list { value: ["a", "\\377\\000"] }'),
        ([], ""),
    ],
)
def test_json_feature_values(value: object, expected: str) -> None:
    # Read back as TensorFlow's own Example: the TF-free copy writes tf.Example's bytes.
    written = jsonexamples.example_from_json({"f": value}).SerializeToString()
    example = example_pb2.Example.FromString(written)
    assert example.features.feature["f"] == _feature(expected)


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("x", "Example must be JSON object but got JSON String"),
        ({"f": [[1]]}, "Feature: f has element with unexpected JSON type: Array"),
        ({"f": {"a": 1}}, "Feature: f has element with unexpected JSON type: Object"),
        ({"f": [1.0, "a"]}, "Unexpected element type in feature: f expecting type: float"),
        ({"f": ["a", True]}, "Unexpected element type in feature: f expecting type: bytes"),
        ({"f": [2**63]}, "Feature: f has uint64_t element. Only int64_t is supported."),
        ({"f": {"b64": "a"}}, "Unable to base64 decode"),
    ],
)
def test_json_feature_errors(value: object, error: str) -> None:
    with pytest.raises(ServingError) as info:
        jsonexamples.example_from_json(value)
    assert (info.value.code, info.value.message) == (INVALID, error)


# ---- in-process: signatures and results, on a fake servable ------------------------------


@dataclass(frozen=True)
class FakeSignature:
    name: str
    definition: meta_graph_pb2.SignatureDef


@dataclass
class FakeServable:
    """What inference.py uses of a servable; `run` answers `outputs` whatever is fed."""

    outputs: Mapping[str, np.ndarray]
    definitions: dict[str, str] = field(default_factory=dict)  # name -> SignatureDef text
    name: str = "fake"
    version: int = 7
    fed: list = field(default_factory=list)

    def signature(self, name: str) -> FakeSignature:
        name = name or "serving_default"
        if name not in self.definitions:
            raise ServingError(grpc.StatusCode.FAILED_PRECONDITION, "not found")
        definition = text_format.Parse(self.definitions[name], meta_graph_pb2.SignatureDef())
        return FakeSignature(name, definition)

    def run(self, signature, arrays):
        self.fed.append(dict(arrays))
        return dict(self.outputs)

    def warmup_requests(self) -> list[bytes]:
        return [r.SerializeToString() for r in _warmup_records()]


_STRING_IN = 'inputs { key: "inputs" value { name: "in:0" dtype: DT_STRING } } '
_CLASSIFIER = _STRING_IN + (
    'outputs { key: "classes" value { name: "c:0" dtype: DT_STRING } } '
    'outputs { key: "scores" value { name: "s:0" dtype: DT_FLOAT } } '
    f'method_name: "{CLASSIFY}"'
)
_SCORER = _STRING_IN + 'outputs { key: "scores" value { name: "s:0" dtype: DT_FLOAT } }'
_REGRESSOR = _STRING_IN + 'outputs { key: "outputs" value { name: "o:0" dtype: DT_FLOAT } }'
_TWO_ROWS = classification_pb2.ClassificationRequest()
_TWO_ROWS.model_spec.signature_name = "sig"
_TWO_ROWS.input.example_list.examples.extend([example(x=1.0), example(x=2.0)])


def _classify(outputs: Mapping[str, np.ndarray], definition: str = _CLASSIFIER):
    fake = FakeServable(outputs, {"sig": definition})
    return inference.classify(fake, _TWO_ROWS), fake


def _regress(outputs: Mapping[str, np.ndarray]):
    request = regression_pb2.RegressionRequest(input=_TWO_ROWS.input)
    request.model_spec.signature_name = "sig"
    return inference.regress(FakeServable(outputs, {"sig": _REGRESSOR}), request)


def test_fake_classify_feeds_serialized_examples_and_builds_results() -> None:
    labels = np.array([[b"a", b"\xff"], [b"c", b"d"]], dtype=object)
    response, fake = _classify({"classes": labels, "scores": np.float32([[1, 2], [3, 4]])})
    assert fake.fed[0]["inputs"].tolist() == [
        example(x=1.0).SerializeToString(),
        example(x=2.0).SerializeToString(),
    ]
    assert classes(response.result) == [[("a", 1.0), ("\ufffd", 2.0)], [("c", 3.0), ("d", 4.0)]]
    assert spec(response) == ("fake", 7, "sig")


@pytest.mark.parametrize(
    ("outputs", "error"),
    [
        (
            {"scores": np.float32([1, 2])},
            "Expected Tensor shape: [batch_size num_classes] but got [2]",
        ),
        ({"scores": np.float64([[1], [2]])}, "Expected scores Tensor of DT_FLOAT. Got: DT_DOUBLE"),
        ({"scores": np.float32([[1], [2], [3]])}, "Expected scores output batch size of 2. Got: 3"),
        ({}, "Expected 1 output tensor(s).  Got: 0"),
    ],
)
def test_fake_classify_output_errors(outputs: dict, error: str) -> None:
    with pytest.raises(ServingError) as info:
        _classify(outputs, _SCORER)
    assert (info.value.code, info.value.message) == (INVALID, error)


def test_fake_classify_classes_and_scores_must_agree() -> None:
    outputs = {
        "classes": np.array([["a"], ["b"]], dtype=object),
        "scores": np.float32([[1, 2]] * 2),
    }
    with pytest.raises(ServingError, match=r"dim_size\(1\)\. Got 1 vs\. 2"):
        _classify(outputs)
    outputs = {"classes": np.float32([[1], [2]]), "scores": np.float32([[1], [2]])}
    with pytest.raises(ServingError, match=r"Expected classes Tensor of DT_STRING\. Got: DT_FLOAT"):
        _classify(outputs)


@pytest.mark.parametrize(
    ("outputs", "values", "error"),
    [
        (np.float32([1.5, 2.5]), [1.5, 2.5], None),
        (np.float32([[1.5], [2.5]]), [1.5, 2.5], None),
        (np.float32([[1, 2], [3, 4]]), None, "[batch_size, 1] but got [2,2]"),
        (np.float32(1), None, "[batch_size, 1] but got []"),
        (np.float32([1]), None, "Input batch size did not match output batch size: 2 vs. 1"),
        (np.int64([1, 2]), None, "Expected output Tensor of DT_FLOAT.  Got: DT_INT64"),
    ],
)
def test_fake_regression_shapes(outputs: np.ndarray, values, error) -> None:
    if error is None:
        assert [r.value for r in _regress({"outputs": outputs}).result.regressions] == values
        return
    with pytest.raises(ServingError) as info:
        _regress({"outputs": outputs})
    assert info.value.code == INVALID and error in info.value.message


def test_method_name_check_when_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    """Off by default (TF2 signatures say predict); on, the method name must match."""
    outputs = {"scores": np.float32([[1], [2]])}
    assert classes(_classify(outputs, _SCORER)[0].result) == [[("", 1.0)], [("", 2.0)]]
    monkeypatch.setattr(servable_lib, "SIGNATURE_METHOD_NAME_CHECK", True, raising=False)
    with pytest.raises(ServingError) as info:
        _classify(outputs, _SCORER + f' method_name: "{PREDICT}"')
    assert info.value.message == (
        f"Expected classification signature method_name to be {CLASSIFY}. Was: {PREDICT}"
    )
    checked = _classify(outputs, _SCORER + f' method_name: "{CLASSIFY}"')[0]
    assert classes(checked.result) == [[("", 1.0)], [("", 2.0)]]


def test_warmup_replay_reports_the_failing_record() -> None:
    # The fake has only a regression signature: record 0 (a classify) cannot run.
    fake = FakeServable({"outputs": np.float32([3])}, {"classify_two": _REGRESSOR})
    with pytest.raises(ServingError) as info:
        warmup.replay(fake)
    assert info.value.code == INVALID
    assert info.value.message.startswith(
        "Warm-up request 0 failed: Expected classification signature outputs to contain at "
        'least one of "classes" or "scores".'
    )


def test_warmup_replays_each_record_as_often_as_asked() -> None:
    # --num_request_iterations_for_warmup=3: classify, regress and a two-task
    # multi-inference record, each replayed 3 times.
    fake = FakeServable(
        {"outputs": np.float32([3]), "scores": np.float32([[1]])},
        {"classify_two": _SCORER, "regress_x_to_y": _REGRESSOR},
    )
    warmup.replay(fake, iterations=3)
    assert len(fake.fed) == 3 + 3 + 3 * 2
    fake.fed.clear()
    warmup.replay(fake)
    assert len(fake.fed) == 1 + 1 + 2
