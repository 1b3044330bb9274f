"""The check that committed generated protobuf code is what `make protos` makes today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def assert_generated_code_current(proto: Path, out: Path) -> None:
    """Run protoc on `proto` (a path under ROOT) into `out` and compare its _pb2.py and
    _pb2.pyi with the committed ones beside the .proto."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            str(ROOT),
            f"--python_out={out}",
            f"--pyi_out={out}",
            str(proto),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    relative = proto.parent.relative_to(ROOT)
    for suffix in ("_pb2.py", "_pb2.pyi"):
        name = proto.stem + suffix
        fresh = (out / relative / name).read_text()
        committed = (proto.parent / name).read_text()
        assert fresh == committed, f"{relative / name} is stale: run `make protos`"
