"""The augmentation layers that need labels or shape the digits: what they may change."""

import numpy as np
import tensorflow as tf

from training.model import RandomFlag


def bar_one(batch: int) -> np.ndarray:
    """A plain vertical 1 (MNIST's letterform): column 14, rows 4 to 23."""
    images = np.zeros((batch, 28, 28, 1), np.float32)
    images[:, 4:24, 13:15, 0] = 1.0
    return images


def flag(images: np.ndarray, labels: list[int], training: bool = True) -> np.ndarray:
    layer = RandomFlag(seed=0)
    return np.asarray(layer(tf.constant(images), tf.constant(labels), training=training))


def test_flag_is_added_to_some_ones_and_runs_down_to_the_left():
    images = bar_one(64)
    out = flag(images, [1] * 64)
    changed = [i for i in range(64) if not np.array_equal(out[i], images[i])]
    # RATE is a half: with 64 draws, far from none and far from all.
    assert 16 <= len(changed) <= 48
    for i in changed:
        added = (out[i, ..., 0] - images[i, ..., 0]) > 0.5
        rows, cols = np.nonzero(added)
        # Left of the bar, apart from the pen's round end on top of it.
        assert (cols[cols >= 13] <= 15).all() and (rows[cols >= 13] <= 5).all()
        assert rows.min() >= 2 and rows.max() <= 4 + 0.5 * 19 + 1  # from the top, half down at most
        # The further left, the lower: a stroke falling from the top of the bar.
        assert np.corrcoef(cols, rows)[0, 1] < -0.5
    # The bar itself is never dimmed.
    assert (out[..., 0][:, 4:24, 13:15] == 1.0).all()


def test_flag_leaves_other_digits_and_inference_alone():
    images = bar_one(32)
    assert np.array_equal(flag(images, [7] * 32), images)
    assert np.array_equal(flag(images, [1] * 32, training=False), images)


def test_blank_image_with_label_one_stays_blank():
    images = np.zeros((16, 28, 28, 1), np.float32)
    assert np.array_equal(flag(images, [1] * 16), images)
