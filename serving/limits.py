"""The per-tensor size check, for the REST API's JSON worker (serving.jsontensors).

It lives in the shared codec (contract.tensors), free of TensorFlow, so the worker
process that parses JSON bodies imports only numpy; this name stays for its callers.
"""

from contract.tensors import MAX_DIMENSION, tensor_size_problem

__all__ = ["MAX_DIMENSION", "tensor_size_problem"]
