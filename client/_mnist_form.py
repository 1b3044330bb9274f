"""Bringing pixels to MNIST form: white ink on black, 20x20 in a 28x28 field, centred.

MNIST digits are white ink on black, size-normalized to fit a 20x20 box (keeping the
aspect ratio, anti-aliased), then placed in a 28x28 field so that their centre of mass
sits at the centre. The model only knows that distribution, so a photo must be brought
into it the same way; "resize to 28x28 and invert" gets under a third of photos right.

Steps, each for a reason (the pixels come decoded and upright from client._images):
1. find the ink (client._ink): transparency onto white, the paper's colour estimated
   locally and ink measured as the colour distance from it, the polarity read (ink on
   paper or chalk on a board), printed rulings and grids taken out, the noise floor
   subtracted;
2. crop to the digit's own blob of ink, give thin strokes (fine pens, pencil) MNIST's
   weight, scale into 20x20, centre by mass in 28x28.

An image that is already an MNIST digit (clean, 28x28, white on black) comes through
unchanged: its background is exactly zero, its ink box is 20 pixels, its mass centred.
already_mnist() recognises such arrays and lets them skip all of the above.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from client._ink import FAINT, SMALL, flatten_alpha, measure_ink
from client.errors import ImageError

__all__ = ["BOX", "CENTRE", "SIZE", "already_mnist", "to_mnist_form"]

SIZE = 28  # the model's input field
BOX = 20  # the digit is scaled to fit a BOX x BOX square inside it, as MNIST's were
CENTRE = 14.0  # where MNIST's centres of mass sit (row and column index, measured)
# The fast path's test of "already an MNIST digit" (see already_mnist). Brightness is in
# 0..1; lengths and positions are in pixels of the 28x28 field.
# The brightest a pixel of the outermost rows and columns may be: more is light paper,
# or ink running off the edge, which need the full pipeline.
FAST_MAX_FRAME = 0.1
# Pixels at least this bright are the ones the digit's box is measured on.
FAST_INK = 0.25
# The least and most the box's longer side may measure: MNIST's BOX of 20, give or take
# the anti-aliased rim that falls under FAST_INK.
FAST_BOX = (17, 21)
# The field's middle by row and column index, and how far from it (along each axis) the
# centre of mass may be: MNIST's digits are centred by mass to within a pixel.
FAST_CENTRE = (SIZE - 1) / 2
FAST_CENTRE_SLACK = 1.5


def to_mnist_form(pixels: np.ndarray, name: str) -> np.ndarray:
    """The 28x28 float32 MNIST digit in decoded (H, W, C) pixels (see client._images).

    Raises ImageError, naming the input as `name`, when there is no ink to be found.
    """
    pixels = flatten_alpha(pixels)
    ink = measure_ink(pixels)
    # Faint specks are not a digit's box in a photo; in a small clean image all ink counts.
    threshold = 0.0 if max(pixels.shape[:2]) <= SMALL else 2 * FAINT
    if ink is None or not (ink > threshold).any():
        raise ImageError(f"{name}: no ink found; the image looks blank")
    return _to_mnist(ink, threshold)


def already_mnist(array: np.ndarray) -> np.ndarray | None:
    """The array itself (as float32 in [0, 1]) if it is already an MNIST digit, else None.

    A 28x28 white-on-black digit whose box and centre of mass sit where MNIST puts them
    comes out of the full pipeline unchanged (within 1/255, measured on the test set),
    so it skips the pipeline: ~10 us instead of ~1.4 ms per image, which is what lets a
    client send thousands of prepared digits a second. 99% of MNIST's test digits pass.
    """
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.shape != (SIZE, SIZE):
        return None
    if array.dtype == np.uint8:
        digit = array.astype(np.float32) * np.float32(1 / 255)
    elif array.dtype in (np.float32, np.float64) and array.min() >= 0.0 and array.max() <= 1.0:
        digit = array.astype(np.float32)
    else:
        return None
    frame = max(digit[0].max(), digit[-1].max(), digit[:, 0].max(), digit[:, -1].max())
    if frame > FAST_MAX_FRAME:
        return None  # light paper, or ink at the edge: needs the full treatment
    rows = np.flatnonzero(digit.max(axis=1) > FAST_INK)
    cols = np.flatnonzero(digit.max(axis=0) > FAST_INK)
    low, high = FAST_BOX
    if rows.size == 0 or not low <= max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 <= high:
        return None  # not scaled to MNIST's 20x20 box
    mass = digit.sum()
    centre_y = digit.sum(axis=1) @ _INDEX / mass
    centre_x = digit.sum(axis=0) @ _INDEX / mass
    if max(abs(centre_y - FAST_CENTRE), abs(centre_x - FAST_CENTRE)) > FAST_CENTRE_SLACK:
        return None  # not centred by mass
    return digit / digit.max()  # the pipeline's contrast stretch to a full-white peak


_INDEX = np.arange(SIZE, dtype=np.float32)  # row (and column) numbers, for centres of mass


def _box_mean(a: np.ndarray, radius: int) -> np.ndarray:
    """The mean over the (2 * radius + 1)-pixel square around each pixel (zero outside)."""
    size = 2 * radius + 1
    padded = np.pad(a, radius + 1)
    total = padded.cumsum(axis=0).cumsum(axis=1)
    h, w = a.shape
    window = (
        total[size:, size:][:h, :w]
        - total[:-size, size:][:h, :w]
        - total[size:, :-size][:h, :w]
        + total[:-size, :-size][:h, :w]
    )
    return window / (size * size)


def _to_mnist(ink: np.ndarray, threshold: float) -> np.ndarray:
    """Crop to the ink, fit into 20x20 keeping the aspect ratio, centre by mass in 28x28."""
    top, bottom, left, right = _ink_box(ink, threshold)
    crop = _stroke_weight(ink[top:bottom, left:right])
    h, w = crop.shape
    if max(h, w) != BOX:
        scale = BOX / max(h, w)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        # Box filtering when shrinking averages each output pixel's whole footprint,
        # which is the anti-aliasing MNIST's digits have; bilinear when enlarging.
        resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
        crop = np.asarray(Image.fromarray(crop, mode="F").resize(size, resample))
        crop = np.clip(crop, 0.0, 1.0)
        h, w = crop.shape
    # MNIST strokes reach full white however thin the pen was. (The box holds ink above
    # the threshold, and averaging cannot lose all of it, so the peak is positive.)
    crop = crop / float(crop.max())

    mass = crop.sum()
    rows, cols = np.arange(h), np.arange(w)
    cy = float((crop.sum(axis=1) * rows).sum() / mass)
    cx = float((crop.sum(axis=0) * cols).sum() / mass)
    out = np.zeros((SIZE, SIZE), dtype=np.float32)
    oy, ox = round(CENTRE - cy), round(CENTRE - cx)
    # Paste, clipping whatever the shift pushes off the field (rare, lopsided digits).
    y0, x0 = max(oy, 0), max(ox, 0)
    y1, x1 = min(oy + h, SIZE), min(ox + w, SIZE)
    out[y0:y1, x0:x1] = crop[y0 - oy : y1 - oy, x0 - ox : x1 - ox]
    return out


# MNIST's strokes, measured as 2 * area / outline of the ink above half strength in the
# 20-pixel box (test set): median 1.85 pixels, 10th percentile 1.35. A photo's strokes
# thinner than THIN (a fine pen on a large digit, grainy pencil) are thickened to about
# STROKE, as MNIST's were drawn.
STROKE = 1.85
THIN = 1.35
STEP = 4  # stroke weight is measured and changed at 4x the box's size, then reduced


def _stroke_weight(crop: np.ndarray) -> np.ndarray:
    """A large crop reduced to STEP x the box, its strokes thickened if thinner than
    MNIST's. Small crops (already MNIST-sized drawings) are returned as they are."""
    h, w = crop.shape
    scale = STEP * BOX / max(h, w)
    if scale >= 1:
        return crop
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    mid = np.asarray(Image.fromarray(crop, mode="F").resize(size, Image.Resampling.BOX))
    mid = mid / float(mid.max())
    width = _stroke_width(mid) / STEP
    if width >= THIN:
        return mid
    return _dilate(mid, max(1, round((STROKE - width) * STEP / 2)))


