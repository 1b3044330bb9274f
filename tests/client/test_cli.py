"""The CLI without a server: usage errors, an unreachable server, output formats, files."""

from __future__ import annotations

import io
import json
import os
import socket

import pytest

from client import _cli as cli
from client import _cli_args as cli_args
from client._results import Prediction
from tests.client.fake_server import Script, fake_server


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["predict"],
        ["predict", "a.png", "--version", "1", "--label", "stable"],
        ["predict", "a.png", "--version", "0"],
        ["predict", "a.png", "--timeout", "-1"],
        ["predict", "a.png", "--batch-size", "x"],
        ["predict", "a.png", "--top-k", "11"],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as caught:
        code = cli.main(argv)
        raise SystemExit(code)
    assert caught.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_bad_server_address_is_a_usage_error(capsys):
    assert cli.main(["status", "--server", "localhost:notaport"]) == 2
    assert "bad port" in capsys.readouterr().err


def test_unreachable_server_is_one_line_and_exit_1(tmp_path, capsys):
    image = tmp_path / "digit.png"
    from tests.client.test_preprocess import digit, encode, page

    image.write_bytes(encode(page(digit(0))))
    code = cli.main(["predict", str(image), "--server", f"127.0.0.1:{closed_port()}"])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: Predict mnist on 127.0.0.1:")
    assert "UNAVAILABLE" in lines[0] and "Traceback" not in err


def test_status_can_wait_for_the_model(capsys):
    with fake_server(Script(loading_polls=2)) as (target, script):
        assert cli.main(["status", "--server", target, "--wait", "30"]) == 0
    assert capsys.readouterr().out == "mnist version 1: AVAILABLE\n"
    assert script.calls["GetModelStatus"] == 4  # two LOADING, the ready one, the printed one
    with fake_server(Script(loading_polls=10_000)) as (target, _):
        assert cli.main(["status", "--server", target, "--wait", "0.3"]) == 1
    assert "not ready after 0.3 s" in capsys.readouterr().err


def test_server_defaults_to_the_environment_variable(monkeypatch):
    monkeypatch.setenv(cli_args.SERVER_ENV, "models.example:9000")
    args = cli.build_parser().parse_args(["status"])
    assert args.server == "models.example:9000"
    monkeypatch.delenv(cli_args.SERVER_ENV)
    assert cli.build_parser().parse_args(["status"]).server == "localhost:8500"


def test_directories_expand_to_sorted_image_files(tmp_path):
    (tmp_path / "b.png").write_bytes(b"x")
    (tmp_path / "a.JPG").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "empty").mkdir()
    items = list(cli.expand([str(tmp_path), "-", str(tmp_path / "empty"), "missing.png"]))
    assert [i.name for i in items] == [
        str(tmp_path / "a.JPG"),
        str(tmp_path / "b.png"),
        "<stdin>",
        str(tmp_path / "empty"),
        "missing.png",
    ]
    assert items[3].error and "no image files" in items[3].error


PREDICTION = Prediction(7, 0.998, (0.0,) * 7 + (0.998, 0.0015, 0.0005), "mnist", 3)


def test_plain_and_json_lines():
    ok = cli.Item("img.png", None, prediction=PREDICTION)
    bad = cli.Item("bad.png", None, error="bad.png: not an image")
    assert cli.format_item(ok, False, 1) == "img.png: 7 (99.8%)"
    assert cli.format_item(ok, False, 3) == "img.png: 7 (99.8%), 8 (0.1%), 9 (0.1%)"
    assert cli.format_item(bad, False, 1) == "bad.png: error: bad.png: not an image"
    record = json.loads(cli.format_item(ok, True, 1))
    assert set(record) == {
        "file",
        "digit",
        "confidence",
        "uncertain",
        "probabilities",
        "model",
        "version",
    }
    assert record["digit"] == 7 and record["version"] == 3 and len(record["probabilities"]) == 10
    assert record["uncertain"] is False
    assert json.loads(cli.format_item(ok, True, 2))["top"] == [[7, 0.998], [8, 0.0015]]
    assert json.loads(cli.format_item(bad, True, 1)) == {
        "file": "bad.png",
        "error": "bad.png: not an image",
    }


