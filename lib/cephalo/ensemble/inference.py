"""The members' predictions: out-of-fold (each image by the fold model that held it out)
and of a test stack (every test model of every member, the stack read slice by slice), each
model loaded once and every prediction cached on disk so an interrupted ensemble resumes."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from cephalo.data.prepared import load_images
from cephalo.ensemble.members import (
    FoldRun,
    Member,
    Predictor,
    cached,
    check_same_images,
    combine_folds,
)
from cephalo.errors import DataError
from cephalo.predictions import Predictions
from cephalo.runs.folder import RunFolder
from cephalo.tta import View


def oof_predictions(members: list[Member], cache: Path, raw: bool = False) -> list[Predictions]:
    """Every member's out-of-fold predictions (its folds' held-out sets put together), all
    of the same images in the same order."""
    from cephalo.data.prepared import fold_split, prepared_images

    predictors: dict[Path, Predictor] = {}
    result: list[Predictions] = []
    bar = _progress(members, "out-of-fold predictions")
    for member in members:
        parts = []
        for run in _advancing(bar, member):
            _, held_out = fold_split(run.dataset_dir, run.fold)
            images = {i.image_id: i for i in load_images(run.dataset_dir)}
            items = partial(prepared_images, run.dataset_dir, [images[i] for i in held_out])
            compute = partial(_predict, predictors, run.run_dir, items, member.view, raw)
            parts.append(cached(_cache_path(cache, member, run, "oof"), compute, raw))
        combined = combine_folds(parts)
        if result and not np.array_equal(result[0].image_id, combined.image_id):
            raise DataError(f"{member.name} covers other images than {members[0].name}")
        result.append(combined)
    bar.close()
    return result


def test_predictions(
    members: list[Member],
    stack: Path,
    gt: Path | None,
    cache: Path | None = None,
    raw: bool = False,
) -> list[list[Predictions]]:
    """Every member's test models' predictions of the test stack. What ``cephalo predict``
    runs, and with ``cache`` what the ensemble step runs."""
    predictors: dict[Path, Predictor] = {}

    def test_model(member: Member, run: FoldRun) -> ModelPrediction:
        def predicted(items: Callable[[], Any], view: View, raw: bool) -> Predictions:
            compute = partial(_predict, predictors, run.run_dir, items, view, raw)
            path = _cache_path(cache, member, run, "test") if cache else None
            return cached(path, compute, raw) if path else compute()

        return predicted

    models = [[test_model(member, run) for run in member.test_models] for member in members]
    return stack_predictions(members, models, stack, gt, raw)


ModelPrediction = Callable[[Callable[[], Any], View, bool], Predictions]
"""(images, view, raw outputs?) -> one model's predictions of the images under the view."""


def stack_predictions(
    members: list[Member],
    models: list[list[ModelPrediction]],
    stack: Path,
    gt: Path | None = None,
    raw: bool = False,
) -> list[list[Predictions]]:
    """Each member's models' predictions of ``stack`` (``models[i]``: member i's models),
    the stack read one slice at a time for each model."""
    from cephalo.data.prepare import check_stack
    from cephalo.runs.predict import stack_images

    n_slices, _, _ = check_stack(Path(stack))  # before any model is loaded
    total = sum(len(m) for m in models)
    bar = tqdm(total=total, desc="test predictions", unit="model", disable=None)

    def slices() -> Any:
        images = stack_images(stack, gt)
        return tqdm(images, total=n_slices, unit="slice", leave=False, disable=bar.disable)

    result = []
    for member, member_models in zip(members, models, strict=True):
        bar.set_postfix_str(member.name)
        parts = []
        for model in member_models:
            parts.append(model(slices, member.view, raw))
            bar.update()
        check_same_images(parts)
        result.append(parts)
    bar.close()
    return result


def _progress(members: list[Member], what: str) -> tqdm:
    """A bar over every fold model of every member (members are models x TTA views); shown
    on a terminal only."""
    return tqdm(total=sum(len(m.runs) for m in members), desc=what, unit="model", disable=None)


def _advancing(bar: tqdm, member: Member) -> Any:
    """The member's fold runs, advancing ``bar`` after each."""
    for run in member.runs:
        bar.set_postfix_str(f"{member.name} fold {run.fold}")
        yield run
        bar.update()


def _predict(
    predictors: dict[Path, Predictor],
    run_dir: Path,
    items: Callable[[], Any],
    view: View,
    raw: bool,
) -> Predictions:
    """One model's predictions of ``items()`` under ``view`` (models loaded once)."""
    if run_dir not in predictors:
        predictors[run_dir] = Predictor.of_run(run_dir)
    return predictors[run_dir].predict(items(), view, save_raw=raw)


def _cache_path(cache: Path, member: Member, run: FoldRun, split: str) -> Path:
    """Where a model's predictions are cached: named after the run's settings and when
    it started, so a run redone (new settings, new checkpoint) is predicted afresh."""
    state = RunFolder(run.run_dir).read_state()
    stamp = hashlib.sha256(f"{state['digest']}-{state['started']}".encode()).hexdigest()[:12]
    folder = cache / member.experiment / member.variant / run.label
    return folder / f"{member.view.name}-{split}-{stamp}.npz"
