"""`python -m client`: classify digit images on a TF Serving server from the shell.

    python -m client predict digit.png photos/ [--json] [--top-k 3] [--show sheet.png]
                                               [--min-confidence 0.9]
    python -m client metadata
    python -m client status [--wait 60]

Answers the model is unsure of (confidence under 90%, or under --min-confidence) are
flagged: "[uncertain]" after the answer, "uncertain": true in JSON.

Exit status: 0 when everything worked, 1 when any file or the server failed, 2 for a
usage error, 3 when --min-confidence was given and some answer fell below it (and
nothing failed). The server is --server, else $MNIST_SERVER, else localhost:8500.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from client._results import MIN_CONFIDENCE  # plain dataclasses: cheap to import

if TYPE_CHECKING:  # imported lazily: `--help` and usage errors should not wait for gRPC
    import numpy as np
    from PIL import Image

    from client._results import Prediction
    from client._sync import Client

SERVER_ENV = "MNIST_SERVER"
DEFAULT_SERVER = "localhost:8500"
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
SHEET_LIMIT = 200  # entries on a contact sheet; beyond that it is too large to look at
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNCERTAIN = 0, 1, 2, 3
UNCERTAIN = "[uncertain]"  # after an answer under the confidence threshold, in text output
# Characters a terminal acts on instead of showing: controls (C0, DEL, C1: escape
# sequences clear the screen, retitle the window, fake lines), invisible formatting
# (bidirectional overrides reorder what is shown), line and paragraph separators, and
# lone surrogates (the undecodable bytes of a file name, which print() cannot encode).
HIDDEN = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


@dataclass
class Item:
    """One input file and what became of it."""

    name: str
    path: Path | None  # None for stdin or an entry that is only an error
    error: str | None = None
    original: Image.Image | None = None  # a thumbnail, kept only for --show
    model_input: np.ndarray | None = None
    prediction: Prediction | None = None


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_usage(sys.stderr)
        print(
            f"{parser.prog}: error: choose a command: predict, metadata or status", file=sys.stderr
        )
        return EXIT_USAGE
    from client.errors import ClientError

    try:
        client = _client(args)
    except ClientError as exc:  # a bad address or TLS file; any other error is a bug
        say(f"{parser.prog}: error: {exc}", sys.stderr)
        return EXIT_USAGE
    with client:
        try:
            return args.run(client, args)
        except ClientError as exc:  # the server failed or cannot be reached: one line
            say(f"error: {exc}", sys.stderr)
            return EXIT_FAILED
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except BrokenPipeError:  # `... | head`: the reader left; stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_FAILED


def printable(text: str) -> str:
    """`text` with every character in HIDDEN written as its escape (\\x1b, \\u202e).

    What is printed comes partly from elsewhere: the server's error details and status
    messages, file names in a directory. Raw, they could act on the user's terminal.
    """
    if text.isprintable():  # every HIDDEN category is unprintable: the common case
        return text
    return "".join(
        c.encode("unicode_escape").decode("ascii") if unicodedata.category(c) in HIDDEN else c
        for c in text
    )


def say(text: str, stream: TextIO | None = None) -> None:
    """Print one line, escaped (see printable), on stdout or `stream`."""
    print(printable(text), file=stream or sys.stdout, flush=True)


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
    predict.set_defaults(run=run_predict)

    metadata = commands.add_parser("metadata", parents=[common], help="print the signatures")
    metadata.set_defaults(run=run_metadata)
    status = commands.add_parser("status", parents=[common], help="print the versions")
    status.add_argument(
        "--wait",
        type=_positive_float,
        metavar="S",
        help="first wait up to S seconds for the model to be AVAILABLE (for scripts)",
    )
    status.set_defaults(run=run_status)
    return parser


def run_predict(client: Client, args: argparse.Namespace) -> int:
    """Classify the files `--batch-size` at a time, printing each batch's lines as soon
    as it is answered (with a progress bar on a terminal).

    Not one predict_many over everything: that would print nothing until the end, and
    its first unusable file would stop the run, where each file here fails on its own
    line. Each batch goes out as one predict_tensor of the digits already prepared, so
    nothing is preprocessed twice.
    """
    import numpy as np

    threshold = MIN_CONFIDENCE if args.min_confidence is None else args.min_confidence
    items = list(expand(args.paths))
    progress = Progress(len(items), sys.stderr) if len(items) > args.batch_size else None
    failed = uncertain = False
    for start in range(0, len(items), args.batch_size):
        batch = items[start : start + args.batch_size]
        # What the contact sheet will show is kept, as thumbnails (a decoded photo is
        # megabytes); everything else is let go once its line is printed.
        shown = [args.show is not None and start + i < SHEET_LIMIT for i in range(len(batch))]
        ready = [item for item, keep in zip(batch, shown, strict=True) if _prepare(item, keep)]
        if ready:
            digits = np.stack([item.model_input for item in ready])
            predictions = client.predict_tensor(digits, batch_size=len(ready))
            for item, prediction in zip(ready, predictions, strict=True):
                item.prediction = prediction
        for item, keep in zip(batch, shown, strict=True):
            failed |= item.error is not None
            uncertain |= item.prediction is not None and item.prediction.is_uncertain(threshold)
            if progress:
                progress.clear()
            say(format_item(item, args.json, args.top_k, threshold))
            if not keep:
                item.model_input = None
        if progress:
            progress.update(start + len(batch))
    if progress:
        progress.clear()
    if args.show:
        _write_sheet(items, args.show, threshold)
    if failed:
        return EXIT_FAILED
    return EXIT_UNCERTAIN if uncertain and args.min_confidence is not None else EXIT_OK


def _prepare(item: Item, keep: bool) -> bool:
    """Decode `item` once into its 28x28 (and, if `keep`, a thumbnail of the picture for
    the contact sheet); whether it can be sent. A file that fails records its error."""
    from client import _sheet as sheet
    from client.errors import ImageError
    from client.preprocess import prepare

    if item.error is not None:
        return False
    try:
        source = item.path if item.path is not None else sys.stdin.buffer
        prepared = prepare(source, name=item.name)
        item.model_input = prepared.digit
        if keep and prepared.picture is not None:
            item.original = sheet.thumbnail(prepared.picture)
    except ImageError as exc:
        item.error = str(exc)
        return False
    except Exception as exc:  # a bug, but one file must not sink the others
        item.error = f"{item.name}: unexpected {type(exc).__name__}: {exc}"
        return False
    return True


def expand(paths: Sequence[str]) -> Iterator[Item]:
    """Files as given; directories as their image files, sorted; "-" as stdin.

    Every entry named like an image is kept, whatever it is: one that is no readable
    file (a dangling link, a link loop, a FIFO) then fails like any other file, named,
    and the exit status says so, rather than being left out without a word.
    """
    for text in paths:
        if text == "-":
            yield Item("<stdin>", None)
            continue
        path = Path(text)
        if path.is_dir():
            try:
                entries = list(path.iterdir())
            except OSError as exc:
                why = exc.strerror or str(exc)
                yield Item(text, None, error=f"{text}: cannot list this directory: {why}")
                continue
            files = sorted(p for p in entries if p.suffix.lower() in IMAGE_SUFFIXES)
            if not files:
                yield Item(text, None, error=f"{text}: no image files in this directory")
            for file in files:
                yield Item(str(file), file)
        else:
            yield Item(text, path)  # a missing file fails later, with the others running


def format_item(
    item: Item, as_json: bool, top_k: int, min_confidence: float = MIN_CONFIDENCE
) -> str:
    p = item.prediction
    if as_json:
        if p is None:
            return json.dumps({"file": item.name, "error": item.error})
        record = {
            "file": item.name,
            "digit": p.digit,
            "confidence": round(p.confidence, 6),
            "uncertain": p.is_uncertain(min_confidence),
            "probabilities": [round(v, 6) for v in p.probabilities],
            "model": p.model,
            "version": p.version,
        }
        if top_k > 1:
            record["top"] = [[digit, round(prob, 6)] for digit, prob in p.top(top_k)]
        return json.dumps(record)
    if p is None:
        return f"{item.name}: error: {item.error}"
    answer = ", ".join(f"{d} ({prob:.1%})" for d, prob in p.top(top_k))
    flag = f" {UNCERTAIN}" if p.is_uncertain(min_confidence) else ""
    return f"{item.name}: {answer}{flag}"


def run_metadata(client: Client, args: argparse.Namespace) -> int:
    meta = client.metadata(timeout=args.timeout)
    if args.json:
        say(json.dumps(_jsonable(meta)))
        return EXIT_OK
    say(f"model {meta.model} version {meta.version}")
    for key, signature in meta.signatures.items():
        say(f"signature {key} ({signature.method_name})")
        for kind, specs in (("input", signature.inputs), ("output", signature.outputs)):
            for alias, spec in specs.items():
                say(f"  {kind:<6} {alias}: {spec.dtype} {_shape(spec.shape)}")
    return EXIT_OK


def run_status(client: Client, args: argparse.Namespace) -> int:
    if args.wait:
        client.wait_until_ready(args.wait)
    status = client.status(timeout=args.timeout)
    if args.json:
        say(json.dumps(_jsonable(status)))
        return EXIT_OK
    for v in status.versions:
        problem = f" ({v.error_code}: {v.error_message})" if v.error_code != "OK" else ""
        say(f"{status.model} version {v.version}: {v.state}{problem}")
    if not status.versions:
        say(f"{status.model}: no versions")
    return EXIT_OK


class Progress:
    """A one-line progress bar on stderr, drawn only when stderr is a terminal."""

    WIDTH = 30

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = total
        self.stream = stream
        self.enabled = stream.isatty()

    def update(self, done: int) -> None:
        if self.enabled:
            filled = self.WIDTH * done // max(1, self.total)
            bar = "#" * filled + "." * (self.WIDTH - filled)
            self.stream.write(f"\r[{bar}] {done}/{self.total}")
            self.stream.flush()

    def clear(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * (self.WIDTH + 30) + "\r")
            self.stream.flush()


def _client(args: argparse.Namespace) -> Client:
    from client._channel import TLSConfig
    from client._sync import Client

    tls = None
    if args.tls_ca or args.tls_cert or args.tls_key:
        tls = TLSConfig(ca=args.tls_ca, cert=args.tls_cert, key=args.tls_key)
    return Client(
        args.server,
        args.model,
        version=args.version,
        version_label=args.label,
        timeout=args.timeout,
        tls=tls,
    )


def _write_sheet(items: list[Item], path: Path, min_confidence: float) -> None:
    from client import _sheet as sheet

    shown = items[:SHEET_LIMIT]
    entries = [
        sheet.Entry(
            label=Path(item.name).name,
            original=item.original,
            model_input=item.model_input,
            title=(
                f"{item.prediction.digit} ({item.prediction.confidence:.1%})"
                + ("?" if item.prediction.is_uncertain(min_confidence) else "")
                if item.prediction
                else "error"
            ),
            ok=item.prediction is not None and not item.prediction.is_uncertain(min_confidence),
        )
        for item in shown
    ]
    try:
        sheet.save(entries, path)
    except (OSError, ValueError) as exc:
        say(f"error: cannot write contact sheet {path}: {exc}", sys.stderr)
        return
    more = f" (first {SHEET_LIMIT} of {len(items)})" if len(items) > SHEET_LIMIT else ""
    say(f"contact sheet: {path}{more}", sys.stderr)


def _jsonable(value: object) -> object:
    from dataclasses import asdict, is_dataclass

    return asdict(value) if is_dataclass(value) and not isinstance(value, type) else value


def _shape(shape: tuple[int | None, ...] | None) -> str:
    if shape is None:
        return "(unknown rank)"
    return "(" + ", ".join("-1" if d is None else str(d) for d in shape) + ")"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def _probability(text: str) -> float:
    """0.9, or 90%: a confidence threshold in (0, 1]."""
    try:
        value = float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        message = f"expected a probability such as 0.9 or 90%, got {text!r}"
        raise argparse.ArgumentTypeError(message) from None
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"expected a probability in (0, 1], got {text!r}")
    return value


def _top_k(text: str) -> int:
    value = _positive_int(text)
    if value > 10:
        raise argparse.ArgumentTypeError(f"there are 10 digits; --top-k must be 1..10, got {value}")
    return value