UNSURE = Prediction(1, 0.55, (0.0, 0.55, 0.0, 0.0, 0.0, 0.0, 0.0, 0.45, 0.0, 0.0), "mnist", 3)


def test_uncertain_answers_are_flagged():
    unsure = cli.Item("scribble.png", None, prediction=UNSURE)
    assert UNSURE.is_uncertain() and not PREDICTION.is_uncertain()
    assert UNSURE.is_uncertain(0.6) and not UNSURE.is_uncertain(0.5)
    assert cli.format_item(unsure, False, 1) == "scribble.png: 1 (55.0%) [uncertain]"
    assert cli.format_item(unsure, False, 2) == "scribble.png: 1 (55.0%), 7 (45.0%) [uncertain]"
    assert cli.format_item(unsure, False, 1, 0.5) == "scribble.png: 1 (55.0%)"
    assert json.loads(cli.format_item(unsure, True, 1))["uncertain"] is True
    assert json.loads(cli.format_item(unsure, True, 1, 0.5))["uncertain"] is False


@pytest.mark.parametrize(
    ("flag", "code", "uncertain"),
    [
        ([], 0, False),
        (["--min-confidence", "0.9"], 0, False),
        (["--min-confidence", "95%"], 3, True),
    ],
)
def test_min_confidence_sets_the_threshold_and_the_exit_status(
    flag, code, uncertain, tmp_path, capsys
):
    """The fake model answers with 91% confidence: under a 95% bar, the exit status is 3."""
    from tests.client.test_preprocess import digit, encode, page

    image = tmp_path / "digit.png"
    image.write_bytes(encode(page(digit(0))))
    with fake_server(Script()) as (target, _):
        assert cli.main(["predict", str(image), "--server", target, "--json", *flag]) == code
    assert json.loads(capsys.readouterr().out)["uncertain"] is uncertain


def test_a_failure_outranks_an_uncertain_answer(tmp_path, capsys):
    from tests.client.test_preprocess import digit, encode, page

    (tmp_path / "digit.png").write_bytes(encode(page(digit(0))))
    (tmp_path / "bad.png").write_text("not a picture")
    with fake_server(Script()) as (target, _):
        argv = ["predict", str(tmp_path), "--server", target, "--min-confidence", "0.99"]
        assert cli.main(argv) == cli.EXIT_FAILED
    out = capsys.readouterr().out
    assert "error" in out and "[uncertain]" in out


@pytest.mark.parametrize("text", ["0", "1.5", "-0.2", "abc", "150%"])
def test_min_confidence_must_be_a_probability(text, capsys):
    with pytest.raises(SystemExit) as caught:
        cli.build_parser().parse_args(["predict", "a.png", "--min-confidence", text])
    assert caught.value.code == 2
    assert "--min-confidence" in capsys.readouterr().err


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal():
    piped = io.StringIO()
    bar = cli.Progress(100, piped)
    bar.update(50)
    bar.clear()
    assert piped.getvalue() == ""
    tty = Terminal()
    bar = cli.Progress(100, tty)
    bar.update(50)
    assert "50/100" in tty.getvalue() and "#" * 15 in tty.getvalue()


def test_stdin_is_read_only_up_to_the_limit(monkeypatch, capsys):
    """`predict - < /dev/zero` must not take all the memory there is."""
    from client import _images

    monkeypatch.setattr(_images, "MAX_FILE_BYTES", 1000, raising=False)
    stdin = io.TextIOWrapper(io.BytesIO(bytes(5000)))
    monkeypatch.setattr("sys.stdin", stdin)
    with fake_server(Script()) as (target, _):
        assert cli.main(["predict", "-", "--server", target]) == cli.EXIT_FAILED
    assert "<stdin>: error: <stdin>: over 1000 bytes" in capsys.readouterr().out
    assert stdin.buffer.tell() <= 1001


