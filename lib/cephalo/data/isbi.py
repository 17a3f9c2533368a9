"""``cephalo data prepare-isbi``: the ISBI 2015 challenge set into a prepared dataset.

ISBI 2015 (the older cephalometric benchmark): 400 lateral cephalograms as 1935 x 2400
BMPs at 0.1 mm per pixel, 19 landmarks each, annotated by two doctors. Its layout::

    RawImage/TrainingData/001.bmp ... 150.bmp
    RawImage/Test1Data/151.bmp ... 300.bmp
    RawImage/Test2Data/301.bmp ... 400.bmp
    AnnotationsByMD/400_senior/001.txt ...     19 lines "x,y" first, then other labels
    AnnotationsByMD/400_junior/001.txt ...

The two annotations are averaged by default, as usual in the literature. The result has the
same format as a prepared CL-Detection release with K = 19, so the rest of the kit works on
it unchanged; the subset (train / test1 / test2) is the image's group.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from cephalo.data.prepared import DatasetWriter, PreparedImage, is_prepared
from cephalo.errors import DataError

NUM_LANDMARKS = 19
LANDMARK_NAMES = tuple(str(i) for i in range(1, NUM_LANDMARKS + 1))
SPACING_MM = 0.1
SUBSETS = {"train": "TrainingData", "test1": "Test1Data", "test2": "Test2Data"}
ANNOTATORS = {"senior": "400_senior", "junior": "400_junior"}


def read_points(path: Path) -> np.ndarray:
    """The 19 (x, y) landmarks of one annotation file."""
    lines = path.read_text().splitlines()
    points = []
    for number, line in enumerate(lines[:NUM_LANDMARKS], start=1):
        try:
            x, y = (float(v) for v in line.split(","))
        except ValueError:
            raise DataError(
                f"{path}, line {number} (landmark {number}): expected 'x,y', got {line!r}"
            ) from None
        points.append((x, y))
    if len(points) < NUM_LANDMARKS:
        raise DataError(f"{path}: {len(points)} landmarks, expected {NUM_LANDMARKS}")
    return np.array(points)


def annotation(root: Path, image_stem: str, annotator: str) -> np.ndarray:
    """One image's landmarks: one doctor's, or the mean of both (``annotator="mean"``)."""
    names = list(ANNOTATORS) if annotator == "mean" else [annotator]
    paths = [root / "AnnotationsByMD" / ANNOTATORS[name] / f"{image_stem}.txt" for name in names]
    for path in paths:
        if not path.is_file():
            raise DataError(f"{path}: missing annotation for image {image_stem}")
    return np.mean([read_points(path) for path in paths], axis=0)


def prepare_isbi(
    root: str | os.PathLike[str],
    out: str | os.PathLike[str],
    subsets: tuple[str, ...] = tuple(SUBSETS),
    annotator: str = "mean",
    folds: int = 5,
    seed: int = 2023,
    force: bool = False,
    progress: bool = True,
) -> Path:
    """Convert the ISBI 2015 images of ``subsets`` under ``root`` into a prepared dataset."""
    root, out = Path(root), Path(out)
    if annotator not in (*ANNOTATORS, "mean"):
        raise DataError(f"annotator must be one of {[*ANNOTATORS, 'mean']}, got {annotator!r}")
    images = []
    for subset in subsets:
        if subset not in SUBSETS:
            raise DataError(f"unknown ISBI subset {subset!r}; choose from {list(SUBSETS)}")
        folder = root / "RawImage" / SUBSETS[subset]
        found = sorted(folder.glob("*.bmp"))
        if not found:
            raise DataError(f"{folder}: no .bmp images (is {root} the ISBI 2015 root?)")
        images += [(subset, path) for path in found]
    identity = dict(
        kind="isbi-2015",
        source=dict(
            root=str(root.resolve()),
            subsets=list(subsets),
            annotator=annotator,
            n_images=len(images),
        ),
        folds=folds,
        seed=seed,
    )
    if is_prepared(out, identity, force):
        return out
    with DatasetWriter(out, LANDMARK_NAMES) as writer:
        for subset, path in tqdm(
            images, desc="prepare ISBI 2015", unit="img", disable=not progress
        ):
            points = annotation(root, path.stem, annotator)
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise DataError(f"{path}: not a readable image")
            height, width = image.shape[:2]
            outside = ~((points >= 0) & (points < (width, height))).all(axis=1)
            if outside.any():
                number = int(np.flatnonzero(outside)[0]) + 1
                raise DataError(
                    f"{path}: landmark {number} at {tuple(points[number - 1])} lies "
                    f"outside the {width}x{height} image"
                )
            image_id = int(path.stem)
            writer.add(
                cv2.cvtColor(image, cv2.COLOR_BGR2RGB),
                PreparedImage(
                    image_id=image_id,
                    z=image_id,
                    file_name=f"{path.stem}.png",
                    width=width,
                    height=height,
                    spacing=SPACING_MM,
                    group=subset,
                    points=points,
                ),
            )
        return writer.finish(identity)
