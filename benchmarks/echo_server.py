"""A gRPC server that answers every Predict with one canned response and does nothing
else: the most any Python gRPC server can do on this machine with this load generator.
`make bench` reports it so the server's figures can be read against the transport's.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

import grpc
import numpy as np
from tensorflow_serving.apis import predict_pb2

from contract.mnist import CLASSES, PROBABILITIES
from serving.tensors import from_numpy


async def serve(port: int) -> None:
    response = predict_pb2.PredictResponse()
    response.model_spec.name = "mnist"
    response.outputs[PROBABILITIES].CopyFrom(from_numpy(np.full((1, 10), 0.1, np.float32)))
    response.outputs[CLASSES].CopyFrom(from_numpy(np.array([7], np.int64)))
    canned = response.SerializeToString()

    async def predict(request: bytes, context) -> bytes:
        return canned

    server = grpc.aio.server()
    handler = grpc.method_handlers_generic_handler(
        "tensorflow.serving.PredictionService",
        {"Predict": grpc.unary_unary_rpc_method_handler(predict)},  # bytes in, bytes out
    )
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("Running gRPC ModelServer (echo)", flush=True)
    await server.wait_for_termination()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.echo_server")
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(serve(parser.parse_args(argv).port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
