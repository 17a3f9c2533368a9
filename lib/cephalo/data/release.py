"""Reading and writing the CL-Detection 2023 release format.

The training release is one MetaImage stack (``train_stack.mha``: uncompressed RGB uint8, one
image per slice, each zero-padded at the bottom and right to a common size) and one
ground-truth JSON (``train-gt.json``: a flat ``points`` list of
``{"name": "1".."38", "point": [x, y, z], "scale": mm_per_pixel}`` with z the 1-based slice).
The organisers' annotation README documents the same entries with an integer name and a
numeric-string scale (``{"name": 1, "point": [835, 996, 1], "scale": "0.1"}``) and their
readers convert with ``float(landmark["scale"])``: both forms are read (:func:`landmark_key`,
:func:`parse_scale`), and the kit writes the challenge's (string names, numeric scales).
The full stack is about 8 GB, so it is written slice by slice and read one slice at a time
through SimpleITK's streaming reader; it never sits in memory whole.

Coordinates are pixels of the unpadded image: x is the column, y the row. Every write goes to
a temporary file in the target folder and is renamed into place, so an interrupted write
never leaves a file that looks complete.

Checking the content (coordinates inside the image, plausible spacing, ...) is the job of the
validation module; this one only refuses JSON whose structure it cannot represent.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import SimpleITK as sitk

from cephalo.errors import DataError
from cephalo.files import atomic_open
from cephalo.landmarks import LANDMARK_NAMES, NUM_LANDMARKS

_NAME_INDEX = {name: i for i, name in enumerate(LANDMARK_NAMES)}


@dataclass(eq=False)
class ImageLandmarks:
    """The ground truth of one image: its slice, its 38 landmarks and its pixel spacing."""

    z: int
    """1-based slice index in the stack."""
    points: np.ndarray
    """(38, 2) float64 pixel coordinates (x = column, y = row), landmarks "1".."38" in order."""
    spacing: float
    """Millimetres per pixel (the release's ``scale``)."""


def _mha_header(width: int, height: int, n_slices: int) -> bytes:
    # The keys and their order are what SimpleITK itself writes for an RGB uint8 volume;
    # ElementDataFile must come last, the pixel data follows it directly.
    lines = [
        "ObjectType = Image",
        "NDims = 3",
        "BinaryData = True",
        "BinaryDataByteOrderMSB = False",
        "CompressedData = False",
        "TransformMatrix = 1 0 0 0 1 0 0 0 1",
        "Offset = 0 0 0",
        "CenterOfRotation = 0 0 0",
        "AnatomicalOrientation = RAI",
        "ElementSpacing = 1 1 1",
        f"DimSize = {width} {height} {n_slices}",
        "ElementNumberOfChannels = 3",
        "ElementType = MET_UCHAR",
        "ElementDataFile = LOCAL",
    ]
    return ("\n".join(lines) + "\n").encode("ascii")


def write_stack(
    path: str | os.PathLike[str],
    slices: Iterable[np.ndarray],
    size_hw: tuple[int, int],
    n_slices: int | None = None,
) -> Path:
    """Write images as one stacked, zero-padded RGB uint8 MetaImage, one slice at a time.

    Each slice is (h, w, 3) or greyscale (h, w) uint8 with h <= H and w <= W, placed at the
    top-left of an H x W slice. The header needs the slice count up front: give ``n_slices``
    when ``slices`` is a generator (it is checked against what the generator yields).
    """
    path = Path(path)
    height, width = size_hw
    if n_slices is None:
        if not isinstance(slices, Sequence):
            raise ValueError("n_slices is required when slices is not a sequence")
        n_slices = len(slices)
    buffer = np.zeros((height, width, 3), np.uint8)
    with atomic_open(path, "wb") as f:
        f.write(_mha_header(width, height, n_slices))
        written = 0
        for image in slices:
            if written == n_slices:
                raise ValueError(f"more slices than the n_slices={n_slices} announced")
            image = np.asarray(image)
            if image.dtype != np.uint8 or not (
                image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 3)
            ):
                raise ValueError(
                    f"slice {written + 1}: need (h, w[, 3]) uint8, got {image.shape} {image.dtype}"
                )
            h, w = image.shape[:2]
            if h > height or w > width:
                raise ValueError(
                    f"slice {written + 1}: {h}x{w} exceeds the stack's {height}x{width}"
                )
            buffer[:] = 0
            buffer[:h, :w] = image[..., None] if image.ndim == 2 else image
            f.write(buffer.data)
            written += 1
        if written != n_slices:
            raise ValueError(f"got {written} slices, announced n_slices={n_slices}")
    return path


