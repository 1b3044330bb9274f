"""The V2 (Open Inference Protocol) side of `make bench-peers`, run in the peer's environment.

    python v2_client.py request IMAGE.npy REQUEST.pb --model mnist
    python v2_client.py check TARGET REQUEST.pb --wait 120

`request` writes the ModelInferRequest that benchmarks.loadgen sends as raw bytes. The
image goes in `raw_input_contents` (little-endian FP32), which is what Triton's
`tritonclient.grpc` sends for a NumPy array (`InferInput.set_data_from_numpy`), the
usual V2 gRPC client, and the same bytes on the wire as the TF Serving request's
`tensor_content`. `check` waits for the model to be ready, sends the request once and
prints the decoded answer as JSON, so the benchmark knows the peer answers correctly.

It uses the protobuf modules MLServer ships (mlserver.grpc.dataplane_pb2), so it runs
with the peer's Python and imports nothing from this project.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import grpc
import numpy as np
from mlserver.grpc import dataplane_pb2 as pb
from mlserver.grpc import dataplane_pb2_grpc

INPUT = "images"
OUTPUT = "probabilities"


def build_request(images: np.ndarray, model: str) -> pb.ModelInferRequest:
    images = np.ascontiguousarray(images, dtype="<f4")
    return pb.ModelInferRequest(
        model_name=model,
        inputs=[
            pb.ModelInferRequest.InferInputTensor(
                name=INPUT, datatype="FP32", shape=list(images.shape)
            )
        ],
        raw_input_contents=[images.tobytes()],
    )


def output_array(response: pb.ModelInferResponse, name: str) -> np.ndarray:
    """An FP32 output, from raw_output_contents (MLServer answers raw requests raw) or
    from the typed contents."""
    for index, output in enumerate(response.outputs):
        if output.name == name:
            if response.raw_output_contents:
                data = np.frombuffer(response.raw_output_contents[index], dtype="<f4")
            else:
                data = np.array(output.contents.fp32_contents, dtype=np.float32)
            return data.reshape(tuple(output.shape))
    raise KeyError(f"no output {name!r} in the response")


def check(target: str, request: pb.ModelInferRequest, wait: float) -> dict:
    with grpc.insecure_channel(target) as channel:
        stub = dataplane_pb2_grpc.GRPCInferenceServiceStub(channel)
        deadline = time.monotonic() + wait
        while True:
            try:
                ready = stub.ModelReady(pb.ModelReadyRequest(name=request.model_name), timeout=5)
                if ready.ready:
                    break
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE or time.monotonic() > deadline:
                    raise
            if time.monotonic() > deadline:
                raise TimeoutError(f"model {request.model_name} not ready after {wait} s")
            time.sleep(0.5)
        probabilities = output_array(stub.ModelInfer(request, timeout=30), OUTPUT)
    return {
        "shape": list(probabilities.shape),
        "predicted": probabilities.argmax(axis=-1).tolist(),
        "probabilities": probabilities.tolist(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="v2_client.py", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("request", help="write a serialized ModelInferRequest")
    build.add_argument("images", help=".npy file: FP32 [N, 28, 28, 1]")
    build.add_argument("out")
    build.add_argument("--model", default="mnist")
    answer = commands.add_parser("check", help="wait for the model, send the request once")
    answer.add_argument("target")
    answer.add_argument("request")
    answer.add_argument("--wait", type=float, default=120.0)
    args = parser.parse_args(argv)
    if args.command == "request":
        with open(args.out, "wb") as f:
            f.write(build_request(np.load(args.images), args.model).SerializeToString())
        return 0
    with open(args.request, "rb") as f:
        request = pb.ModelInferRequest.FromString(f.read())
    print(json.dumps(check(args.target, request, args.wait)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
