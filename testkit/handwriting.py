"""Digits in hands that are not MNIST's: seeded pen trajectories, for evaluation only.

MNIST's 500 writers are all the model ever sees in training, so a photo set made from
MNIST digits cannot tell whether the client and model work for anybody else. This
module writes digits the way a person does: each digit is one of several letterforms
(a 1 with or without a flag and a base, an open or closed 4, a 7 with or without a bar,
a 9 with a straight or curved tail, ...), drawn as smooth pen strokes through control
points. A *writer* is a seeded set of habits: which letterform they use for each digit,
slant, width, pen size, how loosely they follow the ideal shape, how shaky their hand
is. Each digit they write varies again around those habits.

Nothing here is trained on: the model learns from MNIST alone, and these digits only
measure it. Writers are drawn from separate seed ranges for the development split (what
the preprocessing was tuned on) and the evaluation split (what is reported), so the
figures are for hands the tuning never saw.

The same (split, index) always gives the same digit; nothing is random at import time.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from testkit import photos
from testkit.photos import Photo

Point = tuple[float, float]
# A stroke is one pen-down movement, given as runs of control points: the pen follows a
# smooth curve through each run, and turns a sharp corner where one run meets the next
# (each run starts where the previous one ended).
Stroke = Sequence[Sequence[Point]]
Letterform = Sequence[Stroke]

SPLITS = {"dev": 1, "eval": 2}  # seed streams: writers never shared between the two
DIGITS_PER_WRITER = 10  # each writer writes the ten digits once, in a random order


def _oval(cx: float, cy: float, rx: float, ry: float, start: float, turn: float) -> list[Point]:
    """Points round an ellipse from angle `start` (degrees, 0 = right, 90 = down), going
    `turn` of a full circle anticlockwise on paper; more than 1 overlaps the start."""
    steps = max(6, round(8 * turn))
    return [
        (
            cx + rx * math.cos(math.radians(start - 360 * turn * i / steps)),
            cy + ry * math.sin(math.radians(start - 360 * turn * i / steps)),
        )
        for i in range(steps + 1)
    ]


# A 9's head, drawn anticlockwise from its right side; its tail is straight or curved.
_NINE_HEAD = [
    (0.82, 0.2),
    (0.56, 0.02),
    (0.25, 0.08),
    (0.17, 0.3),
    (0.4, 0.48),
    (0.72, 0.4),
    (0.84, 0.12),
]


# Coordinates in the digit's box: x to the right, y down, the box 1 high and 1 wide
# (a writer's width habit narrows it later). Letterforms seen in school exercise books.
LETTERFORMS: dict[int, tuple[Letterform, ...]] = {
    0: (
        [[_oval(0.5, 0.5, 0.45, 0.5, -80, 1.08)]],
        [[_oval(0.5, 0.5, 0.4, 0.5, -120, 1.0)]],
    ),
    1: (
        [[[(0.55, 0.0), (0.5, 1.0)]]],
        [[[(0.22, 0.25), (0.6, 0.0)], [(0.55, 1.0)]]],
        [[[(0.25, 0.22), (0.6, 0.0)], [(0.55, 1.0)]], [[(0.25, 1.0), (0.85, 1.0)]]],
    ),
    2: (
        [
            [
                [(0.1, 0.25), (0.3, 0.03), (0.62, 0.0), (0.86, 0.2), (0.8, 0.45), (0.5, 0.72)],
                [(0.08, 1.0)],
                [(0.95, 0.98)],
            ]
        ],
        [
            [
                [
                    (0.1, 0.22),
                    (0.38, 0.0),
                    (0.72, 0.04),
                    (0.84, 0.28),
                    (0.66, 0.55),
                    (0.3, 0.85),
                    (0.1, 0.97),
                    (0.12, 0.85),
                    (0.3, 0.86),
                    (0.6, 0.97),
                    (0.95, 0.95),
                ]
            ]
        ],
    ),
    3: (
        [
            [
                [(0.12, 0.15), (0.45, 0.0), (0.8, 0.12), (0.78, 0.35), (0.42, 0.48)],
                [(0.8, 0.62), (0.85, 0.85), (0.52, 1.0), (0.1, 0.88)],
            ]
        ],
        [
            [
                [(0.12, 0.02), (0.85, 0.02)],
                [(0.42, 0.42)],
                [(0.75, 0.52), (0.88, 0.76), (0.62, 0.98), (0.3, 0.98), (0.1, 0.85)],
            ]
        ],
    ),
    4: (
        [[[(0.58, 0.0), (0.06, 0.66)], [(0.95, 0.66)]], [[(0.72, 0.3), (0.72, 1.0)]]],
        [[[(0.72, 1.0), (0.72, 0.0)], [(0.06, 0.68)], [(0.95, 0.68)]]],
        [[[(0.18, 0.0), (0.12, 0.56)], [(0.92, 0.56)]], [[(0.72, 0.02), (0.72, 1.0)]]],
    ),
    5: (
        [
            [
                [(0.82, 0.02), (0.28, 0.02)],
                [(0.22, 0.45)],
                [(0.55, 0.37), (0.83, 0.52), (0.85, 0.78), (0.6, 0.98), (0.28, 0.98), (0.1, 0.86)],
            ]
        ],
        [
            [
                [(0.28, 0.02), (0.22, 0.45)],
                [(0.55, 0.37), (0.83, 0.52), (0.85, 0.78), (0.6, 0.98), (0.28, 0.98), (0.1, 0.86)],
            ],
            [[(0.28, 0.02), (0.88, 0.0)]],
        ],
    ),
    6: (
        [
            [
                [
                    (0.78, 0.04),
                    (0.45, 0.18),
                    (0.2, 0.5),
                    (0.2, 0.82),
                    (0.48, 1.0),
                    (0.78, 0.86),
                    (0.8, 0.62),
                    (0.52, 0.5),
                    (0.24, 0.62),
                ]
            ]
        ],
        [
            [
                [
                    (0.7, 0.0),
                    (0.38, 0.35),
                    (0.2, 0.7),
                    (0.35, 0.98),
                    (0.7, 0.95),
                    (0.82, 0.72),
                    (0.56, 0.55),
                    (0.25, 0.7),
                ]
            ]
        ],
    ),
    7: (
        [[[(0.06, 0.02), (0.94, 0.02)], [(0.4, 1.0)]]],
        [[[(0.08, 0.16), (0.08, 0.02)], [(0.94, 0.02)], [(0.6, 0.45), (0.45, 1.0)]]],
        [[[(0.06, 0.02), (0.94, 0.02)], [(0.4, 1.0)]], [[(0.3, 0.52), (0.82, 0.5)]]],
    ),
    8: (
        [
            [
                [
                    (0.74, 0.12),
                    (0.5, 0.0),
                    (0.24, 0.12),
                    (0.3, 0.34),
                    (0.7, 0.6),
                    (0.78, 0.86),
                    (0.5, 1.0),
                    (0.22, 0.86),
                    (0.3, 0.6),
                    (0.7, 0.35),
                    (0.76, 0.12),
                    (0.52, 0.0),
                ]
            ]
        ],
        [[_oval(0.5, 0.24, 0.3, 0.24, 90, 1.05)], [_oval(0.5, 0.73, 0.38, 0.27, -90, 1.05)]],
    ),
    9: (
        [
            [
                _NINE_HEAD,
                [(0.78, 0.6), (0.72, 1.0)],
            ]
        ],
        [
            [
                _NINE_HEAD,
                [(0.8, 0.6), (0.66, 0.92), (0.38, 1.0)],
            ]
        ],
        [[_oval(0.48, 0.26, 0.34, 0.26, 0, 1.05)], [[(0.82, 0.06), (0.76, 1.0)]]],
    ),
}


@dataclass(frozen=True)
class Writer:
    """One person's habits, fixed for every digit they write."""

    forms: tuple[int, ...]  # per digit, the index of the letterform they use
    slant: float  # degrees; positive leans the top to the right
    width: float  # digit width as a share of its height
    pen: float  # pen width as a share of the digit's height
    sloppiness: float  # how far control points wander from the ideal shape (box units)
    shake: float  # amplitude of the slow wobble along each stroke (box units)

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Writer:
        return cls(
            forms=tuple(int(rng.integers(len(LETTERFORMS[d]))) for d in range(10)),
            slant=float(np.clip(rng.normal(6, 9), -15, 28)),
            width=float(rng.uniform(0.5, 0.85)),
            pen=float(rng.uniform(0.045, 0.13)),
            sloppiness=float(rng.uniform(0.015, 0.05)),
            shake=float(rng.uniform(0.0, 0.015)),
        )


