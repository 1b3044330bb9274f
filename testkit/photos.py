"""Deterministic photo-like digit images: MNIST test digits, or other hands' digits.

Real users send photos, not MNIST crops: a digit somewhere on a large page, dark ink on
off-white paper under uneven light, coloured pens, transparent PNGs from drawing apps,
JPEG artefacts, phone photos stored sideways with an EXIF orientation flag, chalk on a
board, a school exercise book's ruled or squared page, pencil, a shadow across the page.
Each kind below renders a digit that way, so the label is known and the preprocessing
can be measured against the model's accuracy on the clean digit itself.

A renderer takes a *glyph*: anything that gives the digit's ink coverage at a requested
size. An MNIST test digit is one (its 28x28 field enlarged), and so is a digit drawn by
`testkit/handwriting.py`'s pen trajectories at full photo resolution. The project's
photo set (`photo_set`, the first seven kinds) is made from MNIST test digits; the
notebook kinds serve the handwriting set.

The same (seed, index) always gives the same bytes on one Pillow version, so results
are reproducible; nothing here is random at import time. It is one module, longer than
most, because it is one catalogue: each kind is a dozen lines over the shared Scene,
and a kind is read and changed beside the others it must stay unlike.

    python -m testkit.photos --samples data/samples   # rewrite the demo images
"""

from __future__ import annotations

import argparse
import io
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

from training import data

KINDS = ("canvas", "paper", "colour", "transparent", "jpeg", "exif", "chalkboard")
# Kinds of page that only the handwriting set uses (testkit/handwriting.py).
NOTEBOOK_KINDS = ("plain", "ruled", "squared", "pencil", "pencil-ruled", "pencil-squared")
# EXIF Orientation tag -> how the stored pixels are turned from upright; the viewer
# (ImageOps.exif_transpose) applies the inverse.
_SIDEWAYS = {
    6: Image.Transpose.ROTATE_90,
    8: Image.Transpose.ROTATE_270,
    3: Image.Transpose.ROTATE_180,
}
_ORIENTATION_TAG = 0x0112
_INKS = {
    "blue": (25, 45, 170),
    "red": (190, 25, 30),
    "green": (20, 120, 50),
    "purple": (110, 30, 140),
    "orange": (230, 110, 10),
}


# A glyph: (field, rng, tilt) -> the digit's ink coverage in [0, 1] on a field x field
# square, filled about as MNIST fills its 28x28 field, turned by up to `tilt` degrees.
Glyph = Callable[[int, np.random.Generator, float], np.ndarray]
Renderer = Callable[[Glyph, np.random.Generator], tuple[bytes, str]]


@dataclass(frozen=True)
class Photo:
    name: str  # e.g. "0042-exif-7.jpg": index, kind, label, format
    kind: str
    label: int
    mnist_index: int | None  # which MNIST test digit it shows (None: another hand's)
    data: bytes  # the encoded file
    original: np.ndarray  # the digit it shows, clean, as a 28x28 uint8 MNIST-style field


def photo_set(n: int, *, seed: int = 0, kinds: tuple[str, ...] = KINDS) -> Iterator[Photo]:
    """`n` photos cycling through `kinds`, each a different MNIST test digit."""
    mnist = data.load()
    order = np.random.default_rng(seed).permutation(len(mnist.x_test))
    for i in range(n):
        yield _render(mnist, int(order[i % len(order)]), kinds[i % len(kinds)], seed, i)


def one_of_each_digit(*, seed: int = 0) -> Iterator[Photo]:
    """Ten photos showing the digits 0 to 9, the kinds taken in turn."""
    mnist = data.load()
    order = np.random.default_rng(seed).permutation(len(mnist.x_test))
    for digit in range(10):
        index = int(next(i for i in order if mnist.y_test[i] == digit))
        yield _render(mnist, index, KINDS[digit % len(KINDS)], seed, digit)


def _render(mnist: data.Mnist, index: int, kind: str, seed: int, i: int) -> Photo:
    label = int(mnist.y_test[index])
    digit = mnist.x_test[index]
    encoded, ext = RENDERERS[kind](mnist_glyph(digit), np.random.default_rng([seed, i]))
    return Photo(f"{i:04d}-{kind}-{label}.{ext}", kind, label, index, encoded, digit)


def mnist_glyph(digit: np.ndarray) -> Glyph:
    """An MNIST digit (28x28 uint8) as a glyph: its field enlarged to the size asked for."""
    return partial(_ink_alpha, digit)


