"""One training run: one model on one fold, leaving behind what tuning and fusion need in
its folder (:mod:`cephalo.runs.folder`: the parameters, the resolved config as code and as
data, the fold's subsets, MMEngine's work dir, the predictions and the metrics).

A ``pretrained`` file is mapped onto the backbone before training (or the run is refused:
:mod:`cephalo.models.pretrained`); ``metrics.json`` records how many backbone tensors it gave.

A run folder that already holds a checkpoint of the same parameters (an attempt that was
killed or failed) resumes from it (:mod:`cephalo.runs.work_dir`); one of other parameters is
cleared of the earlier attempt's training outputs first.

``fold=None`` trains on every image (a full fit for the final submission) and skips
validation. Notebooks call :func:`run_fold`; nothing here depends on being in one.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cephalo.baselines import mean_shape
from cephalo.data.cache import cache_dir, training_cache
from cephalo.data.prepared import (
    PreparedImage,
    fold_split,
    load_images,
    prepared_images,
    read_manifest,
    write_subset,
)
from cephalo.errors import ParamsError
from cephalo.metrics import per_landmark, radial_errors, summarize
from cephalo.models.config import DataSpec, build_config
from cephalo.models.device import inference_device
from cephalo.models.params import TrainParams, parse_params
from cephalo.models.pipelines import cache_long_side
from cephalo.models.pretrained import with_pretrained
from cephalo.models.training import missing_log_packages, uses_amp
from cephalo.predictions import Predictions
from cephalo.runs.folder import RunFolder
from cephalo.runs.work_dir import checkpoint_epoch, resume_point

_log = logging.getLogger(__name__)

# The Runner writes its config's text into its log, its vis_data and every checkpoint's meta;
# MMEngine formats that text with yapf each time (about 1.3 s a time on one core: most of a
# short tuning trial's fixed cost, and minutes of a long run's checkpoints). The run's own
# config.py is formatted once; the Runner's copies are left as MMEngine writes them unformatted.
RUNTIME_FORMATTING = False


def use_device(params: TrainParams) -> None:
    """Hide GPUs when the parameters ask for the CPU (before torch first looks for them)."""
    if params.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""


def score(
    coords: np.ndarray, truth: Sequence[PreparedImage]
) -> tuple[dict[str, float], np.ndarray]:
    """The leaderboard metrics of ``coords`` (N, K, 2) against ``truth`` (same image order),
    and the (N, K) radial errors in mm."""
    gt = np.stack([image.points for image in truth])
    spacing = np.array([image.spacing for image in truth])
    errors = radial_errors(coords, gt, spacing)
    return summarize(errors), errors


def run_fold(
    params: TrainParams | dict[str, Any],
    dataset_dir: str | os.PathLike[str],
    fold: int | None,
    run_dir: str | os.PathLike[str],
    test_images: Iterable[tuple[int, np.ndarray, float]] | None = None,
    trial: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train ``params`` on ``fold`` of a prepared dataset into ``run_dir``; predict the
    held-out images and ``test_images`` (id, BGR image, spacing); return the fold metrics.
    ``trial`` (from ``cephalo tune``): the MMEngine ``hook`` that reports each validation to
    an Optuna trial, whose pruner may stop the run, and the ``module`` that registers it
    (:mod:`cephalo.tuning.pruning`), as config data."""
    params = params if isinstance(params, TrainParams) else parse_params(params)
    use_device(params)
    missing = missing_log_packages(params)
    if missing:
        raise ParamsError(
            f"log_to needs {', '.join(missing)}, which is not installed: "
            f"pip install {' '.join(missing)} (or remove it from log_to)"
        )
    dataset_dir, run_dir = Path(dataset_dir), Path(run_dir)
    folder = RunFolder(run_dir)
    names = tuple(read_manifest(dataset_dir)["landmarks"])
    train_ids, val_ids = fold_split(dataset_dir, fold)
    # What training reads: the reduced images, or the prepared ones at full size.
    source = (
        training_cache(dataset_dir, cache_long_side(params))
        if params.training_cache
        else dataset_dir
    )
    write_subset(source, train_ids, folder.train_subset)
    if val_ids:
        write_subset(source, val_ids, folder.val_subset)
    config = run_config(params, dataset_dir, fold, run_dir, names)
    resume_from = resume_point(run_dir) if _trained_with(folder, params) else None
    if resume_from is None:
        _clear_earlier_attempt(folder)
    else:  # MMEngine's resume: weights, optimizer, schedule, epoch, best score so far
        config.update(resume=True, load_from=str(resume_from))
        _log.info("resuming from %s (epoch %d)", resume_from.name, checkpoint_epoch(resume_from))
    pretrained = None
    if params.pretrained:  # refused here, before anything is trained, when it does not fit
        config, pretrained = with_pretrained(config, params.pretrained, params.pretrained_prefix)
        _log.info(pretrained.describe())
    if trial is not None:
        config["custom_hooks"].append(trial["hook"])
        config["custom_imports"]["imports"].append(trial["module"])
    folder.params_file.write_text(params.model_dump_json(indent=1) + "\n")
    folder.write_config(config)

    train(run_dir, config, params.processes)
    model = folder.load_model(inference_device(params), config)
    predict_pipeline = config["val_pipeline"]

    metrics: dict[str, Any] = dict(fold=fold, model=params.model)
    if pretrained is not None:
        metrics["pretrained"] = pretrained.as_dict()
    if val_ids:
        images = {image.image_id: image for image in load_images(dataset_dir)}
        held_out = [images[i] for i in val_ids]
        oof = _predict(model, predict_pipeline, prepared_images(dataset_dir, held_out), params)
        oof.save(folder.oof)
        summary, errors = score(oof.coords, held_out)
        baseline, _ = score(mean_shape([images[i] for i in train_ids], held_out), held_out)
        metrics.update(
            summary,
            n_images=len(held_out),
            per_landmark=per_landmark(errors, names)["MRE"].round(4).to_dict(),
            mean_shape_baseline=baseline,
        )
    if test_images is not None:
        _predict(model, predict_pipeline, test_images, params).save(folder.test)
    folder.write_metrics(metrics)
    return metrics


