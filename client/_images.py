"""Decoding pictures: whatever predict() is given, as upright pixels, within limits.

A path, encoded bytes, a binary file object, a PIL image or a numpy array becomes a
float32 (H, W, C) array in [0, 1], C being 1 (gray), 2, 3 (colour) or 4 (with alpha),
reduced to at most WORK_SIZE pixels along the long side. On the way: refuse what is not
a picture of a digit before spending memory or time on it (decompression bombs from
the header, FIFOs and devices before reading a byte, files over MAX_FILE_BYTES, thin
strips), and apply the EXIF orientation (phones store photos sideways and set a flag).

What the pixels mean (ink, paper, rulings) is client._ink's and client._mnist_form's
business; this module knows only about files and pixel formats. client.preprocess is
the public face of all three.
"""

from __future__ import annotations

import io
import math
import os
import stat
import warnings
from pathlib import Path
from typing import IO, Union

import numpy as np
from PIL import Image, ImageOps

from client.errors import ImageError

__all__ = [
    "MAX_ASPECT",
    "MAX_FILE_BYTES",
    "MAX_PIXELS",
    "WORK_SIZE",
    "ImageInput",
    "box_reduce",
    "describe",
    "from_array",
    "from_picture",
    "load_image",
]

# Refuse images larger than this before decoding them: a small, highly compressed file
# can declare billions of pixels (a "decompression bomb"). 50 megapixels is above any
# phone camera in common use.
MAX_PIXELS = 50_000_000
# The most bytes read from a file or stream: an uncompressed 50-megapixel RGBA image
# (BMP, TIFF) fits, so does any photo. A path or stream that goes on (a device such as
# /dev/zero, stdin fed from one) is cut off here rather than taking all the memory.
MAX_FILE_BYTES = 200 * 1024 * 1024
# An image longer than this many times its width (or the reverse) is refused: it is a
# strip, not a picture of a digit, and reduced to WORK_SIZE its short side would be
# under 8 pixels, too few for the steps below (which would fail on an empty axis).
MAX_ASPECT = 100
# Photos are reduced to at most this many pixels along the long side before analysis;
# the digit ends up 20 pixels tall, so more resolution only costs time.
WORK_SIZE = 800

# What predict() accepts: a path, encoded bytes, a binary file, a PIL image or pixels.
ImageInput = Union[  # noqa: UP007 (a type alias evaluated at runtime)
    str, os.PathLike, bytes, bytearray, memoryview, IO[bytes], Image.Image, np.ndarray
]
_FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM")


def describe(image: ImageInput) -> str:
    """A short name for an input, used to say which one an error is about."""
    if isinstance(image, str | os.PathLike):
        return os.fspath(image)
    if isinstance(image, bytes | bytearray | memoryview):
        return f"<{len(image)} bytes>"
    if isinstance(image, Image.Image):
        return f"<PIL image {image.mode} {image.width}x{image.height}>"
    if isinstance(image, np.ndarray):
        return f"<array {image.dtype} {image.shape}>"
    name = getattr(image, "name", None)
    return str(name) if isinstance(name, str) else "<file object>"


