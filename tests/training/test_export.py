"""The export's base path as others leave it: odd directory names, and the temporary
directories of exports that were killed or are still running."""

from __future__ import annotations

import fcntl
import os

import numpy as np

from training import export
from training.model import build_model


def test_next_version_ignores_unicode_digit_directories(tmp_path):
    for name in ("1", "²", "٣", "007"):
        (tmp_path / name).mkdir()
    assert export.versions(tmp_path) == [1, 7]
    assert export.next_version(tmp_path) == 8


def test_an_export_removes_what_a_killed_export_left_and_keeps_a_running_ones(tmp_path):
    base = tmp_path / "mnist"
    killed = base / f"{export.TMP_PREFIX}1-killed"
    (killed / "variables").mkdir(parents=True)
    (killed / "saved_model.pb").write_bytes(b"half written")
    running = base / f"{export.TMP_PREFIX}2-running"
    running.mkdir()
    held = os.open(running, os.O_RDONLY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)  # as the export writing it holds it
        images = np.zeros((1, 28, 28, 1), np.float32)
        target = export.export(build_model(), base, 3, warmup_images=images)
    finally:
        os.close(held)
    assert sorted(p.name for p in base.iterdir()) == [running.name, "3"]
    assert (target / "saved_model.pb").is_file()
