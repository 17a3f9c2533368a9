"""A real MMEngine Runner trains a tiny RTMPose and a tiny HRNet on the CPU, and the saved
checkpoint comes back through ``load_from`` and ``resume`` under torch's weights_only
loading (see cephalo.checkpoints)."""

from __future__ import annotations

import copy
import pickle
import uuid
from pathlib import Path

import pytest
import torch

from cephalo.checkpoints import load_checkpoint_file, use_safe_checkpoint_loader
from cephalo.landmarks import NUM_LANDMARKS, mmpose_metainfo

pytestmark = pytest.mark.slow

INPUT = (64, 64)
PREPROCESSOR = dict(
    type="PoseDataPreprocessor",
    mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375],
    bgr_to_rgb=True,
)

SIMCC = dict(
    type="SimCCLabel",
    input_size=INPUT,
    sigma=(2.0, 2.0),
    simcc_split_ratio=2.0,
    normalize=False,
    use_dark=False,
)
TINY_RTMPOSE = dict(
    type="TopdownPoseEstimator",
    data_preprocessor=PREPROCESSOR,
    backbone=dict(
        type="CSPNeXt",
        arch="P5",
        expand_ratio=0.5,
        deepen_factor=0.167,
        widen_factor=0.125,
        out_indices=(4,),
        channel_attention=True,
        norm_cfg=dict(type="BN"),
        act_cfg=dict(type="SiLU"),
    ),
    head=dict(
        type="RTMCCHead",
        in_channels=128,
        out_channels=NUM_LANDMARKS,
        input_size=INPUT,
        in_featuremap_size=(INPUT[0] // 32, INPUT[1] // 32),
        simcc_split_ratio=2.0,
        final_layer_kernel_size=3,
        gau_cfg=dict(
            hidden_dims=32,
            s=16,
            expansion_factor=2,
            dropout_rate=0.0,
            drop_path=0.0,
            act_fn="SiLU",
            use_rel_bias=False,
            pos_enc=False,
        ),
        loss=dict(type="KLDiscretLoss", use_target_weight=True, beta=10.0, label_softmax=True),
        decoder=SIMCC,
    ),
    test_cfg=dict(flip_test=True),
)

HEATMAP = dict(type="MSRAHeatmap", input_size=INPUT, heatmap_size=(16, 16), sigma=2)
TINY_HRNET = dict(
    type="TopdownPoseEstimator",
    data_preprocessor=PREPROCESSOR,
    backbone=dict(
        type="HRNet",
        in_channels=3,
        extra=dict(
            stage1=dict(
                num_modules=1,
                num_branches=1,
                block="BOTTLENECK",
                num_blocks=(1,),
                num_channels=(16,),
            ),
            stage2=dict(
                num_modules=1,
                num_branches=2,
                block="BASIC",
                num_blocks=(1, 1),
                num_channels=(8, 16),
            ),
            stage3=dict(
                num_modules=1,
                num_branches=3,
                block="BASIC",
                num_blocks=(1, 1, 1),
                num_channels=(8, 16, 32),
            ),
            stage4=dict(
                num_modules=1,
                num_branches=4,
                block="BASIC",
                num_blocks=(1, 1, 1, 1),
                num_channels=(8, 16, 32, 64),
            ),
        ),
    ),
    head=dict(
        type="HeatmapHead",
        in_channels=8,
        out_channels=NUM_LANDMARKS,
        deconv_out_channels=None,
        loss=dict(type="KeypointMSELoss", use_target_weight=True),
        decoder=HEATMAP,
    ),
    test_cfg=dict(flip_test=True, flip_mode="heatmap", shift_heatmap=True),
)


def runner_config(model: dict, codec: dict, data_root: Path, work_dir: Path, epochs: int) -> dict:
    pipeline = [
        dict(type="LoadImage"),
        dict(type="GetBBoxCenterScale", padding=1.0),
        dict(type="RandomFlip", direction="horizontal"),
        dict(type="TopdownAffine", input_size=INPUT),
        dict(type="GenerateTarget", encoder=codec),
        dict(type="PackPoseInputs"),
    ]
    return dict(
        default_scope="mmpose",
        model=copy.deepcopy(model),
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
                pipeline=pipeline,
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


@pytest.mark.parametrize(
    ("model", "codec"), [(TINY_RTMPOSE, SIMCC), (TINY_HRNET, HEATMAP)], ids=["rtmpose", "hrnet"]
)
def test_train_then_load_from_and_resume(model, codec, tiny_coco, tmp_path):
    first = build_runner(runner_config(model, codec, tiny_coco, tmp_path, epochs=1))
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
        dict(runner_config(model, codec, tiny_coco, tmp_path, epochs=1), load_from=str(checkpoint))
    )
    loaded.load_or_resume()
    for key, value in loaded.model.state_dict().items():
        assert torch.equal(value, trained[key]), key

    resumed = build_runner(
        dict(
            runner_config(model, codec, tiny_coco, tmp_path, epochs=2),
            load_from=str(checkpoint),
            resume=True,
        )
    )
    resumed.train()
    assert resumed.epoch == 2
    assert resumed.iter == 2 * first.iter  # continued from the saved iteration, not from 0
    assert (tmp_path / "epoch_2.pth").is_file()
