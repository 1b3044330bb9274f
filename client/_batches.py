"""Pictures prepared batch by batch, each one failing on its own: the SDK's batching.

predict_many and predict_batches (in both clients) read their images through here:
lazily, `batch_size` at a time, so a long list never sits decoded in memory, and each
image becomes an ImageResult holding its digit, or the exception that stopped it. What
differs is what a failure does: predict_many raises it before its batch is sent;
predict_batches reports it in that image's result and sends the rest.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
from PIL import Image

from client import _core as core
from client._results import ImageResult, Prediction
from client.errors import UsageError, UsageTypeError
from client.preprocess import ImageInput, describe, prepare

# What a caller keeps of each decoded picture (the CLI: a thumbnail for its contact
# sheet), given the image's index; the picture itself is let go at once.
KeepPicture = Callable[[int, Image.Image], Any]


def prepared_batches(
    images: Iterable[ImageInput],
    batch_size: int,
    *,
    names: Iterable[str] | None = None,
    keep_picture: KeepPicture | None = None,
) -> Iterator[list[ImageResult]]:
    """`images` prepared lazily into lists of at most `batch_size` results, in order,
    none with a prediction yet. The input is checked now, not at the first batch."""
    core.check_batch_size(batch_size)
    # One path, one encoded image or one array is not a list of images: iterating it
    # would send characters, bytes or rows. An (n, H, W) array is n images, though.
    single = isinstance(images, str | bytes) or (
        isinstance(images, np.ndarray) and images.ndim not in (3, 4)
    )
    if single:
        raise UsageTypeError("predict_many takes a list of images; use predict() for one")
    named = _named(images, names) if names is not None else _described(images)
    return _batches(enumerate(named), batch_size, keep_picture)


def _batches(
    source: Iterator[tuple[int, tuple[str, ImageInput]]],
    batch_size: int,
    keep_picture: KeepPicture | None,
) -> Iterator[list[ImageResult]]:
    while batch := list(itertools.islice(source, batch_size)):
        yield [_prepare(index, name, image, keep_picture) for index, (name, image) in batch]


def _prepare(
    index: int, name: str, image: ImageInput, keep_picture: KeepPicture | None
) -> ImageResult:
    try:
        prepared = prepare(image, name=name)
        picture = None
        if keep_picture is not None and prepared.picture is not None:
            picture = keep_picture(index, prepared.picture)
    except Exception as exc:  # an ImageError, or a fault: either way, this image only
        return ImageResult(index, name, error=exc)
    return ImageResult(index, name, digit=prepared.digit, picture=picture)


def _described(images: Iterable[ImageInput]) -> Iterator[tuple[str, ImageInput]]:
    """Each image named by its path, or by its position and what it is."""
    for index, image in enumerate(images):
        described = describe(image)
        yield (
            (described if not described.startswith("<") else f"images[{index}] {described}"),
            image,
        )


def _named(images: Iterable[ImageInput], names: Iterable[str]) -> Iterator[tuple[str, ImageInput]]:
    given = iter(names)
    for index, image in enumerate(images):
        name = next(given, None)
        if name is None:
            raise UsageError(f"names ran out at image {index}: give one name per image")
        yield name, image
    if next(given, None) is not None:
        raise UsageError("more names than images: give one name per image")


def to_send(batch: list[ImageResult]) -> np.ndarray | None:
    """The batch's usable digits as one (n, 28, 28, 1) array; None if there are none."""
    digits = [result.digit for result in batch if result.digit is not None]
    return core.digits_batch(digits) if digits else None


def answered(batch: list[ImageResult], predictions: list[Prediction]) -> list[ImageResult]:
    """The batch with `predictions` given, in order, to its usable results."""
    answers = iter(predictions)
    return [
        dataclasses.replace(result, prediction=next(answers)) if result.error is None else result
        for result in batch
    ]


def raise_first_error(batch: list[ImageResult]) -> None:
    """predict_many's rule: the first image that could not be used stops the call."""
    for result in batch:
        if result.error is not None:
            raise result.error
