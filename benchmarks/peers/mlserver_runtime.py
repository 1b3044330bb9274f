"""MLServer runtime for the exported SavedModel: what `make bench-peers` serves with MLServer.

MLServer 1.7 ships runtimes for scikit-learn, XGBoost, MLflow, Hugging Face and others,
but none for TensorFlow, so a Python user serving this model writes one like this: load
the `serving_default` signature, decode the V2 input with MLServer's own NumPy codec,
encode the output with it. Everything around it (gRPC, the V2 protocol, adaptive
batching, worker processes) is MLServer's.

Runs only inside the peer's environment (.cache/peers/...), where MLServer imports it by
the `implementation` name in model-settings.json; nothing of this project is importable
there.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse
from mlserver.utils import get_model_uri

INPUT = "images"  # FP32 [-1, 28, 28, 1], as the signature takes it
OUTPUT = "probabilities"  # FP32 [-1, 10]


class SavedModelRuntime(MLModel):
    async def load(self) -> bool:
        # The caps the project's benchmark gives its own server
        # (benchmarks/serving.py SERVER_THREAD_FLAGS): one thread per op and one op at a
        # time, so both servers leave the same cores to gRPC and the load generator.
        # They must be set before TensorFlow's runtime starts, i.e. before the load.
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        uri = await get_model_uri(self.settings)
        self._signature = tf.saved_model.load(uri).signatures["serving_default"]
        # One call here, as the project's server replays its warm-up records, so the
        # first request does not pay for tracing.
        self._signature(images=tf.zeros((1, 28, 28, 1), tf.float32))
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        (request_input,) = (i for i in payload.inputs if i.name == INPUT)
        images = NumpyCodec.decode_input(request_input).astype(np.float32, copy=False)
        probabilities = self._signature(images=tf.constant(images))[OUTPUT].numpy()
        return InferenceResponse(
            model_name=self.name,
            id=payload.id,
            outputs=[NumpyCodec.encode_output(OUTPUT, probabilities)],
        )
