"""The one format for a run's predictions, read by evaluation, tuning and fusion.

A predictions file is a compressed NumPy archive (``.npz``, loaded with
``allow_pickle=False``: it can hold nothing but arrays) with, for N images and K landmarks:

=================  ==============  ====================================================
key                shape, dtype    meaning
=================  ==============  ====================================================
``image_id``       (N,) int64      the prepared dataset's image id (the slice z)
``coords``         (N, K, 2) f64   decoded (x, y) in pixels of the original, unpadded image
``confidence``     (N, K) f32      the head's score per landmark
``spacing``        (N,) f64        mm per pixel (NaN when unknown, e.g. an unlabelled test set)
``image_size``     (N, 2) int64    (width, height) of the original image
``input_center``   (N, 2) f64      centre of the model's input crop, original pixels
``input_scale``    (N, 2) f64      (width, height) of that crop, original pixels
``input_size``     (2,) int64      (width, height) of the model input
=================  ==============  ====================================================

With raw outputs kept (``save_raw``), also, in float16:
``simcc_x`` (N, K, Wx) and ``simcc_y`` (N, K, Wy) for SimCC heads (bins = input pixels x split
ratio), or ``heatmaps`` (N, K, h, w) for heatmap heads (``udp_heatmaps`` for UDP-coded ones,
whose grid spans the crop's pixel centres). They live in the input crop's frame: with
``input_center`` / ``input_scale`` they map back to the original image.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from cephalo.files import atomic_open


@dataclass
class Predictions:
    image_id: np.ndarray
    coords: np.ndarray
    confidence: np.ndarray
    spacing: np.ndarray
    image_size: np.ndarray
    input_center: np.ndarray
    input_scale: np.ndarray
    input_size: np.ndarray
    raw: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Raw outputs are float16 in memory as on disk, so a result is the same whether
        # its predictions were just computed or loaded from a file.
        self.raw = {name: np.asarray(value, np.float16) for name, value in self.raw.items()}
        n = len(self.image_id)
        if self.coords.ndim != 3 or self.coords.shape[0] != n or self.coords.shape[2] != 2:
            raise ValueError(f"coords must be (N={n}, K, 2), got {self.coords.shape}")
        if self.confidence.shape != self.coords.shape[:2]:
            raise ValueError(
                f"confidence must be {self.coords.shape[:2]}, got {self.confidence.shape}"
            )

    @property
    def n_landmarks(self) -> int:
        return self.coords.shape[1]

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically (a temporary sibling renamed into place)."""
        path = Path(path)
        arrays = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "raw"}
        arrays.update(self.raw)
        with atomic_open(path, "wb") as f:
            np.savez_compressed(f, **arrays)
        return path


RAW_KEYS = ("simcc_x", "simcc_y", "heatmaps", "udp_heatmaps")


def load_predictions(path: str | os.PathLike[str]) -> Predictions:
    with np.load(path, allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    raw = {key: arrays.pop(key) for key in RAW_KEYS if key in arrays}
    return Predictions(**arrays, raw=raw)
