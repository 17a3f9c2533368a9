"""``cephalo data prepare``: exact round trip from the synthetic release, folds, idempotence,
and a clear error with nothing partial left behind for every kind of bad input."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import SimpleITK as sitk
from click.testing import CliRunner

from cephalo.cli import main
from cephalo.data import prepare as prepare_module
from cephalo.data.prepare import prepare_release
from cephalo.data.prepared import load_folds, load_images, read_manifest
from cephalo.data.release import read_gt, read_slice
from cephalo.data.synth import synthesize
from cephalo.errors import DataError

N_IMAGES = 15


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("release")
    synthesize(root, N_IMAGES, scale=0.1, seed=3)
    return root


@pytest.fixture
def raw(release: Path, tmp_path: Path) -> Path:
    """A private copy of the release that a test may damage."""
    copy = tmp_path / "raw"
    shutil.copytree(release, copy)
    return copy


def prepare(raw: Path, out: Path, **kwargs) -> Path:
    return prepare_release(
        raw / "train_stack.mha", raw / "train-gt.json", out, progress=False, **kwargs
    )


def prepare_command(raw: Path, out: Path) -> list[str]:
    """``cephalo data prepare`` of ``raw``'s training release, as a subprocess command."""
    return [
        sys.executable,
        "-m",
        "cephalo.cli",
        "data",
        "prepare",
        "--stack",
        str(raw / "train_stack.mha"),
        "--gt",
        str(raw / "train-gt.json"),
        "--out",
        str(out),
    ]


def test_round_trip_is_exact(release, tmp_path):
    out = prepare(release, tmp_path / "prepared")
    gt = read_gt(release / "train-gt.json")
    meta = json.loads((release / "train-meta.json").read_text())["images"]
    images = load_images(out)
    assert [image.z for image in images] == [record.z for record in gt]
    for image, record, info in zip(images, gt, meta, strict=True):
        np.testing.assert_array_equal(image.points, record.points)  # bit for bit
        assert image.spacing == record.spacing == info["spacing"]
        assert (image.width, image.height) == (info["width"], info["height"])
        png = cv2.cvtColor(cv2.imread(str(out / "images" / image.file_name)), cv2.COLOR_BGR2RGB)
        slice_ = read_slice(release / "train_stack.mha", record.z - 1)
        np.testing.assert_array_equal(png, slice_[: image.height, : image.width])
        assert not slice_[image.height :].any() and not slice_[:, image.width :].any()


def test_annotations_load_in_mmpose(release, tmp_path):
    from mmpose.datasets import CocoDataset

    from cephalo.landmarks import mmpose_metainfo

    out = prepare(release, tmp_path / "prepared")
    dataset = CocoDataset(
        data_root=str(out),
        ann_file="annotations.json",
        data_prefix=dict(img="images/"),
        metainfo=mmpose_metainfo(),
        test_mode=True,
    )
    assert len(dataset) == N_IMAGES
    first = load_images(out)[0]
    item = dataset.get_data_info(0)
    np.testing.assert_allclose(item["keypoints"][0], first.points, rtol=0, atol=1e-4)
    # the whole image (MMPose clips the box to the last pixel)
    assert item["bbox"].tolist() == [[0, 0, first.width - 1, first.height - 1]]


def test_folds_mix_every_group(release, tmp_path):
    folds = load_folds(prepare(release, tmp_path / "prepared", folds=3))
    assert sorted(folds["fold"].unique()) == [0, 1, 2]
    counts = folds.groupby(["group", "fold"]).size().unstack(fill_value=0)
    # each group is spread over the folds as evenly as its size allows
    assert ((counts.max(axis=1) - counts.min(axis=1)) <= 1).all(), counts
    assert folds["organiser_split"].value_counts().to_dict() == {"train": 11, "val": 1, "test": 3}