def stack_info(path: str | os.PathLike[str]) -> tuple[int, int, int]:
    """(n_slices, H, W) of a stack, from its header alone."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    width, height, n_slices = reader.GetSize()
    return n_slices, height, width


def read_slice(path: str | os.PathLike[str], k: int) -> np.ndarray:
    """Slice ``k`` (0-based; the GT's z is k + 1) as (H, W, 3) uint8, padding included.

    Uses SimpleITK's streaming read, so only that slice is read from disk.
    """
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    width, height, n_slices = reader.GetSize()
    if not 0 <= k < n_slices:
        raise IndexError(f"slice {k} out of range for a stack of {n_slices}")
    reader.SetExtractIndex([0, 0, k])
    # A zero extent in z collapses that axis: the result is a 2-D RGB image.
    reader.SetExtractSize([width, height, 0])
    return sitk.GetArrayFromImage(reader.Execute())


def unpadded_size(image: np.ndarray) -> tuple[int, int]:
    """(h, w) of an image inside its zero padding: up to the last non-zero row and column."""
    nonzero = image.any(axis=2) if image.ndim == 3 else image != 0
    rows = np.flatnonzero(nonzero.any(axis=1))
    cols = np.flatnonzero(nonzero.any(axis=0))
    if rows.size == 0:
        return 0, 0
    return int(rows[-1]) + 1, int(cols[-1]) + 1


def write_gt(path: str | os.PathLike[str], records: Iterable[ImageLandmarks]) -> Path:
    """Write ground truth in the release's JSON layout (one point entry per line)."""
    path = Path(path)
    entries = []
    for record in records:
        points = np.asarray(record.points, dtype=np.float64)
        if points.shape != (NUM_LANDMARKS, 2):
            raise ValueError(
                f"z={record.z}: points must be ({NUM_LANDMARKS}, 2), got {points.shape}"
            )
        for name, (x, y) in zip(LANDMARK_NAMES, points.tolist(), strict=True):
            entry = {"name": name, "point": [x, y, int(record.z)], "scale": float(record.spacing)}
            # allow_nan=False: a NaN would make the file invalid JSON for other readers.
            entries.append(json.dumps(entry, allow_nan=False))
    with atomic_open(path, "w") as f:
        f.write('{"points": [\n' + ",\n".join(entries) + "\n]}\n")
    return path


def landmark_key(name: Any) -> str | None:
    """A landmark ``name`` as the challenge spells it: ``"7"`` and ``7`` are both ``"7"``;
    None for anything that is neither a string nor an integer."""
    if isinstance(name, str):
        return name
    if isinstance(name, int) and not isinstance(name, bool):
        return str(name)
    return None


def parse_scale(value: Any) -> float | None:
    """A ``scale`` given as a number or a numeric string (``0.1`` or ``"0.1"``) as a float;
    None when it is neither. Range checks (finite, positive) are the caller's."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _parse_entry(i: int, entry: Any) -> tuple[int, int, float, float, float]:
    """(z, landmark index, x, y, spacing) of one ``points`` entry, or ValueError."""
    where = f"points[{i}]"
    if isinstance(entry, dict):
        # Name the landmark and slice in every message, as far as the entry tells them.
        point = entry.get("point")
        if isinstance(point, list) and len(point) == 3:
            where += f" (z={point[2]}, landmark {entry.get('name')!r})"
        elif "name" in entry:
            where += f" (landmark {entry['name']!r})"
    if not isinstance(entry, dict) or not {"name", "point", "scale"} <= entry.keys():
        missing = sorted({"name", "point", "scale"} - set(entry)) if isinstance(entry, dict) else []
        raise ValueError(
            f"{where}: need an object with 'name', 'point' and 'scale'"
            + (f"; missing {', '.join(map(repr, missing))}" if missing else "")
        )
    name, point = landmark_key(entry["name"]), entry["point"]
    if name not in _NAME_INDEX:
        raise ValueError(
            f"{where}: name {entry['name']!r} is not one of '1'..'{NUM_LANDMARKS}' "
            f"(or 1..{NUM_LANDMARKS})"
        )
    numbers = (int, float)
    if (
        not isinstance(point, list)
        or len(point) != 3
        or not all(isinstance(v, numbers) and not isinstance(v, bool) for v in point)
    ):
        raise ValueError(f"{where}: 'point' must be a list of three numbers [x, y, z]")
    scale = parse_scale(entry["scale"])
    if scale is None:
        raise ValueError(
            f"{where}: 'scale' must be a number or a numeric string, got {entry['scale']!r}"
        )
    x, y, z = point
    if not math.isfinite(z) or z != int(z):
        raise ValueError(f"{where}: z={z} is not a slice index")
    return int(z), _NAME_INDEX[name], float(x), float(y), scale


def read_truth(path: Path, what: str = "ground truth") -> list[ImageLandmarks]:
    """The ground truth of ``path``, one record per slice, checked as every reader needs it:
    a DataError naming the file (and the slice and landmark) when it is missing, cannot be
    read (:func:`read_gt`), holds nothing, or has a spacing or a coordinate that is not a
    positive / finite number."""
    if not path.is_file():
        raise DataError(f"{path}: no such file ({what})")
    try:
        records = read_gt(path)
    except ValueError as error:
        raise DataError(str(error)) from None
    if not records:
        raise DataError(f"{path}: no landmarks at all")
    for record in records:
        if not (math.isfinite(record.spacing) and record.spacing > 0):
            raise DataError(
                f"{path}: z={record.z}: scale must be a positive number of mm per pixel, "
                f"got {record.spacing}"
            )
        for name, (x, y) in zip(LANDMARK_NAMES, record.points, strict=True):
            if not (np.isfinite(x) and np.isfinite(y)):
                raise DataError(
                    f"{path}: z={record.z}, landmark {name}: coordinate ({x}, {y}) is not finite"
                )
    return records


def read_gt(path: str | os.PathLike[str]) -> list[ImageLandmarks]:
    """Read a ground-truth JSON into one record per image, sorted by z.

    Extra keys are ignored. Raises ValueError when the structure cannot be represented:
    no ``points`` list, an entry without name/point/scale, an image without exactly one
    entry per landmark, or one image with two different spacings.
    """
    with open(path) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(data, dict) or not isinstance(data.get("points"), list):
        raise ValueError(f"{path}: expected an object with a 'points' list")
    points: dict[int, np.ndarray] = {}
    seen: dict[int, np.ndarray] = {}
    spacing: dict[int, float] = {}
    for i, entry in enumerate(data["points"]):
        try:
            z, j, x, y, scale = _parse_entry(i, entry)
        except ValueError as error:
            raise ValueError(f"{path}: {error}") from None
        if z not in points:
            points[z] = np.zeros((NUM_LANDMARKS, 2))
            seen[z] = np.zeros(NUM_LANDMARKS, bool)
            spacing[z] = scale
        if seen[z][j]:
            raise ValueError(f"{path}: landmark {LANDMARK_NAMES[j]} appears twice for z={z}")
        if scale != spacing[z] and not (math.isnan(scale) and math.isnan(spacing[z])):
            raise ValueError(f"{path}: z={z} has two spacings, {spacing[z]} and {scale}")
        points[z][j] = x, y
        seen[z][j] = True
    records = []
    for z in sorted(points):
        missing = [LANDMARK_NAMES[j] for j in np.flatnonzero(~seen[z])]
        if missing:
            raise ValueError(f"{path}: z={z} lacks landmarks {', '.join(missing)}")
        records.append(ImageLandmarks(z=z, points=points[z], spacing=spacing[z]))
    return records
