"""Running `python -m serving` as a subprocess: for tests, benchmarks and `make loadtest`.

It waits until the server logs that it listens (the server listens only once its
models have loaded), and always stops it with SIGTERM, as an orchestrator would.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def python_env() -> dict[str, str]:
    """Environment for subprocesses: the checkout importable, TensorFlow's chatter quiet."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RunningServer:
    target: str  # "127.0.0.1:PORT"
    port: int
    model_name: str
    base_path: Path | None
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"server log never showed {text!r}:\n{self.log()}")


@contextlib.contextmanager
def running_server(
    flags: list[str],
    *,
    model_name: str = "mnist",
    base_path: Path | None = None,
    port: int | None = None,
    ready_timeout: float = 120.0,
) -> Iterator[RunningServer]:
    """`python -m serving` in a subprocess; yields once it listens, SIGTERMs it after."""
    port = port or free_port()
    log_dir = Path(tempfile.mkdtemp(prefix="server-log-"))
    log_path = log_dir / "server.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "serving", f"--port={port}", *flags],
            cwd=ROOT,
            env=python_env(),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = RunningServer(f"127.0.0.1:{port}", port, model_name, base_path, process, log_path)
    try:
        server.wait_for_log("Running gRPC ModelServer", timeout=ready_timeout)
        yield server
    finally:
        if process.poll() is None:
            terminate(process)


def terminate(process: subprocess.Popen, timeout: float = 30.0) -> None:
    """SIGTERM (a server drains and exits), then SIGKILL if it has not within `timeout`."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
