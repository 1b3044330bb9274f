"""`python -m loadtest` (`make loadtest`): a headless load test with its reports.

Starts the local server on the newest version under models/mnist (unless --host names a
running one), runs locust headless against it, then writes next to --out:

    PREFIX_stats.csv, _stats_history.csv, _failures.csv, _exceptions.csv   locust's CSVs
    PREFIX_correctness.csv   wrong predictions per request name and version
    PREFIX.html              locust's report
    PREFIX.png               throughput, p50/p95/p99 latency and users over time

prints a summary table and stops the server. Options it does not know go to locust
as they are (e.g. --scenario batch, --max-p99-ms 100); the exit code is locust's, so
a crossed threshold fails the command. It trains nothing: with no model, it says how
to get one.

Starting the local server is a development convenience: it uses testkit.launch, the
tests' own helper, which ships with the repository but not with the package, so it is
imported only then, and an installed copy without it says so and asks for --host.
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from loadtest import options, report
from serving.version_dirs import version_dirs

ROOT = Path(__file__).resolve().parent.parent
LOCUSTFILE = "loadtest/locustfile.py"
SHAPES = "loadtest/shapes.py"
BATCHING_CONFIG = ROOT / "serving" / "batching_cpu.config"
# One TensorFlow thread per op: the server shares the machine with locust, and a model
# that takes every core for each batch starves both (benchmarks/serving.py measured
# ~40% fewer requests/s without this on 2 cores; ~25% here with locust as the load).
SERVER_THREADS = ["--tensorflow_intra_op_parallelism=1", "--tensorflow_inter_op_parallelism=1"]


class _Help(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Defaults shown; the epilog (the locustfile's options) kept as formatted."""


def build_parser() -> argparse.ArgumentParser:
    # The locustfile's own options, shown here because locust's --help cannot show them.
    users = argparse.ArgumentParser(add_help=False, usage=argparse.SUPPRESS, formatter_class=_Help)
    options.add_arguments(users)
    parser = argparse.ArgumentParser(
        prog="python -m loadtest",
        description="Headless locust run against the MNIST model, with CSVs, an HTML "
        "report, a plot and a summary. Unknown options are passed to locust, such as "
        "these of loadtest/locustfile.py:",
        epilog=users.format_help(),
        formatter_class=_Help,
    )
    parser.add_argument("-u", "--users", type=int, default=64, help="concurrent users")
    parser.add_argument("-r", "--spawn-rate", type=float, default=64, help="users started/s")
    parser.add_argument("-t", "--duration", default="30s", help="run time: 30s, 2m, 1h30m")
    parser.add_argument(
        "--host", help="a running server's host:port (default: start the local server)"
    )
    parser.add_argument(
        "--model-base-path",
        type=Path,
        default=ROOT / "models" / "mnist",
        help="what the local server serves (its newest numeric version)",
    )
    parser.add_argument(
        "--no-batching", action="store_true", help="local server without server-side batching"
    )
    parser.add_argument(
        "--out", default="reports/loadtest", help="prefix of every file written (a path)"
    )
    parser.add_argument("--processes", type=int, default=0, help="locust worker processes")
    parser.add_argument(
        "--step",
        action="store_true",
        help="step load to find the saturation point (loadtest/shapes.py) instead of "
        "--users/--spawn-rate/--duration",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args, locust_args = build_parser().parse_known_args(argv)
    if args.users < 1 or args.spawn_rate <= 0 or args.processes < 0:
        print("error: --users and --spawn-rate must be positive, --processes >= 0", file=sys.stderr)
        return 2
    prefix = Path(args.out).resolve()  # locust runs in the repository root
    prefix.parent.mkdir(parents=True, exist_ok=True)
    try:
        with server(args) as host:
            command = locust_command(args, host, str(prefix), locust_args)
            print(f"== {shlex.join(command)}", flush=True)
            code = subprocess.run(command, cwd=ROOT, check=False).returncode
    except ServerFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        summary = report.summary(prefix)
        png = report.plot(prefix)
    except (OSError, ValueError, KeyError) as exc:
        print(f"no report: {exc}", file=sys.stderr)
        return code or 1
    print(f"\n{summary}\n")
    print(f"CSV files: {prefix}_*.csv\nHTML report: {prefix}.html\nplot: {png}")
    print("thresholds " + ("met" if code == 0 else f"crossed or run failed (exit code {code})"))
    return code


def locust_command(args: argparse.Namespace, host: str, prefix: str, extra: list[str]) -> list[str]:
    command = [sys.executable, "-m", "locust", "--headless", "--host", host, "--only-summary"]
    if args.step:
        command += ["-f", f"{LOCUSTFILE},{SHAPES}"]
    else:
        command += ["-f", LOCUSTFILE, "-u", str(args.users), "-r", f"{args.spawn_rate:g}"]
        command += ["-t", args.duration]
    command += ["--csv", prefix, "--csv-full-history", "--html", f"{prefix}.html"]
    if args.processes:
        command += ["--processes", str(args.processes)]
    return command + extra


class ServerFailed(Exception):
    """The local server could not be started; the message says what to do."""


@contextlib.contextmanager
def server(args: argparse.Namespace) -> Iterator[str]:
    """The host to load: --host as given, or a local server for the run's duration."""
    if args.host:
        yield args.host
        return
    base = args.model_base_path.resolve()
    versions = sorted(version_dirs(base)) if base.is_dir() else []
    if not versions:
        raise ServerFailed(
            f"no model version under {base}: run `make train` (the full recipe) or "
            f"`python -m training --epochs 1 --export-dir {args.model_base_path}` (a quick one)"
        )
    running_server = _launcher()
    flags = ["--model_name=mnist", f"--model_base_path={base}", *SERVER_THREADS]
    if not args.no_batching:
        flags += ["--enable_batching", f"--batching_parameters_file={BATCHING_CONFIG}"]
    print(f"== serving {base} (version {versions[-1]}) with {' '.join(flags[2:])}")
    try:
        with running_server(flags) as running:
            print(f"== server ready on {running.target}; its log: {running.log_path}", flush=True)
            yield running.target
    except AssertionError as exc:  # running_server's way to say the server never came up
        raise ServerFailed(f"the local server did not start:\n{exc}") from None


def _launcher() -> Callable[..., contextlib.AbstractContextManager]:
    """testkit.launch.running_server (a subprocess, ready once it listens, SIGTERM
    after), or ServerFailed when this copy of the package has no testkit beside it."""
    try:
        from testkit.launch import running_server
    except ModuleNotFoundError as exc:
        if exc.name not in ("testkit", "testkit.launch"):
            raise
        raise ServerFailed(
            "starting a local server needs the repository's testkit/ (a development "
            "helper, not installed with the package): run from a checkout of the "
            "repository, or pass --host host:port of a running server"
        ) from None
    return running_server


if __name__ == "__main__":
    sys.exit(main())
