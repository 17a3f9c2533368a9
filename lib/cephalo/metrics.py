"""The CL-Detection 2023 metric, implemented once: everything that scores predictions uses it.

The organisers' definition (their MMPose ``CephalometricMetric`` and evaluation code):

- the radial error of one landmark of one image is the Euclidean distance between the
  predicted and the true point, in pixels, times that image's spacing (mm per pixel);
- **MRE** is the mean of all N x K radial errors pooled together. It is *not* the mean of
  per-image means; the two differ as soon as images have different numbers of landmarks or
  the errors are spread unevenly. ``MRE std`` is the (population, ``ddof=0``) standard
  deviation of the same pooled errors, as the organisers print it after the ``±``;
- **SDR t** (success detection rate) is the percentage of the pooled errors with
  error **<=** t, for t in 2.0, 2.5, 3.0 and 4.0 mm.

The leaderboard names are ``MRE``, ``SDR 2.0mm``, ``SDR 2.5mm``, ``SDR 3.0mm``,
``SDR 4.0mm`` (constants below); MMEngine's ``CheckpointHook(save_best=...)`` accepts them
as they are (see :mod:`cephalo.mm_metric`).

One deliberate departure from a bare ``errors <= t``: an error within :data:`TOLERANCE_MM`
(1e-9 mm, a nanometre) above a threshold counts as within it. A prediction 2 mm away is
often computed as 2.0000000000000013 mm (``(x + 20) - x`` is not exactly 20 in floating
point, nor is ``20 * 0.1`` exactly 2), and the ``<=`` rule exists precisely so that such a
point counts. No real error is that close to a threshold without being equal to it:
coordinates are annotated to a fraction of a pixel, i.e. to micrometres at best.

Non-finite predictions are an error, never a silently huge or ignored value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from cephalo.errors import DataError

if TYPE_CHECKING:  # pandas costs half a second to import; only the tables need it
    import pandas as pd

THRESHOLDS_MM: tuple[float, ...] = (2.0, 2.5, 3.0, 4.0)
"""The SDR thresholds of the leaderboard, in mm."""
TOLERANCE_MM = 1e-9
"""Errors up to this much above a threshold count as within it (floating-point noise)."""

MRE = "MRE"
MRE_STD = "MRE std"
SDR_2_0 = "SDR 2.0mm"
SDR_2_5 = "SDR 2.5mm"
SDR_3_0 = "SDR 3.0mm"
SDR_4_0 = "SDR 4.0mm"


def sdr_name(threshold_mm: float) -> str:
    """The leaderboard name of the SDR at ``threshold_mm``: 2.0 -> ``"SDR 2.0mm"``."""
    return f"SDR {threshold_mm:.1f}mm"


SDR_NAMES: tuple[str, ...] = tuple(sdr_name(t) for t in THRESHOLDS_MM)
LEADERBOARD: tuple[str, ...] = (MRE, *SDR_NAMES)
"""The five leaderboard metrics, in the leaderboard's order."""
SUMMARY: tuple[str, ...] = (MRE, MRE_STD, *SDR_NAMES)
"""The keys of :func:`summarize`'s result, in order."""
DIRECTION: dict[str, str] = {MRE: "less", **{name: "greater" for name in SDR_NAMES}}
"""Which way each leaderboard metric improves, in MMEngine's words (a checkpoint hook's
``rule``): what selects a best checkpoint, ranks a leaderboard and orients a study."""


def lower_is_better(metric: str) -> bool:
    if metric not in DIRECTION:
        raise ValueError(f"unknown metric {metric!r}; choose from {', '.join(DIRECTION)}")
    return DIRECTION[metric] == "less"


