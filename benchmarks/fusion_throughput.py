"""Fusion throughput: the ensemble scores every fusion on the out-of-fold set and refits
learned ones fold by fold, over 10 fold/variant models x 4 TTA views x the release's 600
images x 38 landmarks. Target (issue "Ensemble"): one fixed fusion, or applying learned
weights, well under a second (median of ``--repeats`` after a warm-up). Fitting the weights
(NNLS per landmark) and a 5-round greedy selection are reported. Pure NumPy/SciPy:
``make bench`` runs it with ``OMP_NUM_THREADS=1`` for one core's figure.
"""

from __future__ import annotations

import numpy as np

from benchmarks.harness import Bench, main, median_seconds
from cephalo.ensemble import fusion

MODELS, VIEWS, IMAGES, LANDMARKS = 10, 4, 600, 38


def measure(bench: Bench, repeats: int) -> None:
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 2000, (IMAGES, LANDMARKS, 2))
    coords = truth[None] + rng.normal(0, 20, (MODELS * VIEWS, IMAGES, LANDMARKS, 2))
    confidence = rng.uniform(0, 1, coords.shape[:3])
    spacing = np.full(IMAGES, 0.1)
    weights = fusion.fit_learned(coords, truth, spacing)
    for method in fusion.FIXED:
        seconds = median_seconds(lambda m=method: fusion.fuse_fixed(coords, m, confidence), repeats)
        bench.held(f"fuse {method} (median)", 1000 * seconds, "ms", "<", 1000)
    seconds = median_seconds(lambda: fusion.apply_weights(coords, weights), repeats)
    bench.held("apply learned weights (median)", 1000 * seconds, "ms", "<", 1000)
    fits = {
        "fit learned weights": lambda: fusion.fit_learned(coords, truth, spacing),
        "fit greedy (5 rounds)": lambda: fusion.fit_greedy(coords, truth, spacing, rounds=5),
    }
    for name, fit in fits.items():
        bench.informative(f"{name} (median)", 1000 * median_seconds(fit, 3), "ms")
    bench.record(shape=list(coords.shape))


if __name__ == "__main__":
    main(measure, repeats=5)
