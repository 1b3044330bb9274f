"""Fuzz the local server with malformed requests; every one must get a clean error.

    python -m tests.serving.fuzz --target 127.0.0.1:8500 [--rest http://127.0.0.1:8501]
        [--count 10000] [--seed 0]

Kinds of malformed request, drawn at random with a fixed seed (so a failure replays):
random TensorProto shapes, dtypes and contents; absurd declared sizes; wrong input keys
and signatures; truncated or random protobuf bytes sent through a raw channel (no
client-side parsing); and random JSON to the REST predict, classify and regress
endpoints, some of it over 64 KiB so that the server's parser processes see it. A
request that happens to be valid may succeed; anything else must be answered with a
gRPC error status other than INTERNAL/UNKNOWN (or an HTTP 4xx with a JSON error), never
a crash or a hang. The caller then checks the server still predicts correctly and its
memory.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field

import grpc
import numpy as np
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow_serving.apis import predict_pb2

PREDICT = "/tensorflow.serving.PredictionService/Predict"
# Codes that mean "the server failed", not "the request was bad".
SERVER_FAULTS = {"INTERNAL", "UNKNOWN", "DEADLINE_EXCEEDED", "UNAVAILABLE"}
DTYPES = [v for v in types_pb2.DataType.values() if v < 100] + [500, 101]  # invalid too


@dataclass
class Report:
    sent: int = 0
    outcomes: Counter = field(default_factory=Counter)  # "grpc:CODE" / "http:400" / ...
    faults: list[str] = field(default_factory=list)  # what must never happen

    def record(self, kind: str, outcome: str, fault: str | None = None) -> None:
        self.sent += 1
        self.outcomes[f"{kind} -> {outcome}"] += 1
        if fault:
            self.faults.append(f"{kind}: {fault}")


def random_tensor(rng: random.Random) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto(dtype=rng.choice(DTYPES))
    rank = rng.choice([0, 1, 2, 4, 4, 4, 7])
    for _ in range(rank):
        proto.tensor_shape.dim.add(
            size=rng.choice([0, 1, 2, 28, 28, 3, -1, -(2**40), 2**31, 10**6, 2**62])
        )
    if rng.random() < 0.1:
        proto.tensor_shape.unknown_rank = True
    roll = rng.random()
    if roll < 0.4:
        proto.tensor_content = rng.randbytes(rng.choice([0, 1, 3, 784 * 4, 784 * 4 + 1, 5000]))
    elif roll < 0.6:
        proto.float_val.extend(rng.random() for _ in range(rng.choice([0, 1, 784, 900])))
    elif roll < 0.7:
        proto.int64_val.extend(rng.randint(-(2**63), 2**63 - 1) for _ in range(rng.randint(0, 50)))
    elif roll < 0.8:
        proto.string_val.extend(rng.randbytes(rng.randint(0, 20)) for _ in range(rng.randint(0, 5)))
    elif roll < 0.9:
        proto.int_val.extend(rng.randint(-(2**31), 2**31 - 1) for _ in range(rng.randint(0, 50)))
    else:
        proto.half_val.extend(rng.randint(0, 65535) for _ in range(rng.randint(0, 10)))
    return proto


def random_request(rng: random.Random) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = rng.choice(["mnist", "mnist", "mnist", "", "nope", "m" * 300])
    choice = rng.random()
    if choice < 0.2:
        request.model_spec.version.value = rng.choice([1, 0, -1, 2**62])
    elif choice < 0.3:
        request.model_spec.version_label = rng.choice(["stable", "", "x" * 100])
    request.model_spec.signature_name = rng.choice(["", "serving_default", "nope"])
    keys = rng.choice([["images"], ["images"], ["images"], ["pixels"], [], ["images", "x"]])
    for key in keys:
        request.inputs[key].CopyFrom(random_tensor(rng))
    if rng.random() < 0.2:
        request.output_filter.extend(rng.choice([["classes"], ["nope"], ["classes", "classes"]]))
    return request


def random_json(rng: random.Random) -> bytes:
    good_image = [[[0.0]] * 28] * 28
    candidates = [
        b"",
        b"{",
        b"null",
        b"[]",
        b'{"instances": 5}',
        b'{"instances": [[1, 2], [3]]}',
        b'{"inputs": {"nope": [1]}}',
        json.dumps({"instances": [good_image], "signature_name": 7}).encode(),
        json.dumps({"instances": [{"images": {"b64": "!!!"}}]}).encode(),
        json.dumps({"inputs": [[[[1e309]]]]}).encode(),
        json.dumps({"instances": [[[["x"]]]]}).encode(),
        json.dumps({"instances": [good_image], "inputs": [good_image]}).encode(),
        rng.randbytes(rng.randint(1, 200)),
        ("[" * rng.randint(100, 5000)).encode(),
        json.dumps({"instances": [[rng.random()] * rng.randint(0, 3000)]}).encode(),
    ]
    return rng.choice(candidates)


# Feature values of every JSON type, in and out of tf.Example's ranges.
FEATURE_VALUES: list[object] = [
    None,
    True,
    7,
    -(2**63),
    2**63,
    2**64,
    10**400,
    1.5,
    float("inf"),
    "text",
    "\ud800",
    {"b64": "/wA"},
    {"b64": "!!"},
    {"b64": 1},
    {},
    [],
    [1],
]


def random_example(rng: random.Random) -> object:
    if rng.random() < 0.1:
        return rng.choice([None, 1, "x", [], [{}]])  # not an object at all
    features: dict[str, object] = {}
    for index in range(rng.randint(0, 4)):
        if rng.random() < 0.5:
            features[f"f{index}"] = rng.choice(FEATURE_VALUES)
        else:
            features[f"f{index}"] = rng.choices(FEATURE_VALUES, k=rng.randint(0, 5))
    return features


def random_examples_json(rng: random.Random) -> bytes:
    """A classify or regress body: mostly well-formed JSON with odd examples."""
    if rng.random() < 0.2:
        return rng.choice(
            [b"", b"{", b"[]", b'{"examples": 5}', b'{"examples": []}', rng.randbytes(50)]
        )
    body: dict[str, object] = {
        "examples": [random_example(rng) for _ in range(rng.randint(0, 5))],
    }
    if rng.random() < 0.3:
        body["context"] = random_example(rng)
    if rng.random() < 0.2:
        body["signature_name"] = rng.choice([7, "nope", "serving_default", ""])
    if rng.random() < 0.1:  # large: parsed in a worker process
        body["examples"] = [{"f": [rng.random()] * 100}] * 100 + body["examples"]
    return json.dumps(body).encode()


def fuzz_grpc(target: str, rng: random.Random, count: int, report: Report) -> None:
    channel = grpc.insecure_channel(target)
    raw = channel.unary_unary(PREDICT)  # bytes as given, no client-side parsing
    for _ in range(count):
        if rng.random() < 0.25:
            valid = random_request(rng).SerializeToString()
            kind = "raw bytes"
            payload = (
                valid[: rng.randint(0, max(len(valid) - 1, 0))]
                if rng.random() < 0.6 and valid
                else rng.randbytes(rng.randint(1, 300))
            )
        else:
            kind = "request"
            payload = random_request(rng).SerializeToString()
        try:
            raw(payload, timeout=30)
            report.record(kind, "OK")
        except grpc.RpcError as exc:
            code = exc.code().name
            fault = f"{code}: {exc.details()}" if code in SERVER_FAULTS else None
            report.record(kind, f"grpc:{code}", fault)


def fuzz_rest(base_url: str, rng: random.Random, count: int, report: Report) -> None:
    paths = [
        "/v1/models/mnist:predict",
        "/v1/models/mnist/versions/1:predict",
        "/v1/models/nope:predict",
        "/v1/models/mnist/labels/x:predict",
        "/v1/models/mnist:classify",
        "/v1/models/mnist/versions/1:regress",
        "/v1/models/nope:classify",
    ]
    for _ in range(count):
        path = rng.choice(paths)
        body = random_json(rng) if path.endswith(":predict") else random_examples_json(rng)
        request = urllib.request.Request(
            base_url + path,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                report.record("json", f"http:{response.status}")
        except urllib.error.HTTPError as exc:
            text = exc.read()
            fault = None
            if exc.code >= 500:
                fault = f"HTTP {exc.code}: {text[:200]!r}"
            else:
                try:
                    if "error" not in json.loads(text):
                        fault = f"HTTP {exc.code} without an error field: {text[:200]!r}"
                except ValueError:
                    fault = f"HTTP {exc.code} with a non-JSON body: {text[:200]!r}"
            report.record("json", f"http:{exc.code}", fault)
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            report.record("json", "no answer", repr(exc))


def run(target: str, count: int, seed: int = 0, rest: str | None = None) -> Report:
    rng = random.Random(seed)
    report = Report()
    rest_count = count // 5 if rest else 0
    fuzz_grpc(target, rng, count - rest_count, report)
    if rest:
        fuzz_rest(rest.rstrip("/"), rng, rest_count, report)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.serving.fuzz", description=__doc__)
    parser.add_argument("--target", required=True, help="gRPC host:port")
    parser.add_argument("--rest", help="REST base URL, e.g. http://127.0.0.1:8501")
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    report = run(args.target, args.count, args.seed, args.rest)
    for outcome, n in sorted(report.outcomes.items()):
        print(f"{n:6d}  {outcome}")
    print(f"{report.sent} requests, {len(report.faults)} server faults")
    for fault in report.faults[:20]:
        print("  FAULT", fault)
    return 1 if report.faults else 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    sys.exit(main())
