"""The public recipes of CL-Detection 2023 by name, and the training parts they need.

Each shipped recipe spec must resolve (through ``cephalo config``, on a machine with a GPU)
to the settings of the organisers' and the winner's published configs, row by row; the
parts those recipes add (EMA, the stage-2 pipeline switch, Albumentations, Adam, the
flat-cosine and multistep schedules, ``cfg_options``) must train a tiny model on the CPU.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from mmengine.config import Config

from cephalo.models.params import parse_params
from cephalo.paths import EXPERIMENTS


def resolved(spec: str, tmp_path: Path, monkeypatch, variant: str | None = None) -> Config:
    """The config ``cephalo config`` writes for fold 0 of ``spec``, as on a GPU machine."""
    from cephalo.cli import main

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    out = tmp_path / f"{spec}.py"
    args = ["config", str(EXPERIMENTS / f"{spec}.yaml"), "--out", str(out)]
    result = CliRunner().invoke(main, args + (["--variant", variant] if variant else []))
    assert result.exit_code == 0, result.output
    return Config.fromfile(out)


def by_type(transforms: list, name: str) -> dict:
    (found,) = [t for t in transforms if t["type"] == name]
    return found


def types(transforms: list) -> list[str]:
    return [t["type"] for t in transforms]


def test_the_organisers_rtmpose_m(tmp_path, monkeypatch):
    cfg = resolved("organiser-rtmpose-m-512", tmp_path, monkeypatch)
    backbone, head = cfg.model.backbone, cfg.model.head
    # model, input
    assert backbone.type == "CSPNeXt" and (backbone.deepen_factor, backbone.widen_factor) == (
        0.67,
        0.75,
    )
    assert head.type == "RTMCCHead" and head.in_channels == 768
    assert tuple(head.input_size) == (512, 512) and tuple(head.in_featuremap_size) == (16, 16)
    # codec: SimCC sigma 12 bins at ratio 2, no DARK
    assert head.decoder.type == "SimCCLabel" and tuple(head.decoder.sigma) == (12.0, 12.0)
    assert head.decoder.simcc_split_ratio == 2.0 and head.decoder.use_dark is False
    # augmentation
    train = cfg.train_dataloader.dataset.pipeline
    assert types(train) == [
        "LoadImage",
        "GetBBoxCenterScale",
        "RandomFlip",
        "RandomBBoxTransform",
        "TopdownAffine",
        "Albumentation",
        "GenerateTarget",
        "PackPoseInputs",
    ]
    bbox = by_type(train, "RandomBBoxTransform")
    assert tuple(bbox.scale_factor) == (0.8, 1.2) and bbox.rotate_factor == 30
    assert (bbox.shift_factor, bbox.shift_prob, bbox.rotate_prob) == (0.16, 0.3, 0.6)
    blur, median, dropout = by_type(train, "Albumentation").transforms
    assert (blur.type, blur.p, median.type, median.p) == ("Blur", 0.1, "MedianBlur", 0.1)
    assert dropout.type == "CoarseDropout" and dropout.p == 1.0
    assert (dropout.max_holes, dropout.min_height, dropout.max_height) == (1, 0.1, 0.2)
    # stage 2: the last 20 epochs
    ema, switch = cfg.custom_hooks
    assert switch.type == "mmdet.PipelineSwitchHook" and switch.switch_epoch == 400
    stage2 = switch.switch_pipeline
    bbox2 = by_type(stage2, "RandomBBoxTransform")
    assert bbox2.shift_factor == 0 and tuple(bbox2.scale_factor) == (0.9, 1.1)
    assert bbox2.rotate_factor == 10 and "RandomFlip" in types(stage2)
    assert by_type(stage2, "Albumentation").transforms[2].p == 0.5
    # optimiser, schedule, epochs, batch, EMA
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.weight_decay) == ("AdamW", 5e-3, 0.05)
    assert cfg.optim_wrapper.paramwise_cfg.norm_decay_mult == 0
    assert cfg.optim_wrapper.paramwise_cfg.bias_decay_mult == 0
    warmup, cosine = cfg.param_scheduler
    assert (warmup.type, warmup.by_epoch, warmup.end) == ("LinearLR", False, 1000)
    assert cosine.type == "CosineAnnealingLR" and (cosine.begin, cosine.end) == (210, 420)
    assert cosine.eta_min == pytest.approx(2.5e-4)
    assert cfg.train_cfg.max_epochs == 420 and cfg.train_dataloader.batch_size == 8
    assert (ema.type, ema.ema_type, ema.momentum) == ("EMAHook", "ExpMomentumEMA", 2e-4)
    # selection, test
    assert cfg.train_cfg.val_interval == 2 and cfg.default_hooks.checkpoint.interval == 2
    assert cfg.default_hooks.checkpoint.save_best == "SDR 2.0mm"
    assert cfg.default_hooks.checkpoint.rule == "greater"
    assert cfg.model.test_cfg.flip_test is True


@pytest.mark.parametrize(
    "variant, loss", [("mse", "KeypointMSELoss"), ("adaptive-wing", "AdaptiveWingLoss")]
)
def test_the_organisers_hrnet(tmp_path, monkeypatch, variant, loss):
    cfg = resolved("organiser-hrnet-w48-512", tmp_path, monkeypatch, variant)
    extra, head = cfg.model.backbone.extra, cfg.model.head
    # HRNet-W48: channels 48/96/192/384, modules 1/1/4/3, at 512x512
    assert tuple(extra.stage4.num_channels) == (48, 96, 192, 384)
    assert [extra[f"stage{i}"].num_modules for i in (1, 2, 3, 4)] == [1, 1, 4, 3]
    assert head.in_channels == 48 and head.deconv_out_channels is None
    assert head.loss.type == loss
    # codec: MSRA 128x128, sigma 2, not unbiased
    assert head.decoder.type == "MSRAHeatmap" and head.decoder.get("unbiased", False) is False
    assert tuple(head.decoder.input_size) == (512, 512)
    assert tuple(head.decoder.heatmap_size) == (128, 128) and head.decoder.sigma == 2.0
    # augmentation: flips only
    assert types(cfg.train_dataloader.dataset.pipeline) == [
        "LoadImage",
        "GetBBoxCenterScale",
        "RandomFlip",
        "TopdownAffine",
        "GenerateTarget",
        "PackPoseInputs",
    ]
    # optimiser, schedule, epochs, batch, no EMA
    optimizer = cfg.optim_wrapper.optimizer
    assert (optimizer.type, optimizer.lr, optimizer.weight_decay) == ("Adam", 5e-4, 0.0)
    warmup, steps = cfg.param_scheduler
    assert (warmup.type, warmup.by_epoch, warmup.end) == ("LinearLR", False, 500)
    assert steps.type == "MultiStepLR" and list(steps.milestones) == [170, 200]
    assert steps.gamma == 0.1
    assert cfg.train_cfg.max_epochs == 250 and cfg.train_dataloader.batch_size == 8
    assert cfg.custom_hooks == []
    # selection, test
    assert cfg.train_cfg.val_interval == 2
    assert cfg.default_hooks.checkpoint.save_best == "SDR 2.0mm"
    assert cfg.model.test_cfg.flip_test is False


def test_the_winners_hrnet(tmp_path, monkeypatch):
    cfg = resolved("winner-hrnet-w48-1024", tmp_path, monkeypatch)
    extra, head = cfg.model.backbone.extra, cfg.model.head
    assert tuple(extra.stage4.num_channels) == (48, 96, 192, 384)
    # heatmaps at the full 1024x1024 input resolution
    assert tuple(head.decoder.input_size) == (1024, 1024)
    assert tuple(head.decoder.heatmap_size) == (1024, 1024)
    assert len(head.deconv_out_channels) == 2
    # MSRA with DARK, sigma 6
    assert head.decoder.sigma == 6.0 and head.decoder.unbiased is True
    # flips and MMPose's default RandomBBoxTransform
    train = cfg.train_dataloader.dataset.pipeline
    assert types(train)[2:5] == ["RandomFlip", "RandomBBoxTransform", "TopdownAffine"]
    bbox = by_type(train, "RandomBBoxTransform")
    assert tuple(bbox.scale_factor) == (0.5, 1.5) and bbox.rotate_factor == 80
    assert (bbox.shift_factor, bbox.shift_prob, bbox.rotate_prob) == (0.16, 0.3, 0.6)
    assert "PhotometricDistortion" not in types(train)
    # Adam 5e-4, 100 epochs at batch 4, mixed precision
    assert cfg.optim_wrapper.type == "AmpOptimWrapper"
    assert cfg.optim_wrapper.loss_scale == "dynamic"
    assert (cfg.optim_wrapper.optimizer.type, cfg.optim_wrapper.optimizer.lr) == ("Adam", 5e-4)
    assert types(cfg.param_scheduler) == ["LinearLR"]
    assert cfg.train_cfg.max_epochs == 100 and cfg.train_dataloader.batch_size == 4
    # every epoch, SDR 2.0mm; flip test in heatmap mode without the heatmap shift
    assert cfg.train_cfg.val_interval == 1
    assert cfg.default_hooks.checkpoint.save_best == "SDR 2.0mm"
    test = cfg.model.test_cfg
    assert (test.flip_test, test.flip_mode, test.shift_heatmap) == (True, "heatmap", False)


def test_amp_and_syncbn_apply_on_gpus_only(monkeypatch):
    from cephalo.models import network, training

    params = parse_params(dict(model="rtmpose-tiny", amp=True, processes=2))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "type" not in training.optim_wrapper(params)
    assert network.backbone(params)["norm_cfg"]["type"] == "BN"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert training.optim_wrapper(params)["type"] == "AmpOptimWrapper"
    assert network.backbone(params)["norm_cfg"]["type"] == "SyncBN"


@pytest.mark.parametrize(
    "values, problem",
    [
        (dict(epochs=10, stage2_epochs=2, stage2=dict(lr=0.1)), "stage2 changes augmentation only"),
        (dict(stage2=dict(rotation=10)), "stage2 needs stage2_epochs"),
        (dict(schedule="multistep"), "needs milestones"),
        (dict(milestones=[5]), "needs milestones"),
        (dict(epochs=10, schedule="flat-cosine", cosine_from=10), "must be before epoch 10"),
        (dict(cosine_from=3), "flat-cosine only"),
        (dict(scale_range=[1.1, 1.5]), "0 < low <= 1 <= high"),
        (dict(model="hrnet-tiny", codec="udp", dark=True), "dark applies to codec: msra only"),
        (dict(loss="adaptive-wing"), "loss applies to hrnet models only"),
        (dict(log_to=["wandb"]), "log_to"),
    ],
)
def test_recipe_settings_are_validated(values, problem):
    with pytest.raises(ValueError, match=problem):
        parse_params(values)


def test_log_backends_missing_packages_are_named(dataset, tmp_path, monkeypatch):
    import importlib.util

    from cephalo.runs.train import run_fold

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a)
    )
    with pytest.raises(ValueError, match="log_to needs mlflow, which is not installed"):
        run_fold(dict(model="rtmpose-tiny", log_to=["mlflow"]), dataset, 0, tmp_path / "run")
    assert not (tmp_path / "run" / "train").exists()  # refused before anything trained


@pytest.mark.slow
@pytest.mark.parametrize(
    "family, values",
    [
        ("rtmpose", dict(model="rtmpose-tiny", schedule="flat-cosine", cosine_from=2)),
        (
            "hrnet",
            dict(model="hrnet-tiny", optimizer="adam", schedule="multistep", milestones=[2]),
        ),
    ],
)
def test_the_recipe_parts_train_on_the_cpu(dataset, tmp_path, family, values):
    """EMA, the stage-2 switch, Albumentations, flips, Adam and the recipes' schedules in one
    tiny run each; the run records each of them."""
    from cephalo.checkpoints import load_checkpoint_file
    from cephalo.runs.train import run_fold
    from cephalo.runs.work_dir import scalar_logs

    params = dict(
        values,
        input_size=[64, 64],
        epochs=4,
        batch_size=4,
        lr=1e-3,
        warmup_epochs=0,
        ema=0.01,
        flip=True,
        flip_test=False,
        augmentation=0,
        scale_range=[0.8, 1.2],
        rotation=30,
        blur=0.5,
        median_blur=0.5,
        coarse_dropout=1.0,
        stage2_epochs=1,
        stage2=dict(rotation=0, coarse_dropout=0.0),
        cfg_options={"optim_wrapper.clip_grad": {"max_norm": 1.0}},
        device="cpu",
    )
    run = tmp_path / "run"
    metrics = run_fold(params, dataset, 0, run)
    assert metrics["MRE"] > 0
    recorded = json.loads((run / "params.json").read_text())
    assert recorded["ema"] == 0.01 and recorded["stage2_epochs"] == 1
    assert recorded["cfg_options"] == {"optim_wrapper.clip_grad": {"max_norm": 1.0}}
    config = Config.fromfile(run / "config.py")
    assert config.optim_wrapper.clip_grad.max_norm == 1.0
    assert "Albumentation" in types(config.train_dataloader.dataset.pipeline)
    log = next((run / "train").glob("*/*.log")).read_text()
    assert "Switch pipeline now!" in log  # MMDetection's PipelineSwitchHook, at epoch 4
    checkpoint = load_checkpoint_file(sorted((run / "train").glob("epoch_*.pth"))[-1])
    assert "ema_state_dict" in checkpoint
    # the learning rate follows the schedule: flat, then down (cosine or x0.1 at epoch 2)
    (scalars,) = scalar_logs(run)
    rates = {}
    for line in scalars.read_text().splitlines():
        entry = json.loads(line)
        if "lr" in entry:
            rates.setdefault(entry["epoch"], entry["lr"])
    assert rates[1] == pytest.approx(1e-3) and rates[2] == pytest.approx(1e-3)
    assert rates[4] < 0.5e-3
