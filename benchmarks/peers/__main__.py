"""`make bench-peers`: this project's server against MLServer 1.7, side by side in one run.

MLServer is the server a Python user would pick instead: pip-installable, asyncio gRPC
like ours, the V2 (Open Inference) protocol, adaptive batching. Both serve the same
SavedModel (the latest version under models/mnist) with the same TensorFlow release,
one MNIST test digit per request, and are driven by the same closed-loop load generator
(benchmarks.loadgen, pre-serialized requests as raw bytes over four connections) at
concurrency 1 and 64:

- ours: `python -m serving` with serving/batching_cpu.config (num_batch_threads 1 on this
  machine), exactly as `make bench` runs it (benchmarks.serving.run_server_matrix);
- MLServer: `mlserver start` from its own cached environment (.cache/peers/, made on first
  use), our SavedModel behind a small custom runtime (mlserver_runtime.py), adaptive
  batching set to the batching config's equivalent, the same TensorFlow thread caps.

MLServer runs in four configurations (--variants): "defaults", its own defaults, which
log every gRPC call (debug is on by default in 1.7) and keep Prometheus metrics per call;
"lean", those two off; "lean+wait", lean with batches that wait 2 ms to fill (MLServer's
batcher needs a wait to form large batches, see TUNED_WAIT); "in-process", lean with
inference in the server process instead of a worker process. The ratio ours/MLServer at
concurrency 64 is printed for each.

Prints a table and writes reports/bench_peers.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from benchmarks.peers.environment import environment, installed_with, project_pin
from benchmarks.processes import process_tree
from benchmarks.serving import (
    ROOT,
    batching_config,
    latest_version,
    measure_server,
    predict_request_file,
    run_server_matrix,
    sample_images,
)
from testkit.launch import terminate

HERE = Path(__file__).resolve().parent
MLSERVER = "mlserver==1.7.1"  # the latest 1.7.x on PyPI
# MLServer 1.7.1 leaves uvloop unpinned, and its worker processes die at start with
# uvloop >= 0.22 ("There is no current event loop in thread 'MainThread'", MLServer
# issue #2286; the fix, PR #2285, is not released): the last release before that.
UVLOOP = "uvloop==0.21.0"
ENV_NAME = "mlserver-1.7"
MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"
CONCURRENCIES = (1, 64)
MODEL_NAME = "mnist"

# Adaptive batching equivalent to serving/batching_cpu.config. max_batch_size is
# MLServer's largest batch: the config's max_execution_batch_size, 128. The config never
# waits for a batch to fill (batch_timeout_micros 0); MLServer turns batching off at
# max_batch_time 0, so the equivalent is the smallest positive value: one microsecond is
# less than one turn of its event loop, so a batch is whatever requests are queued when
# it forms, which is what a zero timeout means in TF Serving too.
MAX_BATCH_SIZE = 128
NO_WAIT = 1e-6
# But the two batchers differ: TF Serving's (and ours) forms a batch only when a batch
# thread is free, so batches grow while the model is busy; MLServer's hands each batch
# to the worker as soon as it forms, so without a wait its batches stay small under
# load. A short wait is how MLServer is meant to be run. 2 ms is a starting point: in one
# sweep on a busy 2-core machine it beat 10 ms (672 against 516 requests/s at
# concurrency 64) but the next run gave 216; re-measure quietly (--wait-ms tries others).
TUNED_WAIT = 0.002


@dataclass(frozen=True)
class Variant:
    """One MLServer configuration: settings.json on top of the ports, and max_batch_time."""

    settings: dict
    max_batch_time: float
    about: str


# settings {} keeps MLServer 1.7's defaults: debug on (a gRPC access-log line per call),
# Prometheus metrics (a per-call histogram interceptor), parallel_workers 1 (inference in
# one worker process; gRPC and the batcher in the main process).
LEAN = {"debug": False, "metrics_endpoint": None}
VARIANTS = {
    "defaults": Variant({}, NO_WAIT, "MLServer's defaults, batching as batching_cpu.config"),
    "lean": Variant(LEAN, NO_WAIT, "no access log, no metrics"),
    "lean+wait": Variant(LEAN, TUNED_WAIT, "no access log, no metrics, batches wait 2 ms"),
    "in-process": Variant(
        {**LEAN, "parallel_workers": 0}, NO_WAIT, "lean, inference in the server process"
    ),
}


def requirements() -> list[str]:
    """MLServer, the very TensorFlow release this project pins (no tensorflow-cpu: it and
    `tensorflow` overwrite each other's files), and a uvloop its workers start with."""
    return [MLSERVER, project_pin("tensorflow"), UVLOOP]


def model_settings(version_dir: Path, max_batch_time: float) -> dict:
    return {
        "name": MODEL_NAME,
        "implementation": "mlserver_runtime.SavedModelRuntime",
        "max_batch_size": MAX_BATCH_SIZE,
        "max_batch_time": max_batch_time,
        "parameters": {"uri": str(version_dir)},
    }


def distinct_free_ports(count: int) -> list[int]:
    from testkit.launch import free_port

    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)


