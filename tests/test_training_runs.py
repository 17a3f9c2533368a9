"""Training runs end to end on synthetic data (CPU): the training notebook under papermill
for both families, and data-parallel training with two gloo processes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cephalo.data.default import synthetic_release
from cephalo.data.prepare import prepare_release
from cephalo.data.prepared import load_folds
from cephalo.metrics import LEADERBOARD
from cephalo.notebooks import execute
from cephalo.predictions import load_predictions

pytestmark = pytest.mark.slow

QUICK = dict(
    input_size=[128, 128], num_workers=0, batch_size=8, lr=5e-3, augmentation=0.2, warmup_epochs=1
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built-in synthetic dataset's settings: 60 images in 5 folds, 4 test images."""
    root = tmp_path_factory.mktemp("synthetic")
    raw = synthetic_release(root / "raw", n_test=4)
    return prepare_release(
        raw / "train_stack.mha", raw / "train-gt.json", root / "prepared", folds=5, progress=False
    )


@pytest.mark.parametrize(
    "params",
    [
        dict(model="rtmpose-tiny", epochs=30, val_interval=10, **QUICK),
        dict(model="hrnet-tiny", sigma=8.0, epochs=40, val_interval=10, **QUICK),
    ],
    ids=["rtmpose", "hrnet"],
)
def test_notebook_trains_a_fold_and_beats_the_mean_shape(params, dataset, tmp_path):
    run = tmp_path / "run"
    raw = dataset.parent / "raw"
    execute(
        "train",
        run / "notebook.ipynb",
        dict(
            dataset_dir=str(dataset),
            fold=0,
            run_dir=str(run),
            params=params,
            test_stack=str(raw / "test_stack.mha"),
            test_gt=str(raw / "test-gt.json"),
        ),
    )

    metrics = json.loads((run / "metrics.json").read_text())
    assert set(LEADERBOARD) <= metrics.keys()
    held_out = load_folds(dataset).query("fold == 0")["image_id"].tolist()
    oof = load_predictions(run / "predictions" / "oof.npz")
    assert sorted(oof.image_id.tolist()) == sorted(held_out)
    assert oof.coords.shape == (len(held_out), 38, 2) and np.isfinite(oof.coords).all()
    assert metrics["n_images"] == len(held_out) and len(metrics["per_landmark"]) == 38
    assert metrics["MRE"] < metrics["mean_shape_baseline"]["MRE"], metrics
    test = load_predictions(run / "predictions" / "test.npz")
    assert test.image_id.tolist() == [1, 2, 3, 4] and (test.spacing > 0).all()
    assert (run / "config.py").is_file() and list((run / "train").glob("best_MRE_*.pth"))


def test_two_gloo_processes_train_one_run(dataset, tmp_path):
    from cephalo.runs.train import run_fold

    metrics = run_fold(
        dict(model="rtmpose-tiny", epochs=2, processes=2, device="cpu", **QUICK),
        dataset,
        0,
        tmp_path / "run",
    )
    assert set(LEADERBOARD) <= metrics.keys()
    log = next((tmp_path / "run" / "train").glob("*/*.log")).read_text()
    assert "Distributed launcher: pytorch" in log and "Distributed training: True" in log
    # each of the two processes trains on half of the 48 training images: 3 batches of 8
    assert "Epoch(train) [1][3/3]" in log
