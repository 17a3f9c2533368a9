"""``cephalo data prepare-isbi`` on a tiny fixture in the ISBI 2015 layout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from cephalo.data.isbi import prepare_isbi
from cephalo.data.prepared import load_folds, load_images, read_manifest
from cephalo.data.synth import generate_image
from cephalo.errors import DataError

LAYOUT = {"TrainingData": [1, 2, 3, 4], "Test1Data": [151, 152], "Test2Data": [301]}


def write_annotation(path: Path, points: np.ndarray) -> None:
    lines = [f"{x:.0f},{y:.0f}" for x, y in points]
    path.write_text("\n".join([*lines, "1", "3", "2"]) + "\n")  # trailing class labels


@pytest.fixture
def isbi_root(tmp_path: Path) -> Path:
    """ISBI-style BMPs (synthetic skulls) with integer senior/junior annotations."""
    root = tmp_path / "ISBI2015"
    rng = np.random.default_rng(0)
    for folder, numbers in LAYOUT.items():
        (root / "RawImage" / folder).mkdir(parents=True)
        for number in numbers:
            synth = generate_image(seed=5, split=0, index=number, scale=0.1)
            cv2.imwrite(str(root / "RawImage" / folder / f"{number:03d}.bmp"), synth.image)
            for doctor in ("400_senior", "400_junior"):
                (root / "AnnotationsByMD" / doctor).mkdir(parents=True, exist_ok=True)
                noisy = np.rint(synth.points[:19] + rng.integers(-2, 3, (19, 2)))
                write_annotation(
                    root / "AnnotationsByMD" / doctor / f"{number:03d}.txt",
                    np.clip(noisy, 0, [synth.image.shape[1] - 1, synth.image.shape[0] - 1]),
                )
    return root


def doctor_points(root: Path, doctor: str, number: int) -> np.ndarray:
    text = (root / "AnnotationsByMD" / doctor / f"{number:03d}.txt").read_text()
    return np.array([[float(v) for v in line.split(",")] for line in text.splitlines()[:19]])


def test_prepares_19_landmarks_averaged(isbi_root, tmp_path):
    out = prepare_isbi(isbi_root, tmp_path / "prepared", folds=2, progress=False)
    manifest = read_manifest(out)
    assert manifest["landmarks"] == [str(i) for i in range(1, 20)]
    images = {image.image_id: image for image in load_images(out)}
    assert sorted(images) == [1, 2, 3, 4, 151, 152, 301]
    for number, image in images.items():
        expected = (
            doctor_points(isbi_root, "400_senior", number)
            + doctor_points(isbi_root, "400_junior", number)
        ) / 2
        np.testing.assert_array_equal(image.points, expected)
        assert image.spacing == 0.1
    assert images[151].group == "test1" and images[1].group == "train"
    assert set(load_folds(out)["fold"]) == {0, 1}


def test_one_doctor_and_one_subset(isbi_root, tmp_path):
    out = prepare_isbi(
        isbi_root,
        tmp_path / "prepared",
        subsets=("train",),
        annotator="junior",
        folds=2,
        progress=False,
    )
    images = load_images(out)
    assert [image.image_id for image in images] == [1, 2, 3, 4]
    np.testing.assert_array_equal(images[0].points, doctor_points(isbi_root, "400_junior", 1))


def test_mmpose_reads_it_with_k_19(isbi_root, tmp_path):
    from mmpose.datasets import CocoDataset

    from cephalo.landmarks import mmpose_metainfo

    out = prepare_isbi(isbi_root, tmp_path / "prepared", folds=2, progress=False)
    dataset = CocoDataset(
        data_root=str(out),
        ann_file="annotations.json",
        data_prefix=dict(img="images/"),
        test_mode=True,
        metainfo=mmpose_metainfo(read_manifest(out)["landmarks"]),
    )
    assert dataset.get_data_info(0)["keypoints"].shape == (1, 19, 2)
    assert dataset.metainfo["flip_indices"] == list(range(19))


def test_missing_annotation_is_named(isbi_root, tmp_path):
    (isbi_root / "AnnotationsByMD" / "400_junior" / "152.txt").unlink()
    with pytest.raises(DataError, match=r"400_junior/152.txt: missing annotation for image 152"):
        prepare_isbi(isbi_root, tmp_path / "prepared", folds=2, progress=False)
    assert not (tmp_path / "prepared").exists()


def test_malformed_line_is_named(isbi_root, tmp_path):
    path = isbi_root / "AnnotationsByMD" / "400_senior" / "003.txt"
    lines = path.read_text().splitlines()
    lines[6] = "12;40"
    path.write_text("\n".join(lines))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cephalo.cli",
            "data",
            "prepare-isbi",
            "--root",
            str(isbi_root),
            "--out",
            str(tmp_path / "prepared"),
            "--folds",
            "2",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "003.txt, line 7 (landmark 7): expected 'x,y', got '12;40'" in result.stderr
    assert not (tmp_path / "prepared").exists()
