"""One function from :class:`~cephalo.models.params.TrainParams` to a complete MMEngine config.

Every setting that depends on another is derived once, by a small function, in the module of
its concern: the network (:mod:`~cephalo.models.network`), the data pipelines
(:mod:`~cephalo.models.pipelines`), the optimizer, schedule and hooks
(:mod:`~cephalo.models.training`) and the device (:mod:`~cephalo.models.device`). This module
puts them together.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cephalo.landmarks import mmpose_metainfo
from cephalo.models.device import dist_backend, loader_settings
from cephalo.models.network import model
from cephalo.models.params import TrainParams
from cephalo.models.pipelines import pipelines
from cephalo.models.training import hooks, optim_wrapper, param_schedulers, vis_backends


@dataclass(frozen=True)
class DataSpec:
    """Where a run's data is: COCO files (subsets of a prepared dataset) and its images."""

    image_dir: Path
    train_ann: Path
    val_ann: Path | None
    landmark_names: tuple[str, ...]


def build_config(params: TrainParams, data: DataSpec, work_dir: Path) -> dict[str, Any]:
    """The complete MMEngine config of one training run."""
    train_pipeline, val_pipeline = pipelines(params)
    metainfo = mmpose_metainfo(data.landmark_names)

    def dataset(ann_file: Path, pipeline: list[dict[str, Any]], test_mode: bool) -> dict:
        return dict(
            type="CocoDataset",
            data_root="",
            data_mode="topdown",
            ann_file=str(ann_file),
            data_prefix=dict(img=f"{data.image_dir}/"),
            metainfo=metainfo,
            pipeline=pipeline,
            test_mode=test_mode,
        )

    def loader(ann_file: Path, pipeline: list[dict[str, Any]], train: bool) -> dict:
        return dict(
            batch_size=params.batch_size,
            **loader_settings(params),
            drop_last=False,
            sampler=dict(type="DefaultSampler", shuffle=train),
            dataset=dataset(ann_file, pipeline, test_mode=not train),
        )

    validating = data.val_ann is not None
    default_hooks, custom_hooks = hooks(params, validating)
    config: dict[str, Any] = dict(
        default_scope="mmpose",
        # The metric and the weights-only loader, so MMPose's own tools run this config too.
        custom_imports=dict(imports=["cephalo.mmpose_plugins"], allow_failed_imports=False),
        work_dir=str(work_dir),
        model=model(params, len(data.landmark_names)),
        train_dataloader=loader(data.train_ann, train_pipeline, train=True),
        # What prediction runs (cephalo.runs.predict), named as MMPose's configs name it.
        val_pipeline=val_pipeline,
        train_cfg=dict(by_epoch=True, max_epochs=params.epochs, val_interval=params.val_interval),
        optim_wrapper=optim_wrapper(params),
        param_scheduler=param_schedulers(params),
        default_hooks=default_hooks,
        custom_hooks=custom_hooks,
        env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend=dist_backend(params))),
        vis_backends=vis_backends(params),
        visualizer=dict(
            type="PoseLocalVisualizer",
            vis_backends=vis_backends(params),
            name="visualizer",
        ),
        log_processor=dict(type="LogProcessor", window_size=10, by_epoch=True),
        log_level="INFO",
        randomness=dict(seed=params.seed),
        load_from=None,
        resume=False,
    )
    if validating:
        # MMPose's configs test on the validation set; so does tools/test.py on this one.
        held_out = loader(data.val_ann, val_pipeline, train=False)
        evaluator = dict(type="CephalometricMetric", ann_file=str(data.val_ann))
        config.update(
            val_dataloader=held_out,
            val_cfg=dict(),
            val_evaluator=evaluator,
            test_dataloader=copy.deepcopy(held_out),
            test_cfg=dict(),
            test_evaluator=dict(evaluator),
        )
    return with_cfg_options(config, params.cfg_options)


def with_cfg_options(config: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """``config`` with ``options`` (dotted keys) set, as MMEngine's ``--cfg-options`` does."""
    if not options:
        return config
    from mmengine.config import Config

    merged = Config(config)
    merged.merge_from_dict(options)
    return merged.to_dict()
