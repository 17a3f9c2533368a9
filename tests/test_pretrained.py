"""Pretrained weights that really load: files in each layout OpenMMLab publishes, made from
the kit's own models, start training with their weights (asserted on the weights the Runner
trains from), a file that fits nothing stops the run before training, and a trained model is
rebuilt for prediction without its pretrained file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from cephalo.models import config as cfg
from cephalo.models import network
from cephalo.models.params import TrainParams
from cephalo.models.pretrained import PretrainedError, with_pretrained

TINY = dict(input_size=(64, 64), epochs=1, batch_size=4, num_workers=0, device="cpu")


def kit_model(model: str, n_landmarks: int = 38) -> torch.nn.Module:
    """A freshly initialised pose estimator of the kit's ``model`` (random weights)."""
    from mmengine.registry import DefaultScope
    from mmpose.registry import MODELS
    from mmpose.utils import register_all_modules

    register_all_modules(init_default_scope=False)
    with DefaultScope.overwrite_default_scope("mmpose"):
        estimator = MODELS.build(network.model(TrainParams(model=model, **TINY), n_landmarks))
    estimator.init_weights()
    return estimator


def imagenet_hrnet(path: Path) -> dict[str, torch.Tensor]:
    """An HRNet backbone as OpenMMLab publishes ImageNet HRNet weights: a bare state dict,
    unprefixed backbone keys, and the classification head's keys beside them."""
    weights = dict(kit_model("hrnet-tiny").backbone.state_dict())
    weights.update(
        {
            "incre_modules.0.0.conv1.weight": torch.randn(32, 16, 1, 1),
            "downsamp_modules.0.0.weight": torch.randn(64, 32, 3, 3),
            "final_layer.0.weight": torch.randn(2048, 1024, 1, 1),
            "classifier.weight": torch.randn(1000, 2048),
            "classifier.bias": torch.randn(1000),
        }
    )
    torch.save(weights, path)
    return weights


def imagenet_cspnext(path: Path) -> dict[str, torch.Tensor]:
    """A CSPNeXt backbone as MMPretrain / MMDetection publish it: ``backbone.``-prefixed keys
    in ``state_dict``, an ImageNet classifier head, and ``meta``."""
    backbone = kit_model("rtmpose-tiny").backbone.state_dict()
    weights = {f"backbone.{key}": value for key, value in backbone.items()}
    weights.update({"head.fc.weight": torch.randn(1000, 128), "head.fc.bias": torch.randn(1000)})
    torch.save(dict(meta=dict(epoch=600, mmpretrain_version="1.0.0"), state_dict=weights), path)
    return {key.removeprefix("backbone."): value for key, value in weights.items()}


def pose_checkpoint(path: Path, model: str) -> dict[str, torch.Tensor]:
    """A whole MMPose checkpoint for 17 keypoints (COCO), as a Runner saves it."""
    estimator = kit_model(model, n_landmarks=17)
    torch.save(dict(meta=dict(epoch=210), state_dict=estimator.state_dict()), path)
    return {
        key.removeprefix("backbone."): value
        for key, value in estimator.state_dict().items()
        if key.startswith("backbone.")
    }


STARTING_WEIGHTS: dict[str, torch.Tensor] = {}


class _Started(Exception):
    """Raised once the Runner has initialised the model, before the first iteration."""


@HOOKS.register_module(force=True)
class StartingWeightsHook(Hook):
    """Keeps the backbone's weights as training is about to start, then stops the run."""

    def before_train(self, runner) -> None:
        backbone = runner.model.backbone
        STARTING_WEIGHTS.clear()
        STARTING_WEIGHTS.update({k: v.detach().clone() for k, v in backbone.state_dict().items()})
        raise _Started


def starting_weights(model: str, pretrained: Path, dataset: Path, tmp_path: Path) -> dict:
    """The backbone weights a run of ``model`` with ``pretrained`` starts training from,
    through the kit's config and MMEngine's own Runner.train."""
    from cephalo.data.prepared import write_subset
    from cephalo.runs.train import train

    params = TrainParams(model=model, pretrained=str(pretrained), **TINY)
    ids = json.loads((dataset / "annotations.json").read_text())["images"]
    data = cfg.DataSpec(
        image_dir=dataset / "images",
        train_ann=write_subset(dataset, [i["id"] for i in ids], tmp_path / "train.json"),
        val_ann=None,
        landmark_names=tuple(str(i) for i in range(1, 39)),
    )
    config = cfg.build_config(params, data, work_dir=tmp_path / "train")
    config, found = with_pretrained(config, params.pretrained)
    config["custom_hooks"].append(dict(type="StartingWeightsHook"))
    with pytest.raises(_Started):
        train(tmp_path, config, processes=1)
    return found


