"""Images and releases: one generated cephalogram in memory, and a whole synthetic release
(stack, ground truth, centre sidecar) written in the challenge's format."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from cephalo.data.release import ImageLandmarks, write_gt, write_stack
from cephalo.data.synth.centres import CENTRES, PADDED_HW, Centre
from cephalo.data.synth.outlines import anatomy, ear_rods
from cephalo.data.synth.render import render
from cephalo.data.synth.skull import INDEX, LANDMARK_INDEX, deform
from cephalo.files import atomic_open


@dataclass(eq=False)
class SynthImage:
    """One generated cephalogram, unpadded."""

    image: np.ndarray  # (h, w) uint8, greyscale
    points: np.ndarray  # (38, 2) float64, pixel x (column), y (row)
    spacing: float  # mm per pixel
    centre: str


@dataclass(frozen=True)
class SplitFiles:
    """The files of one generated split."""

    stack: Path
    gt: Path
    meta: Path


def padded_size(scale: float = 1.0) -> tuple[int, int]:
    """The stack's slice size (H, W) at ``scale``."""
    return round(PADDED_HW[0] * scale), round(PADDED_HW[1] * scale)


def image_size(
    centre: Centre, scale: float, draw: np.random.Generator | None = None
) -> tuple[int, int]:
    """(H, W) of one image of ``centre`` at ``scale``: the centre's size, varied by up to
    ``size_jitter`` per side with ``draw``, and never larger than the padded slice."""
    factors = (
        1 + centre.size_jitter * draw.uniform(-1, 1, 2)
        if draw is not None and centre.size_jitter
        else np.ones(2)
    )
    return (
        min(round(centre.height * factors[0] * scale), padded_size(scale)[0]),
        min(round(centre.width * factors[1] * scale), padded_size(scale)[1]),
    )


def generate_image(seed: int, split: int, index: int, scale: float = 1.0) -> SynthImage:
    """Image ``index`` of ``split`` (0 train, 1 test) for ``seed``, unpadded, in memory."""
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    # A third stream for the size: drawing it leaves the first two (and so every image of a
    # centre of fixed size) as they were.
    geo, pix, size_draw = (
        np.random.default_rng(s)
        for s in np.random.SeedSequence(seed, spawn_key=(split, index)).spawn(3)
    )
    centre = CENTRES[int(geo.integers(len(CENTRES)))]
    spacing = centre.spacing / scale
    height, width = image_size(centre, scale, size_draw)
    p = deform(geo)
    # Pose: size, a few degrees of head tilt, position in the cephalostat.
    size = 1.0 + 0.04 * float(np.clip(geo.standard_normal(), -2.5, 2.5))
    tilt = math.radians(2.5 * float(np.clip(geo.standard_normal(), -2.4, 2.4)))
    rot = size * np.array([[math.cos(tilt), -math.sin(tilt)], [math.sin(tilt), math.cos(tilt)]])
    shift = np.array(centre.sella_mm) + 6.0 * np.clip(geo.standard_normal(2), -2.5, 2.5)
    # Keep every landmark at least 10 mm inside the image.
    landmarks_mm = p[LANDMARK_INDEX] @ rot.T + shift
    extent = np.array([width, height]) * spacing
    low, high = 10.0 - landmarks_mm.min(0), extent - 10.0 - landmarks_mm.max(0)
    shift += np.clip(0.0, low, np.maximum(low, high))

    def to_px(q: np.ndarray) -> np.ndarray:
        return (q @ rot.T + shift) / spacing

    ear = p[INDEX["ear_c"]] @ rot.T + shift
    radius = size * float(np.linalg.norm(p[INDEX["Po"]] - p[INDEX["ear_c"]]))
    shapes = anatomy(p) + ear_rods(ear, radius)
    image = render(shapes, to_px, (height, width), spacing, centre, pix)
    return SynthImage(image, to_px(p[LANDMARK_INDEX]), spacing, centre.name)


def synthesize(
    out_dir: str | Path,
    n_images: int,
    n_test: int = 0,
    scale: float = 1.0,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, SplitFiles]:
    """Write a synthetic release: ``train_stack.mha``, ``train-gt.json``, ``train-meta.json``
    (and the same for ``test`` when ``n_test`` > 0). Returns the files per split.
    ``progress`` shows a bar over the images of each split.
    """
    if n_images < 1 or n_test < 0:
        raise ValueError(f"need n_images >= 1 and n_test >= 0, got {n_images}, {n_test}")
    if not 0 < scale <= 1:
        raise ValueError(f"scale must be in (0, 1], got {scale}")
    out_dir = Path(out_dir)
    splits = {"train": (0, n_images), "test": (1, n_test)}
    return {
        name: _write_split(out_dir, name, split, n, scale, seed, progress)
        for name, (split, n) in splits.items()
        if n > 0
    }


def _write_split(
    out_dir: Path, name: str, split: int, n: int, scale: float, seed: int, progress: bool
) -> SplitFiles:
    records: list[ImageLandmarks] = []
    images: list[dict] = []

    def slices() -> Iterator[np.ndarray]:
        # Images are made while the stack is written: one full-size image in memory at a time.
        for i in tqdm(range(n), desc=f"{name} images", unit="img", disable=not progress):
            synth = generate_image(seed, split, i, scale)
            records.append(ImageLandmarks(z=i + 1, points=synth.points, spacing=synth.spacing))
            height, width = synth.image.shape
            images.append(
                dict(
                    z=i + 1, centre=synth.centre, height=height, width=width, spacing=synth.spacing
                )
            )
            yield synth.image

    files = SplitFiles(
        out_dir / f"{name}_stack.mha", out_dir / f"{name}-gt.json", out_dir / f"{name}-meta.json"
    )
    write_stack(files.stack, slices(), padded_size(scale), n_slices=n)
    write_gt(files.gt, records)
    header = json.dumps(dict(generator="cephalo.data.synth", seed=seed, scale=scale, split=name))
    lines = ",\n".join(json.dumps(image) for image in images)
    with atomic_open(files.meta, "w") as f:
        f.write(f'{header[:-1]}, "images": [\n{lines}\n]}}\n')
    return files
