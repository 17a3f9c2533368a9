"""``cephalo data prepare``: a CL-Detection 2023 release into a prepared dataset.

The release stack is about 8 GB decoded, so it is read one slice at a time (SimpleITK's
streaming reader): peak memory stays a small multiple of one slice whatever the slice count
(``benchmarks/prepare_memory.py`` measures it). Every input is checked before anything is
written, and every error names the file, slice and landmark; the output appears only once
complete (see :mod:`cephalo.data.prepared`), and a finished one is not redone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import SimpleITK as sitk
from tqdm import tqdm

from cephalo.data.groups import meta_groups, spacing_group
from cephalo.data.prepared import DatasetWriter, PreparedImage, is_prepared
from cephalo.data.release import ImageLandmarks, read_slice, read_truth, unpadded_size
from cephalo.errors import DataError
from cephalo.landmarks import LANDMARK_NAMES

_DATA_START = b"ElementDataFile = LOCAL\n"


def check_stack(stack: Path) -> tuple[int, int, int]:
    """(n_slices, H, W) of a release stack, after checking it is a whole RGB uint8 volume."""
    if not stack.is_file():
        raise DataError(f"{stack}: no such file")
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(stack))
    try:
        reader.ReadImageInformation()
    except RuntimeError as error:
        raise DataError(f"{stack}: not a readable MetaImage ({_first_line(error)})") from None
    size, channels = reader.GetSize(), reader.GetNumberOfComponents()
    pixel = sitk.GetPixelIDValueAsString(reader.GetPixelID())
    if len(size) != 3 or channels != 3 or "8-bit unsigned" not in pixel:
        raise DataError(
            f"{stack}: expected a stack of RGB uint8 slices (N, H, W, 3); found "
            f"{len(size)}-D size {size} with {channels} channel(s) of {pixel}"
        )
    width, height, n_slices = size
    _check_not_truncated(stack, n_slices * height * width * 3, height * width * 3)
    return n_slices, height, width


def _check_not_truncated(stack: Path, expected: int, slice_bytes: int) -> None:
    """An uncompressed MetaImage must hold all the pixel data its header promises."""
    with open(stack, "rb") as f:
        head = f.read(1 << 16)
    start = head.find(_DATA_START)
    if start < 0 or b"CompressedData = True" in head[:start]:
        return  # data in a separate file, or compressed: SimpleITK checks when reading
    found = stack.stat().st_size - (start + len(_DATA_START))
    if found < expected:
        raise DataError(
            f"{stack}: truncated: its header promises {expected} bytes of pixel data, the file "
            f"holds {found} (about {found // slice_bytes} whole slices)"
        )


def check_gt(gt: Path, n_slices: int, stack: Path) -> list[ImageLandmarks]:
    """The ground truth, one record per slice, after checking it against the stack."""
    records = read_truth(gt)
    for record in records:
        if not 1 <= record.z <= n_slices:
            raise DataError(f"{gt}: z={record.z} is outside {stack.name} ({n_slices} slices)")
    unlabelled = sorted(set(range(1, n_slices + 1)) - {r.z for r in records})
    if unlabelled:
        shown = ", ".join(map(str, unlabelled[:10])) + (" ..." if len(unlabelled) > 10 else "")
        raise DataError(f"{gt}: no landmarks for slice(s) z={shown} of {stack.name}")
    return records


def _check_inside(gt: Path, record: ImageLandmarks, width: int, height: int) -> None:
    for name, (x, y) in zip(LANDMARK_NAMES, record.points, strict=True):
        if not (0 <= x < width and 0 <= y < height):
            raise DataError(
                f"{gt}: z={record.z}, landmark {name}: ({x}, {y}) lies outside the image, "
                f"which is {width}x{height} once its padding is cropped"
            )


def _sources(stack: Path, gt: Path, groups: Path | None) -> dict[str, Any]:
    def describe(path: Path) -> dict[str, Any]:
        status = path.stat()
        return dict(path=str(path.resolve()), bytes=status.st_size, mtime_ns=status.st_mtime_ns)

    sources = dict(stack=describe(stack), gt=describe(gt))
    if groups is not None:
        if not groups.is_file():
            raise DataError(f"{groups}: no such file (the groups sidecar)")
        sources["groups"] = describe(groups)
    return sources


def prepare_release(
    stack: str | os.PathLike[str],
    gt: str | os.PathLike[str],
    out: str | os.PathLike[str],
    folds: int = 5,
    seed: int = 2023,
    force: bool = False,
    progress: bool = True,
    groups: str | os.PathLike[str] | None = None,
) -> Path:
    """Convert a release stack and its ground truth into a prepared dataset folder at
    ``out``; returns it. Folds are stratified by each image's spacing (which tells the
    release's centres apart), or by the ``centre`` that a ``groups`` sidecar gives each slice.
    A folder already prepared from the same files and options is left as it is (``force``
    redoes it)."""
    stack, gt, out = Path(stack), Path(gt), Path(out)
    groups = Path(groups) if groups is not None else None
    n_slices, _, _ = check_stack(stack)
    identity = dict(
        kind="cl-detection-2023", source=_sources(stack, gt, groups), folds=folds, seed=seed
    )
    if is_prepared(out, identity, force):
        if progress:
            tqdm.write(f"{out}: already prepared from these files, nothing to do")
        return out
    records = check_gt(gt, n_slices, stack)
    labels = (
        meta_groups(groups, records)["centre"]
        if groups is not None
        else {record.z: spacing_group(record.spacing) for record in records}
    )
    with DatasetWriter(out, LANDMARK_NAMES) as writer:
        for record in tqdm(records, desc=f"prepare {stack.name}", unit="img", disable=not progress):
            try:
                image = read_slice(stack, record.z - 1)
            except RuntimeError as error:
                raise DataError(
                    f"{stack}: slice z={record.z} cannot be read ({_first_line(error)})"
                ) from None
            height, width = unpadded_size(image)
            _check_inside(gt, record, width, height)
            writer.add(
                image[:height, :width],
                PreparedImage(
                    image_id=record.z,
                    z=record.z,
                    file_name=f"{record.z:04d}.png",
                    width=width,
                    height=height,
                    spacing=record.spacing,
                    group=labels[record.z],
                    points=record.points,
                ),
            )
            del image  # keep one slice alive at a time
        return writer.finish(identity)


def _first_line(error: Exception) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__
