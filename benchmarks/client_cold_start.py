"""Cold start of the CLI: a fresh `python -m client predict img.png` against a live server.

    python -m benchmarks.client_cold_start                       # starts its own server
    python -m benchmarks.client_cold_start --server localhost:8500 --runs 20

Each row is a fresh interpreter, timed from spawn to exit, so it includes Python's own
start-up, every import, opening the channel, preprocessing and the Predict round trip.
Goal: under 1 s (stretch 0.5 s). The last row, optional, is what importing
tensorflow-serving-api's messages alone costs (the reason the client carries its own).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "data" / "samples"


def timed(command: Sequence[str], runs: int, env: dict[str, str]) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=120)
        times.append(time.perf_counter() - started)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr.decode()}")
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.client_cold_start")
    parser.add_argument("--server", help="a running server (default: start one on loopback)")
    parser.add_argument("--model-base", type=Path, default=ROOT / "models" / "mnist")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument(
        "--compare-tf", action="store_true", help="also time importing tensorflow-serving-api"
    )
    args = parser.parse_args(argv)

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    small, photo = SAMPLES / "0-canvas.png", SAMPLES / "5-exif.jpg"
    py = sys.executable

    with contextlib.ExitStack() as stack:
        target = args.server
        if target is None:
            from testkit.launch import running_server

            flags = ["--model_name=mnist", f"--model_base_path={args.model_base.resolve()}"]
            target = stack.enter_context(running_server(flags)).target
        rows = [
            ("python -c pass (interpreter floor)", [py, "-c", "pass"]),
            ("python -c 'import client'", [py, "-c", "import client"]),
            (
                f"python -m client predict {small.name}",
                [py, "-m", "client", "predict", str(small), "--server", target],
            ),
            (
                f"python -m client predict {photo.name}",
                [py, "-m", "client", "predict", str(photo), "--server", target],
            ),
            (
                "python -m client predict data/samples/ (10)",
                [py, "-m", "client", "predict", str(SAMPLES), "--server", target],
            ),
        ]
        if args.compare_tf:
            rows.append(
                (
                    "import tensorflow_serving predict_pb2",
                    [py, "-c", "from tensorflow_serving.apis import predict_pb2"],
                ),
            )
        print(f"{args.runs} runs each, {os.cpu_count()} CPUs; seconds from spawn to exit")
        print(f"{'command':<46} {'min':>6} {'median':>7} {'max':>6}")
        for name, command in rows:
            times = timed(command, args.runs, env)
            print(
                f"{name:<46} {min(times):>6.3f} {statistics.median(times):>7.3f} {max(times):>6.3f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