def test_unusable_entries_of_a_directory_are_reported_and_fail(tmp_path, capsys):
    """Image-named entries that are no readable file (a dangling link, a link loop, a
    FIFO) were skipped without a word, and the exit status was 0."""
    from tests.client.test_preprocess import digit, encode, page

    (tmp_path / "good.png").write_bytes(encode(page(digit(0))))
    (tmp_path / "gone.png").symlink_to(tmp_path / "deleted.png")
    (tmp_path / "loop.png").symlink_to(tmp_path / "loop.png")
    os.mkfifo(tmp_path / "pipe.png")
    with fake_server(Script()) as (target, _):
        code = cli.main(["predict", str(tmp_path), "--server", target])
    out = capsys.readouterr().out.splitlines()
    assert code == cli.EXIT_FAILED
    assert [line.split(":")[0] for line in out] == [
        str(tmp_path / name) for name in ("gone.png", "good.png", "loop.png", "pipe.png")
    ]
    assert "no such file (a broken symbolic link)" in out[0]
    assert "error" not in out[1]
    assert "cannot read" in out[2]
    assert "not a regular file" in out[3]


def test_a_directory_that_cannot_be_listed_is_an_error(tmp_path, monkeypatch):
    def denied(self):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cli.Path, "iterdir", denied)
    [item] = cli.expand([str(tmp_path)])
    assert item.error == f"{tmp_path}: cannot list this directory: Permission denied"


def test_show_keeps_thumbnails_and_only_of_what_the_sheet_shows(tmp_path, monkeypatch):
    """--show kept every decoded original (2.9 MB a photo) until the end of the run."""
    from client import _sheet as sheet
    from tests.client.test_preprocess import digit, encode, page

    items = []
    for i in range(3):
        path = tmp_path / f"{i}.png"
        path.write_bytes(encode(page(digit(i), size=(700, 500), at=(200, 150), field=200)))
        items.append(cli.Item(str(path), path))
    monkeypatch.setattr(cli, "expand", lambda paths: iter(items))
    monkeypatch.setattr(cli, "SHEET_LIMIT", 2)
    with fake_server(Script()) as (target, _):
        argv = ["predict", "x", "--server", target, "--show", str(tmp_path / "sheet.png")]
        assert cli.main(argv) == cli.EXIT_OK
    assert (tmp_path / "sheet.png").exists()
    for item in items[:2]:
        assert max(item.original.size) <= sheet.THUMB
        assert item.model_input is not None
    assert items[2].original is None and items[2].model_input is None
    assert items[2].prediction is not None


def test_json_output_stays_json_when_the_server_sends_nan(tmp_path, capsys):
    """NaN probabilities were printed as `NaN`, which no JSON parser accepts."""
    from tests.client.test_preprocess import digit, encode, page

    (tmp_path / "digit.png").write_bytes(encode(page(digit(0))))
    with fake_server(Script(mode="nan")) as (target, _):
        code = cli.main(["predict", str(tmp_path), "--server", target, "--json"])
    out, err = capsys.readouterr()

    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    for line in out.splitlines():
        json.loads(line, parse_constant=refuse)
    assert code == cli.EXIT_FAILED
    assert "are not finite" in err


HOSTILE = "bad\x1b]0;owned\x07\x1b[2J\r\nsecond line\u202etxt.exe\x9b31m"


def test_server_messages_reach_the_terminal_escaped(tmp_path, capsys):
    """A server's error details are printed with their control characters escaped:
    raw, they could clear the screen, retitle the window or fake further lines."""
    import grpc

    from tests.client.test_preprocess import digit, encode, page

    (tmp_path / "digit.png").write_bytes(encode(page(digit(0))))
    script = Script(failures=[grpc.StatusCode.INVALID_ARGUMENT], details=HOSTILE)
    with fake_server(script) as (target, _):
        assert cli.main(["predict", str(tmp_path), "--server", target]) == cli.EXIT_FAILED
    err = capsys.readouterr().err
    assert err.endswith(r"bad\x1b]0;owned\x07\x1b[2J\r\nsecond line\u202etxt.exe\x9b31m" + "\n")
    assert err.count("\n") == 1 and err.isascii()


