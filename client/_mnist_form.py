"""Bringing pixels to MNIST form: white ink on black, 20x20 in a 28x28 field, centred.

MNIST digits are white ink on black, size-normalized to fit a 20x20 box (keeping the
aspect ratio, anti-aliased), then placed in a 28x28 field so that their centre of mass
sits at the centre. The model only knows that distribution, so a photo must be brought
into it the same way; "resize to 28x28 and invert" gets under a third of photos right.

Steps, each for a reason (the pixels come decoded and upright from client._images):
1. composite transparency onto white (drawing apps export ink on a transparent canvas);
2. estimate the background colour locally (uneven light, vignetting, tinted paper, in
   regions small enough to follow the edge of a shadow), and measure ink as the colour
   distance from it, so coloured ink counts as much as black;
3. detect polarity (dark ink on paper, or chalk on a board) and keep only ink of that sign;
4. remove printed rulings and grids (an exercise book's lines are not ink);
5. subtract the noise floor, crop to the digit's own blob of ink, give thin strokes
   (fine pens, pencil) MNIST's weight, scale into 20x20, centre by mass in 28x28.

An image that is already an MNIST digit (clean, 28x28, white on black) comes through
unchanged: its background is exactly zero, its ink box is 20 pixels, its mass centred.
already_mnist() recognises such arrays and lets them skip all of the above.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

from client._images import box_reduce
from client.errors import ImageError

__all__ = ["BOX", "CENTRE", "SIZE", "already_mnist", "to_mnist_form"]

SIZE = 28  # the model's input field
BOX = 20  # the digit is scaled to fit a BOX x BOX square inside it, as MNIST's were
CENTRE = 14.0  # where MNIST's centres of mass sit (row and column index, measured)
# Images up to this size are treated as one background level (MNIST-like crops and
# small drawings); larger ones get a per-region background estimate.
SMALL = 64
# An image whose strongest ink differs from the background by less than this (in 0..1
# units of brightness) is a blank page.
MIN_CONTRAST = 0.08

# In photos, ink fainter than this share of the strongest ink is artefact, not stroke:
# it is subtracted, and the digit's box is found from what remains above twice it.
FAINT = 0.05

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
    pixels = _flatten_alpha(pixels)
    ink = _ink(pixels)
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


def _flatten_alpha(a: np.ndarray) -> np.ndarray:
    """Composite an alpha channel onto white paper; 1 or 3 colour channels remain.

    Ink drawn in white on a transparent canvas would vanish on white paper, so when
    compositing onto white leaves nothing but paper, the canvas is taken as black.
    """
    if a.shape[2] not in (2, 4):
        return a
    colour, alpha = a[..., :-1], a[..., -1:]
    on_white = colour * alpha + (1.0 - alpha)
    if _contrast(on_white) >= MIN_CONTRAST or _contrast(alpha) < MIN_CONTRAST:
        return on_white
    return colour * alpha


def _contrast(a: np.ndarray) -> float:
    return float(a.max() - a.min()) if a.size else 0.0


def _ink(pixels: np.ndarray) -> np.ndarray | None:
    """How much each pixel is ink, in [0, 1] (2-D), or None for a blank image."""
    small = max(pixels.shape[:2]) <= SMALL
    if small:
        luminance = pixels.mean(axis=2)
        strength, noise = _strength(pixels, small, _light_ink(luminance - np.median(luminance)))
        peak = float(strength.max())
    else:
        # Photos: read the page both ways (dark ink on paper, chalk on a board) and keep
        # the reading in which the ink stands out more from the noise. Judging polarity
        # from brightness alone fails when a shadow covers half the page: the lit half
        # is then brighter than the typical level by more than pencil is darker.
        # Both readings are made on a half-size copy, which is cheaper and tells as well.
        half = box_reduce(pixels, 2) if min(pixels.shape[:2]) >= 2 * SMALL else pixels
        readings = [_strength(half, small, light) for light in (False, True)]
        peaks = [float(_box3(strength).max()) for strength, _ in readings]
        standout = [peak - 4.0 * noise for peak, (_, noise) in zip(peaks, readings, strict=True)]
        light_ink = bool(np.argmax(standout))
        # The paper's colour is estimated in regions a tenth of the page across: larger
        # than any stroke. Where the strokes are thin, smaller regions follow the edge
        # of a shadow, which large ones would blur into a band of false ink.
        cells = _cells(readings[light_ink][0], peaks[light_ink], max(half.shape[:2]))
        strength, noise = _strength(pixels, small, light_ink, cells)
        peak = float(_box3(strength).max())
        strength = _remove_rulings(strength, peak, noise)
        peak = float(_box3(strength).max())  # a page of nothing but lines is blank
    floor = 4.0 * noise
    if not small:
        # Photos also carry faint structured artefacts (JPEG blocks, paper texture) that
        # the median does not see; a few percent of the ink's peak is invisible anyway.
        floor += FAINT * peak
    if peak - floor < MIN_CONTRAST:
        return None
    return np.clip((strength - floor) / (peak - floor), 0.0, 1.0).astype(np.float32)


# Regions along the long side in which the paper's colour is estimated: smaller than
# lighting changes, larger than strokes; up to FINE_CELLS where the strokes are thin.
CELLS = 10
FINE_CELLS = 40


def _cells(strength: np.ndarray, peak: float, long_side: int) -> int:
    """How many background regions fit along the long side, each 5 strokes wide."""
    strong = _box3(strength) > 0.6 * peak
    outline = np.count_nonzero(np.diff(strong, axis=0)) + np.count_nonzero(np.diff(strong, axis=1))
    stroke = 2.0 * np.count_nonzero(strong) / max(1, outline)
    return int(np.clip(long_side / (5 * max(stroke, 1.0)), CELLS, FINE_CELLS))


def _strength(
    pixels: np.ndarray, small: bool, light_ink: bool, cells: int = CELLS
) -> tuple[np.ndarray, float]:
    """How far each pixel is from the paper towards the ink's polarity, and the noise.

    Colour distance from the paper, so that red or blue ink is as strong as black ink
    of the same darkness; only deviations of the ink's polarity count. The noise is the
    background's own variation (sensor noise, paper grain): nearly every pixel is
    paper, so the median distance is the noise level, and ink is far above it.
    """
    diff = pixels - _background(pixels, small, light_ink, cells)
    strength = np.sqrt(np.mean(diff * diff, axis=2))
    noise = float(np.median(strength[::2, ::2]))  # every fourth pixel tells as well
    return np.where((diff.mean(axis=2) > 0) == light_ink, strength, 0.0), noise


def _remove_rulings(strength: np.ndarray, peak: float, noise: float) -> np.ndarray:
    """The ink strength with an exercise book's printed lines and squares taken out.

    Ruled and squared paper prints lines that are ink to every other step: they stretch
    the digit's box to the whole page. A printed ruling is told from writing by being
    thin, straight, running across the whole page, and fainter than the writing; each
    family of lines (across, then down) is found and its level subtracted along it.
    Where a stroke crosses or runs along a line it is darker than the line, and keeps
    its strength.
    """
    across = _remove_lines(strength, peak, noise)
    return _remove_lines(across.T, peak, noise).T


# A ruling is a line across the page at most this much askew, thinner than this share
# of the page (plus a few pixels of blur) and fainter than this share of the writing.
RULING_MAX_ANGLE = 5.0  # degrees
RULING_WIDTH = 0.012
RULING_STRENGTH = 0.6
RULING_STRIPS = 16  # a line must show in most of this many strips along its length


def _remove_lines(strength: np.ndarray, peak: float, noise: float) -> np.ndarray:
    """`strength` without its near-horizontal printed lines (see _remove_rulings)."""
    h, w = strength.shape
    if h < 32 or w < 32:
        return strength
    # Straighten the lines (to a fraction of a pixel, or a line drifting across a row
    # boundary would look fainter than it is): row r of `straight` follows a line.
    shift = (np.arange(w) - w / 2) * _line_slope(strength)
    straight = _shear(strength, shift)
    # A line's level, strip by strip: the median along the strip ignores a digit crossing
    # it; the median over strips says whether the line runs across the whole page.
    width = w // RULING_STRIPS
    strips = _strip_medians(straight, width)
    level = np.median(strips, axis=1)
    # Whether it is fainter than the writing is judged on the lightly smoothed strength
    # that `peak` was measured on, so a thin line is not compared with a thick stroke.
    faint = np.median(_strip_medians(_box3(straight), width), axis=1) < RULING_STRENGTH * peak
    local = np.zeros((h, RULING_STRIPS), dtype=np.float32)
    thin = [
        (start, stop)
        for start, stop in _runs(level > 3.0 * noise + 0.03 * peak)
        if stop - start <= 3 + RULING_WIDTH * h
    ]
    # Evenly spaced lines are a printed ruling however dark: no writing looks like that.
    # A single line (a margin) must also be fainter than the writing.
    regular = len(thin) >= 3 and _evenly_spaced([(a + b) / 2 for a, b in thin])
    for start, stop in thin:
        if not (regular or faint[start:stop].all()):
            continue
        # The band the line covers, with its blurred edges, and the line's strength in
        # each strip: its brightest stretch there (a thin line's pixels are brighter or
        # fainter as it crosses pixel boundaries, and noisy), as the median of the strip
        # and its neighbours (a digit crossing the line takes one or two strips), and
        # capped near the line's typical level in case writing runs along it. That is
        # the zero of the ink scale in the band: the line goes, and writing on it,
        # darker still, stays.
        band = slice(max(0, start - 2), min(h, stop + 2))
        block = straight[band, : width * RULING_STRIPS].reshape(-1, RULING_STRIPS, width)
        strongest = np.percentile(block, 90, axis=2).max(axis=0)
        padded = np.pad(strongest, 2, mode="edge")
        around = np.median(np.stack([padded[i : i + RULING_STRIPS] for i in range(5)]), axis=0)
        local[band] = np.minimum(1.5 * around, 1.6 * level[start:stop].max())
    if not local.any():
        return strength
    local = np.repeat(local, width, axis=1)
    local = np.pad(local, ((0, 0), (0, w - local.shape[1])), mode="edge")
    zero = _shear(local, -shift)
    cleaned = np.clip((strength - zero) / np.maximum(peak - zero, 1e-6), 0.0, 1.0) * peak
    return np.where(zero > 0, cleaned, strength).astype(np.float32)


def _shear(a: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """`a` with column x moved up by shift[x] rows (a fraction blends two rows)."""
    h, w = a.shape
    source = np.arange(h)[:, None] + shift[None, :]
    below = np.floor(source).astype(np.intp)
    fraction = (source - below).astype(np.float32)
    cols = np.arange(w)[None, :]
    top = np.where((below >= 0) & (below < h), a[np.clip(below, 0, h - 1), cols], 0.0)
    bottom = np.where((below >= -1) & (below < h - 1), a[np.clip(below + 1, 0, h - 1), cols], 0.0)
    return top * (1 - fraction) + bottom * fraction


def _evenly_spaced(centres: list[float]) -> bool:
    """Whether most gaps between successive lines are one spacing (give or take 15%)."""
    gaps = np.diff(centres)
    spacing = float(np.median(gaps))
    return bool(np.mean(np.abs(gaps - spacing) <= 0.15 * spacing + 1) >= 0.8)


def _strip_medians(a: np.ndarray, width: int) -> np.ndarray:
    """(rows, RULING_STRIPS): the median of each row within each strip of columns."""
    h = a.shape[0]
    return np.median(a[:, : width * RULING_STRIPS].reshape(h, RULING_STRIPS, width), axis=2)


def _line_slope(strength: np.ndarray) -> float:
    """The slope (rows per column) at which the image's near-horizontal lines run.

    Projecting the ink along the right slope stacks each line into one sharp peak; at a
    wrong slope the peaks smear. Columns are averaged in blocks, coarse angles tried
    first, then finer ones around the best.
    """
    h, w = strength.shape
    block = 16
    blocks = strength[:, : w // block * block].reshape(h, w // block, block).mean(axis=2)
    centres = (np.arange(blocks.shape[1]) + 0.5) * block - w / 2
    best = 0.0
    for step, span in ((0.25, RULING_MAX_ANGLE), (0.05, 0.25)):
        angles = best + np.arange(-span, span + step / 2, step)
        slopes = np.tan(np.radians(angles))
        offsets = np.round(slopes[:, None] * centres[None, :]).astype(np.intp)
        index = np.clip(np.arange(h)[None, :, None] + offsets[:, None, :], 0, h - 1)
        profiles = np.take_along_axis(blocks[None], index, axis=1).sum(axis=2)
        best = float(angles[np.argmax((profiles**2).sum(axis=1))])
    return math.tan(math.radians(best))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """The [start, stop) ranges where a 1-D boolean mask is True."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _background(pixels: np.ndarray, small: bool, light_ink: bool, cells: int = CELLS) -> np.ndarray:
    """The paper (or board) colour behind each pixel, smooth, ignoring the ink on it.

    Ink only ever darkens paper (and chalk only lightens a board) in every channel, so
    a high (low) percentile of each region is its paper colour even where a fifth of
    the region is ink, for any ink colour. `cells` regions span the long side.
    """
    q = 20 if light_ink else 80
    if small:
        return np.percentile(pixels.reshape(-1, pixels.shape[2]), q, axis=0)
    h, w, c = pixels.shape
    step = max(4, math.ceil(max(h, w) / cells))
    gh, gw = math.ceil(h / step), math.ceil(w / step)
    padded = np.pad(pixels, ((0, gh * step - h), (0, gw * step - w), (0, 0)), mode="edge")
    blocks = padded.reshape(gh, step, gw, step, c).transpose(0, 2, 4, 1, 3)
    grid = np.percentile(blocks.reshape(gh, gw, c, step * step), q, axis=3)
    # A region inside a thick stroke is mostly ink; its neighbours outvote it.
    grid = _median3(grid)
    return _upsample(grid, h, w, step)


