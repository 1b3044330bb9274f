"""make bench-peers' own logic, without installing MLServer (that takes minutes and 2 GB)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from benchmarks.peers import __main__ as peers
from benchmarks.peers import environment
from training import compat

ROOT = Path(__file__).resolve().parents[2]


def test_the_peer_runs_the_projects_tensorflow():
    pins = peers.requirements()
    assert environment.project_pin("tensorflow") in pins
    assert not any(p.startswith("tensorflow-cpu") for p in pins)
    assert any(re.fullmatch(r"mlserver==1\.7\.\d+", p) for p in pins)


def test_batching_matches_the_cpu_config():
    """max_batch_size is the config's execution batch; the no-wait configurations wait
    less than a millisecond, as batch_timeout_micros 0 never waits."""
    config = (ROOT / "serving" / "batching_cpu.config").read_text()
    execution = int(re.search(r"max_execution_batch_size\s*\{\s*value:\s*(\d+)", config)[1])
    timeout = int(re.search(r"batch_timeout_micros\s*\{\s*value:\s*(\d+)", config)[1])
    settings = peers.model_settings(Path("/m/1"), peers.VARIANTS["defaults"].max_batch_time)
    assert settings["max_batch_size"] == execution
    assert timeout == 0 and 0 < settings["max_batch_time"] < 1e-3
    assert peers.VARIANTS["defaults"].settings == {}  # MLServer's own defaults


def row(concurrency: int, rps: float, p99: float) -> dict:
    return {
        "concurrency": concurrency,
        "rps": rps,
        "p50_ms": p99 / 2,
        "p99_ms": p99,
        "errors": {},
        "server_cpu_percent": 100.0,
        "loadgen_cpu_percent": 20.0,
        "rss_mb": 700.0,
        "pss_mb": 400.0,
    }


def test_ratio_and_verdict_at_concurrency_64():
    ours = [row(1, 400, 5), row(64, 1000, 100)]
    mlserver = {
        "defaults": {"about": "a", "rows": [row(1, 100, 20), row(64, 400, 150)]},
        "lean+wait": {"about": "b", "rows": [row(1, 150, 10), row(64, 700, 90)]},
    }
    compared = peers.ratios(ours, mlserver)
    assert compared["defaults"]["rps_ratio"] == pytest.approx(2.5)
    assert compared["defaults"]["target_met"]
    assert not compared["lean+wait"]["target_met"]  # 1.43x, and a higher p99
    text = peers.table(ours, mlserver, compared)
    assert "(defaults) at concurrency 64: 2.50x" in text and "not met" in text


def test_a_ready_environment_is_reused_and_a_pin_change_is_not(tmp_path, monkeypatch):
    monkeypatch.setattr(environment, "CACHE", tmp_path)
    made = tmp_path / "peer"
    made.mkdir()
    (made / compat.COMPLETE).write_text(json.dumps({"requirements": ["a==1"]}))
    assert environment.environment("peer", ["a==1"]) == made / "bin" / "python"
    calls = []

    def first_step_only(argv, **kwargs):
        calls.append(argv)
        raise RuntimeError("stop before installing")

    monkeypatch.setattr(subprocess, "run", first_step_only)
    with pytest.raises(RuntimeError, match="stop before installing"):
        environment.environment("peer", ["a==2"])
    assert calls[0][1:3] == ["-m", "venv"] and not made.exists()  # it starts over
