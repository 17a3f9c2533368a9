"""The exploration figures: example images with their landmarks, the landmark cloud, image
geometry and intensity per group, and the folds' balance; each a ``Figure`` built without
pyplot."""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np
import pandas as pd
from matplotlib import patheffects
from matplotlib.figure import Figure

from cephalo.data.prepared import PreparedImage
from cephalo.reports.explore.dataset import (
    FRAME_LABELS,
    N_LEVELS,
    Dataset,
    Frame,
    fold_balance,
    group_colors,
    image_table,
    pick_examples,
    points_mm,
)

_OUTLINE = [patheffects.withStroke(linewidth=1.5, foreground="black")]


def plot_examples(
    data: Dataset, n: int = 6, seed: int = 0, ncols: int = 3, max_side: int = 1024
) -> Figure:
    """Example images from different groups with their landmarks numbered (1-based) and a
    20 mm scale bar. Images are shrunk to ``max_side`` pixels for display only; axes stay in
    the image's own pixels."""
    examples = pick_examples(data, n, seed)
    ncols = min(ncols, len(examples))
    nrows = math.ceil(len(examples) / ncols)
    fig = Figure(figsize=(4.6 * ncols, 4.6 * nrows), layout="constrained")
    colors = group_colors(data)
    for k, image in enumerate(examples):
        ax = fig.add_subplot(nrows, ncols, k + 1)
        pixels = data.read_image(image)
        shrink = min(1.0, max_side / max(pixels.shape))
        if shrink < 1:
            pixels = cv2.resize(pixels, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
        extent = (-0.5, image.width - 0.5, image.height - 0.5, -0.5)
        ax.imshow(pixels, cmap="gray", vmin=0, vmax=255, extent=extent, interpolation="antialiased")
        x, y = image.points.T
        ax.scatter(x, y, s=9, color="#ffdd00", edgecolors="black", linewidths=0.4, zorder=3)
        for number, (px, py) in enumerate(image.points, start=1):
            ax.annotate(
                str(number),
                (px, py),
                xytext=(2.5, 2.5),
                textcoords="offset points",
                fontsize=5.5,
                color="white",
                path_effects=_OUTLINE,
            )
        _scale_bar(ax, image, 20.0)
        ax.set_title(f"{image.file_name}  ·  {image.group}", fontsize=9, color=colors[image.group])
        ax.set_xlabel("x (px)", fontsize=8)
        ax.set_ylabel("y (px)", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.suptitle(f"Example images with their {len(data.landmarks)} landmarks")
    return fig


def _scale_bar(ax: Any, image: PreparedImage, mm: float) -> None:
    length = mm / image.spacing
    x0, y0 = 0.05 * image.width, 0.95 * image.height
    ax.plot([x0, x0 + length], [y0, y0], color="white", linewidth=2.5, solid_capstyle="butt")
    ax.annotate(
        f"{mm:g} mm",
        (x0 + length / 2, y0),
        xytext=(0, 3),
        textcoords="offset points",
        ha="center",
        va="bottom",
        fontsize=7,
        color="white",
        path_effects=_OUTLINE,
    )


def plot_landmark_cloud(data: Dataset, frame: Frame = "sella") -> Figure:
    """Every image's landmarks in a common millimetre frame, coloured by group, with the
    mean shape numbered on top: the spread of each cloud is what a model must resolve."""
    points = points_mm(data, frame)
    groups = np.array([image.group for image in data.images])
    fig = Figure(figsize=(9, 8), layout="constrained")
    ax = fig.add_subplot()
    for group, color in group_colors(data).items():
        members = points[groups == group].reshape(-1, 2)
        ax.scatter(
            *members.T,
            s=4,
            alpha=0.35,
            color=color,
            linewidths=0,
            label=f"{group} ({(groups == group).sum()} images)",
        )
    mean = points.mean(axis=0)
    ax.scatter(*mean.T, s=14, color="black", zorder=3, label="mean shape")
    for number, (x, y) in enumerate(mean, start=1):
        ax.annotate(
            str(number),
            (x, y),
            xytext=(3, 3),
            textcoords="offset points",
            fontsize=7,
            fontweight="bold",
        )
    ax.set_aspect("equal")
    ax.invert_yaxis()  # image convention: y grows downwards
    ax.set_xlabel(f"x: {FRAME_LABELS[frame]}")
    ax.set_ylabel(f"y: {FRAME_LABELS[frame]}, down")
    title = "relative to sella" if frame == "sella" else "after rigid Procrustes alignment"
    ax.set_title(f"Landmarks of all {len(points)} images, {title}")
    ax.grid(alpha=0.3)
    legend = ax.legend(loc="best", fontsize=8, markerscale=2.5, title="group")
    for handle in legend.legend_handles:
        handle.set_alpha(1.0)
    return fig


def plot_geometry(data: Dataset) -> Figure:
    """Pixel spacing per group (left) and each image's field of view in mm (right)."""
    images = image_table(data)
    colors = group_colors(data)
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    counts = pd.crosstab(images.spacing_mm, images.group).reindex(columns=data.groups)
    labels = [f"{s:.4g}" for s in counts.index]
    bottom = np.zeros(len(counts))
    for group in data.groups:
        left.bar(labels, counts[group], bottom=bottom, color=colors[group], label=group)
        bottom += counts[group].to_numpy()
    left.set_xlabel("pixel spacing (mm / px)")
    left.set_ylabel("images")
    left.set_title("Pixel spacing")
    left.legend(fontsize=8, title="group")
    _scatter_by_group(right, images, "width_mm", "height_mm", colors)
    right.set(
        xlabel="image width (mm)",
        ylabel="image height (mm)",
        title="Field of view (size x spacing)",
    )
    return fig


def plot_intensity(data: Dataset) -> Figure:
    """Grey-level histograms per group (pooled line, 10-90 % band over images) and each
    image's mean against its standard deviation: how far apart the groups' contrasts are."""
    images = image_table(data)
    colors = group_colors(data)
    fraction = data.histograms / data.histograms.sum(axis=1, keepdims=True)
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    levels = np.arange(N_LEVELS)
    for group in data.groups:
        members = (images.group == group).to_numpy()
        pooled = data.histograms[members].sum(axis=0)
        left.plot(
            levels,
            pooled / pooled.sum(),
            color=colors[group],
            linewidth=1.2,
            label=f"{group} ({members.sum()})",
        )
        low, high = np.percentile(fraction[members], [10, 90], axis=0)
        left.fill_between(levels, low, high, color=colors[group], alpha=0.2, linewidth=0)
    left.set_xlim(0, N_LEVELS - 1)
    left.set_xlabel("grey level")
    left.set_ylabel("fraction of pixels")
    left.set_title("Intensity histogram per group")
    left.legend(fontsize=8, title="group (images)")
    _scatter_by_group(right, images, "intensity_mean", "intensity_std", colors)
    right.set(
        xlabel="mean grey level of the image",
        ylabel="standard deviation of grey level",
        title="Brightness and contrast per image",
    )
    return fig


def _scatter_by_group(
    axis: Any, images: pd.DataFrame, x: str, y: str, colors: dict[str, Any]
) -> None:
    """One point per image, coloured by group, with a grid and a group legend."""
    for group, color in colors.items():
        members = images[images.group == group]
        axis.scatter(members[x], members[y], s=25, alpha=0.7, color=color, label=group)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, title="group")


def plot_fold_balance(data: Dataset) -> Figure:
    """Stacked image counts per group in each cross-validation fold (left) and in the
    organisers' train / val / test split (right)."""
    colors = group_colors(data)
    fig = Figure(figsize=(12, 4), layout="constrained")
    for k, (by, title) in enumerate(
        [("fold", "Cross-validation folds"), ("organiser_split", "Organisers' split")]
    ):
        ax = fig.add_subplot(1, 2, k + 1)
        table = fold_balance(data, by)
        labels = [str(c) for c in table.columns]
        bottom = np.zeros(len(labels))
        for group, counts in table.iterrows():
            ax.bar(labels, counts, bottom=bottom, color=colors[group], label=group)
            bottom += counts.to_numpy()
        for x, total in enumerate(bottom):
            ax.annotate(
                f"{total:g}",
                (x, total),
                xytext=(0, 2),
                textcoords="offset points",
                ha="center",
                fontsize=8,
            )
        ax.set_ylim(0, 1.1 * bottom.max())
        ax.set_xlabel("fold" if by == "fold" else "split")
        ax.set_ylabel("images")
        ax.set_title(title)
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right upper", fontsize=8, title="group")
    return fig