@contextlib.contextmanager
def running_mlserver(python: Path, settings: dict, model: dict) -> Iterator[tuple[int, str]]:
    """`mlserver start` on a temporary model repository; yields (pid, gRPC target).

    It runs in that directory (MLServer keeps .metrics and .envs in its working
    directory), with this folder on PYTHONPATH for the runtime, and stops on SIGTERM as
    under an orchestrator; worker processes still alive after that are killed. The
    directory is deleted unless something failed."""
    work = Path(tempfile.mkdtemp(prefix="bench-mlserver-"))
    (work / "settings.json").write_text(json.dumps(settings, indent=2))
    (work / MODEL_NAME).mkdir()
    (work / MODEL_NAME / "model-settings.json").write_text(json.dumps(model, indent=2))
    env = dict(os.environ, PYTHONPATH=str(HERE), PYTHONUNBUFFERED="1")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # as testkit.launch gives our server
    log_path = work / "mlserver.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(python.parent / "mlserver"), "start", str(work)],
            cwd=work,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    pids: list[int] = []
    cleanup = False
    try:
        yield process.pid, f"127.0.0.1:{settings['grpc_port']}"
        pids = process_tree(process.pid)
        cleanup = True
    except BaseException:
        print(f"MLServer's log ({log_path}):\n{log_path.read_text(errors='replace')[-4000:]}")
        pids = process_tree(process.pid)
        cleanup = False  # the log and settings stay for a look
        raise
    finally:
        terminate(process)
        for pid in pids[1:]:  # its workers, by the ids it had while it ran
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if cleanup:
            shutil.rmtree(work, ignore_errors=True)


def peer_script(python: Path, *args: str) -> str:
    """benchmarks/peers/v2_client.py in the peer's Python, isolated (-I) from this project."""
    done = subprocess.run(
        [str(python), "-I", str(HERE / "v2_client.py"), *args],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"v2_client.py {args[0]} exited {done.returncode}:\n{done.stderr}")
    return done.stdout


def run_mlserver(
    python: Path,
    version_dir: Path,
    request_file: Path,
    label: int,
    variant: Variant,
    duration: float,
) -> dict:
    grpc_port, http_port, metrics_port = distinct_free_ports(3)
    settings = {
        "host": "127.0.0.1",
        "grpc_port": grpc_port,
        "http_port": http_port,
        "metrics_port": metrics_port,
        **variant.settings,
    }
    model = model_settings(version_dir, variant.max_batch_time)
    with running_mlserver(python, settings, model) as (pid, target):
        answer = json.loads(peer_script(python, "check", target, str(request_file), "--wait=180"))
        if answer["predicted"] != [label]:
            raise RuntimeError(f"MLServer answered {answer['predicted']}, the label is {label}")
        rows = [
            measure_server(pid, target, request_file, concurrency, duration, MODEL_INFER)
            for concurrency in CONCURRENCIES
        ]
    return {
        "about": variant.about,
        "settings": settings,
        "model_settings": model,
        "check": answer,
        "rows": rows,
    }


def ratios(ours: list[dict], mlserver: dict[str, dict], concurrency: int = 64) -> dict:
    """ours/MLServer requests/s and p99 at one concurrency, per MLServer configuration."""
    (mine,) = (r for r in ours if r["concurrency"] == concurrency)
    result = {}
    for variant, run in mlserver.items():
        (theirs,) = (r for r in run["rows"] if r["concurrency"] == concurrency)
        result[variant] = {
            "rps_ratio": mine["rps"] / theirs["rps"],
            "ours_p99_ms": mine["p99_ms"],
            "mlserver_p99_ms": theirs["p99_ms"],
            "target_met": mine["rps"] >= 2 * theirs["rps"] and mine["p99_ms"] < theirs["p99_ms"],
        }
    return result