def _ink_alpha(digit: np.ndarray, field: int, rng: np.random.Generator, tilt: float) -> np.ndarray:
    """The digit's 28x28 field enlarged to `field` pixels, as ink coverage in [0, 1]."""
    image = Image.fromarray(digit).resize((field, field), Image.Resampling.BICUBIC)
    if tilt:
        angle = float(rng.uniform(-tilt, tilt))
        image = image.rotate(angle, resample=Image.Resampling.BICUBIC)
    alpha = np.asarray(image, dtype=np.float32) / 255.0
    # Pen pressure: some strokes bolder, some lighter, varying smoothly along the page.
    pressure = _smooth_noise(alpha.shape, rng, cells=4, low=0.8, high=1.0)
    return np.clip(alpha * pressure, 0.0, 1.0)


def _smooth_noise(
    shape: tuple[int, int], rng: np.random.Generator, cells: int, low: float, high: float
) -> np.ndarray:
    coarse = rng.uniform(low, high, size=(cells, cells)).astype(np.float32)
    image = Image.fromarray(coarse, mode="F").resize(shape[::-1], Image.Resampling.BICUBIC)
    return np.clip(np.asarray(image), min(low, high), max(low, high))


def _lighting(shape: tuple[int, int], rng: np.random.Generator, strength: float) -> np.ndarray:
    """Uneven light: a linear fall-off from one side plus lens vignetting."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    ramp = (np.cos(angle) * x / w + np.sin(angle) * y / h) * rng.uniform(0, strength)
    r2 = ((x - w / 2) / w) ** 2 + ((y - h / 2) / h) ** 2
    vignette = r2 * rng.uniform(0, strength * 1.5)
    return (1.0 - ramp + ramp.mean() - vignette).astype(np.float32)[..., np.newaxis]


def _place(canvas_hw: tuple[int, int], field: int, rng: np.random.Generator) -> tuple[int, int]:
    """A random top-left corner for the digit's field; anywhere, not just the centre."""
    h, w = canvas_hw
    return int(rng.integers(0, h - field + 1)), int(rng.integers(0, w - field + 1))


@dataclass(frozen=True)
class Scene:
    """How one kind of photo is taken: canvas size, digit size, light, camera."""

    heights: tuple[int, int]  # canvas height range, pixels
    widths: tuple[int, int]
    field_share: tuple[float, float]  # the digit's 28x28 field, as a share of the short side
    light: float  # strength of uneven lighting and vignetting
    noise: float  # sensor noise, standard deviation in [0, 1] units
    tilt: float  # degrees either way
    blur: tuple[float, float]  # camera blur radius range, pixels
    chalk: bool = False
    pencil: bool = False  # graphite: grainy strokes, the paper's tooth showing through
    ruling: str = ""  # "ruled" (exercise-book lines) or "squared" (a grid), or plain
    shadow: float = 0.0  # the chance of a shadow (a hand, a phone) falling across the page

    def shoot(
        self,
        glyph: Glyph,
        rng: np.random.Generator,
        paper: tuple[float, float, float],
        ink: tuple[float, float, float],
    ) -> Image.Image:
        """One RGB photo: paper under light, ink laid on it, camera blur and sensor noise."""
        h, w = int(rng.integers(*self.heights)), int(rng.integers(*self.widths))
        field = int(min(h, w) * rng.uniform(*self.field_share))
        alpha = glyph(field, rng, self.tilt)
        if self.chalk:  # chalk skips over the board's grain, leaving a broken, dusty line
            alpha = alpha * rng.uniform(0.55, 1.0, size=alpha.shape).astype(np.float32)
        if self.pencil:  # graphite catches only the tops of the paper's fibres
            alpha = alpha * rng.uniform(0.3, 1.0, size=alpha.shape).astype(np.float32)
        coverage = np.zeros((h, w), dtype=np.float32)
        top, left = _place((h, w), field, rng)
        coverage[top : top + field, left : left + field] = alpha
        page = np.broadcast_to(np.array(paper, dtype=np.float32) / 255.0, (h, w, 3))
        if self.chalk:  # old chalk wiped off: faint light clouds on the board
            page = page + _smooth_noise((h, w), rng, cells=6, low=0.0, high=0.08)[..., None]
        if self.ruling:
            lines, colour = _rulings((h, w), field, left, self.ruling, rng)
            page = page * (1 - lines[..., None]) + colour * lines[..., None]
        cover = coverage[..., np.newaxis]
        ink_rgb = np.array(ink, dtype=np.float32) / 255.0
        image = (page * (1 - cover) + ink_rgb * cover) * _lighting((h, w), rng, self.light)
        if self.shadow and rng.uniform() < self.shadow:
            image = image * _shadow((h, w), rng)
        blur = float(rng.uniform(*self.blur))
        if blur:
            pil = Image.fromarray(_to_uint8(image))
            image = np.asarray(pil.filter(ImageFilter.GaussianBlur(blur)), np.float32) / 255
        if self.noise:
            image = image + self.noise * rng.standard_normal(image.shape, dtype=np.float32)
        return Image.fromarray(_to_uint8(image))


