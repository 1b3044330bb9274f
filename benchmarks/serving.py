"""`make bench`: what batching buys, measured end to end on this machine in one run.

1. The ceiling: the exported model in-process (no server), images/s per batch size.
2. The local server, one image per request, at several concurrencies, without and with
   batching (the serving/batching_cpu.config file): requests/s, p50, p99, ratio to the
   ceiling. The load comes from benchmarks.loadgen in its own process; its CPU use is
   reported so it is visible when the generator, not the server, is the limit.
3. The client's cost per request against the official path (tf.make_tensor_proto +
   tensorflow-serving-api messages + tf.make_ndarray).

Prints a table and writes reports/bench.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks.loadgen import PREDICT
from contract.mnist import CLASSES, INPUT, PROBABILITIES, scale
from serving.version_dirs import version_dirs

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCIES = (1, 8, 32, 64)
# One TensorFlow thread per op: on 2 cores shared with the load generator, a model that
# takes both cores for each batch starves the server's event loop (measured: ~40% fewer
# requests/s at concurrency 64). Inter-op -1: each run's ops execute in the calling thread
# (the batch thread or the executor's), not handed to an inter-op pool thread and back:
# p50 at concurrency 1 went from 2.53 to 1.95 ms. Same flags with and without batching.
SERVER_THREAD_FLAGS = [
    "--tensorflow_intra_op_parallelism=1",
    "--tensorflow_inter_op_parallelism=-1",
]
CEILING_BATCHES = (1, 8, 32, 64, 128, 256)


def latest_version(base: Path) -> Path:
    versions = version_dirs(base) if base.is_dir() else {}
    if not versions:
        raise SystemExit(f"no model under {base}: run `make train` or `make demo` first")
    return versions[max(versions)]


def sample_images(count: int) -> np.ndarray:
    from training.data import load

    mnist = load()
    return scale(mnist.x_test[:count])


def predict_request_file(image: np.ndarray) -> Path:
    """A serialized PredictRequest for one [1, 28, 28, 1] image, as the official client
    builds it (tf.make_tensor_proto: the pixels in tensor_content), for the load generator."""
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "mnist"
    request.inputs[INPUT].CopyFrom(tf.make_tensor_proto(image, shape=(1, 28, 28, 1)))
    with tempfile.NamedTemporaryFile(suffix=".pb", delete=False) as f:
        f.write(request.SerializeToString())
    return Path(f.name)


def time_batches(run: Callable[[np.ndarray], object], images: np.ndarray, seconds: float) -> dict:
    """images/s and p50 latency of `run` on batches of each of CEILING_BATCHES."""
    results = {}
    for batch in CEILING_BATCHES:
        x = np.resize(images, (batch, 28, 28, 1))
        for _ in range(3):
            run(x)
        times = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            run(x)
            times.append(time.perf_counter() - started)
        times_ms = np.array(times) * 1000
        results[batch] = {
            "images_per_s": batch * len(times) / sum(times),
            "p50_ms": float(np.percentile(times_ms, 50)),
        }
    return results


def measure_ceiling(version_dir: Path, images: np.ndarray, seconds: float) -> dict:
    """The model alone, as a TensorFlow function with every core: images/s per batch
    size, and batch-1 latency."""
    import tensorflow as tf

    fn = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    return time_batches(lambda x: fn(**{INPUT: tf.constant(x)})[CLASSES].numpy(), images, seconds)


def served_model(version_dir: Path):
    """The exported model loaded as the server loads it: its session runtime with the
    server's thread flags (SERVER_THREAD_FLAGS)."""
    from serving import flags
    from serving import servable as servable_lib
    from serving.__main__ import session_config

    args = flags.parse(["--model_base_path=/unused", *SERVER_THREAD_FLAGS])
    servable_lib.configure(session_config(args), method_name_check=False)
    return servable_lib.Servable("mnist", 1, version_dir)


def measure_served_model(servable, images: np.ndarray, seconds: float) -> dict:
    """The model as the server runs it, in-process. What the server could reach if
    requests cost nothing; the TensorFlow-function ceiling uses every core for each batch."""
    signature = servable.signature("")
    (alias,) = signature.inputs
    return time_batches(lambda x: servable.run(signature, {alias: x}), images, seconds)


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


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants: a server that runs inference in worker processes
    (MLServer) is charged for all of them."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue  # exited meanwhile
        children.setdefault(ppid, []).append(int(stat.parent.name))
    tree, todo = [], [pid]
    while todo:
        tree.append(todo.pop())
        todo.extend(children.get(tree[-1], []))
    return tree


