"""Cross-validation folds and the organisers' fixed split.

Folds are stratified by acquisition group (centre, or spacing when no centre is given: see
:mod:`cephalo.data.groups`), so every fold holds the same mix of machines: a fold made of one
centre would measure domain shift, not model quality. The organisers' split (used by both
public baselines) is kept beside them for comparison with published numbers.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

import numpy as np

from cephalo.errors import DataError

RARE_GROUP = "other"


def stratified_folds(groups: Sequence[str], n_folds: int, seed: int) -> np.ndarray:
    """Fold index (0..n_folds-1) per image, each fold holding the same mix of groups.

    Groups with fewer images than folds cannot be spread over every fold; they are pooled
    into one group, ``"other"``, before stratifying.
    """
    if not 2 <= n_folds <= len(groups):
        raise DataError(f"need 2 <= folds <= {len(groups)} images, got folds={n_folds}")
    counts = Counter(groups)
    labels = [g if counts[g] >= n_folds else RARE_GROUP for g in groups]
    if Counter(labels)[RARE_GROUP] and Counter(labels)[RARE_GROUP] < n_folds:
        # Still too small: join the pooled images to the largest group instead.
        largest = max((g for g in labels if g != RARE_GROUP), key=labels.count, default=None)
        labels = [largest if g == RARE_GROUP and largest else g for g in labels]
    from sklearn.model_selection import StratifiedKFold  # a second to import; rarely needed

    folds = np.empty(len(groups), dtype=int)
    splitter = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
    for fold, (_, held_out) in enumerate(splitter.split(np.zeros(len(labels)), labels)):
        folds[held_out] = fold
    return folds


def organiser_split(n_images: int, seed: int = 2023) -> list[str]:
    """ "train" / "val" / "test" per image index, as the organisers' baseline splits.

    Their code seeds Python's ``random`` with 2023, shuffles the ids 0..399 and takes the
    first 300 for training, the next 50 for validation and the last 50 for testing; other
    image counts keep those proportions (3/4, 1/8, 1/8).
    """
    ids = list(range(n_images))
    random.Random(seed).shuffle(ids)
    n_train, n_val = n_images * 3 // 4, n_images // 8
    split = ["test"] * n_images
    for position, image in enumerate(ids):
        if position < n_train:
            split[image] = "train"
        elif position < n_train + n_val:
            split[image] = "val"
    return split
