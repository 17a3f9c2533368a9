"""The ensemble end to end on tiny models of both families over three folds: members x TTA
views predicted out-of-fold and on a test stack, fusions scored on OOF, a validated
submission, and `cephalo predict` reproducing it from the manifest alone."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from cephalo.data.default import synthetic_release
from cephalo.data.prepare import prepare_release
from cephalo.ensemble.build import read_ensemble_spec
from cephalo.evaluate import read_predictions
from cephalo.experiments.spec import SpecError
from cephalo.notebooks import execute

pytestmark = pytest.mark.slow

CEPHALO = [sys.executable, "-m", "cephalo.cli"]
QUICK = dict(
    input_size=[96, 96],
    epochs=16,
    batch_size=8,
    lr=5e-3,
    augmentation=0.2,
    val_interval=4,
    num_workers=0,
    device="cpu",
)


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory):
    root = tmp_path_factory.mktemp("ensemble")
    raw = synthetic_release(root / "raw", n_images=30, n_test=4, scale=0.1)
    dataset = prepare_release(
        raw / "train_stack.mha", raw / "train-gt.json", root / "prepared", folds=3, progress=False
    )
    experiments = root / "experiments"
    experiments.mkdir()
    (experiments / "pair.yaml").write_text(
        yaml.safe_dump(
            dict(
                dataset=str(dataset),
                params=dict(model="rtmpose-tiny", **QUICK),
                variants={"rtmpose": {}, "hrnet": {"model": "hrnet-tiny", "sigma": 8}},
                folds="all",
            )
        )
    )
    run = subprocess.run(
        [*CEPHALO, "run", str(experiments / "pair.yaml")], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    spec = experiments / "ensemble.yaml"
    spec.write_text(
        yaml.safe_dump(
            dict(
                members=[{"experiment": "pair"}],
                tta=["identity", "flip"],
                fusion="learned",
                distribution=True,
                test={"stack": str(raw / "test_stack.mha"), "gt": str(raw / "test-gt.json")},
            )
        )
    )
    out = root / "submission"
    built = subprocess.run(
        [*CEPHALO, "ensemble", str(spec), "--out", str(out)], capture_output=True, text=True
    )
    return dict(root=root, raw=raw, out=out, built=built, spec=spec)


def test_learned_fusion_beats_the_best_member_out_of_fold(ensemble):
    assert ensemble["built"].returncode == 0, ensemble["built"].stderr
    manifest = json.loads((ensemble["out"] / "manifest.json").read_text())
    oof = manifest["oof"]
    members = {name: s["MRE"] for name, s in oof.items() if not name.startswith("fusion")}
    assert set(members) == {
        f"pair/{v}/{view}" for v in ("rtmpose", "hrnet") for view in ("identity", "flip")
    }
    assert oof["fusion: learned"]["MRE"] < min(members.values()), oof
    assert np.isfinite(oof["fusion: distribution"]["MRE"])  # SimCC and heatmaps fused
    print("\n" + ensemble["built"].stdout)  # flip TTA's effect, as measured, in the log


def test_flip_tta_effect_is_reported(ensemble):
    stdout = ensemble["built"].stdout
    for name in ("pair/rtmpose/identity", "pair/rtmpose/flip", "pair/hrnet/flip"):
        assert name in stdout


def test_submission_validates_and_predict_reproduces_it(ensemble, tmp_path):
    out = ensemble["out"]
    submitted = read_predictions(out / "predictions.json")
    assert sorted(submitted) == [1, 2, 3, 4]
    output = tmp_path / "output.json"
    result = subprocess.run(
        [*CEPHALO, "predict", "--stack", str(ensemble["raw"] / "test_stack.mha"),
         "--ensemble", str(out), "--out", str(output)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    predicted = read_predictions(output)
    assert max(np.abs(predicted[z] - submitted[z]).max() for z in submitted) < 1e-6


def test_ensemble_notebook_renders(ensemble, tmp_path):
    output = tmp_path / "ensemble.ipynb"
    execute("ensemble", output, dict(submission=str(ensemble["out"])))
    cells = json.loads(output.read_text())["cells"]
    images = [o for c in cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 3  # per-landmark errors, SDR curves, worst images


def test_rerunning_the_ensemble_reuses_its_predictions(ensemble):
    cache = sorted((ensemble["out"] / "cache").rglob("*.npz"))
    stamps = [p.stat().st_mtime_ns for p in cache]
    again = subprocess.run(
        [*CEPHALO, "ensemble", str(ensemble["spec"]), "--out", str(ensemble["out"])],
        capture_output=True,
        text=True,
    )
    assert again.returncode == 0, again.stderr
    assert [p.stat().st_mtime_ns for p in cache] == stamps


def test_ensemble_spec_errors(tmp_path):
    spec = tmp_path / "e.yaml"
    spec.write_text(yaml.safe_dump(dict(members=[{"experiment": "x"}], tta=["mirror"])))
    with pytest.raises(SpecError, match="not a TTA view"):
        read_ensemble_spec(spec)
    spec.write_text(yaml.safe_dump(dict(memebers=[])))
    with pytest.raises(SpecError, match="did you mean 'members'"):
        read_ensemble_spec(spec)
