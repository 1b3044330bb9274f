"""The MNIST model's interface: what training exports and every caller relies on.

The serving signature takes `images`, float32 (n, 28, 28, 1) with pixels in [0, 1],
and answers `probabilities`, float32 (n, 10), and `classes`, int64 (n,). Training builds
the model and signature from these names, the client and the load test send and read
them, the smoke check and the benchmarks call them: a rename here is a rename
everywhere, never a silent mismatch between exporter and callers.
"""

from __future__ import annotations

import numpy as np

INPUT = "images"  # float32 (n, 28, 28, 1) in [0, 1], white ink on black
PROBABILITIES = "probabilities"  # float32 (n, 10), one softmax row per image
CLASSES = "classes"  # int64 (n,), the argmax of each row
OUTPUTS = (PROBABILITIES, CLASSES)
IMAGE_SHAPE = (28, 28, 1)
NUM_CLASSES = 10


def scale(images: np.ndarray) -> np.ndarray:
    """MNIST's uint8 (n, 28, 28) as the serving signature takes it: float32
    (n, 28, 28, 1) in [0, 1]. The one place that conversion is written."""
    return (images.astype(np.float32) / np.float32(255))[..., np.newaxis]
