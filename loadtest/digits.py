"""Real MNIST test digits for requests, prepared once per process.

Load tests send digits the model never trained on, with their labels, so every answer
can be checked: a server that is fast but wrong under load must show up as wrong.
Converting 10,000 images to float32 once (31 MB) keeps per-request work to a slice.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from contract.mnist import scale
from training import data


@dataclass(frozen=True)
class Digits:
    images: np.ndarray  # (n, 28, 28) float32 in [0, 1], white on black: what the model takes
    labels: np.ndarray  # (n,) int64, the true digit of each image

    def __len__(self) -> int:
        return len(self.labels)

    def pick(self, rng: random.Random, count: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """`count` consecutive digits from a random place: views, nothing is copied."""
        if not 1 <= count <= len(self):
            raise ValueError(f"can pick 1 to {len(self)} digits per request, not {count}")
        start = rng.randrange(len(self) - count + 1)
        return self.images[start : start + count], self.labels[start : start + count]


@functools.cache
def load(path: str | Path | None = None) -> Digits:
    """MNIST's test split (default: the project's checked copy, data/mnist.npz)."""
    mnist = data.load(path)
    # (n, 28, 28): the users pick and send slices, which Client.predict_tensor checks
    # (shape, range, dtype) as it sends them.
    images = scale(mnist.x_test)[..., 0]
    images.flags.writeable = False  # shared by every user of the process
    return Digits(images, mnist.y_test.astype(np.int64))
