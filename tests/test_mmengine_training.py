"""A real MMEngine Runner trains a tiny RTMPose and a tiny HRNet on the CPU, and the saved
checkpoint comes back through ``load_from`` and ``resume`` under torch's weights_only
loading (see cephalo.checkpoints)."""

from __future__ import annotations

import pickle
import uuid
from pathlib import Path

import pytest
import torch

from cephalo.checkpoints import load_checkpoint_file, use_safe_checkpoint_loader
from cephalo.landmarks import NUM_LANDMARKS, mmpose_metainfo
from cephalo.models import network, pipelines
from cephalo.models.params import TrainParams

pytestmark = pytest.mark.slow

TINY = {
    "rtmpose": TrainParams(model="rtmpose-tiny", input_size=(64, 64)),
    "hrnet": TrainParams(model="hrnet-tiny", input_size=(64, 64)),
}


def runner_config(params: TrainParams, data_root: Path, work_dir: Path, epochs: int) -> dict:
    """A plain Runner config around the zoo's model and pipeline (no validation)."""
    train_pipeline, _ = pipelines.pipelines(params)
    return dict(
        default_scope="mmpose",
        model=network.model(params, NUM_LANDMARKS),
        work_dir=str(work_dir),
        experiment_name=f"test-{uuid.uuid4().hex[:8]}",
        train_dataloader=dict(
            batch_size=3,
            num_workers=0,
            sampler=dict(type="DefaultSampler", shuffle=True),
            dataset=dict(
                type="CocoDataset",
                data_root=str(data_root),
                data_mode="topdown",
                ann_file="annotations.json",
                data_prefix=dict(img="images/"),
                metainfo=mmpose_metainfo(),
                pipeline=train_pipeline,
            ),
        ),
        train_cfg=dict(by_epoch=True, max_epochs=epochs),
        optim_wrapper=dict(optimizer=dict(type="AdamW", lr=1e-3)),
        default_hooks=dict(
            checkpoint=dict(type="CheckpointHook", interval=1),
            logger=dict(type="LoggerHook", interval=1),
        ),
        randomness=dict(seed=0),
        log_level="WARNING",
    )


def build_runner(cfg: dict):
    from mmengine.config import Config
    from mmengine.runner import Runner

    return Runner.from_cfg(Config(cfg))


@pytest.fixture(autouse=True)
def safe_loader():
    use_safe_checkpoint_loader()


@pytest.mark.parametrize("family", list(TINY))
def test_train_then_load_from_and_resume(family, tiny_coco, tmp_path):
    params = TINY[family]
    first = build_runner(runner_config(params, tiny_coco, tmp_path, epochs=1))
    first.train()
    checkpoint = tmp_path / "epoch_1.pth"
    assert checkpoint.is_file()
    trained = {k: v.clone() for k, v in first.model.state_dict().items()}

    # torch >= 2.6 refuses MMEngine checkpoints by default: the allow-list is what makes
    # them load, not a disabled protection.
    with pytest.raises(pickle.UnpicklingError):
        torch.load(checkpoint, weights_only=True)
    saved = load_checkpoint_file(checkpoint)
    assert saved["meta"]["epoch"] == 1
    assert len(saved["meta"]["dataset_meta"]["flip_indices"]) == NUM_LANDMARKS

    loaded = build_runner(
        dict(runner_config(params, tiny_coco, tmp_path, epochs=1), load_from=str(checkpoint))
    )
    loaded.load_or_resume()
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(value, trained[key]), key

    resumed = build_runner(
        dict(
            runner_config(params, tiny_coco, tmp_path, epochs=2),
            load_from=str(checkpoint),
            resume=True,
        )
    )
    resumed.train()
    assert resumed.epoch == 2
    assert resumed.iter == 2 * first.iter  # continued from the saved iteration, not from 0
    assert (tmp_path / "epoch_2.pth").is_file()
