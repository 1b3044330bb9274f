"""What the REST API reads, apart from predict's tensors: classify and regress bodies
as the gRPC requests the shared inference code takes, and a model's signatures as the
predict JSON decoder (`serving.jsontensors`) takes them.

The tensors themselves are decoded in `serving.jsontensors`, outside this package:
large bodies are parsed in worker processes that must import neither TensorFlow nor
aiohttp, and importing `serving.rest` would bring both.
"""

from __future__ import annotations

from tensorflow_serving.apis import classification_pb2, input_pb2, model_pb2, regression_pb2

from serving import examples, tensors
from serving.errors import invalid
from serving.jsontensors import JsonType, excerpt, parse_json
from serving.servable import Servable

InferenceRequest = classification_pb2.ClassificationRequest | regression_pb2.RegressionRequest


def signature_types(servable: Servable) -> dict[str, dict[str, JsonType]]:
    """Each signature's inputs as the JSON decoder types them, by signature name; what
    a worker process gets instead of the servable (it pickles, the servable does not)."""
    return {
        name: {alias: json_type(info[0]) for alias, info in signature.inputs.items()}
        for name, signature in servable.signatures.items()
    }


def json_type(dtype: int) -> JsonType:
    """A signature input's dtype (a DataType enum value) as the JSON decoder takes it."""
    try:
        numpy_dtype = tensors.numpy_dtype(dtype)
    except tensors.TensorError:
        numpy_dtype = None
    return JsonType(tensors.short_dtype(dtype), numpy_dtype, tensors.MAX_TENSOR_BYTES)


def examples_request(verb: str, spec: model_pb2.ModelSpec, body: bytes) -> InferenceRequest:
    """TF Serving's REST classify/regress body as the gRPC request (`verb` "classify"
    or "regress"): {"signature_name": ..., "context": {...}, "examples": [{...}, ...]}."""
    doc = parse_json(body)
    if verb == "classify":
        request: InferenceRequest = classification_pb2.ClassificationRequest(model_spec=spec)
    else:
        request = regression_pb2.RegressionRequest(model_spec=spec)
    name = doc.get("signature_name", "")
    if not isinstance(name, str):
        raise invalid(
            f"JSON Value: {excerpt(doc)} not formatted correctly. "
            "'signature_name' key must be a string value."
        )
    request.model_spec.signature_name = name
    listed: input_pb2.ExampleList | input_pb2.ExampleListWithContext
    if "context" in doc:
        listed = request.input.example_list_with_context
        listed.context.CopyFrom(examples.example_from_json(doc["context"]))
    else:
        listed = request.input.example_list
    if "examples" not in doc:
        # TF Serving says "classify" for :regress too.
        raise invalid(
            f"JSON Value: {excerpt(doc)} When method is classify, key 'examples' is expected "
            "and was not found"
        )
    rows = doc["examples"]
    if not isinstance(rows, list):
        raise invalid(f"JSON Value: {excerpt(doc)} Expecting 'examples' value to be an list/array")
    if not rows:
        raise invalid(f"JSON Value: {excerpt(doc)} 'examples' value is an empty array")
    listed.examples.extend(examples.example_from_json(row) for row in rows)
    return request
