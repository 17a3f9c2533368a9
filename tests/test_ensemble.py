"""The ensemble end to end, on what the fast demo built (tiny RTMPose and HRNet models on
three folds and a full fit, each as is and shifted): fusions scored out-of-fold, a validated
submission, the test stack predicted by the fold models, the full fits or both, `cephalo
predict` reproducing it from the manifest alone, the ensemble notebook, a re-run that reuses
every cached prediction, and one killed midway that resumes."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from cephalo.challenge.points import read_predictions
from cephalo.notebooks import execute

pytestmark = pytest.mark.slow

CEPHALO = [sys.executable, "-m", "cephalo.cli"]


def test_learned_fusion_beats_the_best_member_out_of_fold(fast_demo):
    _, submission, _ = fast_demo
    oof = json.loads((submission / "manifest.json").read_text())["oof"]
    members = {name: s["MRE"] for name, s in oof.items() if not name.startswith("fusion")}
    views = ("identity", "shift+0.03,+0", "shift-0.03,+0", "shift+0,+0.03", "shift+0,-0.03")
    assert set(members) == {
        f"{e}/base/{view}" for e in ("demo-fast-tune-best", "demo-fast") for view in views
    }
    assert oof["fusion: learned"]["MRE"] < min(members.values()), oof
    assert np.isfinite(oof["fusion: distribution"]["MRE"])  # SimCC and heatmaps fused


def test_the_tta_effect_is_reported(fast_demo):
    _, _, printed = fast_demo
    for name in ("demo-fast/base/identity", "demo-fast/base/shift+0.03,+0", "fusion: learned"):
        assert name in printed
    assert "fusion without TTA: learned" in printed and "with the views" in printed


def test_submission_validates_and_predict_reproduces_it(fast_demo, tmp_path):
    root, submission, _ = fast_demo
    submitted = read_predictions(submission / "predictions.json")
    assert sorted(submitted) == [1, 2, 3]
    output = tmp_path / "output.json"
    stack = root / "data" / "demo-fast" / "raw" / "test_stack.mha"
    command = [
        "predict",
        "--stack",
        str(stack),
        "--ensemble",
        str(submission),
        "--out",
        str(output),
    ]
    result = subprocess.run([*CEPHALO, *command], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    predicted = read_predictions(output)
    assert max(np.abs(predicted[z] - submitted[z]).max() for z in submitted) < 1e-6


def test_the_test_stack_is_predicted_by_the_models_the_spec_names(fast_demo, tmp_path):
    import yaml

    from cephalo.ensemble.build import build_ensemble

    root, submission, _ = fast_demo
    demo = json.loads((submission / "manifest.json").read_text())
    assert demo["test_models"] == "both"
    for member in demo["members"]:
        assert [r["fold"] for r in member["runs"]] == [0, 1, 2]
        assert [r["fold"] for r in member["test_runs"]] == [0, 1, 2, None]
    spec = yaml.safe_load((root / "experiments" / "demo-fast-ensemble.yaml").read_text())
    spec.update(tta=["identity"], distribution=False, test_models="full")
    (root / "experiments" / "full-fits.yaml").write_text(yaml.safe_dump(spec))
    try:
        manifest = build_ensemble(root / "experiments" / "full-fits.yaml", tmp_path / "full")
    finally:
        (root / "experiments" / "full-fits.yaml").unlink()
    assert manifest["test_models"] == "full"
    for member in manifest["members"]:
        assert len(member["runs"]) == 3 and len(member["test_runs"]) == 1
        full_fit = member["test_runs"][0]
        assert full_fit["fold"] is None and full_fit["run_dir"].endswith("full")
    # the test stack was predicted by the full fits alone, the OOF by the fold models alone
    cached = list((tmp_path / "full" / "cache").rglob("*.npz"))
    assert {p.parent.name for p in cached if "-test-" in p.name} == {"full"}
    assert {p.parent.name for p in cached if "-oof-" in p.name} == {"fold0", "fold1", "fold2"}
    # the OOF fusion weights are the same whichever models predict the test stack
    assert manifest["weights"] is not None
    full_predictions = read_predictions(tmp_path / "full" / "predictions.json")
    assert sorted(full_predictions) == [1, 2, 3]


def test_test_models_full_needs_every_variant_to_have_a_full_fit():
    import pandas as pd

    from cephalo.ensemble.members import choose_variants

    rows = pd.DataFrame(
        dict(
            experiment=["sweep"] * 3,
            variant=["base"] * 3,
            fold=pd.array([0, 1, 2], dtype="Int64"),
            status=["completed"] * 3,
            run_dir=["/nowhere/base/fold0", "/nowhere/base/fold1", "/nowhere/base/fold2"],
        )
    )
    for test_models in ("full", "both"):
        with pytest.raises(ValueError, match=r"full fit of variant 'base' of experiment 'sweep'"):
            choose_variants(rows, "sweep", None, None, test_models)


def test_ensemble_notebook_renders(fast_demo, tmp_path):
    _, submission, _ = fast_demo
    output = tmp_path / "ensemble.ipynb"
    execute("ensemble", output, dict(submission=str(submission)))
    cells = json.loads(output.read_text())["cells"]
    images = [o for c in cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 3  # per-landmark errors, SDR curves, worst images


def test_rerunning_the_ensemble_reuses_its_predictions(fast_demo):
    root, submission, _ = fast_demo
    cache = sorted((submission / "cache").rglob("*.npz"))
    stamps = [p.stat().st_mtime_ns for p in cache]
    spec = root / "experiments" / "demo-fast-ensemble.yaml"
    again = subprocess.run(
        [*CEPHALO, "ensemble", str(spec), "--out", str(submission)], capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr
    assert "fusion: learned" in again.stdout
    assert [p.stat().st_mtime_ns for p in cache] == stamps


def test_a_killed_ensemble_resumes_from_its_cached_predictions(fast_demo, tmp_path):
    """Killed while predicting into a folder holding an earlier submission: the earlier
    files stay as they were, and the re-run predicts only what was not cached."""
    root, submission, _ = fast_demo
    spec, out = root / "experiments" / "demo-fast-ensemble.yaml", tmp_path / "submission"
    shutil.copytree(submission, out, ignore=shutil.ignore_patterns("cache"))
    earlier = {p.name: p.read_bytes() for p in out.iterdir()}
    command = [*CEPHALO, "ensemble", str(spec), "--out", str(out)]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while len(list(out.glob("cache/**/*.npz"))) < 2:
        assert first.poll() is None and time.monotonic() < deadline, "no prediction got cached"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == earlier
    cached = {p: p.stat().st_mtime_ns for p in out.glob("cache/**/*.npz")}

    again = subprocess.run(command, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert {p: p.stat().st_mtime_ns for p in cached} == cached  # not redone
    assert len(list(out.glob("cache/**/*.npz"))) == len(list(submission.glob("cache/**/*.npz")))
    fresh, original = (read_predictions(s / "predictions.json") for s in (out, submission))
    assert max(np.abs(fresh[z] - original[z]).max() for z in original) < 1e-6


def test_training_the_ensemble_and_predict_follow_one_device_decision(fast_demo, monkeypatch):
    """The ensemble and `cephalo predict` rebuild members through one class, on the device
    training chose by the same function: the GPU when torch sees one, the CPU otherwise;
    `device: cuda` without a GPU fails at once instead of training on the CPU."""
    import torch

    from cephalo.ensemble.members import Predictor
    from cephalo.errors import DeviceError
    from cephalo.models.device import inference_device
    from cephalo.models.params import parse_params
    from cephalo.runs import predict

    root, _, _ = fast_demo
    run_dir = next((root / "outputs" / "demo-fast" / "runs").glob("*/fold0"))
    params = parse_params({"model": "rtmpose-tiny"})
    loaded = []
    monkeypatch.setattr(predict, "load_model", lambda config, path, device: loaded.append(device))
    for gpu in (False, True):
        monkeypatch.setattr(torch.cuda, "is_available", lambda gpu=gpu: gpu)
        Predictor.of_run(run_dir)
        assert inference_device(params) == loaded[-1]
    assert loaded == ["cpu", "cuda:0"]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match="device: cuda, but torch sees no GPU"):
        inference_device(parse_params({"model": "rtmpose-tiny", "device": "cuda"}))