def table(ours: list[dict], mlserver: dict[str, dict], compared: dict) -> str:
    lines = [
        "One image per request, closed loop (benchmarks.loadgen), same model, same machine:",
        "  server                           conc  requests/s  p50 ms  p99 ms  errors"
        "  server CPU  loadgen CPU  RSS MB  PSS MB",
    ]
    runs = [("this server, batching", ours)]
    runs += [(f"MLServer 1.7, {variant}", run["rows"]) for variant, run in mlserver.items()]
    for name, rows in runs:
        for r in rows:
            lines.append(
                f"  {name:31s}  {r['concurrency']:4d}  {r['rps']:10.0f}  {r['p50_ms']:6.2f}"
                f"  {r['p99_ms']:6.2f}  {sum(r['errors'].values()):6d}"
                f"  {r['server_cpu_percent']:9.0f}%  {r['loadgen_cpu_percent']:10.0f}%"
                f"  {r['rss_mb']:6.0f}  {r['pss_mb']:6.0f}"
            )
    lines.append("")
    for variant, run in mlserver.items():
        lines.append(f"  {variant}: {run['about']}")
    lines.append("")
    for variant, c in compared.items():
        lines.append(
            f"  ours/MLServer ({variant}) at concurrency 64: {c['rps_ratio']:.2f}x requests/s, "
            f"p99 {c['ours_p99_ms']:.1f} vs {c['mlserver_p99_ms']:.1f} ms "
            f"(target >= 2x at a lower p99: {'met' if c['target_met'] else 'not met'})"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.peers",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model-base", type=Path, default=ROOT / "models" / "mnist")
    parser.add_argument(
        "--batching-file", type=Path, default=ROOT / "serving" / "batching_cpu.config"
    )
    parser.add_argument(
        "--batch-threads", type=int, default=1, help="as in make bench (1 on 2 shared cores)"
    )
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"MLServer configurations to run, comma-separated, of: {', '.join(VARIANTS)}",
    )
    parser.add_argument(
        "--wait-ms",
        type=float,
        default=TUNED_WAIT * 1000,
        help="max_batch_time of the lean+wait configuration, in ms",
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench_peers.json")
    parser.add_argument("--prepare", action="store_true", help="only create the peer's env")
    args = parser.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    if unknown := set(variants) - set(VARIANTS):
        parser.error(f"--variants: unknown {', '.join(sorted(unknown))}")

    python = environment(ENV_NAME, requirements())
    if args.prepare:
        print(python)
        return 0
    base = args.model_base.resolve()
    version_dir = latest_version(base)
    from training.data import load

    image = sample_images(1)  # the first MNIST test digit, as make bench sends
    label = int(load().y_test[0])
    tf_request = predict_request_file(image)
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        np.save(Path(tmp) / "image.npy", image)
        v2_request = Path(tmp) / "v2_request.pb"
        peer_script(python, "request", str(Path(tmp) / "image.npy"), str(v2_request))
        print(f"model {version_dir}; {os.cpu_count()} CPUs; the digit is a {label}", flush=True)
        batching_file = batching_config(args.batching_file, args.batch_threads)
        ours = run_server_matrix(base, tf_request, batching_file, args.duration, CONCURRENCIES)
        print("this server measured", flush=True)
        mlserver = {}
        for variant in variants:
            config = VARIANTS[variant]
            if variant == "lean+wait":
                config = replace(config, max_batch_time=args.wait_ms / 1000)
            mlserver[variant] = run_mlserver(
                python, version_dir, v2_request, label, config, args.duration
            )
            print(f"MLServer ({variant}) measured", flush=True)
    compared = ratios(ours, mlserver)
    print()
    print(table(ours, mlserver, compared))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    peer_env = installed_with(python.parent.parent) or {}
    args.out.write_text(
        json.dumps(
            {
                "model": str(version_dir),
                "cpus": os.cpu_count(),
                "duration_s": args.duration,
                "ours": {"batching_file": str(args.batching_file), "rows": ours},
                "mlserver": mlserver,
                "ratios_at_64": compared,
                "peer_env": {k: peer_env.get(k) for k in ("requirements", "seconds")},
            },
            indent=2,
        )
    )
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
