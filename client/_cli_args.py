"""What `python -m client` accepts: its commands, options, defaults and exit statuses.

Apart from the commands (client._cli) so that the command line can be read in one
place, and so that `--help` and usage errors need nothing but argparse.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from client._results import MIN_CONFIDENCE  # plain dataclasses: cheap to import

SERVER_ENV = "MNIST_SERVER"
DEFAULT_SERVER = "localhost:8500"
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNCERTAIN = 0, 1, 2, 3

T = TypeVar("T", int, float)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m client",
        description="Classify handwritten digit images with the MNIST model on a "
        "TensorFlow Serving server.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--server",
        default=os.environ.get(SERVER_ENV) or DEFAULT_SERVER,
        metavar="HOST:PORT",
        help=f"server address, several comma-separated, or dns:///name:port "
        f"(default: ${SERVER_ENV}, else {DEFAULT_SERVER})",
    )
    common.add_argument("--model", default="mnist", metavar="NAME", help="default: mnist")
    which = common.add_mutually_exclusive_group()
    which.add_argument("--version", type=_positive_int, metavar="N", help="a model version")
    which.add_argument("--label", metavar="LABEL", help="a version label, e.g. stable")
    common.add_argument(
        "--timeout", type=_positive_float, default=10.0, metavar="S", help="per call, seconds"
    )
    common.add_argument("--json", action="store_true", help="one JSON object per line")
    common.add_argument("--tls-ca", metavar="PEM", help="CA certificate to verify the server (TLS)")
    common.add_argument("--tls-cert", metavar="PEM", help="client certificate, for mutual TLS")
    common.add_argument("--tls-key", metavar="PEM", help="client private key, for mutual TLS")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    predict = commands.add_parser(
        "predict", parents=[common], help="classify image files or directories of them"
    )
    predict.add_argument(
        "paths", nargs="+", metavar="FILE_OR_DIR", help="images, directories of images, or -"
    )
    predict.add_argument(
        "--batch-size", type=_positive_int, default=64, metavar="N", help="images per request"
    )
    predict.add_argument(
        "--top-k", type=_top_k, default=1, metavar="K", help="show the K likeliest digits"
    )
    predict.add_argument(
        "--show", type=Path, metavar="OUT.png", help="write a contact sheet of what the model saw"
    )
    predict.add_argument(
        "--min-confidence",
        type=_probability,
        metavar="P",
        help="flag answers less confident than P (0..1, or a percentage such as 90%%) and "
        f"exit with status {EXIT_UNCERTAIN} if any was (default: flag under "
        f"{MIN_CONFIDENCE * 100:.0f}%%, exit status unaffected)",
    )

    commands.add_parser("metadata", parents=[common], help="print the signatures")
    status = commands.add_parser("status", parents=[common], help="print the versions")
    status.add_argument(
        "--wait",
        type=_positive_float,
        metavar="S",
        help="first wait up to S seconds for the model to be AVAILABLE (for scripts)",
    )
    return parser


def _parsed(
    text: str, convert: Callable[[str], T], valid: Callable[[T], bool], kind: str, bounds: str
) -> T:
    """`text` converted, or argparse's error: "expected <kind>" when it is not one at
    all, "expected <bounds>" when it is out of range."""
    try:
        value = convert(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {kind}, got {text!r}") from None
    if not valid(value):
        raise argparse.ArgumentTypeError(f"expected {bounds}, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    return _parsed(text, int, lambda v: v >= 1, "a positive integer", "a positive integer")


def _positive_float(text: str) -> float:
    return _parsed(
        text,
        float,
        lambda v: 0 < v < math.inf,  # NaN too is refused
        "a number of seconds",
        "a positive number of seconds",
    )


def _probability(text: str) -> float:
    """0.9, or 90%: a confidence threshold in (0, 1]."""
    return _parsed(
        text,
        lambda t: float(t[:-1]) / 100 if t.endswith("%") else float(t),
        lambda v: 0 < v <= 1,
        "a probability such as 0.9 or 90%",
        "a probability in (0, 1]",
    )


def _top_k(text: str) -> int:
    value = _positive_int(text)
    if value > 10:
        raise argparse.ArgumentTypeError(f"there are 10 digits; --top-k must be 1..10, got {value}")
    return value
