"""Distribution-level fusion: average what the models believe, then decode once.

Instead of averaging decoded coordinates, each member's per-landmark distributions along x
and along y are brought into one frame and averaged: SimCC vectors as they are (softmax
with the KL loss's beta), heatmaps as their marginals (the clipped heatmap summed over rows
or columns). Members may differ in family, input size, split ratio, heatmap stride and TTA
view: every bin's position is mapped to original-image pixels (through the view's
axis-aligned inverse and the input crop, as MMPose maps keypoints back), and each marginal
is resampled linearly onto a common grid: that of the first member's input frame. The fused
marginals are decoded by their argmax refined with a parabola through the logarithms of it and
its neighbours.

Bin positions follow each codec's decoding: SimCC bin and MSRA heatmap pixel j sit at
j * input / bins input pixels; a UDP heatmap (raw key ``udp_heatmaps``) spans the crop's
pixel centres, so its pixel j sits at j * input / (bins - 1), as MMPose's UDP decoder and its
mapping back to the image put it.
"""

from __future__ import annotations

import numpy as np

from cephalo.predictions import Predictions
from cephalo.tta import View

SIMCC_BETA = 10.0  # RTMPose's KL loss sharpens the logits by this before its softmax


def marginals(pred: Predictions) -> tuple[np.ndarray, np.ndarray]:
    """(N, K, Bx), (N, K, By) probability vectors along x and y of a member's raw outputs."""
    if "simcc_x" in pred.raw:
        return _softmax(pred.raw["simcc_x"]), _softmax(pred.raw["simcc_y"])
    for key in HEATMAP_KEYS:
        if key in pred.raw:
            heatmaps = np.clip(pred.raw[key].astype(np.float64), 0, None)
            return _normalised(heatmaps.sum(axis=2)), _normalised(heatmaps.sum(axis=3))
    raise ValueError("distribution fusion needs raw outputs (predictions made with save_raw)")


HEATMAP_KEYS = ("heatmaps", "udp_heatmaps")


def bin_spacing(pred: Predictions, axis: int, bins: int) -> float:
    """Input pixels from one bin to the next along ``axis``: 1 / split ratio for SimCC, the
    stride for MSRA heatmaps, a little more than the stride for UDP heatmaps."""
    if "udp_heatmaps" in pred.raw:
        return pred.input_size[axis] / (bins - 1)
    return pred.input_size[axis] / bins


def positions(pred: Predictions, view: View, axis: int, bins: int) -> np.ndarray:
    """(N, bins) original-image pixel of each bin along ``axis`` (0: x, 1: y)."""
    per_input_px = bin_spacing(pred, axis, bins)
    scale = pred.input_scale[:, axis : axis + 1]
    centre = pred.input_center[:, axis : axis + 1]
    in_view = np.arange(bins) * per_input_px * scale / pred.input_size[axis] + centre - scale / 2
    axes = np.stack([view.axes(w, h)[axis] for w, h in pred.image_size])  # (N, 2): a, b
    return (in_view - axes[:, 1:2]) / axes[:, 0:1]


def resample(values: np.ndarray, at: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """``values`` (N, K, B) known at uniformly spaced ``at`` (N, B), linearly interpolated
    at ``grid`` (N, G); zero outside."""
    bins = values.shape[2]
    step = at[:, 1:2] - at[:, 0:1]
    index = (grid - at[:, 0:1]) / step
    low = np.floor(index).astype(np.int64)
    weight = (index - low)[:, None, :]
    result = np.zeros((*values.shape[:2], grid.shape[1]))
    for offset, factor in ((0, 1 - weight), (1, weight)):
        j = low + offset
        inside = ((j >= 0) & (j < bins))[:, None, :]
        taken = np.take_along_axis(values, np.clip(j, 0, bins - 1)[:, None, :], axis=2)
        result += np.where(inside, taken * factor, 0.0)
    return result


def fuse_distributions(
    members: list[tuple[Predictions, View]], weights: np.ndarray | None = None
) -> np.ndarray:
    """(N, K, 2) coordinates decoded from the (weighted) mean of the members' marginals,
    all on the first member's grid."""
    weights = np.full(len(members), 1 / len(members)) if weights is None else weights
    first = members[0][0]
    fused = []
    for axis in (0, 1):
        bins = marginals(first)[axis].shape[2]
        grid = positions(first, View(), axis, bins)
        total = np.zeros((*first.coords.shape[:2], bins))
        for (pred, view), weight in zip(members, weights, strict=True):
            values = marginals(pred)[axis]
            total += weight * resample(values, positions(pred, view, axis, values.shape[2]), grid)
        fused.append(decode(total, grid))
    return np.stack(fused, axis=-1)


def decode(values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """(N, K) positions of the maxima of ``values`` (N, K, G) on ``grid`` (N, G), refined
    by the vertex of the parabola through the logarithms of the maximum and its neighbours
    (exact for a Gaussian profile, which a heatmap's marginal is)."""
    best = values.argmax(axis=2)
    inner = np.clip(best, 1, values.shape[2] - 2)
    logs = np.log(np.clip(values, 1e-300, None))
    left, centre, right = (
        np.take_along_axis(logs, (inner + d)[..., None], axis=2)[..., 0] for d in (-1, 0, 1)
    )
    curvature = left - 2 * centre + right
    shift = np.where(curvature < 0, 0.5 * (left - right) / np.where(curvature < 0, curvature, 1), 0)
    shift = np.where(best == inner, np.clip(shift, -0.5, 0.5), 0.0)
    step = (grid[:, 1] - grid[:, 0])[:, None]
    return np.take_along_axis(grid[:, None, :], best[..., None], axis=2)[..., 0] + shift * step


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = SIMCC_BETA * logits.astype(np.float64)
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _normalised(values: np.ndarray) -> np.ndarray:
    return values / np.clip(values.sum(axis=-1, keepdims=True), 1e-12, None)