# Printed rulings: light blue or grey lines, thin and fainter than any pen or pencil.
_RULING_COLOURS = ((140, 170, 215), (160, 162, 168), (165, 150, 205), (150, 190, 175))
_MARGIN_COLOUR = (232, 150, 150)


def _rulings(
    shape: tuple[int, int], field: int, left: int, ruling: str, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """An exercise book's printed lines as coverage in [0, 1], and their colour (0..1).

    Ruled pages have a line every 0.6 to 1.1 digit heights (so the lines cross the digit
    once or twice), and often a margin line left of the writing; squared pages a grid of
    squares a third to half of a digit high. The page sits a little askew to the camera.
    """
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = math.radians(rng.uniform(-2.5, 2.5))
    across = y * math.cos(angle) - x * math.sin(angle)  # distance across horizontal lines
    along = x * math.cos(angle) + y * math.sin(angle)  # and across vertical ones
    thickness = rng.uniform(0.8, 2.0) * max(1.0, min(h, w) / 600)
    spacing = field * (rng.uniform(0.45, 0.8) if ruling == "ruled" else rng.uniform(0.22, 0.4))
    lines = _line_family(across, spacing, rng.uniform(0, spacing), thickness)
    colour = np.array(_RULING_COLOURS[int(rng.integers(len(_RULING_COLOURS)))], np.float32)
    if ruling == "squared":
        lines = np.maximum(lines, _line_family(along, spacing, rng.uniform(0, spacing), thickness))
    elif rng.uniform() < 0.5 and left > 0.1 * w:  # a margin line, left of the digit
        position = rng.uniform(0.02 * w, left)
        margin = np.clip(thickness * 0.75 + 0.5 - np.abs(along - position), 0.0, 1.0)
        colour = np.where((margin >= lines)[..., None], _MARGIN_COLOUR, colour)
        lines = np.maximum(lines, margin)
    return lines, np.asarray(colour, np.float32) / 255.0


def _line_family(offset: np.ndarray, spacing: float, phase: float, thickness: float) -> np.ndarray:
    """Anti-aliased parallel lines `thickness` pixels wide, `spacing` pixels apart."""
    distance = np.abs((offset - phase + spacing / 2) % spacing - spacing / 2)
    return np.clip(thickness / 2 + 0.5 - distance, 0.0, 1.0).astype(np.float32)


def _shadow(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A soft-edged shadow over part of the page, as a brightness factor (H, W, 1)."""
    h, w = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    distance = (x - w / 2) * math.cos(angle) + (y - h / 2) * math.sin(angle)
    edge = rng.uniform(-0.3, 0.3) * max(h, w)  # covers a fifth to four fifths of the page
    softness = rng.uniform(0.02, 0.08) * min(h, w)
    inside = 1 / (1 + np.exp(-(distance - edge) / softness))
    return (1.0 - rng.uniform(0.2, 0.45) * inside).astype(np.float32)[..., np.newaxis]


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _paper(rng: np.random.Generator) -> tuple[float, float, float]:
    base = rng.uniform(215, 250)
    return (base, base - rng.uniform(0, 10), base - rng.uniform(0, 25))  # white to cream


def _dark_ink(rng: np.random.Generator) -> tuple[float, float, float]:
    level = rng.uniform(10, 80)  # black pen to soft pencil
    return (level, level, level + rng.uniform(0, 15))


CANVAS = Scene((400, 900), (400, 1200), (0.2, 0.9), light=0, noise=0, tilt=0, blur=(0, 0))
PAGE = Scene((480, 1000), (640, 1300), (0.25, 0.8), light=0.25, noise=0.02, tilt=4, blur=(0, 1.5))
COLOUR = Scene((480, 900), (480, 1200), (0.25, 0.8), light=0.15, noise=0.015, tilt=3, blur=(0, 1))
JPEG = Scene((480, 900), (640, 1200), (0.2, 0.7), light=0.2, noise=0.02, tilt=3, blur=(0, 1))
PHONE = Scene((900, 1300), (1200, 1700), (0.15, 0.6), light=0.3, noise=0.02, tilt=4, blur=(0.5, 3))
BOARD = Scene(
    (480, 900), (640, 1200), (0.25, 0.8), light=0.25, noise=0.02, tilt=3, blur=(0, 1.2), chalk=True
)


def canvas(glyph: Glyph, rng: np.random.Generator) -> tuple[bytes, str]:
    """A drawing app's export: a large white canvas, clean black ink, off-centre."""
    return _encode(CANVAS.shoot(glyph, rng, (255, 255, 255), (0, 0, 0)), "PNG"), "png"


def paper(glyph: Glyph, rng: np.random.Generator) -> tuple[bytes, str]:
    """A photo of a page: tinted paper, uneven light, pen or pencil, noise, soft focus."""
    image = PAGE.shoot(glyph, rng, _paper(rng), _dark_ink(rng))
    return _encode(image, "PNG", compress_level=1), "png"  # noise does not compress anyway


def colour(glyph: Glyph, rng: np.random.Generator) -> tuple[bytes, str]:
    """Coloured pens (blue, red, green, purple, orange) on paper."""
    ink = list(_INKS.values())[int(rng.integers(len(_INKS)))]
    return _encode(COLOUR.shoot(glyph, rng, _paper(rng), ink), "PNG", compress_level=1), "png"


def transparent(glyph: Glyph, rng: np.random.Generator) -> tuple[bytes, str]:
    """An RGBA PNG from a drawing app: ink in the alpha channel, nothing behind it.

    One in four draws white ink (for a dark theme), which vanishes on white paper.
    """
    h, w = int(rng.integers(300, 800)), int(rng.integers(300, 800))
    field = int(min(h, w) * rng.uniform(0.3, 0.95))
    alpha = np.zeros((h, w), dtype=np.float32)
    top, left = _place((h, w), field, rng)
    alpha[top : top + field, left : left + field] = glyph(field, rng, 0)
    white = rng.uniform() < 0.25
    ink = (255, 255, 255) if white else list(_INKS.values())[int(rng.integers(len(_INKS)))]
    if not white and rng.uniform() < 0.5:
        ink = (0, 0, 0)
    rgba = np.zeros((h, w, 4), dtype=np.uint8)
    rgba[..., :3] = ink  # apps store the stroke colour under every pixel, or zeros
    if rng.uniform() < 0.5:
        rgba[alpha == 0, :3] = 0
    rgba[..., 3] = _to_uint8(alpha)
    return _encode(Image.fromarray(rgba, mode="RGBA"), "PNG"), "png"


def jpeg(glyph: Glyph, rng: np.random.Generator) -> tuple[bytes, str]:
    """A page photo saved as a strongly compressed JPEG (blocking, ringing round strokes)."""
    image = JPEG.shoot(glyph, rng, _paper(rng), _dark_ink(rng))
    return _encode(image, "JPEG", quality=int(rng.integers(35, 75))), "jpg"


def exif(glyph: Glyph, rng: np.random.Generator) -> tuple[bytes, str]:
    """A phone photo: large, stored sideways (or upside down) with an EXIF orientation."""
    return _sideways(PHONE.shoot(glyph, rng, _paper(rng), _dark_ink(rng)), rng), "jpg"


def _sideways(image: Image.Image, rng: np.random.Generator) -> bytes:
    """A phone's JPEG of an upright picture: pixels stored turned, with the EXIF flag."""
    orientation = [6, 8, 3][int(rng.integers(3))]
    tags = Image.Exif()
    tags[_ORIENTATION_TAG] = orientation
    stored = image.transpose(_SIDEWAYS[orientation])
    quality = int(rng.integers(70, 92))
    return _encode(stored, "JPEG", quality=quality, exif=tags.tobytes())


def chalkboard(glyph: Glyph, rng: np.random.Generator) -> tuple[bytes, str]:
    """Light chalk on a dark green or black board: the polarity MNIST has, not paper's."""
    board = [(38, 62, 48), (30, 32, 34), (24, 48, 40)][int(rng.integers(3))]
    chalk = [(235, 235, 225), (240, 225, 130), (200, 225, 240)][int(rng.integers(3))]
    image = BOARD.shoot(glyph, rng, board, chalk)
    return _encode(image, "JPEG", quality=int(rng.integers(75, 92))), "jpg"


# A school exercise book photographed with a phone: any pen colour or pencil, lines or a
# grid printed on the page, sometimes a shadow across it.
NOTEBOOK = Scene(
    (480, 1100), (640, 1400), (0.2, 0.7), light=0.25, noise=0.02, tilt=4, blur=(0, 1.5), shadow=0.4
)
_PENS = ((20, 20, 30), (25, 45, 170), (190, 25, 30), (20, 120, 50))  # black, blue, red, green


def notebook(
    glyph: Glyph, rng: np.random.Generator, *, ruling: str, pencil: bool
) -> tuple[bytes, str]:
    """A page of an exercise book (plain, ruled or squared), in pen or pencil.

    Pencil is graphite grey, lighter than any pen, and grainy. The file is what phones
    and scanners write: a JPEG (a third of them stored sideways with an EXIF flag) or a
    PNG.
    """
    scene = replace(NOTEBOOK, ruling=ruling, pencil=pencil)
    if pencil:
        level = rng.uniform(70, 140)
        ink = (level, level, level + 6)
    else:
        ink = _PENS[int(rng.integers(len(_PENS)))]
    image = scene.shoot(glyph, rng, _paper(rng), ink)
    choice = rng.uniform()
    if choice < 0.2:
        return _sideways(image, rng), "jpg"
    if choice < 0.6:
        return _encode(image, "JPEG", quality=int(rng.integers(50, 92))), "jpg"
    return _encode(image, "PNG", compress_level=1), "png"


def tablet(glyph: Glyph, rng: np.random.Generator) -> tuple[bytes, str]:
    """A drawing app's export: a plain canvas or a transparent PNG, half and half."""
    return (canvas if rng.uniform() < 0.5 else transparent)(glyph, rng)


RENDERERS: dict[str, Renderer] = {
    "canvas": canvas,
    "paper": paper,
    "colour": colour,
    "transparent": transparent,
    "jpeg": jpeg,
    "exif": exif,
    "chalkboard": chalkboard,
    "plain": partial(notebook, ruling="", pencil=False),
    "ruled": partial(notebook, ruling="ruled", pencil=False),
    "squared": partial(notebook, ruling="squared", pencil=False),
    "pencil": partial(notebook, ruling="", pencil=True),
    "pencil-ruled": partial(notebook, ruling="ruled", pencil=True),
    "pencil-squared": partial(notebook, ruling="squared", pencil=True),
    "tablet": tablet,
}
assert tuple(RENDERERS) == (*KINDS, *NOTEBOOK_KINDS, "tablet")


def write_samples(directory: Path, *, seed: int = 7) -> list[Path]:
    """The demo's sample images: digits 0 to 9 as photos of every kind, small enough to
    keep in git.

    Noisy PNGs barely compress, so the paper and colour samples are stored as JPEG, and
    the phone photo at half size (its EXIF orientation kept).
    """
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.iterdir():
        if old.suffix in (".png", ".jpg"):
            old.unlink()
    written = []
    for photo in one_of_each_digit(seed=seed):
        data, ext = photo.data, photo.name.rsplit(".", 1)[1]
        image = Image.open(io.BytesIO(data))
        if photo.kind in ("paper", "colour"):
            data, ext = _encode(image.convert("RGB"), "JPEG", quality=85), "jpg"
        elif photo.kind == "exif":
            data = _encode(image.reduce(2), "JPEG", quality=80, exif=image.getexif().tobytes())
        path = directory / f"{photo.label}-{photo.kind}.{ext}"
        path.write_bytes(data)
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testkit.photos", description=__doc__)
    parser.add_argument("--samples", type=Path, help="write the ten demo samples here")
    parser.add_argument("--out", type=Path, help="write the whole set of --count here")
    parser.add_argument("--count", type=int, default=70)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.samples:
        for path in write_samples(args.samples):
            print(path)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for photo in photo_set(args.count, seed=args.seed):
            (args.out / photo.name).write_bytes(photo.data)
        print(f"{args.count} photos in {args.out}")
    if not (args.samples or args.out):
        parser.error("nothing to do: give --samples DIR and/or --out DIR")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
