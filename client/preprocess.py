"""Turn a picture of a digit into what the model was trained on: an MNIST digit.

MNIST digits are white ink on black, size-normalized to fit a 20x20 box (keeping the
aspect ratio, anti-aliased), then placed in a 28x28 field so that their centre of mass
sits at the centre. The model only knows that distribution, so a photo must be brought
into it the same way; "resize to 28x28 and invert" gets under a third of photos right.

This module is the public entry point; the work is done in two steps, each its own
module because each changes for its own reasons:

1. decoding (client._images): a path, bytes, file object, PIL image or array becomes
   upright pixels, refusing what is no picture (decompression bombs from the header,
   FIFOs and devices, files over MAX_FILE_BYTES, thin strips) and applying the EXIF
   orientation;
2. MNIST form (client._mnist_form, finding the ink in client._ink): transparency onto
   white, the paper's colour estimated locally, ink by colour distance and polarity,
   printed rulings removed, the digit's own blob cropped, thin strokes given MNIST's
   weight, scaled into 20x20 and centred by mass in 28x28.

An image that is already an MNIST digit (clean, 28x28, white on black) comes through
unchanged, and an array of one skips both steps.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from client import _images, _mnist_form
from client._images import MAX_FILE_BYTES, MAX_PIXELS, ImageInput, describe, load_image
from client._mnist_form import BOX, CENTRE, SIZE

__all__ = [
    "BOX",
    "CENTRE",
    "MAX_FILE_BYTES",
    "MAX_PIXELS",
    "SIZE",
    "ImageInput",
    "Prepared",
    "describe",
    "load_image",
    "prepare",
    "preprocess",
]


@dataclass(frozen=True)
class Prepared:
    """A picture as decoded, and the MNIST digit made from it."""

    picture: Image.Image | None  # upright, full size; None when the input was an array
    digit: np.ndarray  # (28, 28) float32 in [0, 1], white on black: what preprocess returns


def preprocess(
    image: ImageInput, *, name: str | None = None, max_pixels: int = MAX_PIXELS
) -> np.ndarray:
    """The 28x28 float32 array in [0, 1], white digit on black, that the model should see.

    `name` is how errors refer to the input (default: the path, or a description).
    Raises ImageError for anything that is not a usable picture of a digit.
    """
    return prepare(image, name=name, max_pixels=max_pixels).digit


def prepare(
    image: ImageInput, *, name: str | None = None, max_pixels: int = MAX_PIXELS
) -> Prepared:
    """preprocess(), also handing back the decoded picture: for a caller that shows the
    picture beside what the model saw (the CLI's contact sheet), without decoding twice.
    """
    if isinstance(image, np.ndarray):
        ready = _mnist_form.already_mnist(image)
        if ready is not None:
            return Prepared(None, ready)
    name = name or describe(image)
    if isinstance(image, np.ndarray):
        picture, pixels = None, _images.from_array(image, name, max_pixels)
    else:
        picture = load_image(image, name=name, max_pixels=max_pixels)
        pixels = _images.from_picture(picture, name)
    return Prepared(picture, _mnist_form.to_mnist_form(pixels, name))
