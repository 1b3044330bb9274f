"""Finding the ink in a picture: how much each pixel is ink, whatever the page.

The first half of bringing a picture to MNIST form (client._mnist_form does the rest:
cropping, stroke weight, scaling, centring). A page is not black and white: light is
uneven, paper is tinted, a shadow crosses it, pens are coloured, chalk is lighter than
its board, and an exercise book prints lines of its own. So:
1. transparency is composited onto white (drawing apps export ink on a transparent
   canvas);
2. the paper's colour is estimated locally, in regions small enough to follow the edge
   of a shadow, and ink is measured as the colour distance from it, so coloured ink
   counts as much as black;
3. the polarity (dark ink on paper, or chalk on a board) is read, and only ink of that
   sign kept;
4. printed rulings and grids are taken out; then the noise floor is subtracted.
"""

from __future__ import annotations

import math

import numpy as np

from client._images import box_reduce

# Images up to this size are treated as one background level (MNIST-like crops and
# small drawings); larger ones get a per-region background estimate.
SMALL = 64
# An image whose strongest ink differs from the background by less than this (in 0..1
# units of brightness) is a blank page.
MIN_CONTRAST = 0.08

# In photos, ink fainter than this share of the strongest ink is artefact, not stroke:
# it is subtracted, and the digit's box is found from what remains above twice it.
FAINT = 0.05


def flatten_alpha(a: np.ndarray) -> np.ndarray:
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


def measure_ink(pixels: np.ndarray) -> np.ndarray | None:
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


def _box3(a: np.ndarray) -> np.ndarray:
    padded = np.pad(a, 1, mode="edge")
    h, w = a.shape
    return sum(padded[i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9.0
