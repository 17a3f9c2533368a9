"""The ground truth as the organisers document it: integer landmark names, numeric-string
scales and integral-float slice indices (``{"name": 1, "point": [835, 996, 1.0],
"scale": "0.1"}``) read exactly like the challenge's own form, everywhere a ground-truth or
prediction file is read; everything else that was refused stays refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cephalo.challenge.evaluate import evaluate_files
from cephalo.challenge.points import read_predictions, write_json
from cephalo.cli import main
from cephalo.data.prepare import prepare_release
from cephalo.data.prepared import MANIFEST
from cephalo.data.release import read_gt
from cephalo.data.synth import synthesize


def documented_form(gt: Path, out: Path) -> Path:
    """``gt`` rewritten as the organisers' annotation README shows it."""
    entries = json.loads(gt.read_text())["points"]
    for entry in entries:
        entry["name"] = int(entry["name"])
        entry["scale"] = repr(entry["scale"])  # "0.1", as float(landmark["scale"]) reads it
        entry["point"][2] = float(entry["point"][2])
    out.write_text(json.dumps({"points": entries}))
    return out


@pytest.fixture(scope="module")
def releases(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The same release twice: in the kit's form and in the documented form."""
    ours = tmp_path_factory.mktemp("ours")
    synthesize(ours, 9, scale=0.1, seed=5)
    theirs = tmp_path_factory.mktemp("theirs")
    shutil.copy(ours / "train_stack.mha", theirs / "train_stack.mha")
    documented_form(ours / "train-gt.json", theirs / "train-gt.json")
    return ours, theirs


def test_the_documented_form_is_the_documented_one(releases):
    entry = json.loads((releases[1] / "train-gt.json").read_text())["points"][0]
    assert isinstance(entry["name"], int) and isinstance(entry["scale"], str)
    assert float(entry["scale"]) > 0


def test_read_gt_gives_the_same_records(releases):
    ours, theirs = (read_gt(root / "train-gt.json") for root in releases)
    assert [r.z for r in ours] == [r.z for r in theirs]
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a.points, b.points)
        assert a.spacing == b.spacing and isinstance(b.spacing, float)


def test_prepare_gives_a_byte_identical_dataset(releases, tmp_path):
    outs = []
    for root in releases:
        out = tmp_path / root.name
        args = ["data", "prepare", "--stack", str(root / "train_stack.mha")]
        args += ["--gt", str(root / "train-gt.json"), "--out", str(out)]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        outs.append(out)
    files = [sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file()) for out in outs]
    assert files[0] == files[1]
    for name in files[0]:
        a, b = ((out / name).read_bytes() for out in outs)
        if name == Path(MANIFEST):  # differs only in where the sources are
            a, b = ({**json.loads(m), "source": None} for m in (a, b))
        assert a == b, name


def test_evaluate_gives_identical_scores(releases, tmp_path):
    ours, theirs = (root / "train-gt.json" for root in releases)
    records = read_gt(ours)
    rng = np.random.default_rng(0)
    slices = np.array([r.z for r in records])
    coords = np.stack([r.points for r in records]) + rng.normal(0, 8, (len(records), 38, 2))
    predictions = write_json(tmp_path / "pred.json", slices, coords)
    a, b = (evaluate_files(predictions, gt) for gt in (ours, theirs))
    assert a.summary == b.summary
    np.testing.assert_array_equal(a.errors, b.errors)
    printed = [
        CliRunner().invoke(main, ["evaluate", "--pred", str(predictions), "--gt", str(gt)])
        for gt in (ours, theirs)
    ]
    assert printed[0].exit_code == 0 and printed[0].output == printed[1].output
    # A prediction file with integer names reads the same as one with the challenge's strings.
    data = json.loads(predictions.read_text())
    for entry in data["points"]:
        entry["name"] = int(entry["name"])
    integers = tmp_path / "pred-int.json"
    integers.write_text(json.dumps(data))
    for z, points in read_predictions(integers).items():
        np.testing.assert_array_equal(points, read_predictions(predictions)[z])


def test_the_kit_still_writes_string_names(releases, tmp_path):
    records = read_gt(releases[1] / "train-gt.json")
    from cephalo.data.release import write_gt

    entries = json.loads(write_gt(tmp_path / "gt.json", records).read_text())["points"]
    assert {type(e["name"]) for e in entries} == {str}
    assert {type(e["scale"]) for e in entries} == {float}


def _gt(tmp_path: Path, **change) -> Path:
    entries = [{"name": i, "point": [1.0, 2.0, 1], "scale": "0.1", **change} for i in range(1, 39)]
    path = tmp_path / "gt.json"
    path.write_text(json.dumps({"points": entries}))
    return path


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(scale="0.1 mm"), r"'scale' must be a number or a numeric string, got '0.1 mm'"),
        (dict(scale=""), r"'scale' must be a number"),
        (dict(scale=None), r"'scale' must be a number"),
        (dict(scale=True), r"'scale' must be a number"),
        (dict(point=[1.0, 2.0, 1.5]), r"z=1.5 is not a slice index"),
        (dict(point=[1.0, 2.0, "1"]), r"'point' must be a list of three numbers"),
    ],
)
def test_other_values_stay_refused(tmp_path, change, message):
    with pytest.raises(ValueError, match=message):
        read_gt(_gt(tmp_path, **change))


@pytest.mark.parametrize("name", [0, 39, "0", "01", 1.0, True])
def test_names_outside_1_to_38_stay_refused(tmp_path, name):
    path = _gt(tmp_path)
    data = json.loads(path.read_text())
    data["points"][0]["name"] = name
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"is not one of '1'..'38'"):
        read_gt(path)


@pytest.mark.parametrize("scale", ["0", "nan", "-0.1"])
def test_string_scales_that_are_not_positive_are_refused_by_prepare(releases, tmp_path, scale):
    from cephalo.errors import DataError

    root = tmp_path / "raw"
    shutil.copytree(releases[1], root)
    data = json.loads((root / "train-gt.json").read_text())
    for entry in data["points"]:
        if entry["point"][2] == 2:
            entry["scale"] = scale
    (root / "train-gt.json").write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"z=2: scale must be a positive number"):
        prepare_release(
            root / "train_stack.mha", root / "train-gt.json", tmp_path / "out", progress=False
        )
    assert not (tmp_path / "out").exists()