def test_file_names_and_status_messages_are_escaped_too(tmp_path, capsys):
    missing = tmp_path / "a\x1b[8mhidden.png"
    assert cli.main(["predict", str(missing), "--server", "127.0.0.1:1"]) == cli.EXIT_FAILED
    out = capsys.readouterr().out
    assert "\x1b" not in out and r"a\x1b[8mhidden.png: error:" in out
    assert cli.printable("naïve, 7 (99.8%)") == "naïve, 7 (99.8%)"  # printable text stays
    assert cli.printable("\udcff") == r"\udcff"  # an undecodable byte of a file name


def test_each_file_is_decoded_once_even_for_the_contact_sheet(tmp_path, monkeypatch):
    """The picture for --show and the digit sent came from loading each file twice: the
    second time the decoded picture was turned upright (copied) again."""
    from PIL import Image, ImageOps

    from tests.client.test_preprocess import digit, encode, page

    for i in range(3):
        (tmp_path / f"{i}.png").write_bytes(encode(page(digit(i))))
    opened, turned = [], []
    real_open, real_turn = Image.open, ImageOps.exif_transpose
    monkeypatch.setattr(Image, "open", lambda *a, **k: opened.append(1) or real_open(*a, **k))
    monkeypatch.setattr(ImageOps, "exif_transpose", lambda i: turned.append(1) or real_turn(i))
    with fake_server(Script()) as (target, script):
        argv = ["predict", str(tmp_path), "--server", target, "--show", str(tmp_path / "s.png")]
        assert cli.main(argv) == cli.EXIT_OK
    assert len(opened) == 3 and len(turned) == 3
    assert script.batch_sizes == [3]


def test_a_fault_reading_one_file_is_that_file_s_line(tmp_path, monkeypatch, capsys):
    """A bug met while reading one picture is reported on its line, as an error, and
    the other files still run: the SDK's predict_batches reports it, the CLI words it."""
    from client import _batches
    from tests.client.test_preprocess import digit, encode, page

    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.png").write_bytes(encode(page(digit(0))))
    real_prepare = _batches.prepare

    def prepare(image, *, name):
        if name.endswith("b.png"):
            raise RuntimeError("a bug")
        return real_prepare(image, name=name)

    monkeypatch.setattr(_batches, "prepare", prepare)
    with fake_server(Script()) as (target, script):
        code = cli.main(["predict", str(tmp_path), "--server", target, "--batch-size", "2"])
    out = capsys.readouterr().out.splitlines()
    assert code == cli.EXIT_FAILED
    assert (
        out[1]
        == f"{tmp_path / 'b.png'}: error: {tmp_path / 'b.png'}: unexpected RuntimeError: a bug"
    )
    assert "error" not in out[0] and "error" not in out[2]
    assert script.batch_sizes == [1, 1]


def test_entries_that_are_only_errors_keep_their_place_in_the_output(tmp_path, capsys):
    from tests.client.test_preprocess import digit, encode, page

    (tmp_path / "empty").mkdir()
    (tmp_path / "a.png").write_bytes(encode(page(digit(0))))
    (tmp_path / "b.png").write_bytes(encode(page(digit(1))))
    argv = [str(tmp_path / "empty"), str(tmp_path / "a.png"), str(tmp_path / "empty")]
    with fake_server(Script()) as (target, _):
        code = cli.main(["predict", *argv, str(tmp_path / "b.png"), "--server", target])
    out = capsys.readouterr().out.splitlines()
    assert code == cli.EXIT_FAILED
    assert [line.split(": ")[0] for line in out] == [*argv, str(tmp_path / "b.png")]
    assert [("no image files" in line) for line in out] == [True, False, True, False]
