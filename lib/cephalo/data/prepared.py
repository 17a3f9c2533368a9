"""The prepared dataset: what ``cephalo data prepare`` writes and every later step reads.

Layout of a prepared folder::

    images/0001.png     one PNG per image, padding cropped (file name = 1-based slice z)
    annotations.json    COCO keypoints, readable by MMPose's CocoDataset; each image entry
                        also carries ``z``, ``spacing`` (mm per pixel) and ``group``
    folds.csv           image_id, z, file_name, group, fold, organiser_split
    dataset.json        the manifest: sources, options, landmark names; written last

A folder is built under a hidden sibling name and renamed into place once complete, so a
folder with that name is always whole: an interrupted run leaves only the hidden sibling,
which the next run removes. The same format serves CL-Detection (38 landmarks) and ISBI
2015 (19): the landmark names travel in the file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd

from cephalo.data.folds import organiser_split, stratified_folds
from cephalo.errors import DataError, NotFound
from cephalo.files import atomic_open

FORMAT = "cephalo-prepared/1"
MANIFEST = "dataset.json"
ANNOTATIONS = "annotations.json"
FOLDS = "folds.csv"
IMAGES = "images"


@dataclass(frozen=True)
class PreparedImage:
    """One image of a prepared dataset."""

    image_id: int
    z: int
    file_name: str
    width: int
    height: int
    spacing: float
    group: str
    points: np.ndarray  # (K, 2) pixel coordinates, x = column, y = row


def read_manifest(root: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The manifest of a complete prepared folder, or None when there is none."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def is_prepared(out: str | os.PathLike[str], identity: dict[str, Any], force: bool) -> bool:
    """True when ``out`` already holds the dataset ``identity`` describes (its manifest
    agrees on every key), so there is nothing to do. Raises when ``out`` holds another
    dataset, unless ``force`` asks to replace it."""
    existing = read_manifest(out)
    if existing is None or force:
        return False
    if {key: existing.get(key) for key in identity} == identity:
        return True
    raise DataError(
        f"{out} holds a dataset prepared from other inputs or options; "
        "pass --force to replace it, or choose another --out"
    )


def _stale_siblings(out: Path) -> Iterator[Path]:
    for sibling in out.parent.glob(f".{out.name}.partial-*"):
        pid = sibling.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or not Path(f"/proc/{pid}").exists():
            yield sibling


class DatasetWriter:
    """Builds a prepared folder image by image, then publishes it atomically.

    Use as a context manager: ``add`` each image, then ``finish``. Leaving the block without
    ``finish`` (an error, Ctrl-C) removes everything written.
    """

    def __init__(self, out: str | os.PathLike[str], landmark_names: Sequence[str]) -> None:
        self.out = Path(out).absolute()
        self.landmark_names = list(landmark_names)
        self.images: list[PreparedImage] = []
        self.partial = self.out.parent / f".{self.out.name}.partial-{os.getpid()}"

    def __enter__(self) -> DatasetWriter:
        if self.out.exists() and any(self.out.iterdir()) and read_manifest(self.out) is None:
            raise DataError(f"{self.out} exists and is not a prepared dataset: not overwriting it")
        for stale in _stale_siblings(self.out):
            shutil.rmtree(stale, ignore_errors=True)
        shutil.rmtree(self.partial, ignore_errors=True)
        (self.partial / IMAGES).mkdir(parents=True)
        return self

    def __exit__(self, *exc_info: object) -> None:
        shutil.rmtree(self.partial, ignore_errors=True)

    def add(self, image: np.ndarray, record: PreparedImage) -> None:
        """Write one RGB image (already cropped) and remember its annotation."""
        if record.points.shape != (len(self.landmark_names), 2):
            raise ValueError(f"{record.file_name}: expected {len(self.landmark_names)} points")
        target = self.partial / IMAGES / record.file_name
        if not cv2.imwrite(str(target), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
            raise OSError(f"could not write {target}")
        self.images.append(record)

    def finish(self, identity: dict[str, Any]) -> Path:
        """Write annotations, folds and manifest, then move the folder into place.

        ``identity`` (kind, source, folds, seed) goes into the manifest, where
        :func:`is_prepared` finds it.
        """
        _write_json(self.partial / ANNOTATIONS, coco_annotations(self.images, self.landmark_names))
        folds = folds_table(self.images, identity["folds"], identity["seed"])
        folds.to_csv(self.partial / FOLDS, index=False)
        manifest = dict(
            format=FORMAT,
            n_images=len(self.images),
            landmarks=self.landmark_names,
            **identity,
        )
        _write_json(self.partial / MANIFEST, manifest)
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(self.out)  # an earlier dataset being replaced (--force)
        os.replace(self.partial, self.out)
        return self.out


def coco_annotations(images: Sequence[PreparedImage], names: Sequence[str]) -> dict[str, Any]:
    """COCO keypoint annotations: one person per image, bbox = the whole image."""
    coco_images, annotations = [], []
    for image in images:
        keypoints = np.concatenate([image.points, np.full((len(names), 1), 2.0)], axis=1)
        coco_images.append(
            dict(
                id=image.image_id,
                file_name=image.file_name,
                width=image.width,
                height=image.height,
                z=image.z,
                spacing=image.spacing,
                group=image.group,
            )
        )
        annotations.append(
            dict(
                id=image.image_id,
                image_id=image.image_id,
                category_id=1,
                iscrowd=0,
                num_keypoints=len(names),
                keypoints=keypoints.ravel().tolist(),
                bbox=[0, 0, image.width, image.height],
                area=image.width * image.height,
            )
        )
    category = dict(id=1, name="cephalogram", keypoints=list(names), skeleton=[])
    return dict(images=coco_images, annotations=annotations, categories=[category])


def folds_table(images: Sequence[PreparedImage], n_folds: int, seed: int) -> pd.DataFrame:
    """One row per image: its group, its cross-validation fold and its organiser split."""
    groups = [image.group for image in images]
    return pd.DataFrame(
        dict(
            image_id=[image.image_id for image in images],
            z=[image.z for image in images],
            file_name=[image.file_name for image in images],
            group=groups,
            fold=stratified_folds(groups, n_folds, seed),
            organiser_split=organiser_split(len(images)),
        )
    )


def load_images(root: str | os.PathLike[str]) -> list[PreparedImage]:
    """The images of a prepared folder with their landmarks, in annotation order."""
    coco = json.loads(_dataset_file(root, ANNOTATIONS).read_text())
    n_landmarks = len(coco["categories"][0]["keypoints"])
    keypoints = {a["image_id"]: np.asarray(a["keypoints"]) for a in coco["annotations"]}
    return [
        PreparedImage(
            image_id=image["id"],
            z=image["z"],
            file_name=image["file_name"],
            width=image["width"],
            height=image["height"],
            spacing=image["spacing"],
            group=image["group"],
            points=keypoints[image["id"]].reshape(n_landmarks, 3)[:, :2],
        )
        for image in coco["images"]
    ]


def load_folds(root: str | os.PathLike[str]) -> pd.DataFrame:
    return pd.read_csv(_dataset_file(root, FOLDS))


def fold_split(dataset_dir: Path, fold: int | None) -> tuple[list[int], list[int]]:
    """(training image ids, held-out image ids) of ``fold``; None holds out nothing."""
    folds = load_folds(dataset_dir)
    if fold is None:
        return folds["image_id"].tolist(), []
    if fold not in set(folds["fold"]):
        raise DataError(
            f"fold {fold} does not exist in {dataset_dir} (folds: {sorted(set(folds['fold']))})"
        )
    held_out = folds["fold"] == fold
    return folds.loc[~held_out, "image_id"].tolist(), folds.loc[held_out, "image_id"].tolist()


def write_subset(dataset_dir: Path, image_ids: Sequence[int], path: Path) -> Path:
    """The prepared dataset's COCO annotations restricted to ``image_ids``."""
    coco = json.loads(_dataset_file(dataset_dir, ANNOTATIONS).read_text())
    keep = set(image_ids)
    subset = dict(
        coco,
        images=[i for i in coco["images"] if i["id"] in keep],
        annotations=[a for a in coco["annotations"] if a["image_id"] in keep],
    )
    with atomic_open(path, "w") as f:
        f.write(json.dumps(subset))
    return path


def prepared_images(
    dataset_dir: Path, images: Sequence[PreparedImage]
) -> Iterator[tuple[int, np.ndarray, float]]:
    """(image id, BGR pixels, spacing), read one at a time."""
    for image in images:
        pixels = cv2.imread(str(Path(dataset_dir) / IMAGES / image.file_name), cv2.IMREAD_COLOR)
        yield image.image_id, pixels, image.spacing


def _dataset_file(root: str | os.PathLike[str], name: str) -> Path:
    """The file ``name`` of the prepared dataset ``root``; NotFound naming both when the
    folder is not (or no longer) one."""
    path = Path(root) / name
    if not path.is_file():
        raise NotFound(f"{root}: not a prepared dataset (no {name}; cephalo data prepare)")
    return path


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n")