def tree_cpu_seconds(pid: int) -> float:
    total = 0.0
    for p in process_tree(pid):
        with contextlib.suppress(OSError):
            total += cpu_seconds(p)
    return total


def tree_memory_mb(pid: int) -> dict:
    """RSS and PSS summed over the process tree, in MB. PSS shares each page out among
    the processes that map it, so worker processes forked from one parent (sharing
    TensorFlow's libraries) are not counted twice; for one process the two are close."""
    total = {"rss_mb": 0.0, "pss_mb": 0.0}
    for p in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("Rss", "Pss"):
                    total[f"{key.lower()}_mb"] += int(value.split()[0]) / 1024
    return total


def loadgen(
    target: str, request_file: Path, concurrency: int, duration: float, method: str = PREDICT
) -> dict:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.loadgen",
            f"--target={target}",
            f"--request={request_file}",
            f"--method={method}",
            f"--concurrency={concurrency}",
            f"--duration={duration}",
            "--warmup=1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def measure_transport(request_file: Path, duration: float) -> dict:
    """The canned-response server at concurrency 64: gRPC's own limit here."""
    from testkit.launch import free_port

    port = free_port()
    echo = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.echo_server", f"--port={port}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        echo.stdout.readline()  # listening
        return measure_server(echo.pid, f"127.0.0.1:{port}", request_file, 64, duration)
    finally:
        echo.terminate()
        echo.wait()


def measure_server(
    pid: int,
    target: str,
    request_file: Path,
    concurrency: int,
    duration: float,
    method: str = PREDICT,
) -> dict:
    """One loadgen run against a running server, with the server's CPU use over the run
    (warm-up included) and its memory at the end, both over its whole process tree."""
    server_cpu = tree_cpu_seconds(pid)
    row = loadgen(target, request_file, concurrency, duration, method)
    row["server_cpu_percent"] = 100 * (tree_cpu_seconds(pid) - server_cpu) / (duration + 1)
    row.update(tree_memory_mb(pid))
    return row


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


def batching_config(source: Path, batch_threads: int) -> Path:
    """A copy of a BatchingParameters file with num_batch_threads set for this machine."""
    batching_file = Path(tempfile.mkdtemp()) / source.name
    batching_file.write_text(
        re.sub(
            r"num_batch_threads\s*\{\s*value:\s*\d+\s*\}",
            f"num_batch_threads {{ value: {batch_threads} }}",
            source.read_text(),
        )
    )
    return batching_file


def run_server_matrix(
    base: Path,
    request_file: Path,
    batching_file: Path | None,
    duration: float,
    concurrencies: tuple[int, ...] = CONCURRENCIES,
) -> list[dict]:
    from testkit.launch import running_server

    flags = ["--model_name=mnist", f"--model_base_path={base}", *SERVER_THREAD_FLAGS]
    if batching_file:
        flags += ["--enable_batching", f"--batching_parameters_file={batching_file}"]
    rows = []
    with running_server(flags) as server:
        for concurrency in concurrencies:
            row = measure_server(
                server.process.pid, server.target, request_file, concurrency, duration
            )
            row["batching"] = batching_file is not None
            rows.append(row)
    return rows


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


