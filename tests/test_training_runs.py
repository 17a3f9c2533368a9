"""Data-parallel training: one run trained by two gloo processes on the CPU.

The training notebook itself, for both families on every fold, runs in the fast demo
(test_demo.py checks each fold model beats the mean-shape baseline); the single-process
Runner path in test_mmengine_training.py.
"""

from __future__ import annotations

import pytest

from cephalo.metrics import LEADERBOARD

pytestmark = pytest.mark.slow


def test_two_gloo_processes_train_one_run(dataset, tmp_path):
    from cephalo.train import run_fold

    params = dict(model="rtmpose-tiny", input_size=[64, 64], epochs=2, batch_size=2)
    metrics = run_fold(
        dict(params, processes=2, num_workers=0, device="cpu"), dataset, 0, tmp_path / "run"
    )
    assert set(LEADERBOARD) <= metrics.keys()
    log = next((tmp_path / "run" / "train").glob("*/*.log")).read_text()
    assert "Distributed launcher: pytorch" in log and "Distributed training: True" in log
    # each of the two processes trains on half of fold 0's 6 training images: 2 batches of 2
    assert "Epoch(train) [1][2/2]" in log
