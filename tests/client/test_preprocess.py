"""The preprocessing, case by case, against MNIST digits whose right answer is known.

Past 400 lines on purpose: one case table per preprocessing step, all against the same
MNIST digits loaded once; the steps are one pipeline and read best in its order.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
import re
import struct
import threading
import zlib
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image, ImageFile

from client import _images, _mnist_form
from client.errors import ImageError
from client.preprocess import BOX, CENTRE, SIZE, load_image, preprocess
from testkit import handwriting, photos
from tests.conftest import ROOT
from training import data


@functools.cache
def mnist() -> data.Mnist:
    return data.load()


def digit(i: int = 0) -> np.ndarray:
    return mnist().x_test[i]


def close_to(out: np.ndarray, reference: np.ndarray) -> float:
    """Mean absolute difference from the MNIST digit, in [0, 1] units, allowing for a
    one-pixel shift (centring by mass rounds to whole pixels, as MNIST's did)."""
    ref = reference.astype(np.float32) / 255
    return min(
        float(np.abs(np.roll(out, (dy, dx), axis=(0, 1)) - ref).mean())
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
    )


def encode(image: Image.Image, fmt: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def page(
    d: np.ndarray,
    *,
    size=(600, 800),
    at=(50, 420),
    field=240,
    ink=(20, 20, 20),
    paper=(245, 242, 236),
) -> Image.Image:
    """Dark ink on paper: the digit's 28x28 field enlarged to `field` pixels at `at`."""
    alpha = np.asarray(Image.fromarray(d).resize((field, field), Image.Resampling.BICUBIC))
    cover = np.zeros(size, np.float32)
    cover[at[0] : at[0] + field, at[1] : at[1] + field] = alpha / 255
    rgb = np.array(paper) * (1 - cover[..., None]) + np.array(ink) * cover[..., None]
    return Image.fromarray(rgb.astype(np.uint8))


# A plain photo of a digit must come back close to the MNIST original: a mean absolute
# difference this small is a little blur or stroke-width change, while two different
# MNIST digits differ by 0.16 typically and by more than 0.08 in 99% of pairs.
CLOSE = 0.06


def test_an_mnist_digit_passes_through_unchanged():
    for i in range(20):
        out = preprocess(digit(i))
        reference = digit(i) / np.float32(255)
        # only the contrast stretch to a full-white peak may differ (digits peaking at 254)
        assert np.abs(out - reference / reference.max()).max() < 1e-6, i


def test_nearly_all_mnist_test_digits_pass_through_unchanged():
    x = mnist().x_test[:2000]
    out = np.stack([preprocess(d) for d in x])
    changed = np.abs(out - x / np.float32(255)).reshape(len(x), -1).max(axis=1) > 1.5 / 255
    # The few that change carry a detached speck far from the digit, which is dropped.
    assert changed.mean() < 0.005


def test_output_is_an_mnist_shaped_digit():
    out = preprocess(encode(page(digit(3))))
    assert out.shape == (SIZE, SIZE) and out.dtype == np.float32
    assert out.min() == 0 and out.max() == pytest.approx(1.0)
    rows, cols = np.flatnonzero(out.any(axis=1)), np.flatnonzero(out.any(axis=0))
    assert max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1) in (BOX, BOX + 1)
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    assert abs((out * ys).sum() / out.sum() - CENTRE) <= 0.5
    assert abs((out * xs).sum() / out.sum() - CENTRE) <= 0.5


def test_inverted_mnist_digit_dark_on_light_is_detected():
    out = preprocess(255 - digit(1))
    assert close_to(out, digit(1)) < 0.01


def test_large_canvas_off_centre_digit():
    d = digit(5)
    out = preprocess(encode(page(d, size=(1000, 1400), at=(700, 30), field=280)))
    assert close_to(out, d) < CLOSE


def test_small_digit_on_a_large_page_is_enlarged():
    d = digit(6)
    out = preprocess(encode(page(d, size=(800, 800), at=(100, 500), field=56)))
    assert close_to(out, d) < CLOSE


def test_coloured_ink_counts_as_ink():
    d = digit(7)
    for ink in [(30, 40, 200), (200, 20, 20), (240, 200, 0)]:  # blue, red, yellow
        out = preprocess(encode(page(d, ink=ink, paper=(255, 255, 255))))
        assert close_to(out, d) < CLOSE, ink


def test_uneven_lighting_is_not_ink():
    d = digit(8)
    image = np.asarray(page(d), dtype=np.float32)
    shade = np.linspace(1.0, 0.55, image.shape[1])[None, :, None]  # half as bright at the edge
    out = preprocess((image * shade).astype(np.uint8))
    assert close_to(out, d) < CLOSE


def test_chalk_on_a_board_light_on_dark():
    d = digit(9)
    board = page(d, ink=(235, 235, 220), paper=(35, 60, 45))
    out = preprocess(encode(board, "JPEG", quality=85))
    assert close_to(out, d) < CLOSE


def test_transparent_png_dark_ink():
    d = digit(10)
    rgba = np.zeros((300, 300, 4), np.uint8)
    rgba[..., 3] = np.asarray(Image.fromarray(d).resize((300, 300), Image.Resampling.BICUBIC))
    out = preprocess(encode(Image.fromarray(rgba, "RGBA")))
    assert close_to(out, d) < CLOSE


def test_transparent_png_white_ink_is_not_lost():
    d = digit(11)
    rgba = np.full((300, 300, 4), 255, np.uint8)
    rgba[..., 3] = np.asarray(Image.fromarray(d).resize((300, 300), Image.Resampling.BICUBIC))
    out = preprocess(encode(Image.fromarray(rgba, "RGBA")))
    assert close_to(out, d) < CLOSE


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_is_applied(orientation):
    d = digit(12)  # a 3: not symmetric under any turn
    upright = page(d, size=(500, 700), at=(100, 200), field=250)
    stored = upright.transpose(photos._SIDEWAYS[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    out = preprocess(encode(stored, "JPEG", quality=90, exif=exif.tobytes()))
    assert close_to(out, d) < CLOSE
    # without the flag the same pixels give a turned digit: the test can tell the difference
    turned = preprocess(encode(stored, "JPEG", quality=90))
    assert close_to(turned, d) > max(CLOSE, 3 * close_to(out, d))


# --- exercise books: printed rulings, pencil, shadows, fine pens ---


def ruled(
    image: Image.Image, spacing: int, colour=(140, 170, 215), rows=(), width=2
) -> Image.Image:
    """`image` with printed lines across it every `spacing` pixels (and at `rows`)."""
    pixels = np.array(image)
    for row in [*range(spacing // 2, pixels.shape[0], spacing), *rows]:
        pixels[row : row + width] = np.minimum(pixels[row : row + width], colour)
    return Image.fromarray(pixels)


def squared(image: Image.Image, spacing: int, colour=(150, 160, 175)) -> Image.Image:
    lines = ruled(image, spacing, colour)
    return ruled(lines.transpose(Image.Transpose.TRANSPOSE), spacing, colour).transpose(
        Image.Transpose.TRANSPOSE
    )


@pytest.mark.parametrize("paper", ["ruled", "squared"])
def test_printed_lines_crossing_the_digit_are_not_ink(paper):
    d = digit(14)
    plain = page(d, size=(700, 900), at=(200, 300), field=280)
    lined = ruled(plain, 70) if paper == "ruled" else squared(plain, 45)
    out = preprocess(encode(lined, "JPEG", quality=85))
    assert close_to(out, d) < CLOSE
    assert np.abs(out - preprocess(encode(plain, "JPEG", quality=85))).mean() < 0.02


def test_a_stroke_written_along_a_line_keeps_its_ink():
    index = int(np.flatnonzero(mnist().y_test == 7)[0])
    d = digit(index)
    plain = page(d, size=(700, 900), at=(200, 300), field=280)
    bar = int(np.argmax(d.sum(axis=1)))  # the 7's top bar, in the digit's 28x28 field
    row = 200 + bar * 10 + 4  # the same row on the page: the line runs along the bar
    out = preprocess(encode(ruled(plain, 1000, rows=[row])))
    assert close_to(out, d) < CLOSE
    assert out[:, :].sum() > 0.85 * preprocess(encode(plain)).sum()


def test_printed_lines_alone_are_a_blank_page():
    empty = Image.new("RGB", (800, 600), (240, 238, 230))
    for lined in (ruled(empty, 40), squared(empty, 30)):
        with pytest.raises(ImageError, match="no ink"):
            preprocess(encode(lined))


def test_pencil_grainy_and_faint_gets_mnist_weight():
    d = digit(15)
    rng = np.random.default_rng(0)
    alpha = np.asarray(Image.fromarray(d).resize((280, 280), Image.Resampling.BICUBIC)) / 255
    alpha = alpha * rng.uniform(0.3, 1.0, alpha.shape)  # graphite on the paper's tooth
    cover = np.zeros((700, 900))
    cover[200:480, 300:580] = alpha
    paper, graphite = np.array([238, 236, 228]), np.array([130, 130, 136])
    rgb = paper * (1 - cover[..., None]) + graphite * cover[..., None]
    out = preprocess(encode(Image.fromarray(rgb.astype(np.uint8)), "JPEG", quality=80))
    # This MNIST 5 is thin-stroked; the grain read as thin strokes is thickened a little
    assert close_to(out, d) < 0.075
    # to a weight within MNIST's usual range (10th to 95th percentile of its strokes)
    assert _mnist_form.THIN <= _mnist_form._stroke_width(out) <= 2.9


def test_a_fine_pen_on_a_large_digit_is_thickened_like_mnist():
    digit_ = handwriting.handwritten("dev", 3)
    thin = replace(digit_, pen=0.02)  # a fine ballpoint: a fiftieth of the digit's height
    cover = np.zeros((800, 800), np.float32)
    cover[100:700, 100:700] = thin.coverage(600, np.random.default_rng(0))
    out = preprocess((255 * (1 - cover)).astype(np.uint8))
    assert _mnist_form._stroke_width(out) >= _mnist_form.THIN


def test_a_shadow_across_the_page_is_not_ink():
    d = digit(16)
    image = np.asarray(page(d, size=(700, 900), at=(200, 300), field=280), np.float32)
    x = np.arange(image.shape[1])
    shadow = 1 - 0.4 / (1 + np.exp(-(x - 380) / 25.0))  # a soft edge through the digit
    out = preprocess((image * shadow[None, :, None]).astype(np.uint8))
    assert close_to(out, d) < CLOSE


@pytest.mark.parametrize("kind", photos.NOTEBOOK_KINDS)
def test_mnist_digits_on_every_kind_of_exercise_book_page(kind):
    for i in range(3):
        d = digit(20 + i)
        encoded, _ = photos.RENDERERS[kind](photos.mnist_glyph(d), np.random.default_rng([9, i]))
        assert close_to(preprocess(encoded), d) < 0.075, (kind, i)


def test_a_stray_speck_far_away_does_not_stretch_the_box():
    d = digit(13)
    image = np.array(page(d, size=(700, 700), at=(300, 300), field=280))
    image[20:26, 20:26] = 0  # a pen tap in the corner
    out = preprocess(image)
    assert close_to(out, d) < CLOSE


def test_a_tall_thin_one_keeps_its_aspect_ratio():
    index = int(np.flatnonzero(mnist().y_test == 1)[0])
    d = digit(index)
    out = preprocess(encode(page(d)))
    width = np.flatnonzero(out.max(axis=0) > 0.5)
    original = np.flatnonzero(d.max(axis=0) > 127)
    assert abs(len(width) - len(original)) <= 2


def test_every_input_type_gives_the_same_answer(tmp_path):
    d = digit(14)
    image = page(d)
    png = encode(image)
    path = tmp_path / "digit.png"
    path.write_bytes(png)
    expected = preprocess(png)
    pixels = np.asarray(image)
    same = [
        preprocess(path),
        preprocess(str(path)),
        preprocess(io.BytesIO(png)),
        preprocess(bytearray(png)),
        preprocess(Image.open(io.BytesIO(png))),
        preprocess(pixels),
        preprocess(pixels.astype(np.float32) / 255),  # float in [0, 1]
        preprocess(pixels.astype(np.float64)),  # float in 0..255
        preprocess(np.dstack([pixels, np.full(pixels.shape[:2], 255, np.uint8)])),  # RGBA
    ]
    for i, out in enumerate(same):
        assert np.abs(out - expected).max() < 0.02, i
    gray = np.asarray(image.convert("L"))
    for out in (preprocess(gray), preprocess(gray[..., None]), preprocess(gray.astype(np.uint16))):
        assert close_to(out, d) < CLOSE


@pytest.mark.parametrize("mode", ["L", "LA", "P", "1", "I", "RGBA", "CMYK"])
def test_files_in_every_pixel_mode(mode):
    """An MNIST digit saved as an image file in any mode comes back as itself."""
    d = digit(17)
    image = Image.fromarray(255 - d).convert(mode)
    fmt = "TIFF" if mode in ("I", "CMYK") else "PNG"
    out = preprocess(encode(image, fmt))
    tolerance = 0.2 if mode == "1" else 0.02  # 1-bit keeps only the strokes' cores
    assert close_to(out, d) < tolerance, mode


def test_sixteen_bit_png():
    d = digit(15)
    gray16 = (np.asarray(page(d).convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    out = preprocess(encode(Image.fromarray(gray16)))
    assert close_to(out, d) < CLOSE


def test_photo_like_samples_of_every_kind():
    # These photos are tilted and blurred on purpose, so they sit a little further from
    # the original; still closer than 99% of pairs of different MNIST digits (>= 0.08).
    for photo in photos.photo_set(len(photos.KINDS), seed=3):
        out = preprocess(photo.data, name=photo.name)
        assert close_to(out, digit(photo.mnist_index)) < 0.075, photo.name


def test_the_committed_samples_are_what_the_generator_writes(tmp_path):
    written = photos.write_samples(tmp_path)
    committed = ROOT / "data" / "samples"
    for path in written:
        with Image.open(path) as fresh, Image.open(committed / path.name) as kept:
            assert fresh.size == kept.size and fresh.getexif() == kept.getexif(), path.name
            difference = np.abs(np.asarray(fresh, np.int16) - np.asarray(kept, np.int16))
            assert difference.mean() < 1.0, path.name  # encoders may differ by a level


# --- bad images: a clear ImageError naming the input, never a crash ---


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is text, not a picture")
    with pytest.raises(ImageError, match=r"notes\.png: not an image"):
        preprocess(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty\.jpg: empty file"):
        preprocess(path)
    with pytest.raises(ImageError, match="empty"):
        preprocess(b"")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_file(tmp_path, fmt):
    whole = encode(page(digit(16)), fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(whole[: len(whole) // 2])
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    with pytest.raises(ImageError, match=rf"cut\.{fmt.lower()}: (truncated|corrupt)"):
        preprocess(path)


def test_blank_page(tmp_path):
    path = tmp_path / "blank.png"
    path.write_bytes(encode(Image.new("RGB", (640, 480), (250, 248, 240))))
    with pytest.raises(ImageError, match=r"blank\.png: no ink found"):
        preprocess(path)


def test_blank_page_photo_with_noise_and_shading():
    rng = np.random.default_rng(0)
    shade = np.linspace(0.75, 1.0, 800)[None, :, None]
    noisy = np.clip(235 * shade + rng.normal(0, 4, (600, 800, 3)), 0, 255).astype(np.uint8)
    with pytest.raises(ImageError, match="no ink found"):
        preprocess(encode(Image.fromarray(noisy), "JPEG", quality=80))


def test_all_black_and_empty_arrays():
    with pytest.raises(ImageError, match="no ink"):
        preprocess(np.zeros((28, 28), np.uint8))
    with pytest.raises(ImageError, match="no pixels"):
        preprocess(np.zeros((0, 28), np.uint8))


def _png_header_only(width: int, height: int) -> bytes:
    """A valid PNG signature and header declaring a huge image, and a few bytes of data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat)


def test_decompression_bomb_is_refused_before_decoding(monkeypatch):
    def no_decoding(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    bomb = _png_header_only(60_000, 60_000)  # 3.6 gigapixels in a kilobyte
    with pytest.raises(ImageError, match=r"megapixels.*refused before decoding"):
        preprocess(bomb, name="bomb.png")
    # Pillow's own guard (at twice its limit) would also stop it; ours comes first and
    # names the file, and it applies below Pillow's limit too:
    small = encode(page(digit(0), size=(200, 300), at=(10, 10), field=150))
    with pytest.raises(ImageError, match=r"bomb\.png: 300x200 is 0\.1 megapixels"):
        preprocess(small, name="bomb.png", max_pixels=50_000)


def test_huge_arrays_are_refused_too():
    with pytest.raises(ImageError, match="megapixels, over the limit"):
        preprocess(np.zeros((300, 400), np.uint8), max_pixels=100_000)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageError, match=r"nope\.png: no such file"):
        preprocess(tmp_path / "nope.png")
    with pytest.raises(ImageError, match="is a directory"):
        preprocess(tmp_path)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.full((28, 28), np.nan, np.float32), "NaN or infinite"),
        (np.full((28, 28), -1.0), "must be in"),
        (np.zeros((2, 28, 28, 3)), "expected an image array"),
        (np.zeros((28, 28, 2)), "expected an image array"),
        (np.array([["a"]]), "unsupported array dtype"),
    ],
)
def test_bad_arrays(array, message):
    with pytest.raises(ImageError, match=message):
        preprocess(array)


def test_unsupported_input_type_and_text_file_object(tmp_path):
    with pytest.raises(ImageError, match="unsupported input type int"):
        preprocess(42)  # type: ignore[arg-type]
    path = tmp_path / "x.png"
    path.write_bytes(encode(page(digit(0))))
    with open(path, encoding="latin-1") as text, pytest.raises(ImageError, match="binary mode"):
        preprocess(text)  # type: ignore[arg-type]


def test_load_image_returns_the_upright_picture():
    upright = page(digit(0), size=(300, 500), at=(10, 10), field=200)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored = upright.transpose(photos._SIDEWAYS[6])
    loaded = load_image(encode(stored, "JPEG", exif=exif.tobytes()))
    assert loaded.size == upright.size


def test_mnist_form_digits_skip_the_pipeline_with_the_same_result(monkeypatch):
    module = _mnist_form

    x = mnist().x_test[:300]
    fast = [i for i in range(len(x)) if module.already_mnist(x[i]) is not None]
    assert len(fast) > 0.95 * len(x)
    shortcut = [preprocess(x[i]) for i in fast]
    monkeypatch.setattr(module, "already_mnist", lambda array: None)  # full pipeline only
    changed = sum(
        np.abs(out - preprocess(x[i])).max() > 1.5 / 255
        for out, i in zip(shortcut, fast, strict=True)
    )
    assert changed <= 0.01 * len(fast)  # the pipeline only drops a rare detached speck
    monkeypatch.undo()

    light_paper = 255 - x[0]
    small = np.zeros((28, 28), np.uint8)
    small[11:17, 12:15] = 255
    off_centre = np.roll(x[0], 6, axis=1)
    for picture in (light_paper, small, off_centre):
        assert module.already_mnist(picture) is None
        assert preprocess(picture).shape == (28, 28)  # the full pipeline handles them
    out_of_range = x[0].astype(np.float32) * 3
    assert module.already_mnist(out_of_range) is None
    with pytest.raises(ImageError, match="must be in"):
        preprocess(out_of_range)


@pytest.mark.parametrize("shape", [(1, 100_000), (100_000, 1), (2, 5000), (10, 1001)])
def test_extreme_aspect_ratios_are_refused_clearly(shape, monkeypatch):
    """A strip far longer than wide holds no digit; arrays of it used to fail inside the
    pipeline with a bare ValueError, and encoded ones are now refused from the header."""
    strip = np.full(shape, 255, np.uint8)
    strip[: max(1, shape[0] // 2), : max(1, shape[1] // 2)] = 0
    with pytest.raises(ImageError, match=r"strip: .* too long and thin"):
        preprocess(strip, name="strip")

    def no_decoding(self):
        raise AssertionError("pixels were decoded")

    png = encode(Image.fromarray(strip))
    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(ImageError, match=r"strip\.png: .* too long and thin"):
        preprocess(png, name="strip.png")


def test_a_long_thin_image_within_the_limit_still_works():
    strip = np.full((8, 700), 255, np.uint8)
    strip[2:6, 300:304] = 0
    assert preprocess(strip).shape == (28, 28)


def _in_a_thread(function, *args):
    """What function(*args) raised or returned, or "hung" after 5 s (the thread is left)."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(function(*args))
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(5)
    return outcome[0] if outcome else "hung"


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "digit.png"
    os.mkfifo(fifo)
    try:
        outcome = _in_a_thread(load_image, fifo)
    finally:  # a reader stuck in open() (the bug) is let go by a writer that leaves
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert isinstance(outcome, ImageError), outcome
    assert re.search(r"digit\.png: not a regular file", str(outcome))


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero here")
def test_a_device_is_refused_without_reading_it():
    """Reading /dev/zero to its end would take all the memory there is."""
    with pytest.raises(ImageError, match="/dev/zero: not a regular file"):
        load_image("/dev/zero")


def test_files_and_streams_are_read_only_up_to_the_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(_images, "MAX_FILE_BYTES", 1000, raising=False)
    big = tmp_path / "big.png"
    big.write_bytes(encode(page(digit(0))) + bytes(2000))
    with pytest.raises(ImageError, match=r"big\.png: over 1000 bytes"):
        load_image(big)

    class Endless(io.RawIOBase):
        """A stream that never ends (stdin fed from /dev/zero), counting what is read."""

        served = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            self.served += len(buffer)
            buffer[:] = bytes(len(buffer))
            return len(buffer)

    endless = Endless()
    assert isinstance(_in_a_thread(load_image, endless), ImageError)
    assert endless.served <= 1000 + 65536


def test_prepare_decodes_once_for_the_picture_and_the_digit(monkeypatch):
    """The CLI shows each picture beside its 28x28; both come from one decoding."""
    from client.preprocess import prepare

    upright = page(digit(0), size=(300, 500), at=(10, 10), field=200)
    exif = Image.Exif()
    exif[0x0112] = 6
    encoded = encode(upright.transpose(photos._SIDEWAYS[6]), "JPEG", exif=exif.tobytes())
    decoded = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda *a, **k: decoded.append(1) or real_open(*a, **k))
    prepared = prepare(encoded)
    assert len(decoded) == 1
    assert prepared.picture is not None and prepared.picture.size == upright.size
    np.testing.assert_array_equal(prepared.digit, preprocess(encoded))
    ready = prepare(digit(3))  # an array: no picture, and the MNIST fast path
    assert ready.picture is None and ready.digit.shape == (SIZE, SIZE)
