"""Accuracy through the real server with the quick model: photos, and MNIST unchanged.

The quick model (~96% on MNIST) is weaker than the recipe's, so the photo bounds are
relative, not the goals (see `python -m benchmarks.client_accuracy` for those): each
photo is paired with the clean 28x28 digit it shows, and the preprocessing must not lose
significantly more of them than the model already gets wrong on the clean digits.
"""

from __future__ import annotations

import math

import numpy as np

from benchmarks.client_accuracy import PhotoScores, score_mnist, score_photos, server_scorer
from testkit import handwriting, photos

PHOTOS = 10 * len(photos.KINDS)
HANDWRITING = 2 * len(handwriting.KINDS)  # a slice of the evaluation set: 2 of each kind


def as_good_as_the_clean_digits(scores: PhotoScores) -> None:
    # McNemar's test on the pairs: `lost` photos the preprocessing got wrong although the
    # model reads the clean digit right, `gained` the reverse. If the preprocessing were
    # as good as the clean digit, lost - gained would be about 0 with a standard deviation
    # of sqrt(lost + gained); allow three of those (one-sided p < 0.002) plus one.
    lost = int(np.sum(scores.raw & ~scores.client))
    gained = int(np.sum(~scores.raw & scores.client))
    assert lost - gained <= 3 * math.sqrt(lost + gained) + 1, (lost, gained)


def test_photos_are_read_as_well_as_the_digits_they_show(server):
    scores = score_photos(server_scorer(server.target), photos.photo_set(PHOTOS, seed=1))
    as_good_as_the_clean_digits(scores)
    # and the set is hard: the tutorial's "resize and invert" reads most photos wrong
    assert scores.naive.mean() < 0.5 < scores.client.mean()


def test_other_writers_on_exercise_book_pages(server):
    """Handwriting that is not MNIST's, on plain, ruled and squared pages, in pen and
    pencil, through the real server: the printed lines must not cost the digits."""
    pictures = handwriting.photo_set(HANDWRITING, split="eval")
    scores = score_photos(server_scorer(server.target), pictures)
    assert sorted(set(scores.kinds)) == sorted(handwriting.KINDS)
    as_good_as_the_clean_digits(scores)
    assert scores.naive.mean() < 0.5 < scores.client.mean()


def test_mnist_test_digits_keep_their_accuracy(server):
    raw, through = score_mnist(server_scorer(server.target))
    assert abs(raw - through) <= 0.002  # the bound: within 0.2 points
