"""Figures and tables of training runs and of variants across runs, for notebooks: each
function takes a run's files or results, or registry rows, and returns a matplotlib Figure
or a pandas DataFrame."""

from __future__ import annotations

import json
import os
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from cephalo.landmarks import landmark_labels
from cephalo.metrics import LEADERBOARD, MRE
from cephalo.runs.work_dir import scalar_logs


def read_scalars(run_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Everything MMEngine logged as scalars (loss, learning rate, validation metrics), one
    row per logged step, from every ``scalars.json`` under the run's work dir."""
    rows = []
    for path in scalar_logs(run_dir):
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return pd.DataFrame(rows)


def training_curves(run_dir: str | os.PathLike[str]) -> plt.Figure:
    """Training loss per iteration and, when the run validated, MRE per epoch."""
    scalars = read_scalars(run_dir)
    validated = MRE in scalars
    figure, axes = plt.subplots(
        1, 2 if validated else 1, figsize=(11 if validated else 6, 3.5), squeeze=False
    )
    train = scalars.dropna(subset=["loss"]) if "loss" in scalars else scalars.iloc[:0]
    axes[0, 0].plot(train["step"], train["loss"])
    axes[0, 0].set(title="training loss", xlabel="iteration", ylabel="loss", yscale="log")
    if validated:
        val = scalars.dropna(subset=[MRE])
        axes[0, 1].plot(val["step"], val[MRE], marker="o")
        axes[0, 1].set(title="held-out MRE", xlabel="epoch", ylabel="MRE (mm)")
    figure.tight_layout()
    return figure


def metrics_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """The run's leaderboard metrics beside the mean-shape baseline's."""
    rows = {"model": {k: metrics[k] for k in LEADERBOARD}}
    if "mean_shape_baseline" in metrics:
        rows["mean-shape baseline"] = {k: metrics["mean_shape_baseline"][k] for k in LEADERBOARD}
    return pd.DataFrame(rows).T.round(3)


def per_landmark_errors(metrics: dict[str, Any]) -> plt.Figure:
    """MRE per landmark as bars, with the pooled MRE as a line."""
    per_landmark = pd.Series(metrics["per_landmark"])
    figure, axis = plt.subplots(figsize=(11, 4.5))
    axis.bar(landmark_labels(per_landmark.index), per_landmark.values, color="tab:blue")
    axis.tick_params(axis="x", labelrotation=90, labelsize=7)
    axis.axhline(metrics[MRE], color="tab:red", linestyle="--", label=f"MRE {metrics[MRE]:.2f} mm")
    axis.set(title="error per landmark", xlabel="landmark", ylabel="MRE (mm)")
    axis.legend()
    figure.tight_layout()
    return figure


def variant_scores(
    scores: pd.DataFrame, metrics: tuple[str, ...] = (MRE, "SDR 2.0mm")
) -> plt.Figure:
    """Per variant: the fold mean as a bar, ± the fold std, and each fold as a dot
    (``scores`` as from :func:`cephalo.experiments.leaderboard.fold_scores`)."""
    labels = scores["experiment"] + "/" + scores["variant"]
    order = list(dict.fromkeys(labels))
    figure, axes = plt.subplots(
        1, len(metrics), figsize=(5 * len(metrics), 0.5 * len(order) + 2), squeeze=False
    )
    for axis, metric in zip(axes[0], metrics, strict=True):
        grouped = scores.groupby(labels)[metric]
        means, stds = grouped.mean()[order], grouped.std(ddof=1)[order]
        positions = range(len(order))
        axis.barh(positions, means, xerr=stds.fillna(0), color="tab:blue", alpha=0.5, capsize=4)
        axis.scatter(scores[metric], [order.index(label) for label in labels], color="black", s=12)
        axis.set_yticks(list(positions), order)
        axis.invert_yaxis()
        axis.set(xlabel=f"{metric} ({'mm' if metric == MRE else '%'})", title=f"{metric} by fold")
    figure.tight_layout()
    return figure


def landmark_heatmap(errors: pd.DataFrame) -> plt.Figure:
    """Variant x landmark MRE (``errors`` as from ``leaderboard.per_landmark``)."""
    figure, axis = plt.subplots(figsize=(12, 0.4 * len(errors) + 2))
    image = axis.imshow(errors.to_numpy(), aspect="auto", cmap="viridis")
    axis.set_xticks(range(errors.shape[1]), landmark_labels(errors.columns), rotation=90)
    axis.set_yticks(range(errors.shape[0]), errors.index)
    axis.set(title="MRE per landmark (mean over folds)", xlabel="landmark")
    figure.colorbar(image, ax=axis, label="MRE (mm)")
    figure.tight_layout()
    return figure