def test_groups_are_the_centres_spacings_whatever_the_image_sizes(tmp_path):
    """One synthetic centre varies its image size as the real Planmeca one does; grouping
    by spacing still gives one group per centre and no pooled "other"."""
    release = tmp_path / "raw"
    synthesize(release, 30, scale=0.05, seed=3)
    meta = json.loads((release / "train-meta.json").read_text())["images"]
    folds = load_folds(prepare(release, tmp_path / "prepared", folds=3))
    centre_of = {info["z"]: info["centre"] for info in meta}
    by_group = folds.groupby("group")["z"].apply(lambda zs: {centre_of[z] for z in zs})
    assert all(len(centres) == 1 for centres in by_group), by_group  # a group is one centre
    assert len(by_group) == len(set(centre_of.values()))  # and each centre one group
    b_sizes = [(i["width"], i["height"]) for i in meta if i["centre"] == "B"]
    assert len(set(b_sizes)) > len(b_sizes) / 2 > 2  # the sizes really vary
    assert "other" not in set(folds["group"])


def test_groups_from_a_sidecar(release, tmp_path):
    out = prepare_release(
        release / "train_stack.mha",
        release / "train-gt.json",
        tmp_path / "prepared",
        folds=3,
        progress=False,
        groups=release / "train-meta.json",
    )
    meta = json.loads((release / "train-meta.json").read_text())["images"]
    folds = load_folds(out)
    assert dict(zip(folds["z"], folds["group"], strict=True)) == {
        info["z"]: info["centre"] for info in meta
    }
    assert read_manifest(out)["source"]["groups"]["path"] == str(
        (release / "train-meta.json").resolve()
    )


def test_second_run_does_nothing_and_other_options_are_refused(release, tmp_path):
    out = prepare(release, tmp_path / "prepared")
    stamp = (out / "dataset.json").stat().st_mtime_ns
    assert prepare(release, out) == out
    assert (out / "dataset.json").stat().st_mtime_ns == stamp
    with pytest.raises(DataError, match="other inputs or options"):
        prepare(release, out, folds=3)
    prepare(release, out, folds=3, force=True)
    assert read_manifest(out)["folds"] == 3


def test_an_error_midway_leaves_nothing(release, tmp_path, monkeypatch):
    calls = []

    def failing_read(path, k):
        calls.append(k)
        if len(calls) == 5:
            raise RuntimeError("disk on fire")
        return read_slice(path, k)

    monkeypatch.setattr(prepare_module, "read_slice", failing_read)
    with pytest.raises(DataError, match="slice z=5 cannot be read"):
        prepare(release, tmp_path / "prepared")
    assert list(tmp_path.iterdir()) == []


