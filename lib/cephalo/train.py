"""One training run: one model on one fold, leaving behind what tuning and fusion need.

A run folder holds::

    params.json            the validated parameters, defaults filled in
    config.py              the complete MMEngine config (reproduces the run on its own)
    data/train.json        the fold's training images (COCO subset of the prepared dataset,
                           or of its training cache: cephalo.data.cache)
    data/val.json          its held-out images (absent for a full fit)
    train/                 MMEngine's work dir: logs, scalars, the best checkpoint
    predictions/oof.npz    held-out predictions (cephalo.predictions format)
    predictions/test.npz   test-stack predictions, when a test stack is given
    metrics.json           MRE / SDR on the held-out fold, per landmark, and the mean-shape
                           baseline's figures for comparison

A ``pretrained`` file is mapped onto the backbone before training (or the run is refused:
:mod:`cephalo.models.pretrained`); ``metrics.json`` records how many backbone tensors it gave.

A run folder that already holds a checkpoint of the same parameters (an attempt that was
killed or failed) resumes from it (:mod:`cephalo.work_dir`); one of other parameters is
cleared of the earlier attempt's training outputs first.

``fold=None`` trains on every image (a full fit for the final submission) and skips
validation. Notebooks call :func:`run_fold`; nothing here depends on being in one.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from cephalo.baselines import mean_shape
from cephalo.data.cache import cache_dir, training_cache
from cephalo.data.prepared import PreparedImage, load_folds, load_images, read_manifest
from cephalo.files import atomic_open
from cephalo.metrics import per_landmark, radial_errors, summarize
from cephalo.models.config import (
    DataSpec,
    build_config,
    cache_long_side,
    inference_device,
    missing_log_packages,
    pipelines,
    uses_amp,
)
from cephalo.models.params import TrainParams, parse_params
from cephalo.models.pretrained import with_pretrained
from cephalo.predictions import Predictions
from cephalo.work_dir import WORK_DIR, checkpoint_epoch, resume_point

# The Runner writes its config's text into its log, its vis_data and every checkpoint's meta;
# MMEngine formats that text with yapf each time (about 1.3 s a time on one core: most of a
# short tuning trial's fixed cost, and minutes of a long run's checkpoints). The run's own
# config.py is formatted once; the Runner's copies are left as MMEngine writes them unformatted.
RUNTIME_FORMATTING = False

PARAMS = "params.json"
CONFIG = "config.py"
TRAIN_SUBSET = "data/train.json"
VAL_SUBSET = "data/val.json"
METRICS = "metrics.json"
OOF = "predictions/oof.npz"
TEST = "predictions/test.npz"


def fold_split(dataset_dir: Path, fold: int | None) -> tuple[list[int], list[int]]:
    """(training image ids, held-out image ids) of ``fold``; None holds out nothing."""
    folds = load_folds(dataset_dir)
    if fold is None:
        return folds["image_id"].tolist(), []
    if fold not in set(folds["fold"]):
        raise ValueError(
            f"fold {fold} does not exist in {dataset_dir} (folds: {sorted(set(folds['fold']))})"
        )
    held_out = folds["fold"] == fold
    return folds.loc[~held_out, "image_id"].tolist(), folds.loc[held_out, "image_id"].tolist()


def write_subset(dataset_dir: Path, image_ids: Sequence[int], path: Path) -> Path:
    """The prepared dataset's COCO annotations restricted to ``image_ids``."""
    coco = json.loads((dataset_dir / "annotations.json").read_text())
    keep = set(image_ids)
    subset = dict(
        coco,
        images=[i for i in coco["images"] if i["id"] in keep],
        annotations=[a for a in coco["annotations"] if a["image_id"] in keep],
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(subset))
    return path


def use_device(params: TrainParams) -> None:
    """Hide GPUs when the parameters ask for the CPU (before torch first looks for them)."""
    if params.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""


def best_checkpoint(work_dir: Path) -> Path:
    """The checkpoint the run keeps: the best by the selection metric, else the last."""
    best = sorted(work_dir.glob("best_*.pth"), key=lambda p: p.stat().st_mtime)
    if best:
        return best[-1]
    last = sorted(work_dir.glob("epoch_*.pth"), key=lambda p: int(p.stem.split("_")[1]))
    if not last:
        raise FileNotFoundError(f"no checkpoint in {work_dir}")
    return last[-1]


