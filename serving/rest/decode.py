"""A model's signatures as the predict JSON decoder (`serving.jsontensors`) takes them.

The bodies themselves are decoded in `serving.jsontensors` (predict's tensors) and
`serving.jsonexamples` (classify's and regress's tf.Examples), outside this package:
large bodies are parsed in worker processes that must import neither TensorFlow nor
aiohttp, and importing `serving.rest` would bring both.
"""

from __future__ import annotations

from serving import tensors
from serving.jsontensors import JsonType
from serving.servable import Servable


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
