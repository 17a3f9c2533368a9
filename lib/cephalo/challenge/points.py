"""The challenge's prediction file, the "Multiple points" JSON its evaluation container
writes, written and read here only::

    {"name": "Orthodontic landmarks", "type": "Multiple points",
     "points": [{"name": "1", "point": [x, y, z]}, ...], "version": {"major": 1, "minor": 0}}

one entry per (image, landmark), z the 1-based slice of the input stack, x and y pixels of
the unpadded image. The reader is strict: a file that leaves out a landmark or a slice
must not quietly score better (or worse) than it deserves.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cephalo.data.release import landmark_key
from cephalo.errors import DataError
from cephalo.files import atomic_open, read_json
from cephalo.landmarks import LANDMARK_NAMES


def challenge_json(slices: np.ndarray, coords: np.ndarray) -> dict[str, Any]:
    """The challenge's JSON object for ``coords`` (N, 38, 2) of 1-based ``slices`` (N,)."""
    points = [
        {"name": name, "point": [float(x), float(y), int(z)]}
        for z, image in zip(slices, coords, strict=True)
        for name, (x, y) in zip(LANDMARK_NAMES, image, strict=True)
    ]
    return {
        "name": "Orthodontic landmarks",
        "type": "Multiple points",
        "points": points,
        "version": {"major": 1, "minor": 0},
    }


def write_json(path: str | os.PathLike[str], slices: np.ndarray, coords: np.ndarray) -> Path:
    with atomic_open(path, "w") as f:
        json.dump(challenge_json(slices, coords), f)
    return Path(path)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def read_predictions(
    path: str | os.PathLike[str], names: Sequence[str] = LANDMARK_NAMES
) -> dict[int, np.ndarray]:
    """The predictions of a challenge-format file: ``{z: (K, 2) array}``, sorted by z, with
    the landmarks in the order of ``names``.

    Raises DataError (naming file, slice and landmark) for a structure other than the
    challenge's, an unknown landmark name, a non-integer slice, a non-finite coordinate, a
    landmark given twice for one slice, or a slice that lacks some landmarks.
    """
    path = Path(path)
    data = read_json(path, "predictions")
    if not isinstance(data, dict) or not isinstance(data.get("points"), list):
        raise DataError(
            f"{path}: expected the challenge's 'Multiple points' JSON, an object with a "
            "'points' list of {'name': ..., 'point': [x, y, z]}"
        )
    index = {str(name): k for k, name in enumerate(names)}
    points: dict[int, np.ndarray] = {}
    for i, entry in enumerate(data["points"]):
        where = f"{path}: points[{i}]"
        if not isinstance(entry, dict) or "name" not in entry or "point" not in entry:
            raise DataError(f"{where}: need an object with 'name' and 'point'")
        name, point = landmark_key(entry["name"]) or entry["name"], entry["point"]
        if not isinstance(point, list) or len(point) != 3 or not all(map(_is_number, point)):
            raise DataError(f"{where} (landmark {name!r}): 'point' must be [x, y, z] numbers")
        x, y, z = point
        if not math.isfinite(z) or z != int(z) or z < 1:
            raise DataError(f"{where} (landmark {name!r}): z={z} is not a 1-based slice index")
        z = int(z)
        where = f"{path}: z={z}, landmark {name!r}"
        if not isinstance(name, str) or name not in index:
            raise DataError(
                f"{where}: the name must be one of '{names[0]}'..'{names[-1]}' (or integers)"
            )
        if not (math.isfinite(x) and math.isfinite(y)):
            raise DataError(f"{where}: coordinate ({x}, {y}) is not finite")
        slice_points = points.setdefault(z, np.full((len(names), 2), np.nan))
        if not np.isnan(slice_points[index[name]]).all():
            raise DataError(f"{where}: predicted twice")
        slice_points[index[name]] = x, y
    for z, slice_points in points.items():
        missing = [names[k] for k in np.flatnonzero(np.isnan(slice_points).any(axis=1))]
        if missing:
            shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
            raise DataError(f"{path}: z={z} lacks {len(missing)} landmark(s): {shown}")
    return dict(sorted(points.items()))
