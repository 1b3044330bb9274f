"""What one request costs, in pieces: the server's own Python per Predict, the client's
message cost against the official path, and the CPU budget that bounds any server here.

`make bench` (benchmarks.serving) measures the runs; this module turns them into costs
per request, so the table can say what is left to gain and where.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from contract.mnist import CLASSES, INPUT, PROBABILITIES


def measure_request_path(servable, request_file: Path, repeats: int = 5000) -> dict:
    """The server's own Python per Predict, step by step, in microseconds, each step
    timed alone in one thread: what is left for the server to shave once the transport
    and the model are paid (see the CPU budget)."""
    import timeit

    from tensorflow_serving.apis import predict_pb2

    from serving import metrics
    from serving import predict as predict_lib

    data = request_file.read_bytes()
    request = predict_pb2.PredictRequest.FromString(data)
    signature, arrays, aliases = predict_lib.prepare(servable, request)
    outputs = servable.run(signature, arrays)
    response = predict_lib.respond(servable, signature, aliases, outputs)
    configured = metrics.configured_model_names()
    metrics.set_model_names(["mnist"])  # counted as a served model's requests are
    steps = {
        "parse the request": lambda: predict_pb2.PredictRequest.FromString(data),
        "check and decode inputs": lambda: predict_lib.prepare(servable, request),
        "build the response": lambda: predict_lib.respond(servable, signature, aliases, outputs),
        "serialize the response": response.SerializeToString,
        "count and time it (metrics)": lambda: metrics.observe_request(
            "mnist", "Predict", "GRPC", "OK", 0.001
        ),
    }
    timings = {}
    try:
        for name, step in steps.items():
            step()  # the first call pays one-time costs (lazy imports, caches)
            timings[name] = timeit.timeit(step, number=repeats) / repeats * 1e6
    finally:
        metrics.set_model_names(configured)
    return timings


def measure_client_cost(images: np.ndarray, repeats: int = 2000) -> dict:
    """Per-request cost of building the request and reading the response, no network.

    The official path gets an already-prepared float tensor; the client's path includes
    its MNIST-style preprocessing of a 28x28 gray picture on top, so the comparison
    favours the official path."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    image = images[:1]
    probabilities = np.random.default_rng(0).random((1, 10)).astype(np.float32)
    probabilities /= probabilities.sum()  # a softmax row: the client checks it sums to 1
    response = predict_pb2.PredictResponse()
    response.outputs[PROBABILITIES].CopyFrom(tf.make_tensor_proto(probabilities))
    response.outputs[CLASSES].CopyFrom(tf.make_tensor_proto(np.array([3], np.int64)))
    wire = response.SerializeToString()

    def official():
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "mnist"
        request.inputs[INPUT].CopyFrom(tf.make_tensor_proto(image, shape=image.shape))
        request.SerializeToString()
        parsed = predict_pb2.PredictResponse.FromString(wire)
        tf.make_ndarray(parsed.outputs[PROBABILITIES])

    def timed(fn) -> float:
        for _ in range(50):
            fn()
        started = time.perf_counter()
        for _ in range(repeats):
            fn()
        return (time.perf_counter() - started) / repeats * 1e6

    from client import _rpc as rpc
    from client import preprocess
    from client.protos import tfs_pb2

    spec = tfs_pb2.ModelSpec(name="mnist")
    # What an app holds: gray 28x28 pictures of digits (100 different test digits, so
    # the ones the preprocessing must rework are counted at their share).
    digits = [(d[:, :, 0] * 255).round().astype(np.uint8) for d in images[:100]]
    turn = iter(range(10**9))

    def ours():
        digit = digits[next(turn) % len(digits)]
        request = rpc.predict_request(spec, preprocess.preprocess(digit)[np.newaxis])
        request.SerializeToString()
        rpc.predictions(tfs_pb2.PredictResponse.FromString(wire), 1)

    prepared = preprocess.preprocess(digits[0])[np.newaxis]

    def ours_messages_only():
        request = rpc.predict_request(spec, prepared)
        request.SerializeToString()
        rpc.predictions(tfs_pb2.PredictResponse.FromString(wire), 1)

    result = {
        "official_us": timed(official),
        "client_us": timed(ours),
        "client_messages_us": timed(ours_messages_only),
    }
    result["speedup"] = result["official_us"] / result["client_us"]
    return result


def cpu_budget(ceiling: dict, served: dict, transport: dict, rows: list[dict]) -> dict:
    """What one request costs the machine before this server does any work of its own,
    in milliseconds of one core, and the rate at which those costs alone fill every CPU.

    Three costs are unavoidable here: the load generator's (it shares the cores), gRPC's
    own per call (the canned-response server: bytes in, bytes out, nothing else), and
    the model's per image (as served, one core, at batch 64: batches at concurrency 64
    are at most that big). Their sum bounds any server built on this stack on this
    machine; the goals' rates are set beside it, and the server's own share is what its
    measured CPU per request has beyond the transport and the model.
    """
    cpus = os.cpu_count() or 1
    per_request = {
        "loadgen_ms": 10 * transport["loadgen_cpu_percent"] / transport["rps"],
        "transport_ms": 10 * transport["server_cpu_percent"] / transport["rps"],
        "model_ms": 1000 / served[64]["images_per_s"],
    }
    floor_ms = sum(per_request.values())
    goals = {
        "0.45x ceiling": 0.45 * max(v["images_per_s"] for v in ceiling.values()),
        "0.7x transport": 0.7 * transport["rps"],
    }
    budget = {
        **per_request,
        "cpus": cpus,
        "bound_rps": 1000 * cpus / floor_ms,
        "goals": {
            name: {"rps": rate, "cpus": rate * floor_ms / 1000} for name, rate in goals.items()
        },
    }
    by = {(r["batching"], r["concurrency"]): r for r in rows}
    if (True, 64) in by:
        row = by[True, 64]
        server_ms = 10 * row["server_cpu_percent"] / row["rps"]
        budget["server"] = {
            "rps": row["rps"],
            "server_ms": server_ms,
            "own_ms": server_ms - per_request["transport_ms"] - per_request["model_ms"],
            "x_bound": row["rps"] / budget["bound_rps"],
        }
    return budget


def budget_lines(budget: dict) -> list[str]:
    lines = [
        "",
        "CPU per request before the server's own work, ms of one core (from the runs above):",
        f"  load generator {budget['loadgen_ms']:.3f} + gRPC transport (canned server) "
        f"{budget['transport_ms']:.3f} + model as served at batch 64 {budget['model_ms']:.3f}"
        f" = {budget['loadgen_ms'] + budget['transport_ms'] + budget['model_ms']:.3f} ms",
        f"  so on {budget['cpus']} CPUs no server on this stack can answer more than "
        f"{budget['bound_rps']:.0f} requests/s here",
    ]
    for name, goal in budget["goals"].items():
        lines.append(
            f"  goal {name}: {goal['rps']:.0f} requests/s needs {goal['cpus']:.2f} CPUs "
            "before the server does anything of its own"
        )
    if "server" in budget:
        server = budget["server"]
        lines.append(
            f"  this server, batching, concurrency 64: {server['server_ms']:.3f} ms per request"
            f" (its own share {server['own_ms']:.3f} ms), {server['x_bound']:.2f}x the bound"
        )
    return lines