def run_config(
    params: TrainParams,
    dataset_dir: Path,
    fold: int | None,
    run_dir: Path,
    landmark_names: Sequence[str],
) -> dict[str, Any]:
    """The MMEngine config a run of ``params`` on ``fold`` trains with, computed without
    reading or writing a file: what :func:`run_fold` builds before it maps a pretrained
    file, resumes, or adds a tuning trial's pruning hook."""
    source = (
        cache_dir(dataset_dir, cache_long_side(params)) if params.training_cache else dataset_dir
    )
    folder = RunFolder(run_dir)
    data = DataSpec(
        image_dir=source / "images",
        train_ann=folder.train_subset,
        val_ann=None if fold is None else folder.val_subset,
        landmark_names=tuple(landmark_names),
    )
    return build_config(params, data, work_dir=folder.work_dir)


def _trained_with(folder: RunFolder, params: TrainParams) -> bool:
    """Whether the run folder's earlier attempt trained these very parameters."""
    return folder.read_params() == json.loads(params.model_dump_json())


def _clear_earlier_attempt(folder: RunFolder) -> None:
    """Remove what an earlier attempt trained and predicted, so that none of its checkpoints
    or predictions is taken for this one's."""
    for path in (folder.work_dir, folder.predictions):
        shutil.rmtree(path, ignore_errors=True)
    folder.metrics_file.unlink(missing_ok=True)


def train(run_dir: Path, config: dict[str, Any], processes: int) -> None:
    """Train in this process, or in ``processes`` data-parallel ones from the saved config
    data (``config.json``)."""
    if processes > 1:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={processes}",
            "-m",
            "cephalo.runs.distributed",
            str(RunFolder(run_dir).config_data),
        ]
        subprocess.run(command, check=True)
        return
    from mmengine.runner import Runner

    # MMEngine keeps its logger and visualizer by name for the life of the process (named by
    # the second and "visualizer"): a second run in one process (a notebook, a test) would
    # log into the first run's files. Each run here gets its own.
    unique = uuid.uuid4().hex[:8]
    config = dict(
        config,
        experiment_name=f"{run_dir.name}-{unique}",
        visualizer=dict(config["visualizer"], name=f"visualizer-{unique}"),
    )
    Runner.from_cfg(runtime_config(config)).train()


def runtime_config(config: dict[str, Any]) -> Any:
    """``config`` as MMEngine's Runner gets it: the modules its ``custom_imports`` name
    imported (a dict config skips them; they register the metric and hooks), the
    weights-only checkpoint loader in place, its text left unformatted."""
    from mmengine.config import Config

    from cephalo.checkpoints import use_safe_checkpoint_loader

    for module in config["custom_imports"]["imports"]:
        importlib.import_module(module)
    use_safe_checkpoint_loader()
    return Config(config, format_python_code=RUNTIME_FORMATTING)


def _predict(
    model: Any, pipeline: list[dict[str, Any]], images: Any, params: TrainParams
) -> Predictions:
    from cephalo.runs.predict import predict_images

    return predict_images(
        model,
        pipeline,
        images,
        batch_size=params.batch_size,
        save_raw=params.save_raw,
        amp=uses_amp(params),
    )
