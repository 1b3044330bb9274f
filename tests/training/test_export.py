"""The export's base path as others leave it: odd directory names, and the temporary
directories of exports that were killed or are still running."""

from __future__ import annotations

from training import export


def test_next_version_ignores_unicode_digit_directories(tmp_path):
    for name in ("1", "²", "٣", "007"):
        (tmp_path / name).mkdir()
    assert export.versions(tmp_path) == [1, 7]
    assert export.next_version(tmp_path) == 8
