"""Coordinate-level fusion of many predictions of the same images, and its honest scoring.

Every function takes the members' coordinates as one array ``coords`` (M members, N images,
K landmarks, 2) and is vectorized over images and landmarks. Learned fusions are fitted on
out-of-fold predictions with the ground truth; :func:`cross_validated` reports what a
fitted fusion scores on images it was not fitted to.

- ``mean``, ``median`` (coordinate-wise), ``confidence`` (confidence-weighted mean),
  ``robust`` (the mean of the members within twice the median distance of the
  coordinate-wise median: one member's wild miss does not drag the landmark);
- ``learned``: weights per member and landmark, non-negative and summing to one, fitted by
  non-negative least squares on the radial error in mm, shrunk toward one set of weights
  for all landmarks by an amount chosen by cross-validation (few images: mostly pooled);
- ``greedy``: Caruana-style forward selection with replacement, one weight per member.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.optimize import nnls

from cephalo.metrics import radial_errors

FIXED = ("mean", "median", "confidence", "robust")
LEARNED = ("learned", "greedy")
METHODS = FIXED + LEARNED  # of coordinates, here
DISTRIBUTION = "distribution"  # of SimCC vectors or heatmaps (cephalo.ensemble.distribution)


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


def per_landmark(weights: np.ndarray, n_landmarks: int) -> np.ndarray:
    """(M, K) weights: as they are, or (M,) weights (the same for all landmarks) repeated."""
    if weights.ndim == 1:
        return np.repeat(weights[:, None], n_landmarks, axis=1)
    return weights


def apply_weights(coords: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted sum over members: ``weights`` (M, K) per landmark or (M,) for all."""
    return np.einsum("mnkc,mk->nkc", coords, per_landmark(weights, coords.shape[2]))


SHRINKAGE_GRID = (0.0, 0.1, 1.0, 10.0, np.inf)


def fit_learned(
    coords: np.ndarray, truth: np.ndarray, spacing: np.ndarray, shrinkage: float | None = None
) -> np.ndarray:
    """(M, K) weights, each column non-negative and summing to one, minimising the squared
    radial error in mm of the weighted mean, landmark by landmark, shrunk toward the weights
    fitted on all landmarks at once. With few images per-landmark weights chase noise; the
    shrinkage (``inf``: the pooled weights only, 0: none) is in units of the pooled fit's
    total squared error, and None chooses it from :data:`SHRINKAGE_GRID` by 4-fold
    cross-validation over the images."""
    members, images, landmarks, _ = coords.shape
    scaled = coords * spacing[None, :, None, None]
    target = truth * spacing[:, None, None]
    pooled = _simplex_nnls(scaled.reshape(members, -1).T, target.ravel())
    if shrinkage is None:
        shrinkage = choose_shrinkage(coords, truth, spacing)
    if np.isinf(shrinkage):
        return np.repeat(pooled[:, None], landmarks, axis=1)
    residual = np.mean((scaled.reshape(members, -1).T @ pooled - target.ravel()) ** 2)
    strength = shrinkage * 2 * images * residual
    weights = np.empty((members, landmarks))
    for k in range(landmarks):
        design = scaled[:, :, k, :].reshape(members, -1).T  # (N*2, M)
        weights[:, k] = _simplex_nnls(design, target[:, k, :].ravel(), pooled, strength)
    return weights


def choose_shrinkage(
    coords: np.ndarray, truth: np.ndarray, spacing: np.ndarray, folds: int = 4
) -> float:
    """The shrinkage of :data:`SHRINKAGE_GRID` whose weights score the lowest MRE on images
    they were not fitted to (images split into ``folds`` at random, seed 0)."""
    images = coords.shape[1]
    if images < 2 * folds:
        return np.inf  # too few images to trust anything but the pooled weights
    groups = np.random.default_rng(0).permutation(images) % folds
    scores = []
    for shrinkage in SHRINKAGE_GRID:
        fused = np.empty(coords.shape[1:])
        for group in range(folds):
            held = groups == group
            weights = fit_learned(coords[:, ~held], truth[~held], spacing[~held], shrinkage)
            fused[held] = apply_weights(coords[:, held], weights)
        scores.append(radial_errors(fused, truth, spacing).mean())
    return SHRINKAGE_GRID[int(np.argmin(scores))]


def _simplex_nnls(
    design: np.ndarray,
    values: np.ndarray,
    prior: np.ndarray | None = None,
    strength: float = 0.0,
) -> np.ndarray:
    """argmin ||design w - values||^2 + strength ||w - prior||^2 over w >= 0, sum(w) = 1
    (the sum enforced by a heavily weighted row)."""
    members = design.shape[1]
    rows, targets = [design], [values]
    if strength > 0 and prior is not None:
        rows.append(np.sqrt(strength) * np.eye(members))
        targets.append(np.sqrt(strength) * prior)
    big = 1e3 * max(float(np.abs(design).max()), 1.0)
    rows.append(np.full((1, members), big))
    targets.append(np.array([big]))
    w, _ = nnls(np.vstack(rows), np.concatenate(targets))
    return w / w.sum() if w.sum() > 0 else np.full(members, 1 / members)


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