@dataclass(frozen=True)
class Handwritten:
    """One handwritten digit: who wrote it and the pen path, ready to draw at any size."""

    label: int
    writer: int
    strokes: tuple[np.ndarray, ...]  # (n, 2) points along each stroke, in box units
    pen: float  # pen width, box units
    pressure: tuple[np.ndarray, ...]  # per point, 0.6..1: lighter and heavier stretches

    def coverage(self, field: int, rng: np.random.Generator, tilt: float = 0.0) -> np.ndarray:
        """Ink coverage in [0, 1] of a `field` x `field` square holding the digit about as
        MNIST fills its 28x28 field (20 pixels high), turned up to `tilt` degrees."""
        supersample = 2  # drawn at twice the size and averaged down: anti-aliased edges
        size = field * supersample
        height = size * rng.uniform(0.62, 0.74)
        angle = math.radians(rng.uniform(-tilt, tilt)) if tilt else 0.0
        rotation = np.array(
            [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
        )
        canvas = Image.new("L", (size, size), 0)
        draw = ImageDraw.Draw(canvas)
        radius = max(0.6, self.pen * height / 2)
        for points, pressure in zip(self.strokes, self.pressure, strict=True):
            xy = (points @ rotation.T) * height + size / 2
            for (x, y), p in zip(xy, pressure, strict=True):
                r = radius * (0.85 + 0.15 * p)
                draw.ellipse((x - r, y - r, x + r, y + r), fill=int(255 * p))
        small = canvas.reduce(supersample)
        return np.asarray(small, dtype=np.float32) / 255.0


def writer(split: str, number: int) -> Writer:
    return Writer.draw(np.random.default_rng([SPLITS[split], number]))


def handwritten(split: str, index: int) -> Handwritten:
    """The `index`-th digit of a split: writer index // 10 writes digit `label` of their
    ten, in an order of their own."""
    number, turn = divmod(index, DIGITS_PER_WRITER)
    hand = writer(split, number)
    order = np.random.default_rng([SPLITS[split], number, 10]).permutation(10)
    label = int(order[turn])
    rng = np.random.default_rng([SPLITS[split], number, 11, turn])
    form = LETTERFORMS[label][hand.forms[label]]
    strokes = tuple(_trace(stroke, hand, rng) for stroke in form)
    return Handwritten(
        label=label,
        writer=number,
        strokes=strokes,
        pen=hand.pen * rng.uniform(0.9, 1.1),
        pressure=tuple(_pressure(len(points), rng) for points in strokes),
    )


def _trace(stroke: Stroke, hand: Writer, rng: np.random.Generator) -> np.ndarray:
    """The pen's path for one stroke, centred on the box and shaped by the writer."""
    slant = math.tan(math.radians(hand.slant + rng.normal(0, 3)))
    width = hand.width * rng.uniform(0.92, 1.08)
    wander = hand.sloppiness * rng.uniform(0.7, 1.3)
    path: list[np.ndarray] = []
    start: np.ndarray | None = None
    for run in stroke:
        points = np.array(run, dtype=np.float64)
        points = points + rng.normal(0, wander, size=points.shape)
        if start is not None:
            points = np.vstack([start, points])
        curve = _smooth(points)
        path.append(curve if not path else curve[1:])
        start = curve[-1]
    xy = np.vstack(path)
    x, y = (xy[:, 0] - 0.5) * width, xy[:, 1] - 0.5
    x = x - y * slant  # y grows downwards, so the top moves right for a positive slant
    wobble = _wobble(len(xy), hand.shake, rng)
    return np.stack([x, y], axis=1) + wobble


def _smooth(points: np.ndarray, per_unit: int = 160) -> np.ndarray:
    """A Catmull-Rom curve through the points, sampled densely enough to draw with dots."""
    if len(points) == 2:
        steps = max(2, int(np.linalg.norm(points[1] - points[0]) * per_unit))
        t = np.linspace(0, 1, steps)[:, None]
        return points[0] * (1 - t) + points[1] * t
    padded = np.vstack([2 * points[0] - points[1], points, 2 * points[-1] - points[-2]])
    out = [points[:1]]
    for i in range(1, len(padded) - 2):
        p0, p1, p2, p3 = padded[i - 1], padded[i], padded[i + 1], padded[i + 2]
        steps = max(2, int(np.linalg.norm(p2 - p1) * per_unit))
        t = np.linspace(0, 1, steps)[1:, None]
        out.append(
            0.5
            * (
                2 * p1
                + (p2 - p0) * t
                + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t**2
                + (3 * p1 - p0 - 3 * p2 + p3) * t**3
            )
        )
    return np.vstack(out)


def _wobble(n: int, amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """A slow, smooth drift of the pen off its path (an unsteady hand)."""
    if not amplitude:
        return np.zeros((n, 2))
    t = np.linspace(0, 1, n)[:, None]
    phases = rng.uniform(0, 2 * math.pi, size=(3, 2))
    cycles = rng.uniform(0.5, 3.0, size=(3, 1))
    waves = np.sin(2 * math.pi * cycles[:, None, :] * t[None] + phases[:, None, :])
    return amplitude * waves.sum(axis=0) / math.sqrt(3)


def _pressure(n: int, rng: np.random.Generator) -> np.ndarray:
    """How hard the pen presses along a stroke: ink density between 0.6 and 1."""
    t = np.linspace(0, 1, n)
    return 0.8 + 0.2 * np.sin(2 * math.pi * rng.uniform(0.3, 1.5) * t + rng.uniform(0, 6.3))


def mnist_like(digit: Handwritten, *, seed: int = 0) -> np.ndarray:
    """The digit drawn cleanly as a 28x28 white-on-black uint8 field, the way MNIST
    stores its digits: the ceiling a photo of it can reach."""
    field = digit.coverage(112, np.random.default_rng(seed))
    image = Image.fromarray((field * 255).astype(np.uint8)).resize((28, 28), Image.Resampling.BOX)
    return np.asarray(image)


# The handwriting set's kinds of photo: an exercise book's pages in pen and in pencil,
# a drawing app's export, and chalk on a board (renderers in testkit/photos.py).
KINDS = (*photos.NOTEBOOK_KINDS, "tablet", "chalkboard")


def photo_set(n: int, *, split: str = "eval", kinds: Sequence[str] = KINDS) -> Iterator[Photo]:
    """`n` photos of handwritten digits from `split`'s writers, cycling through `kinds`."""
    for i in range(n):
        digit = handwritten(split, i)
        kind = kinds[i % len(kinds)]
        rng = np.random.default_rng([SPLITS[split], i, 12])
        encoded, ext = photos.RENDERERS[kind](digit.coverage, rng)
        name = f"{split}-{i:04d}-{kind}-{digit.label}.{ext}"
        yield Photo(name, kind, digit.label, None, encoded, mnist_like(digit))
