"""A submission's ensemble exported as a self-contained bundle: the challenge container's
form. Run from a copy elsewhere, with the run folders and the dataset out of reach, on a
folder holding a stack of any name, it gives the submission's own predictions."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from cephalo.evaluate import read_predictions

pytestmark = pytest.mark.slow

CEPHALO = [sys.executable, "-m", "cephalo.cli"]


def test_a_bundle_predicts_the_submission_with_nothing_else_at_hand(fast_demo, tmp_path):
    root, submission, _ = fast_demo
    exported = subprocess.run(
        [*CEPHALO, "export", str(submission), "--out", str(tmp_path / "bundle")],
        capture_output=True,
        text=True,
    )
    assert exported.returncode == 0, exported.stderr
    assert "MB)" in exported.stdout
    description = json.loads((tmp_path / "bundle" / "bundle.json").read_text())
    manifest = json.loads((submission / "manifest.json").read_text())
    assert [m["name"] for m in description["members"]] == [m["name"] for m in manifest["members"]]
    assert description["weights"] == manifest["weights"]
    # nothing in the bundle points outside it
    text = "".join(p.read_text() for p in (tmp_path / "bundle").rglob("*.json"))
    assert str(root) not in text

    moved = tmp_path / "elsewhere" / "bundle"
    shutil.copytree(tmp_path / "bundle", moved)
    shutil.rmtree(tmp_path / "bundle")
    inputs = tmp_path / "input"
    inputs.mkdir()
    shutil.copy(root / "data" / "demo-fast" / "raw" / "test_stack.mha", inputs / "whatever.mha")
    away = {root / name: root / f"{name}-out-of-reach" for name in ("experiments", "data")}
    for here, there in away.items():
        here.rename(there)
    try:
        out = tmp_path / "output" / "orthodontic-landmarks.json"
        command = [*CEPHALO, "predict", "--bundle", str(moved), "--input", str(inputs)]
        result = subprocess.run([*command, "--out", str(out)], capture_output=True, text=True)
    finally:
        for here, there in away.items():
            there.rename(here)
    assert result.returncode == 0, result.stderr
    assert "peak memory" in result.stdout and "GiB" in result.stdout
    submitted, predicted = read_predictions(submission / "predictions.json"), read_predictions(out)
    assert sorted(predicted) == sorted(submitted)
    assert max(np.abs(predicted[z] - submitted[z]).max() for z in submitted) < 1e-6


def test_a_bundle_refuses_what_it_cannot_trust_or_find(fast_demo, tmp_path):
    from cephalo.bundle import export_bundle, input_stack, read_bundle
    from cephalo.errors import DataError

    _, submission, _ = fast_demo
    bundle = export_bundle(submission, tmp_path / "bundle")
    (tmp_path / "none").mkdir()
    with pytest.raises(DataError, match=r"expected exactly one \.mha stack, found none"):
        input_stack(tmp_path / "none")
    (tmp_path / "two").mkdir()
    for name in ("a.mha", "b.mha"):
        (tmp_path / "two" / name).write_bytes(b"")
    with pytest.raises(DataError, match=r"found a\.mha, b\.mha"):
        input_stack(tmp_path / "two")
    weights = next(bundle.glob("models/*/weights.pth"))
    weights.write_bytes(weights.read_bytes()[:-1])
    with pytest.raises(DataError, match="missing or changed since the bundle was exported"):
        read_bundle(bundle)
