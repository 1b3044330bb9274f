"""TensorFlow's native start-up log stays quiet unless TF_CPP_MIN_LOG_LEVEL asks for it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from training import tflog

STARTUP = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    "I0000 00:00:1796275460.224655    8311 port.cc:153] oneDNN custom operations are on.\n",
    "I0000 00:00:1796275460.225091    8311 cudart_stub.cc:31] Could not find cuda drivers\n",
    "W0000 00:00:1796275460.225091    8311 some_file.cc:12] a native warning\n",
    "E0000 00:00:1796275464.567006    8311 cuda_platform.cc:52] failed call to cuInit\n",
    "/path/to/module.py:3: UserWarning: a Python warning\n",
]


@pytest.mark.parametrize(("level", "kept"), [(0, 6), (1, 3), (2, 2), (3, 1)])
def test_the_level_hides_the_lines_below_it_and_never_python_warnings(level, kept):
    shown = [line for line in STARTUP if not tflog.hidden(line, level)]
    assert len(shown) == kept
    assert shown[-1] == STARTUP[-1]


def test_importing_tensorflow_prints_nothing_but_what_matters():
    """A real import, as `python -m training` does it: no start-up lines, and no cuInit
    error on a machine without a GPU; a Python warning still shows."""
    script = (
        "import warnings\n"
        "from training import tflog\n"
        "with tflog.quiet_import():\n"
        "    import tensorflow as tf\n"
        "    warnings.warn('this one matters')\n"
        "print(float(tf.reduce_sum(tf.ones(3))))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != tflog.LEVEL}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "3.0\n"
    assert "this one matters" in result.stderr
    for chatter in ("I0000", "absl::InitializeLog", "cuInit", "oneDNN", "cuda"):
        assert chatter not in result.stderr, result.stderr
