"""``cephalo ensemble`` and ``cephalo predict``: members -> fusion fitted on OOF -> submission.

An ensemble file (YAML)::

    members:                       # variants from the results registry
      - {experiment: rtmpose-cpu}              # every variant of an experiment
      - {experiment: hrnet-cpu, variant: base} # one variant
      - {experiment: sweep, best: 2}           # the 2 best variants by mean fold MRE
    tta: [identity, flip]          # views every member predicts (cephalo.tta)
    fusion: learned                # mean | median | confidence | robust | learned | greedy
    test: {stack: ..., gt: ...}    # the stack to submit for (gt optional: scores it too)
    registry: null                 # default: registry.db beside this file

Every fusion is scored on the out-of-fold predictions, the learned ones cross-validated
over the dataset's folds (weights fitted without the images they are scored on); the chosen
one is refitted on all OOF images and applied to the test stack. ``cephalo predict`` redoes
the test part from the submission's manifest alone, as the challenge's container would.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cephalo.data.prepared import load_folds, load_images
from cephalo.ensemble import fusion
from cephalo.ensemble.members import (
    FoldRun,
    Member,
    Predictor,
    average_folds,
    cached,
    choose_variants,
    combine_folds,
)
from cephalo.errors import validation_problems
from cephalo.experiments.registry import read_runs
from cephalo.experiments.spec import SpecError, TestStack, beside
from cephalo.files import atomic_open
from cephalo.metrics import MRE, radial_errors, summarize
from cephalo.submission import MANIFEST, write_json, write_submission
from cephalo.tta import View, parse_view

OOF_FILE = "oof.npz"


class MemberSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    experiment: str
    variant: str | None = None
    best: int | None = Field(default=None, ge=1)


class EnsembleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    members: list[MemberSpec] = Field(min_length=1)
    tta: list[Any] = Field(default_factory=lambda: ["identity"], min_length=1)
    fusion: Literal["mean", "median", "confidence", "robust", "learned", "greedy"] = "learned"
    test: TestStack | None = None
    registry: Path | None = None

    @field_validator("tta")
    @classmethod
    def _views(cls, values: list[Any]) -> list[Any]:
        for value in values:
            parse_view(value)
        return values


def read_ensemble_spec(path: Path) -> EnsembleSpec:
    if not path.is_file():
        raise SpecError(f"{path}: no such ensemble file")
    try:
        spec = EnsembleSpec(**(yaml.safe_load(path.read_text()) or {}))
    except yaml.YAMLError as error:
        raise SpecError(f"{path}: not valid YAML: {error}") from None
    except ValidationError as error:
        problems = validation_problems(error, EnsembleSpec)
        raise SpecError(f"{path}: invalid ensemble spec:\n  " + "\n  ".join(problems)) from None
    except TypeError as error:
        raise SpecError(f"{path}: {error}") from None
    spec.registry = beside(path, spec.registry)
    if spec.test:
        spec.test.stack, spec.test.gt = beside(path, spec.test.stack), beside(path, spec.test.gt)
    return spec


def members_of(spec: EnsembleSpec, registry: Path) -> list[Member]:
    runs = read_runs(registry)
    members = []
    for choice in spec.members:
        variants = choose_variants(runs, choice.experiment, choice.variant, choice.best)
        for variant, fold_runs in variants.items():
            for view in map(parse_view, spec.tta):
                members.append(Member(choice.experiment, variant, view, tuple(fold_runs)))
    return members


def oof_predictions(
    members: list[Member], cache: Path
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(image ids, coords (M, N, K, 2), confidence (M, N, K)) of every member's OOF set."""
    from cephalo.train import fold_split, prepared_images

    predictors: dict[Path, Predictor] = {}
    all_coords, all_confidence, ids = [], [], None
    for member in members:
        parts = []
        for run in member.runs:
            _, held_out = fold_split(run.dataset_dir, run.fold)
            images = {i.image_id: i for i in load_images(run.dataset_dir)}
            items = partial(prepared_images, run.dataset_dir, [images[i] for i in held_out])
            compute = partial(_predict, predictors, run.run_dir, items, member.view)
            parts.append(cached(_cache_path(cache, member, run, "oof"), compute))
        member_ids, coords, confidence = combine_folds(parts)
        if ids is not None and not np.array_equal(ids, member_ids):
            raise ValueError(f"{member.name} covers other images than the first member")
        ids = member_ids
        all_coords.append(coords)
        all_confidence.append(confidence)
    return ids, np.stack(all_coords), np.stack(all_confidence)