def prepared_images(
    dataset_dir: Path, images: Sequence[PreparedImage]
) -> Iterator[tuple[int, np.ndarray, float]]:
    """(image id, BGR pixels, spacing), read one at a time."""
    for image in images:
        pixels = cv2.imread(str(dataset_dir / "images" / image.file_name), cv2.IMREAD_COLOR)
        yield image.image_id, pixels, image.spacing


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
    ``trial`` (from ``cephalo tune``) reports each validation to an Optuna trial, whose pruner
    may stop the run (:mod:`cephalo.tuning.pruning`)."""
    from mmengine.config import Config

    from cephalo.predict import load_model

    params = params if isinstance(params, TrainParams) else parse_params(params)
    use_device(params)
    missing = missing_log_packages(params)
    if missing:
        raise ValueError(
            f"log_to needs {', '.join(missing)}, which is not installed: "
            f"pip install {' '.join(missing)} (or remove it from log_to)"
        )
    dataset_dir, run_dir = Path(dataset_dir), Path(run_dir)
    names = tuple(read_manifest(dataset_dir)["landmarks"])
    train_ids, val_ids = fold_split(dataset_dir, fold)
    # What training reads: the reduced images, or the prepared ones at full size.
    source = (
        training_cache(dataset_dir, cache_long_side(params))
        if params.training_cache
        else dataset_dir
    )
    write_subset(source, train_ids, run_dir / TRAIN_SUBSET)
    if val_ids:
        write_subset(source, val_ids, run_dir / VAL_SUBSET)
    config = run_config(params, dataset_dir, fold, run_dir, names)
    resume_from = resume_point(run_dir) if _trained_with(run_dir, params) else None
    if resume_from is None:
        _clear_earlier_attempt(run_dir)
    else:  # MMEngine's resume: weights, optimizer, schedule, epoch, best score so far
        config.update(resume=True, load_from=str(resume_from))
        print(f"resuming from {resume_from.name} (epoch {checkpoint_epoch(resume_from)})")
    pretrained = None
    if params.pretrained:  # refused here, before anything is trained, when it does not fit
        config, pretrained = with_pretrained(config, params.pretrained, params.pretrained_prefix)
        print(pretrained.describe())
    if trial is not None:
        from cephalo.tuning.pruning import IMPORT, pruning_hook

        config["custom_hooks"].append(pruning_hook(trial))
        config["custom_imports"]["imports"].append(IMPORT)
    (run_dir / PARAMS).write_text(params.model_dump_json(indent=1) + "\n")
    Config(config).dump(str(run_dir / CONFIG))

    train(run_dir, config, params.processes)
    model = load_model(config, best_checkpoint(run_dir / WORK_DIR), device=inference_device(params))
    _, predict_pipeline = pipelines(params)

    metrics: dict[str, Any] = dict(fold=fold, model=params.model)
    if pretrained is not None:
        metrics["pretrained"] = pretrained.as_dict()
    if val_ids:
        images = {image.image_id: image for image in load_images(dataset_dir)}
        held_out = [images[i] for i in val_ids]
        oof = _predict(model, predict_pipeline, prepared_images(dataset_dir, held_out), params)
        oof.save(run_dir / OOF)
        summary, errors = score(oof.coords, held_out)
        baseline, _ = score(mean_shape([images[i] for i in train_ids], held_out), held_out)
        metrics.update(
            summary,
            n_images=len(held_out),
            per_landmark=per_landmark(errors, names)["MRE"].round(4).to_dict(),
            mean_shape_baseline=baseline,
        )
    if test_images is not None:
        _predict(model, predict_pipeline, test_images, params).save(run_dir / TEST)
    _write_json(run_dir / METRICS, metrics)
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
    data = DataSpec(
        image_dir=source / "images",
        train_ann=run_dir / TRAIN_SUBSET,
        val_ann=None if fold is None else run_dir / VAL_SUBSET,
        landmark_names=tuple(landmark_names),
    )
    return build_config(params, data, work_dir=run_dir / WORK_DIR)


def _trained_with(run_dir: Path, params: TrainParams) -> bool:
    """Whether the run folder's earlier attempt trained these very parameters."""
    try:
        earlier = json.loads((run_dir / PARAMS).read_text())
    except FileNotFoundError:
        return False
    return earlier == json.loads(params.model_dump_json())


def _clear_earlier_attempt(run_dir: Path) -> None:
    """Remove what an earlier attempt trained and predicted, so that none of its checkpoints
    or predictions is taken for this one's."""
    for name in (WORK_DIR, "predictions"):
        shutil.rmtree(run_dir / name, ignore_errors=True)
    (run_dir / METRICS).unlink(missing_ok=True)


def train(run_dir: Path, config: dict[str, Any], processes: int) -> None:
    """Train in this process, or in ``processes`` data-parallel ones from the dumped config."""
    if processes > 1:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={processes}",
            "-m",
            "cephalo.distributed",
            str(run_dir / CONFIG),
        ]
        subprocess.run(command, check=True)
        return
    from mmengine.config import Config
    from mmengine.runner import Runner

    from cephalo.checkpoints import use_safe_checkpoint_loader

    for module in config["custom_imports"]["imports"]:  # what registers the metric and hooks
        importlib.import_module(module)  # (a dict config skips custom_imports; fromfile doesn't)
    use_safe_checkpoint_loader()
    # MMEngine keeps its logger and visualizer by name for the life of the process (named by
    # the second and "visualizer"): a second run in one process (a notebook, a test) would
    # log into the first run's files. Each run here gets its own.
    unique = uuid.uuid4().hex[:8]
    config = dict(
        config,
        experiment_name=f"{run_dir.name}-{unique}",
        visualizer=dict(config["visualizer"], name=f"visualizer-{unique}"),
    )
    Runner.from_cfg(Config(config, format_python_code=RUNTIME_FORMATTING)).train()


def _predict(
    model: Any, pipeline: list[dict[str, Any]], images: Any, params: TrainParams
) -> Predictions:
    from cephalo.predict import predict_images

    return predict_images(
        model,
        pipeline,
        images,
        batch_size=params.batch_size,
        save_raw=params.save_raw,
        amp=uses_amp(params),
    )


def _write_json(path: Path, data: Any) -> None:
    with atomic_open(path, "w") as f:
        f.write(json.dumps(data, indent=1) + "\n")
