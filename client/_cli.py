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

from client._cli_args import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNCERTAIN,
    EXIT_USAGE,
    build_parser,
)
from client._results import MIN_CONFIDENCE  # plain dataclasses: cheap to import

if TYPE_CHECKING:  # imported lazily: `--help` and usage errors should not wait for gRPC
    import numpy as np
    from PIL import Image

    from client._results import ImageResult, Prediction
    from client._sync import Client

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
SHEET_LIMIT = 200  # entries on a contact sheet; beyond that it is too large to look at
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
            return COMMANDS[args.command](client, args)
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


def run_predict(client: Client, args: argparse.Namespace) -> int:
    """Classify the files through the SDK's predict_batches, `--batch-size` at a time,
    printing each batch's lines as soon as it is answered (with a progress bar on a
    terminal). A file that cannot be read fails on its own line and the others still
    run; an entry that is only an error (a directory that cannot be listed) is printed
    in its place among the files.
    """
    threshold = MIN_CONFIDENCE if args.min_confidence is None else args.min_confidence
    items = list(expand(args.paths))
    readable = [position for position, item in enumerate(items) if item.error is None]
    progress = Progress(len(items), sys.stderr) if len(items) > args.batch_size else None
    lines = Lines(items, args.json, args.top_k, threshold, progress)

    def kept(index: int) -> bool:  # what the contact sheet shows stays, as thumbnails
        return args.show is not None and readable[index] < SHEET_LIMIT

    def thumbnail(index: int, picture: Image.Image) -> Image.Image | None:
        from client import _sheet as sheet

        return sheet.thumbnail(picture) if kept(index) else None

    batches = client.predict_batches(
        (_source(items[position]) for position in readable),
        batch_size=args.batch_size,
        names=[items[position].name for position in readable],
        keep_picture=thumbnail if args.show is not None else None,
    )
    for batch in batches:
        for result in batch:
            item = items[readable[result.index]]
            item.prediction = result.prediction
            item.error = _error_text(result)
            if kept(result.index):  # everything else is let go once its line is printed
                item.model_input, item.original = result.digit, result.picture
        lines.print_up_to(readable[batch[-1].index] + 1)
    lines.print_up_to(len(items))
    if progress:
        progress.clear()
    if args.show:
        _write_sheet(items, args.show, threshold)
    if lines.failed:
        return EXIT_FAILED
    return EXIT_UNCERTAIN if lines.uncertain and args.min_confidence is not None else EXIT_OK


def _source(item: Item) -> object:
    return item.path if item.path is not None else sys.stdin.buffer


def _error_text(result: ImageResult) -> str | None:
    from client.errors import ImageError

    if result.error is None:
        return None
    if isinstance(result.error, ImageError):
        return str(result.error)
    # A fault in the client, not in the file; reported like one so the others still run.
    return f"{result.name}: unexpected {type(result.error).__name__}: {result.error}"


class Lines:
    """The output lines, in input order, printed as far as the answers have come; and
    what the exit status is made of."""

    def __init__(
        self,
        items: list[Item],
        as_json: bool,
        top_k: int,
        threshold: float,
        progress: Progress | None,
    ) -> None:
        self.items = items
        self.as_json = as_json
        self.top_k = top_k
        self.threshold = threshold
        self.progress = progress
        self.printed = 0
        self.failed = False
        self.uncertain = False

    def print_up_to(self, stop: int) -> None:
        """Print the items before `stop` not printed yet; each one must be settled."""
        for item in self.items[self.printed : stop]:
            self.failed |= item.error is not None
            self.uncertain |= item.prediction is not None and item.prediction.is_uncertain(
                self.threshold
            )
            if self.progress:
                self.progress.clear()
            say(format_item(item, self.as_json, self.top_k, self.threshold))
        self.printed = max(self.printed, stop)
        if self.progress:
            self.progress.update(self.printed)


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


COMMANDS = {"predict": run_predict, "metadata": run_metadata, "status": run_status}


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