@pytest.mark.parametrize(
    "model, layout, prefix",
    [
        ("hrnet-tiny", imagenet_hrnet, ""),
        ("rtmpose-tiny", imagenet_cspnext, "backbone."),
        ("hrnet-tiny", lambda path: pose_checkpoint(path, "hrnet-tiny"), "backbone."),
        ("rtmpose-tiny", lambda path: pose_checkpoint(path, "rtmpose-tiny"), "backbone."),
    ],
    ids=["imagenet-hrnet", "imagenet-cspnext", "pose-hrnet", "pose-rtmpose"],
)
def test_training_starts_from_the_files_weights(model, layout, prefix, dataset, tmp_path):
    path = tmp_path / "pretrained.pth"
    published = layout(path)
    found = starting_weights(model, path, dataset, tmp_path)
    assert found.prefix == prefix and found.loaded == found.total > 20
    compared = [key for key in STARTING_WEIGHTS if not key.endswith("num_batches_tracked")]
    assert len(compared) == found.total
    for key in compared:
        assert torch.equal(STARTING_WEIGHTS[key], published[key]), key


def test_without_pretrained_the_weights_are_not_the_files(dataset, tmp_path):
    """The comparison above can fail: a fresh model's weights are not the file's."""
    published = imagenet_hrnet(tmp_path / "pretrained.pth")
    fresh = kit_model("hrnet-tiny").backbone.state_dict()
    assert not torch.equal(fresh["conv1.weight"], published["conv1.weight"])


def test_an_explicit_prefix_overrides_the_search(tmp_path):
    path = tmp_path / "pretrained.pth"
    imagenet_cspnext(path)
    config = cfg.build_config(
        TrainParams(model="rtmpose-tiny", **TINY),
        cfg.DataSpec(tmp_path, tmp_path / "t.json", None, ("1",) * 38),
        tmp_path,
    )
    with pytest.raises(PretrainedError, match=r"initialises only 0 of the backbone's"):
        with_pretrained(config, str(path), prefix="")


@pytest.mark.parametrize(
    "model, other",
    [("hrnet-tiny", imagenet_cspnext), ("rtmpose-tiny", imagenet_hrnet)],
    ids=["cspnext-file-for-hrnet", "hrnet-file-for-rtmpose"],
)
def test_a_file_that_matches_nothing_stops_the_run_before_training(model, other, dataset, tmp_path):
    from cephalo.runs.train import run_fold

    path = tmp_path / "other.pth"
    other(path)
    run = tmp_path / "run"
    with pytest.raises(PretrainedError) as error:
        run_fold(dict(model=model, pretrained=str(path), **TINY), dataset, 0, run)
    message = str(error.value)
    assert str(path) in message and "initialises only" in message
    assert "are not in it with the right shape" in message
    assert not (run / "train").exists()  # nothing trained


def test_a_checkpoint_of_another_size_is_refused(tmp_path):
    """Head tensors of another shape are skipped, but a backbone of another width is not a
    match for a handful of tensors: it is refused."""
    path = tmp_path / "w.pth"
    pose_checkpoint(path, "rtmpose-tiny")
    config = cfg.build_config(
        TrainParams(model="rtmpose-t", **TINY),
        cfg.DataSpec(tmp_path, tmp_path / "t.json", None, ("1",) * 38),
        tmp_path,
    )
    with pytest.raises(PretrainedError, match=r"initialises only \d+ of the backbone's"):
        with_pretrained(config, str(path))


def test_a_run_records_what_it_loaded_and_predicts_without_the_file(dataset, tmp_path):
    from cephalo.ensemble.members import Predictor
    from cephalo.runs.train import run_fold

    path = tmp_path / "imagenet.pth"
    imagenet_hrnet(path)
    run = tmp_path / "run"
    metrics = run_fold(dict(model="hrnet-tiny", pretrained=str(path), **TINY), dataset, 0, run)
    recorded = json.loads((run / "metrics.json").read_text())["pretrained"]
    assert recorded == metrics["pretrained"]
    assert recorded["loaded"] == recorded["total"] and recorded["checkpoint"] == str(path)
    assert "init_cfg" in (run / "config.py").read_text()
    # The ensemble's rebuild needs the run folder, not the pretrained file.
    (run / "run.json").write_text(json.dumps(dict(parameters=dict(dataset_dir=str(dataset)))))
    shutil.move(path, tmp_path / "gone.pth")
    from cephalo.data.prepared import load_images, prepared_images
    from cephalo.tta import IDENTITY

    images = prepared_images(dataset, load_images(dataset)[:2])
    predicted = Predictor.of_run(run).predict(images, IDENTITY)
    assert predicted.coords.shape == (2, 38, 2) and np.isfinite(predicted.coords).all()