def _stroke_width(ink: np.ndarray) -> float:
    """Mean stroke width in pixels: twice the area over the outline of the strong ink."""
    strong = ink > 0.5 * float(ink.max())
    outline = np.count_nonzero(np.diff(strong, axis=0)) + np.count_nonzero(np.diff(strong, axis=1))
    return 2.0 * np.count_nonzero(strong) / max(1, outline)


def _dilate(ink: np.ndarray, radius: int) -> np.ndarray:
    """Grey dilation by a square of side 2 * radius + 1 (strokes grow by `radius` each
    side, and the grain of pencil fills in), on a canvas grown to make room."""
    out = np.pad(ink, radius)
    for axis in (0, 1):
        grown = out.copy()
        n = out.shape[axis]
        for d in range(1, radius + 1):
            ahead = [slice(None)] * 2
            behind = [slice(None)] * 2
            ahead[axis], behind[axis] = slice(d, n), slice(0, n - d)
            grown[tuple(ahead)] = np.maximum(grown[tuple(ahead)], out[tuple(behind)])
            grown[tuple(behind)] = np.maximum(grown[tuple(behind)], out[tuple(ahead)])
        out = grown
    return out


def _ink_box(ink: np.ndarray, threshold: float) -> tuple[int, int, int, int]:
    """Rows [top, bottom) and columns [left, right) holding the digit.

    Stray specks away from the digit (dust, a pen tap) would stretch a plain bounding
    box, so a light group of lines is dropped from either side when a wide empty gap
    separates it from the rest. A digit's own detached strokes are close by, and kept.
    In photos, ink must also be dense around it to count: what is left of a printed
    ruling or grid (faint specks, scattered over the whole page) is not, while a
    stroke, even a pixel wide, is. And only the digit's own blob counts (see _blob).
    """
    strokes = np.where(ink > threshold, ink, 0.0)
    if threshold > 0:
        dense = np.where(_box_mean(strokes, 3) > threshold / 2, strokes, 0.0)
        if dense.any():
            strokes = dense * _blob(dense)
    return (*_extent(strokes.sum(axis=1)), *_extent(strokes.sum(axis=0)))