def _median3(grid: np.ndarray) -> np.ndarray:
    gh, gw, _ = grid.shape
    padded = np.pad(grid, ((1, 1), (1, 1), (0, 0)), mode="edge")
    stack = np.stack([padded[i : i + gh, j : j + gw] for i in range(3) for j in range(3)])
    return np.median(stack, axis=0)


def _upsample(grid: np.ndarray, h: int, w: int, step: int) -> np.ndarray:
    """Bilinear interpolation of cell values (taken at cell centres) to every pixel.

    Beyond the outermost centres the trend is extended rather than held flat, because
    light falls off fastest in the corners (vignetting), and a flat estimate there
    would turn the shadow into ink.
    """
    gh, gw, _ = grid.shape
    y0, fy = _interpolation(h, gh, step)
    x0, fx = _interpolation(w, gw, step)
    y1, x1 = np.minimum(y0 + 1, gh - 1), np.minimum(x0 + 1, gw - 1)
    fy, fx = fy[:, None, None].astype(np.float32), fx[None, :, None].astype(np.float32)
    grid = grid.astype(np.float32)
    rows = grid[:, x0] * (1 - fx) + grid[:, x1] * fx  # along each row of cells first
    return np.clip(rows[y0] * (1 - fy) + rows[y1] * fy, 0.0, 1.0)


def _interpolation(n: int, cells: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """For each of `n` pixels: the cell before it and the weight of the one after."""
    position = (np.arange(n) + 0.5) / step - 0.5  # in units of cells, 0 = first centre
    if cells == 1:
        return np.zeros(n, dtype=int), np.zeros(n)
    before = np.clip(np.floor(position), 0, cells - 2).astype(int)
    return before, position - before  # < 0 or > 1 at the borders: extrapolation


def _light_ink(brightness: np.ndarray) -> bool:
    """Whether a small image's ink is lighter than its background (an MNIST digit).

    `brightness` is relative to the typical (background) level; the ink is on the side
    of the strongest deviation.
    """
    return float(brightness.max()) > -float(brightness.min())


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


def _box3(a: np.ndarray) -> np.ndarray:
    padded = np.pad(a, 1, mode="edge")
    h, w = a.shape
    return sum(padded[i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9.0


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
