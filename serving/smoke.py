"""`python -m serving.smoke`: send MNIST test digits to a TF Serving endpoint and print
what comes back, the way TF Serving's own example client does (tensorflow-serving-api
stubs and `tf.make_tensor_proto`). Works against the local server and the real one, so
it doubles as a post-deployment check.
"""

from __future__ import annotations

import argparse
import sys
import time

import grpc
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from contract.mnist import CLASSES, INPUT, PROBABILITIES, scale
from contract.states import State
from training.data import load


def wait_until_available(channel: grpc.Channel, model: str, timeout: float) -> None:
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = model
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = stub.GetModelStatus(request, timeout=5)
            if any(s.state == State.AVAILABLE for s in response.model_version_status):
                return
        except grpc.RpcError as exc:
            if time.monotonic() > deadline:
                raise TimeoutError(f"model {model} not available: {exc.details()}") from exc
        if time.monotonic() > deadline:
            raise TimeoutError(f"model {model} not available after {timeout:.0f} s")
        time.sleep(0.5)


def positive(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 10_000:
        raise argparse.ArgumentTypeError(f"must be in 1..10000 (the MNIST test set), got {text}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.smoke", description=__doc__)
    parser.add_argument("--server", default="localhost:8500")
    parser.add_argument("--model", default="mnist")
    parser.add_argument("--count", type=positive, default=10, help="test digits to send (1..10000)")
    parser.add_argument("--wait", type=float, default=0, help="seconds to wait for the model")
    args = parser.parse_args(argv)

    mnist = load()
    images = scale(mnist.x_test[: args.count])
    labels = mnist.y_test[: args.count]
    channel = grpc.insecure_channel(args.server)
    try:
        if args.wait:
            wait_until_available(channel, args.model, args.wait)
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = args.model
        request.model_spec.signature_name = "serving_default"
        request.inputs[INPUT].CopyFrom(tf.make_tensor_proto(images, shape=images.shape))
        response = stub.Predict(request, 30.0)
    except (grpc.RpcError, TimeoutError) as exc:
        detail = exc.details() if isinstance(exc, grpc.RpcError) else str(exc)
        print(f"error: {args.server}: {detail}", file=sys.stderr)
        return 1
    classes = tf.make_ndarray(response.outputs[CLASSES])
    probabilities = tf.make_ndarray(response.outputs[PROBABILITIES])
    spec = response.model_spec
    print(f"{args.model} version {spec.version.value} at {args.server}:")
    for i, (label, digit) in enumerate(zip(labels, classes, strict=True)):
        mark = "ok" if label == digit else "WRONG"
        print(
            f"  test image {i:4d}: label {label}  predicted {digit}  "
            f"({probabilities[i, digit]:.1%})  {mark}"
        )
    print(f"{(classes == labels).sum()}/{len(labels)} correct")
    return 0


if __name__ == "__main__":
    sys.exit(main())