BLOB_GRID = 96  # connected pieces of ink are found on a grid this size along the long side
BLOB_REACH = 0.25  # pieces this close to the digit (as a share of its size) belong to it


def _blob(strokes: np.ndarray) -> np.ndarray:
    """A 0/1 mask of the digit: the heaviest connected piece of ink, and every piece
    within reach of it (a 5's bar, a broken pencil or chalk stroke), grown until no
    other piece is near. A stray mark elsewhere (what is left of a shadow's edge or a
    ruling, a smudge) is not part of it, however long it is."""
    factor = max(1, math.ceil(max(strokes.shape) / BLOB_GRID))
    h, w = (math.ceil(n / factor) for n in strokes.shape)
    padded = np.pad(
        strokes, ((0, h * factor - strokes.shape[0]), (0, w * factor - strokes.shape[1]))
    )
    cells = padded.reshape(h, factor, w, factor)
    mass, occupied = cells.sum(axis=(1, 3)), cells.max(axis=(1, 3)) > 0
    labels = _components(occupied)
    pieces = np.bincount(labels.ravel(), weights=mass.ravel())
    pieces[0] = 0.0  # label 0 is the empty background
    keep = np.zeros(len(pieces), dtype=bool)
    keep[int(np.argmax(pieces))] = True
    while True:
        rows, cols = np.nonzero(keep[labels])
        reach = BLOB_REACH * max(np.ptp(rows), np.ptp(cols), 1)
        near = labels[
            max(0, math.floor(rows.min() - reach)) : math.ceil(rows.max() + reach) + 1,
            max(0, math.floor(cols.min() - reach)) : math.ceil(cols.max() + reach) + 1,
        ]
        grown = keep.copy()
        grown[np.unique(near)] = True
        grown[0] = False
        if (grown == keep).all():
            break
        keep = grown
    mask = np.repeat(np.repeat(keep[labels], factor, axis=0), factor, axis=1)
    return mask[: strokes.shape[0], : strokes.shape[1]]


def _components(occupied: np.ndarray) -> np.ndarray:
    """Labels of the 8-connected pieces of a small boolean grid (0 where empty): each
    cell repeatedly takes the smallest label around it until none changes."""
    h, w = occupied.shape
    big = h * w + 1
    labels = np.where(occupied, np.arange(1, h * w + 1).reshape(h, w), big)
    while True:
        padded = np.pad(labels, 1, constant_values=big)
        around = np.min([padded[i : i + h, j : j + w] for i in range(3) for j in range(3)], axis=0)
        smallest = np.where(occupied, np.minimum(labels, around), big)
        if (smallest == labels).all():
            return np.where(occupied, labels, 0)
        labels = smallest


def _extent(profile: np.ndarray) -> tuple[int, int]:
    occupied = np.flatnonzero(profile > 0)
    breaks = np.flatnonzero(np.diff(occupied) > 1)
    starts = [int(occupied[0]), *(int(occupied[b + 1]) for b in breaks)]
    stops = [*(int(occupied[b]) + 1 for b in breaks), int(occupied[-1]) + 1]
    runs = list(zip(starts, stops, strict=True))
    total = float(profile.sum())

    def stray(run: tuple[int, int], gap: int, rest: tuple[int, int]) -> bool:
        light = profile[run[0] : run[1]].sum() < 0.02 * total
        return light and gap >= max(3, 0.25 * (rest[1] - rest[0]))

    while len(runs) > 1 and stray(runs[0], runs[1][0] - runs[0][1], (runs[1][0], runs[-1][1])):
        runs.pop(0)
    while len(runs) > 1 and stray(runs[-1], runs[-1][0] - runs[-2][1], (runs[0][0], runs[-2][1])):
        runs.pop()
    return runs[0][0], runs[-1][1]
