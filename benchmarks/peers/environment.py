"""The peer's own cached virtual environment: created once, reused, re-created on a pin change.

MLServer pins its own grpcio, protobuf, FastAPI and uvicorn ranges, which need not agree
with this project's, so it gets a venv of its own (made with the project's Python, so
both servers run the same interpreter) under .cache/peers/<name>/, through the helper
the TF Serving gate's environments use (training.compat.cached_environment): a lock,
and a marker written last that records the pins, so an interrupted install or a pin
change starts over.
"""

from __future__ import annotations

import itertools
import sys
import tomllib
from pathlib import Path

from training.compat import Log, cached_environment, installed_with

__all__ = ["CACHE", "environment", "installed_with", "project_pin"]

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "peers"


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


def environment(name: str, requirements: list[str], *, log: Log = _stderr) -> Path:
    """The Python of .cache/peers/`name` with exactly `requirements`, created if needed."""
    return cached_environment(
        CACHE / name,
        requirements,
        log=lambda message: log(f"peers: {message}"),
        cost="once: a few minutes",
    )
