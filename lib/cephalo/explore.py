"""Exploring a prepared dataset: the tables and figures of ``notebooks/explore_data.py``.

Why: before training, a competitor wants to see what the data hold (acquisition groups, how
their sizes, spacings and contrast differ, where the landmarks sit and how much they vary,
and whether the folds mix the groups evenly). Computing all of it here keeps the notebook a
list of calls, lets the tests check the numbers, and lets any other notebook reuse a figure.

Every plotting function takes a :class:`Dataset` and returns a ``matplotlib.figure.Figure``
built without pyplot: nothing is shown or kept in global state, so the caller decides
(a notebook displays it, a script saves it). Images are read one at a time; intensities are
kept as one 256-bin histogram per image, exact and a few kilobytes whatever the image size.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import pandas as pd
from matplotlib import colormaps, patheffects
from matplotlib.figure import Figure

from cephalo.data.prepared import PreparedImage, load_folds, load_images, read_manifest
from cephalo.errors import DataError
from cephalo.landmarks import landmark_label

Frame = Literal["sella", "procrustes"]
FRAME_LABELS = {"sella": "mm from sella (landmark 1)", "procrustes": "mm, rigidly aligned"}
N_LEVELS = 256  # grey levels of an 8-bit image
_OUTLINE = [patheffects.withStroke(linewidth=1.5, foreground="black")]


@dataclass
class Dataset:
    """A prepared dataset opened for exploration: its images, folds and manifest.

    ``histograms`` reads every image once, on first use, and is kept afterwards.
    """

    root: Path
    manifest: dict[str, Any]
    images: list[PreparedImage]
    folds: pd.DataFrame

    @property
    def landmarks(self) -> list[str]:
        return list(self.manifest["landmarks"])

    @property
    def groups(self) -> list[str]:
        """The acquisition groups, largest first (ties by name)."""
        counts = pd.Series([image.group for image in self.images]).value_counts()
        return sorted(counts.index, key=lambda g: (-counts[g], g))

    def read_image(self, image: PreparedImage) -> np.ndarray:
        """One image as a greyscale uint8 array (the prepared PNGs are grey stored as RGB)."""
        path = self.root / "images" / image.file_name
        pixels = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if pixels is None:
            raise DataError(f"{path}: cannot be read as an image")
        return pixels

    @cached_property
    def histograms(self) -> np.ndarray:
        """(N, 256) pixel counts per grey level, one row per image in ``images`` order."""
        counts = np.zeros((len(self.images), N_LEVELS), dtype=np.int64)
        for row, image in enumerate(self.images):
            counts[row] = np.bincount(self.read_image(image).ravel(), minlength=N_LEVELS)
        return counts


def open_dataset(dataset_dir: str | os.PathLike[str] | None = None) -> Dataset:
    """A prepared dataset folder; None means the kit's built-in synthetic dataset."""
    if dataset_dir is None:
        from cephalo.data.default import synthetic_dataset

        dataset_dir = synthetic_dataset(progress=False)
    root = Path(dataset_dir)
    manifest = read_manifest(root)
    if manifest is None:
        raise DataError(
            f"{root} is not a prepared dataset (no dataset.json); "
            "make one with `cephalo data prepare`"
        )
    return Dataset(root, manifest, load_images(root), load_folds(root))


def overview(data: Dataset) -> pd.DataFrame:
    """The dataset in one column: where it is, what it is, how many images and groups."""
    manifest = data.manifest
    return pd.Series(
        {
            "folder": str(data.root),
            "kind": manifest.get("kind", "?") + (" (synthetic)" if is_synthetic(data) else ""),
            "images": len(data.images),
            "landmarks per image": len(data.landmarks),
            "acquisition groups": len(data.groups),
            "folds (seed)": f"{manifest.get('folds')} ({manifest.get('seed')})",
        },
        name="dataset",
    ).to_frame()


def is_synthetic(data: Dataset) -> bool:
    """Whether the dataset was prepared from a release written by ``cephalo.data.synth``
    (its generator leaves a ``<split>-meta.json`` beside the stack)."""
    stack = data.manifest.get("source", {}).get("stack", {}).get("path")
    if not stack:
        return False
    meta = Path(stack).with_name(Path(stack).name.replace("_stack.mha", "-meta.json"))
    try:
        return json.loads(meta.read_text()).get("generator") == "cephalo.data.synth"
    except (OSError, ValueError):
        return False


def landmark_names(data: Dataset) -> list[str]:
    """A readable name per landmark.

    The release numbers its landmarks and the organisers named them (:mod:`cephalo.landmarks`);
    on synthetic data, landmarks 20-38 are the generator's own placements, named as such.
    """
    from cephalo.data.synth import LANDMARKS

    synthetic = is_synthetic(data)
    names = []
    for i, label in enumerate(data.landmarks):
        if label != str(i + 1):  # a dataset that ships its own names
            names.append(label)
        elif synthetic and i >= 19:
            names.append(f"{label} {LANDMARKS[i][1]} ({LANDMARKS[i][0]}; synthetic placement)")
        else:
            names.append(landmark_label(label))
    return names


