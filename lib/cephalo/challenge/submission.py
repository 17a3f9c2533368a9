"""Challenge-format submissions: writing them, and checking every file written.

A submission folder holds::

    predictions.json   the challenge's "Multiple points" JSON: every slice x 38 landmarks,
                       z the 1-based slice of the test stack, x/y pixels of the unpadded image
    predictions.csv    the same as a table: image (z), landmark, x, y
    manifest.json      how it was made: members, TTA views, fusion and weights, OOF scores,
                       package versions, the git commit

:func:`validate` re-reads the JSON with the evaluator's strict reader and checks each point
is finite and inside its unpadded image, and that the slices are exactly the stack's.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from cephalo.challenge.points import write_json
from cephalo.errors import DataError
from cephalo.files import atomic_open, read_json
from cephalo.landmarks import LANDMARK_NAMES
from cephalo.paths import REPO_ROOT

JSON, CSV, MANIFEST = "predictions.json", "predictions.csv", "manifest.json"
VERSIONED = ("cephalo", "torch", "mmpose", "mmengine", "mmcv", "numpy", "optuna")


def read_submission_manifest(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """A submission folder's manifest; a DataError naming it when the folder has none."""
    return read_json(Path(folder) / MANIFEST, "a submission's manifest: cephalo ensemble")


def write_submission(
    folder: str | os.PathLike[str],
    slices: np.ndarray,
    coords: np.ndarray,
    image_sizes: np.ndarray,
    manifest: dict[str, Any],
) -> Path:
    """Write the three files (each atomically, the manifest last) and validate them."""
    folder = Path(folder)
    write_json(folder / JSON, slices, coords)
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(["image", "landmark", "x", "y"])
    for z, image in zip(slices, coords, strict=True):
        for name, (x, y) in zip(LANDMARK_NAMES, image, strict=True):
            writer.writerow([int(z), name, repr(float(x)), repr(float(y))])
    with atomic_open(folder / CSV, "w") as f:
        f.write(table.getvalue())
    validate(folder / JSON, slices, image_sizes)
    full = dict(manifest, versions=versions(), commit=git_commit())
    with atomic_open(folder / MANIFEST, "w") as f:
        f.write(json.dumps(full, indent=1, default=_plain) + "\n")
    return folder


def clip_to_images(coords: np.ndarray, image_sizes: np.ndarray) -> np.ndarray:
    """(N, K, 2) coordinates clipped to their images (``image_sizes`` (N, 2) width, height):
    a model's input crop reaches past the image (aspect padding), an answer there cannot be
    right, and the challenge wants points on the image."""
    upper = (image_sizes - 1)[:, None, :].astype(np.float64)
    return np.clip(coords, 0.0, upper)


def validate(
    path: str | os.PathLike[str], slices: Sequence[int], image_sizes: np.ndarray
) -> dict[int, np.ndarray]:
    """Check a prediction file for the stack: every slice (exactly ``slices``) x every
    landmark, finite, inside the unpadded image (``image_sizes`` (N, 2) width, height in the
    order of ``slices``). Raises DataError naming the slice and landmark."""
    from cephalo.challenge.points import read_predictions

    predicted = read_predictions(path)  # structure, names, duplicates, missing landmarks
    wanted = {int(z) for z in slices}
    if set(predicted) != wanted:
        extra, missing = sorted(set(predicted) - wanted), sorted(wanted - set(predicted))
        raise DataError(f"{path}: slices {missing} missing, {extra} not in the stack")
    for z, (width, height) in zip(slices, image_sizes, strict=True):
        points = predicted[int(z)]
        outside = ~(
            (points[:, 0] >= -0.5)
            & (points[:, 0] <= width - 0.5)
            & (points[:, 1] >= -0.5)
            & (points[:, 1] <= height - 0.5)
        )
        if outside.any():
            k = int(np.flatnonzero(outside)[0])
            raise DataError(
                f"{path}: z={z}, landmark {LANDMARK_NAMES[k]!r} at {points[k].tolist()} lies "
                f"outside the {width}x{height} image"
            )
    return predicted


def versions() -> dict[str, str]:
    found = {}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def git_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True
        )
    except OSError:
        return None
    return result.stdout.strip() or None


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)