def _first_bad(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def radial_errors(pred: np.ndarray, gt: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """(N, K) radial errors in mm of predictions ``pred`` against ``gt``, both (N, K, 2)
    pixel coordinates, for images of ``spacing`` (N,) mm per pixel.

    Raises :class:`~cephalo.errors.DataError` (a ValueError) for mismatched shapes, a
    non-finite coordinate (naming the 0-based image and 1-based landmark position) or a
    spacing that is not a positive number.
    """
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    spacing = np.asarray(spacing, dtype=np.float64)
    if pred.ndim != 3 or pred.shape[2] != 2 or pred.shape != gt.shape:
        raise DataError(
            f"need pred and gt of the same shape (N, K, 2); got {pred.shape} and {gt.shape}"
        )
    if spacing.shape != (pred.shape[0],):
        raise DataError(
            f"need one spacing per image, shape ({pred.shape[0]},); got {spacing.shape}"
        )
    for what, points in (("prediction", pred), ("ground truth", gt)):
        bad = ~np.isfinite(points).all(axis=2)
        if bad.any():
            n, k = _first_bad(bad)
            raise DataError(
                f"{what} of image {n} (0-based), landmark {k + 1} is not finite: "
                f"{points[n, k].tolist()} ({int(bad.sum())} such point(s) in all)"
            )
    bad = ~(np.isfinite(spacing) & (spacing > 0))
    if bad.any():
        (n,) = _first_bad(bad)
        raise DataError(
            f"spacing of image {n} (0-based) must be a positive number, got {spacing[n]}"
        )
    return np.hypot(*np.moveaxis(pred - gt, 2, 0)) * spacing[:, None]


def _check_errors(errors: np.ndarray) -> np.ndarray:
    errors = np.asarray(errors, dtype=np.float64)
    if errors.size == 0:
        raise DataError("no errors to summarize (no images or no landmarks)")
    bad = ~np.isfinite(errors) | (errors < 0)
    if bad.any():
        raise DataError(
            f"radial errors must be finite and >= 0; found {errors[bad].ravel()[0]} at "
            f"{_first_bad(bad)}"
        )
    return errors


def summarize(errors: np.ndarray) -> dict[str, float]:
    """The leaderboard summary of radial errors (any shape, usually (N, K), in mm):
    ``MRE``, ``MRE std`` and ``SDR 2.0mm`` .. ``SDR 4.0mm`` (percentages), all pooled over
    every error. Raises DataError when there is no error or one is not finite."""
    errors = _check_errors(errors).ravel()
    summary = {MRE: float(errors.mean()), MRE_STD: float(errors.std())}
    for name, threshold in zip(SDR_NAMES, THRESHOLDS_MM, strict=True):
        summary[name] = float(np.mean(errors <= threshold + TOLERANCE_MM) * 100.0)
    return summary


def _table(groups: dict[str, np.ndarray], index_name: str) -> pd.DataFrame:
    import pandas as pd

    table = pd.DataFrame.from_dict(
        {name: summarize(errors) for name, errors in groups.items()},
        orient="index",
        columns=list(SUMMARY),
    )
    table.index.name = index_name
    return table


def per_landmark(errors: np.ndarray, names: Sequence[str]) -> pd.DataFrame:
    """One row per landmark (index ``landmark``, in the given order): the summary of that
    landmark's errors over all images. ``errors`` is (N, K), ``names`` has K entries."""
    errors = _check_errors(errors)
    if errors.ndim != 2 or errors.shape[1] != len(names):
        raise DataError(
            f"need (N, {len(names)}) errors for {len(names)} landmark names, got {errors.shape}"
        )
    return _table({str(name): errors[:, k] for k, name in enumerate(names)}, "landmark")


def per_group(errors: np.ndarray, groups: Sequence[str]) -> pd.DataFrame:
    """One row per group (index ``group``, sorted): the pooled summary of the errors of that
    group's images, plus the number of ``images``. ``errors`` is (N, K), ``groups`` has one
    label per image (an acquisition centre, a spacing such as ``"0.1mm"``, ...)."""
    errors = _check_errors(errors)
    labels = np.asarray([str(g) for g in groups], dtype=object)
    if errors.ndim != 2 or labels.shape != (errors.shape[0],):
        raise DataError(
            f"need one group label per image: {errors.shape[0]} images (errors "
            f"{errors.shape}), {len(labels)} labels"
        )
    names = sorted(set(labels))
    table = _table({name: errors[labels == name] for name in names}, "group")
    table.insert(0, "images", [int(np.sum(labels == name)) for name in names])
    return table
