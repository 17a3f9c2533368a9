"""Acquisition groups: what folds are stratified by and reports break errors down by.

The release records no centre, only each image's spacing, and the spacing tells the three
centres apart (0.1, 0.096 and about 0.125 mm per pixel). Image size does not: one centre's
images vary in size from image to image, so grouping by size would split it into many tiny
groups. The group of an image is therefore its spacing, rounded to a micrometre, unless the
user gives groups in a sidecar such as the synthetic generator's ``train-meta.json``
(``{"images": [{"z": 1, "centre": "B", ...}, ...]}``), which :func:`meta_groups` reads.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cephalo.data.release import ImageLandmarks
from cephalo.errors import DataError
from cephalo.files import read_json

SPACING_DECIMALS = 3
"""Spacings are grouped to the micrometre: 0.1 and 0.096 mm are two centres."""


def spacing_group(spacing: float) -> str:
    """The group of an image known only by its spacing: 0.1 -> ``"0.1mm"``,
    0.0961 -> ``"0.096mm"``."""
    return f"{round(spacing, SPACING_DECIMALS):g}mm"


def read_meta(path: str | os.PathLike[str]) -> dict[int, dict[str, Any]]:
    """The per-slice entries of a sidecar such as ``train-meta.json``: ``{z: entry}``."""
    path = Path(path)
    data = read_json(path, "meta sidecar")
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise DataError(f"{path}: expected an object with an 'images' list of {{'z': ...}}")
    entries: dict[int, dict[str, Any]] = {}
    for i, entry in enumerate(data["images"]):
        z = entry.get("z") if isinstance(entry, dict) else None
        if not isinstance(z, int) or isinstance(z, bool) or z < 1:
            raise DataError(f"{path}: images[{i}] needs a 1-based integer 'z'")
        if z in entries:
            raise DataError(f"{path}: z={z} appears twice")
        entries[z] = entry
    return entries


def meta_groups(
    path: str | os.PathLike[str], records: Sequence[ImageLandmarks], key: str = "centre"
) -> dict[str, dict[int, str]]:
    """``{key: {z: label}}`` from a sidecar, after checking it describes exactly the slices
    of ``records`` (the ground truth) with the same spacings."""
    meta = read_meta(path)
    check_covers(path, set(meta), records)
    labels = {}
    for record in records:
        entry = meta[record.z]
        if key not in entry:
            raise DataError(f"{path}: z={record.z} has no {key!r}")
        spacing = entry.get("spacing")
        if (
            isinstance(spacing, int | float)
            and not isinstance(spacing, bool)
            and not math.isclose(spacing, record.spacing, rel_tol=1e-9)
        ):
            raise DataError(
                f"{path}: z={record.z} has spacing {spacing}, the ground truth {record.spacing}; "
                "is it the sidecar of another split?"
            )
        labels[record.z] = str(entry[key])
    return {key: labels}


def check_covers(source: Any, zs: set[int], records: Sequence[ImageLandmarks]) -> None:
    """``zs`` must be exactly the slices of the ground truth ``records``."""
    truth = {record.z for record in records}
    if zs - truth:
        raise DataError(f"{source}: slice(s) z={_shown(zs - truth)} are not in the ground truth")
    if truth - zs:
        raise DataError(f"{source}: nothing for ground-truth slice(s) z={_shown(truth - zs)}")


def _shown(zs: set[int]) -> str:
    ordered = sorted(zs)
    return ", ".join(map(str, ordered[:10])) + (" ..." if len(ordered) > 10 else "")
