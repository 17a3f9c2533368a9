"""Shared fixtures: a handful of generated images in MMPose's COCO keypoint format, and the
fast demo (a whole competition at toy size) whose outputs several test modules check."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cephalo.landmarks import LANDMARK_NAMES, NUM_LANDMARKS


def write_coco_keypoints(root: Path, n_images: int, size: int, seed: int = 0) -> Path:
    """Write ``n_images`` random greyscale PNGs with random landmarks and a COCO file.

    Only for tests of the training machinery; the kit's real datasets come from
    ``cephalo data prepare``.
    """
    import cv2

    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i in range(n_images):
        pixels = rng.integers(0, 255, (size, size), dtype=np.uint8)
        name = f"{i:04d}.png"
        cv2.imwrite(str(root / "images" / name), cv2.cvtColor(pixels, cv2.COLOR_GRAY2BGR))
        points = rng.uniform(2, size - 2, (NUM_LANDMARKS, 2))
        keypoints = np.concatenate([points, np.full((NUM_LANDMARKS, 1), 2.0)], axis=1)
        images.append(dict(id=i, file_name=name, width=size, height=size))
        annotations.append(
            dict(
                id=i,
                image_id=i,
                category_id=1,
                iscrowd=0,
                num_keypoints=NUM_LANDMARKS,
                keypoints=keypoints.ravel().tolist(),
                bbox=[0, 0, size, size],
                area=size * size,
            )
        )
    categories = [dict(id=1, name="cephalogram", keypoints=list(LANDMARK_NAMES), skeleton=[])]
    ann_file = root / "annotations.json"
    ann_file.write_text(
        json.dumps(dict(images=images, annotations=annotations, categories=categories))
    )
    return ann_file


@pytest.fixture(scope="session")
def tiny_coco(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six 64x64 images with 38 landmarks each; returns the dataset root."""
    root = tmp_path_factory.mktemp("tiny_coco")
    write_coco_keypoints(root, n_images=6, size=64)
    return root


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 small synthetic images prepared in 2 folds, a 2-image test stack in ``../raw``."""
    from cephalo.data.default import synthetic_release
    from cephalo.data.prepare import prepare_release

    root = tmp_path_factory.mktemp("small-dataset")
    raw = synthetic_release(root / "raw", n_images=12, n_test=2, scale=0.1)
    return prepare_release(
        raw / "train_stack.mha", raw / "train-gt.json", root / "prepared", folds=2, progress=False
    )


@pytest.fixture(scope="session")
def fast_demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """``cephalo demo --fast`` in a scratch checkout layout holding the demo-fast specs of
    experiments/: (the scratch root, the submission folder, what the demo printed)."""
    from cephalo.demo import run_demo
    from cephalo.paths import EXPERIMENTS

    root = tmp_path_factory.mktemp("checkout")
    (root / "experiments").mkdir()
    for spec in EXPERIMENTS.glob("demo-fast*.yaml"):
        shutil.copy(spec, root / "experiments")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        submission = run_demo(fast=True, root=root)
    return root, submission, printed.getvalue()
