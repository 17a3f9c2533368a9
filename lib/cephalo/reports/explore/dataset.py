"""A prepared dataset opened for exploration, and the numbers the figures show: per-image
and per-group tables, landmark positions in millimetres (sella-centred or rigidly aligned),
their spread, the folds' balance, and examples picked across groups."""

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
from matplotlib import colormaps

from cephalo.data.prepared import PreparedImage, load_folds, load_images, read_manifest
from cephalo.errors import DataError
from cephalo.landmarks import landmark_label

Frame = Literal["sella", "procrustes"]
FRAME_LABELS = {"sella": "mm from sella (landmark 1)", "procrustes": "mm, rigidly aligned"}
N_LEVELS = 256  # grey levels of an 8-bit image


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