def image_table(data: Dataset) -> pd.DataFrame:
    """One row per image: group, fold, organiser split, size, spacing and intensity."""
    levels = np.arange(N_LEVELS)
    hist = data.histograms
    total = hist.sum(axis=1)
    mean = hist @ levels / total
    std = np.sqrt(np.maximum(hist @ levels**2 / total - mean**2, 0.0))
    table = pd.DataFrame(
        dict(
            image_id=[image.image_id for image in data.images],
            group=[image.group for image in data.images],
            width_px=[image.width for image in data.images],
            height_px=[image.height for image in data.images],
            spacing_mm=[image.spacing for image in data.images],
            intensity_mean=mean,
            intensity_std=std,
        )
    )
    table["width_mm"] = table.width_px * table.spacing_mm
    table["height_mm"] = table.height_px * table.spacing_mm
    folds = data.folds[["image_id", "fold", "organiser_split"]]
    return table.merge(folds, on="image_id", how="left", validate="one_to_one")


def summary_table(data: Dataset) -> pd.DataFrame:
    """One row per acquisition group (largest first): image count, size in pixels and mm,
    spacing, pooled pixel mean and standard deviation, and landmarks per image."""
    images = image_table(data)
    levels = np.arange(N_LEVELS)
    rows = {}
    for group in data.groups:
        members = images.group == group
        hist = data.histograms[members.to_numpy()].sum(axis=0)
        mean = hist @ levels / hist.sum()
        rows[group] = {
            "images": int(members.sum()),
            "width_px": _value_or_range(images.width_px[members]),
            "height_px": _value_or_range(images.height_px[members]),
            "spacing_mm": _value_or_range(images.spacing_mm[members]),
            "width_mm": round(images.width_mm[members].mean(), 1),
            "height_mm": round(images.height_mm[members].mean(), 1),
            "intensity_mean": round(mean, 1),
            "intensity_std": round(math.sqrt(hist @ (levels - mean) ** 2 / hist.sum()), 1),
            "landmarks": len(data.landmarks),
        }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("group")


def _value_or_range(values: pd.Series) -> Any:
    low, high = values.min(), values.max()
    return low if low == high else f"{low:g}-{high:g}"


def points_mm(data: Dataset, frame: Frame = "sella") -> np.ndarray:
    """(N, K, 2) landmarks in millimetres (x right, y down), in a frame shared by all images.

    ``"sella"``: each image's landmark 1 at the origin, no rotation (head pose stays).
    ``"procrustes"``: rotated and translated onto the mean shape (pose removed, size kept).
    """
    shapes = np.stack([image.points * image.spacing for image in data.images])
    if frame == "sella":
        return shapes - shapes[:, :1]
    if frame == "procrustes":
        return rigid_procrustes(shapes)
    raise ValueError(f"unknown frame {frame!r}; use 'sella' or 'procrustes'")


def rigid_procrustes(shapes: np.ndarray, iterations: int = 20) -> np.ndarray:
    """Shapes (N, K, 2) rotated and translated onto their common mean, which is centred on
    the origin and keeps the mean orientation of the input; no scaling, so mm stay mm."""
    aligned = shapes - shapes.mean(axis=1, keepdims=True)
    mean = aligned.mean(axis=0)
    for _ in range(iterations):
        aligned = np.stack([shape @ _rotation(shape, mean).T for shape in aligned])
        new_mean = aligned.mean(axis=0)
        if np.abs(new_mean - mean).max() < 1e-9:
            break
        mean = new_mean
    return aligned


def _rotation(shape: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The proper 2x2 rotation R minimising |shape @ R.T - target| (Kabsch)."""
    u, _, vt = np.linalg.svd(shape.T @ target)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    return vt.T @ np.diag([1.0, d]) @ u.T


def landmark_table(data: Dataset) -> pd.DataFrame:
    """One row per landmark: its name where known, its mean position relative to sella and
    its spread (root mean square distance to the mean, mm) relative to sella and after rigid
    alignment. A large aligned spread marks a landmark whose place varies between people."""
    sella = points_mm(data, "sella")
    mean = sella.mean(axis=0)
    return pd.DataFrame(
        dict(
            name=landmark_names(data),
            mean_x_mm=mean[:, 0].round(1),
            mean_y_mm=mean[:, 1].round(1),
            spread_sella_mm=_spread(sella).round(2),
            spread_aligned_mm=_spread(points_mm(data, "procrustes")).round(2),
        ),
        index=pd.Index(data.landmarks, name="landmark"),
    )


def _spread(points: np.ndarray) -> np.ndarray:
    return np.sqrt(((points - points.mean(axis=0)) ** 2).sum(axis=2).mean(axis=0))


def fold_balance(data: Dataset, by: Literal["fold", "organiser_split"] = "fold") -> pd.DataFrame:
    """Images per group (rows) and fold or organiser split (columns); no total row."""
    table = pd.crosstab(data.folds.group, data.folds[by])
    if by == "organiser_split":
        table = table.reindex(columns=[c for c in ("train", "val", "test") if c in table])
    return table.reindex(data.groups)


def group_colors(data: Dataset) -> dict[str, tuple[float, ...]]:
    """One colour per group, the same in every figure."""
    palette = colormaps["tab10"]
    return {group: palette(i % 10) for i, group in enumerate(data.groups)}


def pick_examples(data: Dataset, n: int, seed: int = 0) -> list[PreparedImage]:
    """``n`` images taken in turn from each group (largest first), at random within one."""
    if n < 1:
        raise ValueError(f"need at least one example, got n={n}")
    rng = np.random.default_rng(seed)
    queues = {}
    for group in data.groups:
        members = [image for image in data.images if image.group == group]
        queues[group] = [members[i] for i in rng.permutation(len(members))]
    picked: list[PreparedImage] = []
    while len(picked) < min(n, len(data.images)):
        for queue in queues.values():
            if queue and len(picked) < n:
                picked.append(queue.pop(0))
    return picked


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