def test_predictions(
    members: list[Member], stack: Path, gt: Path | None, cache: Path | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(slices, coords (M, N, K, 2), confidence (M, N, K), image sizes (N, 2)) of the test
    stack for every member, each averaged over its fold models. What ``cephalo predict``
    runs, and with ``cache`` what the ensemble step runs."""
    from cephalo.predict import stack_images

    predictors: dict[Path, Predictor] = {}
    all_coords, all_confidence = [], []
    for member in members:
        parts = []
        for run in member.runs:
            items = partial(stack_images, stack, gt)
            compute = partial(_predict, predictors, run.run_dir, items, member.view)
            path = _cache_path(cache, member, run, "test") if cache else None
            parts.append(cached(path, compute) if path else compute())
        slices, coords, confidence = average_folds(parts)
        all_coords.append(coords)
        all_confidence.append(confidence)
    return slices, np.stack(all_coords), np.stack(all_confidence), parts[0].image_size


def _predict(
    predictors: dict[Path, Predictor], run_dir: Path, items: Callable[[], Any], view: View
) -> Any:
    """One fold model's predictions of ``items()`` under ``view`` (models loaded once)."""
    if run_dir not in predictors:
        predictors[run_dir] = Predictor(run_dir)
    return predictors[run_dir].predict(items(), view)


def _cache_path(cache: Path, member: Member, run: FoldRun, split: str) -> Path:
    folder = cache / member.experiment / member.variant / f"fold{run.fold}"
    return folder / f"{member.view.name}-{split}.npz"


def fuse(
    method: str, coords: np.ndarray, confidence: np.ndarray, weights: np.ndarray | None
) -> np.ndarray:
    """The fusion of members' coordinates by ``method`` (learned ones with ``weights``)."""
    if method in fusion.LEARNED:
        return fusion.apply_weights(coords, weights)
    return fusion.fuse_fixed(coords, method, confidence)


def build_ensemble(spec_path: str | os.PathLike[str], out: str | os.PathLike[str]) -> dict:
    """Fit and score the fusions on OOF, write the submission; returns the manifest."""
    spec_path, out = Path(spec_path).resolve(), Path(out)
    spec = read_ensemble_spec(spec_path)
    registry = spec.registry or spec_path.parent / "registry.db"
    members = members_of(spec, registry)
    ids, coords, confidence = oof_predictions(members, out / "cache")

    dataset = members[0].runs[0].dataset_dir
    images = {i.image_id: i for i in load_images(dataset)}
    truth = np.stack([images[i].points for i in ids])
    spacing = np.array([images[i].spacing for i in ids])
    folds = load_folds(dataset).set_index("image_id").loc[ids, "fold"].to_numpy()

    scores = {
        m.name: summarize(radial_errors(coords[j], truth, spacing)) for j, m in enumerate(members)
    }
    fused_oof = {}
    for method in fusion.METHODS:
        if method in fusion.LEARNED:
            fused_oof[method] = fusion.cross_validated(method, coords, truth, spacing, folds)
        else:
            fused_oof[method] = fusion.fuse_fixed(coords, method, confidence)
        scores[f"fusion: {method}"] = summarize(radial_errors(fused_oof[method], truth, spacing))
    weights = (
        fusion.FITTERS[spec.fusion](coords, truth, spacing)
        if spec.fusion in fusion.LEARNED
        else None
    )
    with atomic_open(out / OOF_FILE, "wb") as f:
        np.savez_compressed(
            f,
            image_id=ids,
            members=np.array([m.name for m in members]),
            coords=coords,
            fused=fused_oof[spec.fusion],
            truth=truth,
            spacing=spacing,
            fold=folds,
        )
    manifest: dict[str, Any] = dict(
        spec=str(spec_path),
        fusion=spec.fusion,
        members=[
            dict(
                name=m.name,
                experiment=m.experiment,
                variant=m.variant,
                view=dict(flip=m.view.flip, scale=m.view.scale, shift=list(m.view.shift)),
                runs=[
                    dict(run_dir=str(r.run_dir), fold=r.fold, dataset_dir=str(r.dataset_dir))
                    for r in m.runs
                ],
            )
            for m in members
        ],
        weights=None if weights is None else weights.tolist(),
        oof=scores,
    )
    if spec.test:
        slices, test_coords, test_confidence, sizes = test_predictions(
            members, spec.test.stack, spec.test.gt, cache=out / "cache"
        )
        submitted = fuse(spec.fusion, test_coords, test_confidence, weights)
        if spec.test.gt:
            manifest["test"] = _score_test(spec.test.gt, slices, submitted)
        write_submission(out, slices, submitted, sizes, manifest)
    else:
        with atomic_open(out / MANIFEST, "w") as f:
            f.write(json.dumps(manifest, indent=1) + "\n")
    return manifest


def _score_test(gt: Path, slices: np.ndarray, coords: np.ndarray) -> dict[str, float]:
    from cephalo.data.release import read_gt

    records = {r.z: r for r in read_gt(gt)}
    truth = np.stack([records[int(z)].points for z in slices])
    spacing = np.array([records[int(z)].spacing for z in slices])
    return summarize(radial_errors(coords, truth, spacing))


def scores_table(manifest: dict[str, Any]) -> pd.DataFrame:
    """Members and fusions side by side, by OOF MRE."""
    table = pd.DataFrame(manifest["oof"]).T
    return table.sort_values(MRE)


def load_members(manifest: dict[str, Any]) -> list[Member]:
    return [
        Member(
            m["experiment"],
            m["variant"],
            View(m["view"]["flip"], m["view"]["scale"], tuple(m["view"]["shift"])),
            tuple(
                FoldRun(Path(r["run_dir"]), r["fold"], Path(r["dataset_dir"])) for r in m["runs"]
            ),
        )
        for m in manifest["members"]
    ]


def predict_stack(ensemble: Path, stack: Path, out: Path) -> Path:
    """The submission's ensemble on a stack: every member with its view, fused with the
    stored weights, written as the challenge's JSON and validated."""
    from cephalo.submission import validate

    manifest = json.loads((ensemble / MANIFEST).read_text())
    members = load_members(manifest)
    slices, coords, confidence, sizes = test_predictions(members, stack, None)
    weights = np.array(manifest["weights"]) if manifest["weights"] is not None else None
    fused = fuse(manifest["fusion"], coords, confidence, weights)
    write_json(out, slices, fused)
    validate(out, slices, sizes)
    return out
