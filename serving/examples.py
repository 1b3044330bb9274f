"""The tf.Example inputs of the gRPC API's Classify, Regress and MultiInference.

A request's `Input` becomes the 1-D string tensor that a classify or regress signature
takes as `inputs`: one serialized tf.Example per row. With a context, each row is the
context's bytes followed by the example's bytes. Protobuf parsing merges concatenated
messages and lets a later map entry replace an earlier one, so every example carries the
context's features and its own win where both name one: TF Serving's semantics, without
ever parsing or merging an Example here.

The REST API's JSON examples become the same rows in `serving.jsonexamples`, which
imports no TensorFlow so that its worker processes need none.
"""

from __future__ import annotations

import numpy as np
from tensorflow_serving.apis import input_pb2

from serving.servable import invalid


def serialized_examples(message: input_pb2.Input) -> np.ndarray:
    """The examples as a 1-D object array of serialized tf.Example bytes.

    An Input with no examples (none listed, or no `kind` set at all) is refused with
    TF Serving's INVALID_ARGUMENT "Input is empty.": a model cannot run on zero rows.
    """
    kind = message.WhichOneof("kind")
    if kind == "example_list":
        examples, context = message.example_list.examples, b""
    elif kind == "example_list_with_context":
        with_context = message.example_list_with_context
        examples, context = with_context.examples, with_context.context.SerializeToString()
    else:
        examples, context = (), b""
    if not examples:
        raise invalid("Input is empty.")
    rows = np.empty(len(examples), dtype=object)
    rows[:] = [context + example.SerializeToString() for example in examples]
    return rows
