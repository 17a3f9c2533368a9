"""Score a challenge-format prediction file against release-format
ground truth, with the challenge metric (:mod:`cephalo.metrics`).

The prediction file is the challenge's (:mod:`cephalo.challenge.points`); the ground truth
the release's ``train-gt.json`` layout (read by :func:`cephalo.data.release.read_truth`), which
also gives each slice's spacing.

Every problem with the inputs is a :class:`~cephalo.errors.DataError` naming the file, the
slice and the landmark: a prediction file that leaves out a landmark or a slice, or scores a
slice twice, must not quietly produce a better (or worse) number than it deserves.

Besides the leaderboard summary, the report breaks the errors down per landmark and per
group of images: by spacing always (``"0.1mm"``), and by acquisition centre when a sidecar
such as the synthetic generator's ``train-meta.json`` (``{"images": [{"z": 1,
"centre": "B", ...}, ...]}``) says which centre each slice comes from.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cephalo.challenge.points import read_predictions
from cephalo.data.groups import check_covers, meta_groups, spacing_group
from cephalo.data.release import read_truth
from cephalo.landmarks import LANDMARK_NAMES, landmark_label
from cephalo.metrics import (
    LEADERBOARD,
    MRE,
    MRE_STD,
    per_group,
    per_landmark,
    radial_errors,
    summarize,
)

Groups = Mapping[str, Mapping[int, str]]
"""Extra ways to group images: ``{"centre": {z: "A", ...}}``, one label per slice."""


@dataclass(eq=False)
class Report:
    """The score of one prediction file."""

    summary: dict[str, float]
    """``MRE``, ``MRE std``, ``SDR 2.0mm`` .. ``SDR 4.0mm`` (see :func:`summarize`)."""
    per_landmark: pd.DataFrame
    """One row per landmark (index ``landmark``), the summary's columns."""
    per_group: pd.DataFrame
    """One row per (``by``, ``group``): ``by`` is ``"spacing"`` or a sidecar key such as
    ``"centre"``; the columns are ``images`` and the summary's."""
    z: list[int]
    """The slices scored, in the order of the rows of ``errors``."""
    errors: np.ndarray
    """(N, K) radial errors in mm."""

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form: summary, per_landmark and per_group as lists of records."""
        return dict(
            n_images=len(self.z),
            n_landmarks=int(self.errors.shape[1]),
            summary=self.summary,
            per_landmark=self.per_landmark.reset_index().to_dict(orient="records"),
            per_group=self.per_group.reset_index().to_dict(orient="records"),
        )


def evaluate_files(
    pred_path: str | os.PathLike[str],
    gt_path: str | os.PathLike[str],
    groups: str | os.PathLike[str] | Groups | None = None,
) -> Report:
    """Score the predictions in ``pred_path`` against the ground truth in ``gt_path``.

    Every ground-truth slice must be predicted, and only those. ``groups`` adds rows to the
    per-group table besides the spacing ones: a path to a sidecar such as
    ``train-meta.json`` (grouped by its ``centre``), or ``{name: {z: label}}``.
    """
    pred_path, gt_path = Path(pred_path), Path(gt_path)
    records = read_truth(gt_path)
    predictions = read_predictions(pred_path)
    check_covers(pred_path, set(predictions), records)
    extra: dict[str, Mapping[int, str]]
    if groups is None:
        extra = {}
    elif isinstance(groups, Mapping):
        extra = dict(groups)
        for name, labels in extra.items():
            check_covers(f"groups[{name!r}]", set(labels), records)
    else:
        extra = meta_groups(groups, records)
    zs = [record.z for record in records]
    errors = radial_errors(
        np.stack([predictions[z] for z in zs]),
        np.stack([record.points for record in records]),
        np.array([record.spacing for record in records]),
    )
    groupings = {"spacing": [spacing_group(record.spacing) for record in records]}
    groupings.update({name: [str(labels[z]) for z in zs] for name, labels in extra.items()})
    return Report(
        summary=summarize(errors),
        per_landmark=per_landmark(errors, LANDMARK_NAMES),
        per_group=pd.concat(
            {name: per_group(errors, labels) for name, labels in groupings.items()}, names=["by"]
        ),
        z=zs,
        errors=errors,
    )


def _format_table(table: pd.DataFrame) -> str:
    formatters = {
        column: ("{:.3f}" if column in (MRE, MRE_STD) else "{:.2f}").format
        for column in table.columns
        if column != "images"
    }
    return table.to_string(formatters=formatters)


def leaderboard_line(summary: Mapping[str, float]) -> str:
    """``MRE 1.234 ± 0.567 mm | SDR 2.0mm 65.47% | ...``"""
    parts = [f"MRE {summary[MRE]:.3f} ± {summary[MRE_STD]:.3f} mm"]
    parts += [f"{name} {summary[name]:.2f}%" for name in LEADERBOARD[1:]]
    return " | ".join(parts)


def format_report(report: Report) -> str:
    """The leaderboard line, then the per-landmark and per-group tables, as text."""
    n, k = report.errors.shape
    return "\n".join(
        [
            f"{n} images x {k} landmarks",
            leaderboard_line(report.summary),
            "",
            "Per landmark:",
            _format_table(report.per_landmark.rename(index=landmark_label)),
            "",
            "Per group:",
            _format_table(report.per_group),
        ]
    )
