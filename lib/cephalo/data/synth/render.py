"""From outlines to an X-ray-like image: additive density, the centre's exposure curve,
blur, noise and the anode heel effect."""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

from cephalo.data.synth.centres import Centre
from cephalo.data.synth.outlines import Shape


def _draw(canvas: np.ndarray, pts: np.ndarray, shape: Shape, spacing: float) -> None:
    """Add one shape's density to ``canvas``, anti-aliased, in its bounding box only."""
    height, width = canvas.shape
    line = shape.width / spacing
    blur = shape.soft / spacing
    pad = 2 + math.ceil(line) + math.ceil(3 * blur)
    x0 = max(0, math.floor(pts[:, 0].min()) - pad)
    y0 = max(0, math.floor(pts[:, 1].min()) - pad)
    x1 = min(width, math.ceil(pts[:, 0].max()) + pad + 1)
    y1 = min(height, math.ceil(pts[:, 1].max()) + pad + 1)
    if x0 >= x1 or y0 >= y1:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
    # 4 fractional bits: cv2 draws at 1/16 pixel precision.
    fixed = np.round((pts - [x0, y0]) * 16).astype(np.int32)
    value = shape.value
    if shape.width == 0:
        cv2.fillPoly(mask, [fixed], 255, cv2.LINE_AA, 4)
    else:
        thickness = max(1, round(line))
        value *= min(1.0, line / thickness)  # thinner than a pixel: fainter instead
        cv2.polylines(mask, [fixed], shape.closed, 255, thickness, cv2.LINE_AA, 4)
    if blur > 0.3:
        mask = cv2.GaussianBlur(mask, (0, 0), blur)
    roi = canvas[y0:y1, x0:x1]
    cv2.addWeighted(roi, 1.0, mask, value / 255.0, 0.0, dst=roi, dtype=cv2.CV_32F)


def _smooth(image: np.ndarray, sigma: float) -> np.ndarray:
    """A wide Gaussian blur, computed on a reduced copy (the result is smooth anyway)."""
    height, width = image.shape
    f = max(1, int(sigma / 3))
    small = cv2.resize(
        image, (max(1, width // f), max(1, height // f)), interpolation=cv2.INTER_AREA
    )
    small = cv2.GaussianBlur(small, (0, 0), sigma / f)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def _field(rng: np.random.Generator, size_hw: tuple[int, int], cell: float) -> np.ndarray:
    """Smooth unit-variance noise with features about ``cell`` pixels wide."""
    height, width = size_hw
    grid = rng.standard_normal((math.ceil(height / cell) + 3, math.ceil(width / cell) + 3))
    return cv2.resize(grid.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)


def render(
    shapes: list[Shape],
    to_px: Callable[[np.ndarray], np.ndarray],
    size_hw: tuple[int, int],
    spacing: float,
    centre: Centre,
    rng: np.random.Generator,
) -> np.ndarray:
    """Rasterise the shapes into densities and expose them like the centre's machine."""
    layers = {name: np.zeros(size_hw, np.float32) for name in ("soft", "bone", "metal")}
    for shape in shapes:
        pts = shape.pts / spacing if shape.image_frame else to_px(shape.pts)
        _draw(layers[shape.layer], pts, shape, spacing)
    soft = np.clip(layers["soft"], 0, 1)
    # Thicker tissue absorbs more: the head is brighter inside than at its outline.
    density = soft * (0.15 + 0.4 * _smooth(soft, 15.0 / spacing))
    texture = 1.0 + 0.15 * _field(rng, size_hw, 14.0 / spacing)
    texture += 0.08 * _field(rng, size_hw, 3.0 / spacing)
    density += layers["bone"] * texture + layers["metal"]
    # Cavities are drawn as negative density; where one pokes out of its bone, it is air.
    np.maximum(density, 0.0, out=density)
    intensity = 1.0 - np.exp(-centre.mu * density)
    intensity = centre.offset + centre.gain * intensity**centre.gamma
    heel = np.linspace(-0.5, 0.5, size_hw[1], dtype=np.float32) * centre.heel
    intensity *= 1.0 + heel
    blur = centre.blur_mm / spacing
    if blur > 0.3:
        intensity = cv2.GaussianBlur(intensity, (0, 0), blur)
    # Quantum noise; partly correlated by the detector, so it shrinks slower than white
    # noise when the image is made smaller.
    scale = centre.spacing / spacing
    noise = rng.standard_normal(size_hw, dtype=np.float32)
    intensity = intensity * 255.0 + noise * (centre.noise * math.sqrt(scale))
    # Never 0: the release's padding is the only zero, so cropping finds the exact size.
    return np.clip(np.rint(intensity), 1, 255).astype(np.uint8)