def test_kill_9_midway_then_rerun(tmp_path):
    raw = tmp_path / "raw"
    synthesize(raw, 40, scale=0.4, seed=1)
    out = tmp_path / "prepared"
    command = prepare_command(raw, out)
    process = subprocess.Popen(command, stderr=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        partial = list(tmp_path.glob(".prepared.partial-*/images/*.png"))
        if len(partial) >= 3:
            break
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert len(partial) >= 3, "prepare did not get going"
    assert not out.exists()  # nothing that looks complete

    subprocess.run(command, check=True, capture_output=True)
    assert read_manifest(out)["n_images"] == 40
    assert len(list((out / "images").glob("*.png"))) == 40
    assert not list(tmp_path.glob(".prepared.partial-*"))  # the killed run's leftovers


# ---------------------------------------------------------------------------- bad input


def edit_gt(raw: Path, change) -> None:
    path = raw / "train-gt.json"
    data = json.loads(path.read_text())
    change(data["points"])
    path.write_text(json.dumps(data))


def entry(points, z: int, name: str) -> dict:
    return next(p for p in points if p["point"][2] == z and p["name"] == name)


def write_volume(path: Path, array: np.ndarray, vector: bool) -> None:
    sitk.WriteImage(sitk.GetImageFromArray(array, isVector=vector), str(path))


BAD_INPUTS = {
    "37 landmarks": (
        lambda raw: edit_gt(raw, lambda p: p.remove(entry(p, 4, "38"))),
        r"z=4 lacks landmarks 38",
    ),
    "39 landmarks": (
        lambda raw: edit_gt(raw, lambda p: p.append(dict(entry(p, 4, "38"), name="39"))),
        r"z=4, landmark '39'\): name '39' is not one of",
    ),
    "duplicate point": (
        lambda raw: edit_gt(raw, lambda p: p.append(dict(entry(p, 6, "12")))),
        r"landmark 12 appears twice for z=6",
    ),
    "z outside the stack": (
        lambda raw: edit_gt(
            raw,
            lambda p: p.extend(
                dict(q, point=[*q["point"][:2], N_IMAGES + 1]) for q in p if q["point"][2] == 1
            ),
        ),
        rf"z={N_IMAGES + 1} is outside train_stack.mha \({N_IMAGES} slices\)",
    ),
    "negative coordinate": (
        lambda raw: edit_gt(raw, lambda p: entry(p, 2, "7").update(point=[-3.0, 10.0, 2])),
        r"z=2, landmark 7: \(-3.0, 10.0\) lies outside the image",
    ),
    "coordinate in the padding": (
        lambda raw: edit_gt(raw, lambda p: entry(p, 3, "9").update(point=[10.0, 280.0, 3])),
        r"z=3, landmark 9: \(10.0, 280.0\) lies outside the image, which is \d+x\d+",
    ),
    "NaN coordinate": (
        lambda raw: edit_gt(raw, lambda p: entry(p, 5, "1").update(point=[float("nan"), 1.0, 5])),
        r"z=5, landmark 1: coordinate \(nan, 1.0\)",
    ),
    "missing scale": (
        lambda raw: edit_gt(raw, lambda p: entry(p, 7, "3").pop("scale")),
        r"z=7, landmark '3'\): need an object .* missing 'scale'",
    ),
    "zero scale": (
        lambda raw: edit_gt(raw, lambda p: [q.update(scale=0) for q in p if q["point"][2] == 8]),
        r"z=8: scale must be a positive number",
    ),
    "image without landmarks": (
        lambda raw: edit_gt(
            raw, lambda p: p.__setitem__(slice(None), [q for q in p if q["point"][2] != 9])
        ),
        r"no landmarks for slice\(s\) z=9 ",
    ),
    "not JSON": (
        lambda raw: (raw / "train-gt.json").write_text('{"points": [ {"name": '),
        r"train-gt.json: not valid JSON",
    ),
    "truncated stack": (
        lambda raw: os.truncate(
            raw / "train_stack.mha", (raw / "train_stack.mha").stat().st_size - 100_000
        ),
        r"train_stack.mha: truncated: its header promises \d+ bytes of pixel data",
    ),
    "corrupt header": (
        lambda raw: (raw / "train_stack.mha").write_bytes(b"NDims = banana\n" + b"\0" * 1000),
        r"train_stack.mha: not a readable MetaImage",
    ),
    "greyscale uint16 stack": (
        lambda raw: write_volume(
            raw / "train_stack.mha", np.ones((N_IMAGES, 240, 288), np.uint16), vector=False
        ),
        r"expected a stack of RGB uint8 slices .* 1 channel\(s\) of 16-bit unsigned",
    ),
    "2-D RGB image": (
        lambda raw: write_volume(
            raw / "train_stack.mha", np.ones((240, 288, 3), np.uint8), vector=True
        ),
        r"expected a stack of RGB uint8 slices \(N, H, W, 3\); found 2-D",
    ),
}


def prepare_in_process(raw: Path, out: Path, *options: str) -> str:
    """``cephalo data prepare`` in this process: it must refuse, with exit status 1 and one
    message; returns what it printed."""
    command = prepare_command(raw, out)[3:]  # without "python -m cephalo.cli"
    result = CliRunner().invoke(main, [*command, *options])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    assert "Error: " in result.output and "Traceback" not in result.output
    return result.output


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
def test_bad_input_is_named_and_leaves_nothing(case, raw, tmp_path):
    damage, message = BAD_INPUTS[case]
    damage(raw)
    out = tmp_path / "prepared"
    assert re.search(message, prepare_in_process(raw, out))
    assert not out.exists()
    assert not list(tmp_path.glob(".prepared.partial-*"))


def test_bad_input_keeps_an_earlier_dataset(release, raw, tmp_path):
    out = prepare(release, tmp_path / "prepared")
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    edit_gt(raw, lambda p: p.remove(entry(p, 4, "38")))
    assert "z=4 lacks landmarks 38" in prepare_in_process(raw, out, "--force")
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before


def test_cli_prints_the_problem_and_exits_1(raw, tmp_path):
    edit_gt(raw, lambda p: p.remove(entry(p, 4, "38")))
    result = subprocess.run(
        prepare_command(raw, tmp_path / "out"),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "z=4 lacks landmarks 38" in result.stderr
    assert "Traceback" not in result.stderr
