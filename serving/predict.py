"""Predict: from a PredictRequest to a PredictResponse on one servable, TF Serving's rules.

Input checks follow TF Serving's order and wording (signature key, input count, alias,
tensor parsing). The dtype is checked here too, so the error names the input; shapes
are the graph's business, as in TF Serving.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from tensorflow_serving.apis import predict_pb2

from serving import tensors
from serving.servable import Servable, Signature, invalid


def predict(servable: Servable, request: predict_pb2.PredictRequest) -> predict_pb2.PredictResponse:
    """The synchronous path (warm-up replay); the services share its two halves and run
    the model through the batcher or their executor in between."""
    signature, arrays, aliases = prepare(servable, request)
    return respond(servable, signature, aliases, servable.run(signature, arrays))


def prepare(
    servable: Servable, request: predict_pb2.PredictRequest
) -> tuple[Signature, dict[str, np.ndarray], list[str]]:
    """Everything checked before the model runs: signature, inputs, output filter."""
    signature = servable.signature(request.model_spec.signature_name)
    arrays = decode_inputs(signature, request)
    return signature, arrays, output_aliases(signature, request.output_filter)


def respond(
    servable: Servable,
    signature: Signature,
    aliases: list[str],
    outputs: Mapping[str, np.ndarray],
    as_content: bool = False,
) -> predict_pb2.PredictResponse:
    response = predict_pb2.PredictResponse()
    response.model_spec.name = servable.name
    response.model_spec.version.value = servable.version
    response.model_spec.signature_name = signature.name
    for alias in aliases:
        response.outputs[alias].CopyFrom(tensors.from_numpy(outputs[alias], as_content=as_content))
    return response


def decode_inputs(
    signature: Signature, request: predict_pb2.PredictRequest
) -> dict[str, np.ndarray]:
    sent, wanted = set(request.inputs), set(signature.inputs)
    if len(sent) != len(wanted):
        raise invalid(
            f"input size does not match signature: {len(sent)}!={len(wanted)} "
            f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(wanted))}}}). "
            f"Sent extra: {{{','.join(sorted(sent - wanted))}}}. "
            f"Missing but required: {{{','.join(sorted(wanted - sent))}}}."
        )
    arrays, dtypes = {}, {}
    for alias in sorted(sent):
        if alias not in wanted:
            raise invalid(
                f"input tensor alias not found in signature: {alias}. "
                f"Inputs expected to be in the set {{{','.join(sorted(wanted))}}}."
            )
        proto = request.inputs[alias]
        try:
            arrays[alias] = tensors.to_numpy(proto)
        except tensors.TensorError as exc:
            raise invalid(f"tensor parsing error: {alias}: {exc}") from exc
        dtypes[alias] = proto.dtype
    signature.check_inputs(dtypes)
    return arrays


def output_aliases(signature: Signature, output_filter) -> list[str]:
    outputs = signature.definition.outputs
    if not output_filter:
        return sorted(outputs)
    seen: list[str] = []
    for alias in output_filter:
        if alias not in outputs:
            raise invalid(
                f"output tensor alias not found in signature: {alias} "
                f"Outputs expected to be in the set {{{','.join(sorted(outputs))}}}."
            )
        if alias in seen:
            raise invalid(f"duplicate output tensor alias: {alias}")
        seen.append(alias)
    return seen
