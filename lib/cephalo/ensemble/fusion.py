"""Coordinate-level fusion of many predictions of the same images, and its honest scoring.

Every function takes the members' coordinates as one array ``coords`` (M members, N images,
K landmarks, 2) and is vectorized over images and landmarks. Learned fusions are fitted on
out-of-fold predictions with the ground truth; :func:`cross_validated` reports what a
fitted fusion scores on images it was not fitted to.

- ``mean``, ``median`` (coordinate-wise), ``confidence`` (confidence-weighted mean),
  ``robust`` (the mean of the members within twice the median distance of the
  coordinate-wise median: one member's wild miss does not drag the landmark);
- ``learned``: weights per member and landmark, non-negative and summing to one, fitted by
  non-negative least squares on the radial error in mm;
- ``greedy``: Caruana-style forward selection with replacement, one weight per member.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.optimize import nnls

from cephalo.metrics import radial_errors

FIXED = ("mean", "median", "confidence", "robust")
LEARNED = ("learned", "greedy")
METHODS = FIXED + LEARNED


def fuse_fixed(coords: np.ndarray, method: str, confidence: np.ndarray | None = None) -> np.ndarray:
    """(N, K, 2) from (M, N, K, 2) by a rule that needs no fitting."""
    if method == "mean":
        return coords.mean(axis=0)
    if method == "median":
        return np.median(coords, axis=0)
    if method == "confidence":
        if confidence is None:
            raise ValueError("confidence-weighted fusion needs the members' confidences")
        weights = np.clip(confidence, 1e-6, None)[..., None]
        return (coords * weights).sum(axis=0) / weights.sum(axis=0)
    if method == "robust":
        centre = np.median(coords, axis=0)
        distance = np.linalg.norm(coords - centre, axis=-1)  # (M, N, K)
        limit = 2 * np.median(distance, axis=0) + 1e-9
        keep = (distance <= limit)[..., None]
        return (coords * keep).sum(axis=0) / keep.sum(axis=0)
    raise ValueError(f"unknown fusion {method!r}; choose from {', '.join(METHODS)}")


def apply_weights(coords: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted sum over members: ``weights`` (M, K) per landmark or (M,) for all."""
    if weights.ndim == 1:
        weights = np.repeat(weights[:, None], coords.shape[2], axis=1)
    return np.einsum("mnkc,mk->nkc", coords, weights)


def fit_learned(coords: np.ndarray, truth: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """(M, K) weights, each column non-negative and summing to one, minimising the squared
    radial error in mm of the weighted mean, landmark by landmark."""
    members, _, landmarks, _ = coords.shape
    scaled = coords * spacing[None, :, None, None]
    target = truth * spacing[:, None, None]
    weights = np.empty((members, landmarks))
    penalty = 1e3 * max(float(np.abs(scaled).max()), 1.0)  # enforces the sum-to-one row
    for k in range(landmarks):
        design = scaled[:, :, k, :].reshape(members, -1).T  # (N*2, M)
        rows = np.vstack([design, np.full((1, members), penalty)])
        values = np.concatenate([target[:, k, :].ravel(), [penalty]])
        w, _ = nnls(rows, values)
        weights[:, k] = w / w.sum() if w.sum() > 0 else 1 / members
    return weights


def fit_greedy(
    coords: np.ndarray, truth: np.ndarray, spacing: np.ndarray, rounds: int = 25
) -> np.ndarray:
    """(M,) weights: forward selection with replacement (Caruana et al., 2004), starting
    from the best single member and adding whichever member lowers the MRE of the running
    mean most, for ``rounds`` picks; weights are pick counts over picks."""
    members = coords.shape[0]
    single = [radial_errors(coords[m], truth, spacing).mean() for m in range(members)]
    counts = np.zeros(members)
    counts[int(np.argmin(single))] = 1
    total = coords[int(np.argmin(single))].copy()
    for _ in range(rounds - 1):
        picks = counts.sum()
        candidates = (total[None] + coords) / (picks + 1)  # (M, N, K, 2)
        scores = [radial_errors(c, truth, spacing).mean() for c in candidates]
        best = int(np.argmin(scores))
        counts[best] += 1
        total += coords[best]
    return counts / counts.sum()


FITTERS: dict[str, Callable[..., np.ndarray]] = {"learned": fit_learned, "greedy": fit_greedy}


def cross_validated(
    method: str,
    coords: np.ndarray,
    truth: np.ndarray,
    spacing: np.ndarray,
    groups: np.ndarray,
) -> np.ndarray:
    """(N, K, 2) fused coordinates where each image's fusion was fitted without its group
    (``groups``: the images' folds), so scoring them measures the fusion honestly."""
    fused = np.empty(coords.shape[1:])
    for group in np.unique(groups):
        held = groups == group
        weights = FITTERS[method](coords[:, ~held], truth[~held], spacing[~held])
        fused[held] = apply_weights(coords[:, held], weights)
    return fused
