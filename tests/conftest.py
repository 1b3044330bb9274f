"""Shared fixtures: one quick model per test session, never the full recipe."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from testkit.launch import ROOT, RunningServer, free_port, python_env, running_server

__all__ = ["ROOT", "RunningServer", "free_port", "python_env", "running_server"]

# About 96% test accuracy in under a minute on 2 CPU cores: enough to tell digits apart.
# (15,000 images: with the recipe's augmentation 10,000 gave only 93%, close to the 90%
# that the REST and load tests require of the quick model.)
QUICK_TRAINING = ["--limit", "15000", "--epochs", "2"]

# Exports made by tests skip the TF Serving compatibility gate, which needs a second
# TensorFlow (training.compat): only the tests marked `serving_compat` run it, so that
# `pytest -m "not serving_compat"` never creates that environment.
os.environ.setdefault("SERVING_COMPAT", "off")


@dataclass(frozen=True)
class QuickModel:
    base_path: Path  # holds version 1 only; copy it before changing anything
    stdout: str  # what `python -m training` printed


@pytest.fixture(scope="session")
def quick_model(tmp_path_factory: pytest.TempPathFactory) -> QuickModel:
    base = tmp_path_factory.mktemp("quick") / "mnist"
    result = subprocess.run(
        [sys.executable, "-m", "training", *QUICK_TRAINING, "--export-dir", str(base)],
        cwd=ROOT,
        env=python_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"quick training failed:\n{result.stdout}\n{result.stderr}"
    return QuickModel(base_path=base, stdout=result.stdout)


@pytest.fixture(scope="session")
def server(
    quick_model: QuickModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """A local server with version 1 of the quick model as `mnist`, for the whole session.

    Tests must not change its base path; tests that need to, start their own server.
    """
    base = tmp_path_factory.mktemp("served") / "mnist"
    shutil.copytree(quick_model.base_path, base)
    with running_server(
        [
            "--model_name=mnist",
            f"--model_base_path={base}",
            "--enable_grpc_healthcheck_service",
            # The client's tests send up to 3,000 images in one Predict (over the
            # default 1,024 rows) to check the message size limits of both ends.
            "--max_request_rows=4096",
        ],
        base_path=base,
    ) as running:
        yield running
