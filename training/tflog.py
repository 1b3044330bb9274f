"""TensorFlow's native start-up log, kept quiet unless it is asked for.

Every process that imports TensorFlow prints a screenful from its C++ runtime before
doing anything: oneDNN and CPU-feature notices, "Could not find cuda drivers", and on
every machine without a GPU "failed call to cuInit: ... CUDA error", at ERROR level
although nothing is wrong. To a user that reads as a failure, and it buries what the
project itself prints.

TensorFlow's own switch is the environment variable TF_CPP_MIN_LOG_LEVEL: 0 shows
everything, 1 hides INFO, 2 also WARNING, 3 also ERROR. This project defaults it to 3
when it is not set, and makes the lines TensorFlow writes while its libraries load,
before it reads the switch, obey it too. Set TF_CPP_MIN_LOG_LEVEL=0 to see TensorFlow's
whole log. Python warnings and errors are never filtered: they show as always.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
from collections.abc import Iterator

LEVEL = "TF_CPP_MIN_LOG_LEVEL"
QUIET = "3"

# What TensorFlow's libraries write while they load, ahead of its log-level switch:
# lines in absl's format, "I0000 00:00:1796275460.224655    8311 port.cc:153] oneDNN
# custom operations are on...", the first letter the severity, and absl's notice that
# logging is not set up yet, which comes with them.
_NATIVE = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ [\w.-]+:\d+\] ")
_NOT_SET_UP = "WARNING: All log messages before absl::InitializeLog() is called"
_SEVERITIES = "IWEF"


def hidden(line: str, level: int) -> bool:
    """Whether TF_CPP_MIN_LOG_LEVEL `level` hides this line of TensorFlow's native log."""
    if line.startswith(_NOT_SET_UP):
        return level >= 1
    native = _NATIVE.match(line)
    return native is not None and _SEVERITIES.index(native.group(1)) < level


@contextlib.contextmanager
def quiet_import() -> Iterator[None]:
    """Import TensorFlow (or Keras) inside this block to keep its start-up quiet.

    Sets TF_CPP_MIN_LOG_LEVEL to 3 unless the user set it. What is written to stderr
    during the block is held back and written out afterwards without the native log
    lines that level hides, so anything else (a Python warning, an error) still shows.
    """
    os.environ.setdefault(LEVEL, QUIET)
    try:
        level = int(os.environ[LEVEL])
    except ValueError:
        level = 0  # TensorFlow reads a value it cannot parse as 0
    if level <= 0:  # the user asked for TensorFlow's whole log
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            lines = held.read().decode(errors="replace").splitlines(keepends=True)
            sys.stderr.write("".join(line for line in lines if not hidden(line, level)))
            sys.stderr.flush()
