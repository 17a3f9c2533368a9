"""Test-time augmentation: views of an image whose predictions map back exactly.

A view is an axis-aligned affine map of the image onto a canvas of the same size: a
horizontal flip (identity flip indices: a cephalogram has no left/right landmark pairs), a
zoom about the image centre by ``scale`` (< 1 shrinks the anatomy inside a black border,
nothing leaves the canvas), and a ``shift`` by fractions of the width and height. Pixel
centres sit at integer coordinates, as in OpenCV and MMPose, so a flip maps x to W - 1 - x.

Because every view is axis-aligned, x and y map separately (x' = a x + b): coordinates are
inverted exactly, and a SimCC vector or a heatmap resamples onto another frame one axis at a
time (:mod:`cephalo.ensemble` fuses at that level).

Spec syntax (YAML): ``identity``, ``flip``, or a mapping such as ``{scale: 0.9}``,
``{shift: [0.02, 0]}``, ``{flip: true, scale: 1.1}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np


@dataclass(frozen=True)
class View:
    flip: bool = False
    scale: float = 1.0
    shift: tuple[float, float] = (0.0, 0.0)

    def __post_init__(self) -> None:
        if not 0.5 <= self.scale <= 2.0:
            raise ValueError(f"TTA scale {self.scale} outside [0.5, 2]")
        if any(abs(s) > 0.25 for s in self.shift):
            raise ValueError(f"TTA shift {self.shift} beyond a quarter of the image")

    @property
    def name(self) -> str:
        parts = ["flip"] if self.flip else []
        if self.scale != 1.0:
            parts.append(f"scale{self.scale:g}")
        if self.shift != (0.0, 0.0):
            parts.append(f"shift{self.shift[0]:+g},{self.shift[1]:+g}")
        return "-".join(parts) or "identity"

    def axes(self, width: int, height: int) -> np.ndarray:
        """(2, 2) rows (a, b): x' = a_x x + b_x, y' = a_y y + b_y (original -> view)."""
        centre = np.array([(width - 1) / 2, (height - 1) / 2])
        a = np.array([-1.0 if self.flip else 1.0, 1.0]) * self.scale
        # flip about the centre, zoom about the centre, then shift
        b = centre - a * centre + np.array(self.shift) * np.array([width, height])
        return np.stack([a, b], axis=1)

    def forward(self, points: np.ndarray, width: int, height: int) -> np.ndarray:
        """Original-image (..., 2) points to this view's canvas."""
        axes = self.axes(width, height)
        return points * axes[:, 0] + axes[:, 1]

    def inverse(self, points: np.ndarray, width: int, height: int) -> np.ndarray:
        """This view's canvas (..., 2) points back to the original image."""
        axes = self.axes(width, height)
        return (points - axes[:, 1]) / axes[:, 0]

    def apply(self, image: np.ndarray) -> np.ndarray:
        """The image as this view shows it (same size; uncovered canvas is black)."""
        height, width = image.shape[:2]
        if self.scale == 1.0 and self.shift == (0.0, 0.0):
            return cv2.flip(image, 1) if self.flip else image
        axes = self.axes(width, height)
        matrix = np.array([[axes[0, 0], 0, axes[0, 1]], [0, axes[1, 0], axes[1, 1]]])
        return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderValue=0)


IDENTITY = View()


def parse_view(value: Any) -> View:
    """A view from its spec form (see the module docstring)."""
    if value in ("identity", None):
        return IDENTITY
    if value == "flip":
        return View(flip=True)
    if isinstance(value, dict):
        unknown = set(value) - {"flip", "scale", "shift"}
        if unknown:
            raise ValueError(f"TTA view has unknown keys {sorted(unknown)} (flip, scale, shift)")
        shift = tuple(float(s) for s in value.get("shift", (0.0, 0.0)))
        if len(shift) != 2:
            raise ValueError(f"TTA shift must be [dx, dy], got {value['shift']}")
        return View(bool(value.get("flip", False)), float(value.get("scale", 1.0)), shift)
    raise ValueError(f"not a TTA view: {value!r} (identity, flip, or {{flip, scale, shift}})")