def table(
    ceiling: dict,
    served: dict,
    transport: dict,
    rows: list[dict],
    client_cost: dict,
    budget: dict,
    request_path: dict,
) -> str:
    best = max(v["images_per_s"] for v in ceiling.values())
    served_best = max(v["images_per_s"] for v in served.values())
    lines = [
        "In-process ceiling (no server): the model as a TensorFlow function (every core),",
        "and as the server runs it (its session, " + " ".join(SERVER_THREAD_FLAGS) + "):",
        "  batch  images/s   p50 ms   served images/s   p50 ms",
    ]
    for batch, v in ceiling.items():
        lines.append(
            f"  {batch:5d}  {v['images_per_s']:8.0f}  {v['p50_ms']:7.2f}"
            f"  {served[batch]['images_per_s']:16.0f}  {served[batch]['p50_ms']:7.2f}"
        )
    lines += [
        "",
        "Local server, one image per request:",
        "  batching  conc  requests/s  p50 ms  p99 ms  x ceiling  x served  x transport"
        "  errors  server CPU  loadgen CPU  server RSS MB",
    ]
    for r in rows:
        lines.append(
            f"  {'on ' if r['batching'] else 'off'}       {r['concurrency']:4d}  {r['rps']:10.0f}"
            f"  {r['p50_ms']:6.2f}  {r['p99_ms']:6.2f}  {r['rps'] / best:9.2f}"
            f"  {r['rps'] / served_best:8.2f}  {r['rps'] / transport['rps']:11.2f}"
            f"  {sum(r['errors'].values()):6d}  {r['server_cpu_percent']:8.0f}%"
            f"  {r['loadgen_cpu_percent']:9.0f}%  {r['rss_mb']:13.0f}"
        )
    lines.append(
        f"  transport ceiling (canned-response gRPC server, concurrency 64): "
        f"{transport['rps']:.0f} requests/s, p99 {transport['p99_ms']:.1f} ms, "
        f"server CPU {transport['server_cpu_percent']:.0f}%, "
        f"loadgen CPU {transport['loadgen_cpu_percent']:.0f}%"
    )
    by = {(r["batching"], r["concurrency"]): r for r in rows}
    if (True, 64) in by and (False, 64) in by:
        lines.append(
            f"  batching speed-up at concurrency 64: "
            f"{by[True, 64]['rps'] / by[False, 64]['rps']:.2f}x"
        )
    if (True, 1) in by:
        lines.append(
            f"  p50 at concurrency 1 with batching {by[True, 1]['p50_ms']:.2f} ms vs in-process "
            f"batch-1 {ceiling[1]['p50_ms']:.2f} ms (as served: {served[1]['p50_ms']:.2f} ms)"
        )
    lines += budget_lines(budget)
    lines += ["", "The server's own Python per Predict, each step alone in one thread:"]
    lines += [f"  {name:30s} {us:6.1f} us" for name, us in request_path.items()]
    lines.append(f"  {'total':30s} {sum(request_path.values()):6.1f} us")
    lines += ["", "Client cost per 28x28 image (build request + read response, no network):"]
    official = client_cost["official_us"]
    lines += [
        f"  official path (tf.make_tensor_proto + tf.make_ndarray), no preprocessing: "
        f"{official:7.1f} us",
        f"  this client, preprocessing + messages (100 test digits):              "
        f"{client_cost['client_us']:7.1f} us  "
        f"(official/client {official / client_cost['client_us']:.2f})",
        f"  this client, messages only (a prepared digit):                        "
        f"{client_cost['client_messages_us']:7.1f} us  "
        f"(official/client {official / client_cost['client_messages_us']:.2f})",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serving", description=__doc__)
    parser.add_argument("--model-base", type=Path, default=ROOT / "models" / "mnist")
    parser.add_argument(
        "--batching-file", type=Path, default=ROOT / "serving" / "batching_cpu.config"
    )
    parser.add_argument(
        "--batch-threads",
        type=int,
        default=1,
        help="num_batch_threads for this machine (the file's value is sized for 4-core pods; "
        "1 measured best on 2 cores shared with the load generator)",
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench.json")
    args = parser.parse_args(argv)

    base = args.model_base.resolve()
    version_dir = latest_version(base)
    images = sample_images(256)  # the first 256 MNIST test digits
    request_file = predict_request_file(images[:1])

    print(
        f"model {version_dir}; {os.cpu_count()} CPUs; {platform.processor() or platform.machine()}",
        flush=True,
    )
    ceiling = measure_ceiling(version_dir, images, seconds=2.0)
    servable = served_model(version_dir)
    served = measure_served_model(servable, images, seconds=2.0)
    request_path = measure_request_path(servable, request_file)
    print("ceilings measured", flush=True)
    transport = measure_transport(request_file, args.duration)
    rows = run_server_matrix(base, request_file, None, args.duration)
    print("no-batching runs measured", flush=True)
    batching_file = batching_config(args.batching_file, args.batch_threads)
    print(f"batching: {args.batching_file} with num_batch_threads={args.batch_threads}", flush=True)
    rows += run_server_matrix(base, request_file, batching_file, args.duration)
    client_cost = measure_client_cost(images)
    budget = cpu_budget(ceiling, served, transport, rows)
    report = table(ceiling, served, transport, rows, client_cost, budget, request_path)
    print()
    print(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "ceiling": ceiling,
                "served_model": served,
                "transport": transport,
                "server": rows,
                "client_cost": client_cost,
                "cpu_budget": budget,
                "request_path_us": request_path,
                "model": str(version_dir),
                "cpus": os.cpu_count(),
            },
            indent=2,
        )
    )
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
