"""The version-directory rule: which children of a base path are model versions.

One definition for the server's file-system poll, training's export (choosing the next
version), the compatibility gate and the tools, so they never disagree about what a
version is. Standard library only: training, the load test and the benchmarks import it
without TensorFlow.

TF Serving (FileSystemStoragePathSource) takes a child as a version when its name
parses as an int64: leading zeros are allowed ("007" is version 7) and a name too large
for int64 is skipped. Only ASCII digits count: `str.isdigit()` is also true of '²' or
'٣', which `int()` then refuses or reads as another number, and one such directory must
not stop a server or an export. TF Serving's parser (absl::SimpleAtoi) would also take
a sign or surrounding spaces ("+3", " 3"); no exporter writes those, and here they are
not versions.
"""

from __future__ import annotations

import re
from pathlib import Path

_VERSION_NAME = re.compile(r"[0-9]+")
_INT64_MAX = 2**63 - 1


def parse_version(name: str) -> int | None:
    """The version number a directory name stands for, or None when it is not one."""
    if not _VERSION_NAME.fullmatch(name):
        return None
    number = int(name)
    return number if number <= _INT64_MAX else None


def version_dirs(base: str | Path) -> dict[int, Path]:
    """The version directories directly under `base`, by number.

    Raises OSError when `base` cannot be listed. When two names stand for one number
    ("1" and "01"), the name sorting last wins, as in TF Serving.
    """
    found: dict[int, Path] = {}
    for path in sorted(Path(base).iterdir()):
        number = parse_version(path.name)
        if number is not None and path.is_dir():
            found[number] = path
    return found
