"""The training cache: each prepared image again at the resolution training needs, in a
format that decodes fast.

Why: at the real image size (about 2000 x 2400 px, ~7 MB PNGs of three equal channels)
decoding the full-size image every epoch sets the pace of training, not the network: one core
feeds about 4 images/s at 512 px. Training never needs more than about twice its input
size, so the cache keeps each image with its long side at most ``long_side`` pixels
(area-interpolated), single-channel where the channels are equal (checked per image), in a
PNG with the lightest compression.

Layout, inside the prepared dataset it is made from (which owns it: a dataset prepared again
with ``--force`` is replaced whole, its caches with it)::

    cache/long1024/images/0001.png   the reduced image (grey, or colour where channels differ)
    cache/long1024/annotations.json  the dataset's COCO annotations in the reduced frame
    cache/long1024/cache.json        format, long side, the dataset it came from; written last

Coordinates: ``cv2.resize`` with ``INTER_AREA`` maps pixel centres linearly, so a landmark at
column x of an image w pixels wide sits at ``(x + 0.5) * w' / w - 0.5`` in the reduced one
(w' pixels), and the same for rows; the spacing grows by w / w'. Each image entry keeps its
``scale_xy`` (w' / w, h' / h). Errors in millimetres are the same in either frame, so the
validation metric works unchanged; the run's out-of-fold and test predictions are made on
the full-size images and stay in original pixels.

Building is atomic and resumable: images go one by one (each atomically) into a hidden
partial folder that survives an interruption and is reused, the folder is renamed into place
once complete, and a lock lets two workers ask for the same cache at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from cephalo.data.prepared import ANNOTATIONS, IMAGES, read_manifest
from cephalo.errors import DataError
from cephalo.files import atomic_open

FORMAT = "cephalo-training-cache/1"
CACHE = "cache"
MANIFEST = "cache.json"
PNG_FAST = [cv2.IMWRITE_PNG_COMPRESSION, 1]


def cache_dir(dataset_dir: str | os.PathLike[str], long_side: int) -> Path:
    return Path(dataset_dir) / CACHE / f"long{long_side}"


def reduced_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """(w', h'): the image's size with its long side at most ``long_side``."""
    factor = min(1.0, long_side / max(width, height))
    return max(1, round(width * factor)), max(1, round(height * factor))


def to_reduced(points: np.ndarray, scale_xy: tuple[float, float]) -> np.ndarray:
    """Pixel coordinates of the original image in the reduced one (pixel centres kept)."""
    return (np.asarray(points, np.float64) + 0.5) * np.asarray(scale_xy) - 0.5


def to_original(points: np.ndarray, scale_xy: tuple[float, float]) -> np.ndarray:
    """The inverse of :func:`to_reduced`."""
    return (np.asarray(points, np.float64) + 0.5) / np.asarray(scale_xy) - 0.5


def _identity(dataset_dir: Path, long_side: int) -> dict[str, Any]:
    manifest = read_manifest(dataset_dir)
    if manifest is None:
        raise DataError(f"{dataset_dir} is not a prepared dataset (no dataset.json)")
    dataset = {key: manifest.get(key) for key in ("format", "kind", "source", "n_images")}
    return dict(format=FORMAT, long_side=long_side, dataset=dataset)


def _is_complete(folder: Path, identity: dict[str, Any]) -> bool:
    manifest = folder / MANIFEST
    return manifest.is_file() and json.loads(manifest.read_text()) == identity


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _reduce(source: Path, target: Path, size: tuple[int, int]) -> None:
    """Write ``source`` reduced to ``size`` at ``target`` (atomically), single-channel when
    its channels are equal."""
    image = cv2.imread(str(source), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise DataError(f"{source}: cannot be read")
    if image.ndim == 3 and (image == image[..., :1]).all():
        image = image[..., 0]
    if image.shape[1::-1] != size:
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".png", image, PNG_FAST)
    if not ok:
        raise OSError(f"could not encode {target}")
    with atomic_open(target, "wb") as f:
        f.write(encoded.tobytes())


def training_cache(dataset_dir: str | os.PathLike[str], long_side: int) -> Path:
    """The cache of ``dataset_dir`` at ``long_side``, built first when missing or made from
    another dataset; returns its folder (which holds ``images/`` and ``annotations.json``)."""
    dataset_dir = Path(dataset_dir)
    folder = cache_dir(dataset_dir, long_side)
    identity = _identity(dataset_dir, long_side)
    if _is_complete(folder, identity):
        return folder
    with _locked(folder.parent / f".{folder.name}.lock"):
        if _is_complete(folder, identity):  # another worker built it meanwhile
            return folder
        partial = folder.parent / f".{folder.name}.partial"
        (partial / IMAGES).mkdir(parents=True, exist_ok=True)
        coco = json.loads((dataset_dir / ANNOTATIONS).read_text())
        images = {image["id"]: image for image in coco["images"]}
        for image in coco["images"]:
            target = partial / IMAGES / image["file_name"]
            size = reduced_size(image["width"], image["height"], long_side)
            if not target.is_file():  # reused after an interruption: images are deterministic
                _reduce(dataset_dir / IMAGES / image["file_name"], target, size)
            scale_xy = (size[0] / image["width"], size[1] / image["height"])
            image.update(
                width=size[0],
                height=size[1],
                spacing=image["spacing"] / float(np.sqrt(scale_xy[0] * scale_xy[1])),
                scale_xy=list(scale_xy),
            )
        for annotation in coco["annotations"]:
            image = images[annotation["image_id"]]
            keypoints = np.asarray(annotation["keypoints"], np.float64).reshape(-1, 3)
            keypoints[:, :2] = to_reduced(keypoints[:, :2], image["scale_xy"])
            annotation.update(
                keypoints=keypoints.ravel().tolist(),
                bbox=[0, 0, image["width"], image["height"]],
                area=image["width"] * image["height"],
            )
        (partial / ANNOTATIONS).write_text(json.dumps(coco))
        (partial / MANIFEST).write_text(json.dumps(identity, indent=1) + "\n")
        if folder.exists():  # a cache of another dataset under this name
            shutil.rmtree(folder)
        os.replace(partial, folder)
    return folder
