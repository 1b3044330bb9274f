"""The contact sheet: each input beside the 28x28 the model saw, titled with its answer.

This is the picture the seed tutorial draws with matplotlib to debug preprocessing,
made with Pillow alone so the client does not pull in a plotting library.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

THUMB = 112  # pixels, for both the original and the enlarged 28x28
PAD = 8
TITLE = 16
COLUMNS = 4


@dataclass(frozen=True)
class Entry:
    label: str  # the file name
    original: Image.Image | None  # None when the file could not be decoded
    model_input: np.ndarray | None  # (28, 28) in [0, 1], None when preprocessing failed
    title: str  # "7 (99.8%)" or "error: ..."
    ok: bool


def thumbnail(image: Image.Image) -> Image.Image:
    """The image as a viewer shows it: transparency over white, fitted into THUMB."""
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        shown = Image.new("RGB", rgba.size, "white")
        shown.paste(rgba, mask=rgba.getchannel("A"))
    else:
        shown = image.convert("RGB")
    shown.thumbnail((THUMB, THUMB))
    return shown


def render(entries: Sequence[Entry]) -> Image.Image:
    columns = min(COLUMNS, max(1, len(entries)))
    rows = max(1, math.ceil(len(entries) / columns))
    cell_w, cell_h = 2 * THUMB + 3 * PAD, THUMB + TITLE + 2 * PAD
    sheet = Image.new("RGB", (columns * cell_w, rows * cell_h), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for i, entry in enumerate(entries):
        x, y = (i % columns) * cell_w + PAD, (i // columns) * cell_h + PAD
        if entry.original is not None:
            thumb = thumbnail(entry.original)
            sheet.paste(thumb, (x + (THUMB - thumb.width) // 2, y + (THUMB - thumb.height) // 2))
        else:
            draw.rectangle((x, y, x + THUMB - 1, y + THUMB - 1), outline="gray")
        right = x + THUMB + PAD
        if entry.model_input is not None:
            pixels = (np.clip(entry.model_input, 0, 1) * 255).astype(np.uint8)
            big = Image.fromarray(pixels).resize((THUMB, THUMB), Image.Resampling.NEAREST)
            sheet.paste(big.convert("RGB"), (right, y))
        else:
            draw.rectangle((right, y, right + THUMB - 1, y + THUMB - 1), fill="black")
        caption = f"{_shorten(entry.label, 18)}: {entry.title}"
        draw.text(
            (x, y + THUMB + 2),
            _shorten(caption, 40),
            fill="black" if entry.ok else "red",
            font=font,
        )
    return sheet


def save(entries: Sequence[Entry], path: str | Path) -> Path:
    path = Path(path)
    render(entries).save(path)
    return path


def _shorten(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."
