"""`make bench`: what batching buys, measured end to end on this machine in one run.

1. The ceiling: the exported model in-process (no server), images/s per batch size.
2. The local server, one image per request, at several concurrencies, without and with
   batching (the serving/batching_cpu.config file): requests/s, p50, p99, ratio to the
   ceiling. The load comes from benchmarks.loadgen in its own process; its CPU use is
   reported so it is visible when the generator, not the server, is the limit.
3. A canned-response gRPC server under the same load: the transport alone.
4. Costs per request (benchmarks.per_request): the CPU budget of the load generator,
   the transport and the model, which bounds any server here; the server's own Python
   per Predict, step by step; the client's cost against the official path
   (tf.make_tensor_proto + tensorflow-serving-api messages + tf.make_ndarray).

Prints a table and writes reports/bench.json.
"""

from __future__ import annotations

import argparse
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
from benchmarks.per_request import (
    budget_lines,
    cpu_budget,
    measure_client_cost,
    measure_request_path,
)
from benchmarks.processes import tree_cpu_seconds, tree_memory_mb
from contract.mnist import CLASSES, INPUT, scale
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
