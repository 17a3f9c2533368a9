"""Reference predictions that need no model, to know what a trained one must beat."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cephalo.data.prepared import PreparedImage


def mean_shape(train: Sequence[PreparedImage], targets: Sequence[PreparedImage]) -> np.ndarray:
    """Each landmark at its mean training position, relative to the image size.

    Returns (len(targets), K, 2) pixel coordinates: the mean of x / width and y / height over
    the training images, scaled to each target image.
    """
    relative = np.stack([image.points / (image.width, image.height) for image in train])
    mean = relative.mean(axis=0)
    return np.stack([mean * (image.width, image.height) for image in targets])
