"""The peer's own cached virtual environment: created once, reused, re-created on a pin change.

MLServer pins its own grpcio, protobuf, FastAPI and uvicorn ranges, which need not agree
with this project's, so it gets a venv of its own (made with the project's Python, so
both servers run the same interpreter) under .cache/peers/<name>/. The protocol is the
one training/compat.py uses for the TF Serving gate's environments: a lock so that
concurrent callers wait for one creator, and a marker written last so that an
interrupted install starts over. The marker here also records the pins: when they
change, the environment is deleted and made again.
"""

from __future__ import annotations

import fcntl
import itertools
import json
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "peers"
COMPLETE = ".complete"  # written last, holds the requirements it was made with
INSTALL_TIMEOUT = 1800  # seconds: the TensorFlow wheel alone is ~600 MB

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def project_pin(name: str) -> str:
    """`name==X.Y.Z` as pyproject.toml pins it, so the peer runs the very same release."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = itertools.chain(project["dependencies"], *project["optional-dependencies"].values())
    for pin in pins:
        if pin.partition("==")[0].strip() == name:
            return pin
    raise LookupError(f"pyproject.toml pins no {name}")


def installed_with(env_dir: Path) -> dict | None:
    """The marker's record, or None for a missing or half-made environment."""
    try:
        return json.loads((env_dir / COMPLETE).read_text())
    except (OSError, ValueError):
        return None


def environment(name: str, requirements: list[str], *, log: Log = _stderr) -> Path:
    """The Python of .cache/peers/`name` with exactly `requirements`, created if needed."""
    env_dir = CACHE / name
    python = env_dir / "bin" / "python"
    if (record := installed_with(env_dir)) and record["requirements"] == requirements:
        return python
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (record := installed_with(env_dir)) and record["requirements"] == requirements:
            return python
        if env_dir.exists():
            shutil.rmtree(env_dir)
        log(f"peers: creating {env_dir} with {' '.join(requirements)} (once: a few minutes)")
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "venv", str(env_dir)], check=True)
        pip = [str(python), "-m", "pip", "--disable-pip-version-check"]
        subprocess.run(
            [*pip, "install", "--quiet", "--no-input", *requirements],
            check=True,
            timeout=INSTALL_TIMEOUT,
        )
        frozen = subprocess.run([*pip, "freeze"], check=True, capture_output=True, text=True)
        seconds = round(time.monotonic() - started, 1)
        (env_dir / COMPLETE).write_text(
            json.dumps(
                {
                    "requirements": requirements,
                    "seconds": seconds,
                    "installed": frozen.stdout.split(),
                },
                indent=2,
            )
        )
        log(f"peers: {env_dir} ready in {seconds:.0f} s")
    return python