def load_image(
    image: ImageInput, *, name: str | None = None, max_pixels: int = MAX_PIXELS
) -> Image.Image:
    """Decode an image file, bytes or file object (or pass a PIL image through), upright.

    The pixel count is checked from the header before anything is decoded.
    """
    name = name or describe(image)
    if isinstance(image, Image.Image):
        return _upright(image, name, max_pixels)
    if isinstance(image, np.ndarray):
        raise ImageError(f"{name}: an array is not an encoded image; pass it to preprocess()")
    if isinstance(image, str | os.PathLike):
        data = _read_file(Path(image), name)
    elif isinstance(image, bytes | bytearray | memoryview):
        data = bytes(image)
    elif hasattr(image, "read"):
        data = _read_stream(image, name)
    else:
        raise ImageError(
            f"{name}: unsupported input type {type(image).__name__}; pass a path, bytes, "
            "a binary file object, a PIL image or a numpy array"
        )
    if not data:
        raise ImageError(f"{name}: empty file")
    try:
        with warnings.catch_warnings():
            # Pillow warns between its limit and twice it; our own limit decides instead.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data), formats=_FORMATS)
    except Image.DecompressionBombError as exc:  # Pillow's own guard, at twice its limit
        raise ImageError(
            f"{name}: over {max_pixels / 1e6:.1f} megapixels; refused before decoding "
            f"(a decompression bomb?): {exc}"
        ) from exc
    except Exception as exc:  # Pillow's parsers raise many types on malformed headers
        raise ImageError(f"{name}: not an image (or an unsupported format)") from exc
    _check_size(*opened.size, name, max_pixels, decoding=True)
    if opened.format == "JPEG":
        # Decode at a reduced scale straight from the DCT: a 12 MP photo loads in a
        # fraction of the time, and nothing is lost since we reduce it anyway.
        scale = WORK_SIZE / max(opened.size)
        if scale < 1:
            opened.draft("RGB", (math.ceil(opened.width * scale), math.ceil(opened.height * scale)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened.load()
    except Image.DecompressionBombError as exc:  # a frame larger than the header said
        raise ImageError(f"{name}: refused, too many pixels ({exc})") from exc
    except Exception as exc:  # truncated data is OSError; damaged data anything at all
        raise ImageError(f"{name}: truncated or corrupt image data ({exc})") from exc
    return _upright(opened, name, max_pixels)


def _read_file(path: Path, name: str) -> bytes:
    """The bytes of a regular file, refusing anything else before reading a byte.

    Opened without blocking: a FIFO's open() would otherwise wait for a writer forever.
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        broken = " (a broken symbolic link)" if path.is_symlink() else ""
        raise ImageError(f"{name}: no such file{broken}") from None
    except IsADirectoryError:
        raise ImageError(f"{name}: is a directory, not an image") from None
    except OSError as exc:
        raise ImageError(f"{name}: cannot read: {exc.strerror or exc}") from exc
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise ImageError(f"{name}: is a directory, not an image")
        raise ImageError(f"{name}: not a regular file (a pipe, socket or device)")
    with open(fd, "rb") as file:
        return _read_stream(file, name)


def _read_stream(stream: IO[bytes], name: str) -> bytes:
    """Everything a binary stream holds, up to MAX_FILE_BYTES (ImageError beyond)."""
    limit = MAX_FILE_BYTES
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        try:
            # A raw stream may return less than asked for before its end; loop until b"".
            chunk = stream.read(limit + 1 - size)
        except OSError as exc:
            raise ImageError(f"{name}: cannot read: {exc.strerror or exc}") from exc
        if not isinstance(chunk, bytes | bytearray):
            if chunk is None:  # a non-blocking stream with nothing to read yet
                raise ImageError(f"{name}: stream has no data ready (non-blocking)")
            raise ImageError(f"{name}: file object must be opened in binary mode")
        if not chunk:
            break
        chunks.append(bytes(chunk))
        size += len(chunk)
    if size > limit:
        raise ImageError(f"{name}: over {limit} bytes; refused (no image needs that many)")
    return b"".join(chunks)


def _check_size(
    width: int, height: int, name: str, max_pixels: int, *, decoding: bool = False
) -> None:
    """Refuse an image by its size alone: no pixels, too many, or a thin strip.

    `decoding`: the size comes from a header, and nothing has been decoded yet.
    """
    before = "; refused before decoding" if decoding else ""
    if width < 1 or height < 1:
        raise ImageError(f"{name}: image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        bomb = f"{before} (a decompression bomb?)" if decoding else ""
        raise ImageError(
            f"{name}: {width}x{height} is {width * height / 1e6:.1f} megapixels, over the "
            f"limit of {max_pixels / 1e6:.1f}{bomb}"
        )
    if max(width, height) > MAX_ASPECT * min(width, height):
        raise ImageError(
            f"{name}: {width}x{height} is too long and thin to hold a digit (more than "
            f"{MAX_ASPECT}:1){before}"
        )


def _upright(image: Image.Image, name: str, max_pixels: int) -> Image.Image:
    _check_size(*image.size, name, max_pixels)
    try:
        return ImageOps.exif_transpose(image)
    except Exception as exc:  # a damaged EXIF block
        raise ImageError(f"{name}: corrupt image data ({exc})") from exc


def from_picture(image: Image.Image, name: str) -> np.ndarray:
    """An upright image as float32 (H, W, C) in [0, 1]: gray or colour, with its alpha
    channel if it has one, reduced to at most WORK_SIZE along the long side."""
    factor = math.ceil(max(image.size) / WORK_SIZE)
    try:
        if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
            return from_array(np.asarray(image), name, image.width * image.height)
        if image.mode == "P":
            image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        elif image.mode not in ("L", "LA", "RGB", "RGBA", "La", "RGBa"):
            image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
        if factor > 1:
            image = image.reduce(factor)  # box average: fast, and anti-aliased
        array = np.asarray(image, dtype=np.float32) / 255.0
    except Exception as exc:  # conversion of an exotic mode can fail in many ways
        raise ImageError(f"{name}: cannot decode pixels ({exc})") from exc
    return array if array.ndim == 3 else array[..., np.newaxis]


def from_array(array: np.ndarray, name: str, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """A numpy image (gray, RGB or RGBA; integer or float) as float32 (H, W, C) in [0, 1],
    reduced to at most WORK_SIZE along the long side."""
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[-1] in (1, 3, 4):
        pass
    elif a.ndim == 2:
        a = a[..., np.newaxis]
    elif a.ndim == 4 and a.shape[0] == 1 and a.shape[-1] in (1, 3, 4):
        a = a[0]
    else:
        raise ImageError(
            f"{name}: expected an image array of shape (H, W), (H, W, 1), (H, W, 3) or "
            f"(H, W, 4), got {a.shape}"
        )
    _check_size(a.shape[1], a.shape[0], name, max_pixels)
    if a.dtype == np.bool_:
        a = a.astype(np.float32)
    elif np.issubdtype(a.dtype, np.integer):
        # uint8 is 0..255; wider integers are taken as 16-bit unless they stay within 255
        top = 255.0 if a.dtype.itemsize == 1 or a.max() <= 255 else 65535.0
        a = a.astype(np.float32) / top
    elif np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float32)
        if not np.isfinite(a).all():
            raise ImageError(f"{name}: array holds NaN or infinite values")
        if a.min() < 0 or a.max() > 255:
            raise ImageError(
                f"{name}: float pixel values must be in [0, 1] (or 0..255), "
                f"got {a.min():g}..{a.max():g}"
            )
        if a.max() > 1:
            a = a / 255.0
    else:
        raise ImageError(f"{name}: unsupported array dtype {a.dtype}")
    factor = math.ceil(max(a.shape[:2]) / WORK_SIZE)
    if factor > 1:
        a = box_reduce(a, factor)
    return np.clip(a, 0.0, 1.0)


def box_reduce(a: np.ndarray, factor: int) -> np.ndarray:
    """(H, W, C) pixels shrunk `factor` times by averaging each factor x factor block
    (anti-aliased, and fast); a partial block at the far edges is dropped."""
    h, w = (a.shape[0] // factor) * factor, (a.shape[1] // factor) * factor
    a = a[:h, :w] if h and w else a
    return a.reshape(h // factor, factor, w // factor, factor, a.shape[2]).mean(axis=(1, 3))
