"""The handwriting evaluation set: deterministic, balanced, and other writers than MNIST's."""

from __future__ import annotations

import io
from collections import Counter

import numpy as np
from PIL import Image, ImageOps

from testkit import handwriting, photos


def test_the_same_split_and_index_give_the_same_photo():
    first = list(handwriting.photo_set(3, split="eval"))
    again = list(handwriting.photo_set(3, split="eval"))
    assert [p.data for p in first] == [p.data for p in again]
    assert [p.name for p in first] == [
        f"eval-{i:04d}-{kind}-{p.label}.{p.name.rsplit('.', 1)[1]}"
        for i, (kind, p) in enumerate(zip(handwriting.KINDS, first, strict=False))
    ]


def test_development_and_evaluation_writers_differ():
    dev = [handwriting.writer("dev", n) for n in range(20)]
    held_out = [handwriting.writer("eval", n) for n in range(20)]
    assert not {(w.slant, w.width, w.pen) for w in dev} & {
        (w.slant, w.width, w.pen) for w in held_out
    }
    different = sum(
        not np.array_equal(
            handwriting.mnist_like(handwriting.handwritten("dev", i)),
            handwriting.mnist_like(handwriting.handwritten("eval", i)),
        )
        for i in range(10)
    )
    assert different == 10


def test_every_writer_writes_each_digit_once_and_every_kind_comes_round():
    digits = [handwriting.handwritten("eval", i) for i in range(30)]
    for writer in range(3):
        labels = [d.label for d in digits if d.writer == writer]
        assert sorted(labels) == list(range(10))
    kinds = Counter(p.kind for p in handwriting.photo_set(2 * len(handwriting.KINDS)))
    assert kinds == {kind: 2 for kind in handwriting.KINDS}


def test_every_letterform_draws_a_digit_in_the_middle_of_its_field():
    rng = np.random.default_rng(0)
    hand = handwriting.Writer.draw(rng)
    for label, forms in handwriting.LETTERFORMS.items():
        for form in range(len(forms)):
            writer = handwriting.Writer(**{**hand.__dict__, "forms": (form,) * 10})
            strokes = tuple(handwriting._trace(stroke, writer, rng) for stroke in forms[form])
            pressure = tuple(np.ones(len(s)) for s in strokes)
            digit = handwriting.Handwritten(label, 0, strokes, 0.08, pressure)
            field = digit.coverage(112, rng)
            rows = np.flatnonzero(field.max(axis=1) > 0.5)
            assert rows[-1] - rows[0] >= 60, (label, form)  # about MNIST's 20 of 28 or more
            assert rows[0] > 0 and rows[-1] < 111, (label, form)  # and never cut off
            centre = np.average(np.arange(112), weights=field.sum(axis=0))
            assert abs(centre - 56) < 15, (label, form)


def test_pages_are_photos_with_lines_where_promised():
    for photo in handwriting.photo_set(len(handwriting.KINDS), split="dev"):
        image = ImageOps.exif_transpose(Image.open(io.BytesIO(photo.data)))
        assert max(image.size) >= 300, photo.name
        assert photo.original.shape == (28, 28) and photo.original.dtype == np.uint8
        assert photo.kind in handwriting.KINDS and photo.mnist_index is None
    assert set(handwriting.KINDS) >= set(photos.NOTEBOOK_KINDS)
