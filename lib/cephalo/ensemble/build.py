"""``cephalo ensemble`` and ``cephalo predict``: members -> fusion fitted on OOF -> submission.

An ensemble file (YAML)::

    members:                       # variants from the results registry
      - {experiment: rtmpose-cpu}              # every variant of an experiment
      - {experiment: hrnet-cpu, variant: base} # one variant
      - {experiment: sweep, best: 2}           # the 2 best variants by mean fold MRE
    tta: [identity, flip]          # views every member predicts (cephalo.tta)
    fusion: learned                # mean | median | confidence | robust | learned | greedy |
                                   #   distribution (SimCC / heatmap marginals averaged)
    distribution: false            # also score distribution-level fusion (keeps raw outputs)
    test: {stack: ..., gt: ...}    # the stack to submit for (gt optional: scores it too)
    test_models: folds             # folds | full | both: which models predict the test
                                   #   stack (full: each variant's fit on every image)
    registry: null                 # default: registry.db beside this file

Every fusion is scored on the out-of-fold predictions, the learned ones cross-validated
over the dataset's folds (weights fitted without the images they are scored on); the chosen
one is refitted on all OOF images and applied to the test stack. ``cephalo predict`` redoes
the test part from the submission's manifest alone, as the challenge's container would.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator
from tqdm import tqdm

from cephalo.data.prepared import load_folds, load_images
from cephalo.ensemble import fusion
from cephalo.ensemble.distribution import fuse_distributions
from cephalo.ensemble.members import (
    FoldRun,
    Member,
    Predictor,
    cached,
    check_same_images,
    choose_variants,
    combine_folds,
)
from cephalo.errors import DataError
from cephalo.experiments.registry import read_runs
from cephalo.experiments.spec import TestStack, beside, read_yaml_model
from cephalo.files import atomic_open, dump_json
from cephalo.metrics import MRE, radial_errors, summarize
from cephalo.predictions import Predictions
from cephalo.run_folder import RunFolder
from cephalo.submission import MANIFEST, inside, write_json, write_submission
from cephalo.tta import IDENTITY, View, parse_view
from cephalo.workspace import Workspace

OOF_FILE = "oof.npz"
DISTRIBUTION = "distribution"


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
    fusion: Literal[
        "mean", "median", "confidence", "robust", "learned", "greedy", "distribution"
    ] = "learned"
    distribution: bool = False
    """Also score distribution-level fusion (keeps every member's SimCC vectors or
    heatmaps: memory and disk grow with them)."""
    test: TestStack | None = None
    test_models: Literal["folds", "full", "both"] = "folds"
    """The models that predict the test stack: each variant's fold models (averaged), its
    full fit, or both (every model one share); the fusion is learned on the fold models'
    out-of-fold predictions either way."""
    registry: Path | None = None

    @field_validator("tta")
    @classmethod
    def _views(cls, values: list[Any]) -> list[Any]:
        for value in values:
            parse_view(value)
        return values


def read_ensemble_spec(path: Path) -> EnsembleSpec:
    spec = read_yaml_model(path, EnsembleSpec, "ensemble")
    spec.registry = beside(path, spec.registry)
    if spec.test:
        spec.test.stack, spec.test.gt = beside(path, spec.test.stack), beside(path, spec.test.gt)
    return spec


def members_of(spec: EnsembleSpec, registry: Path) -> list[Member]:
    runs = read_runs(registry)
    members = []
    for choice in spec.members:
        variants = choose_variants(
            runs, choice.experiment, choice.variant, choice.best, spec.test_models
        )
        for variant, (fold_runs, test_runs) in variants.items():
            for view in map(parse_view, spec.tta):
                members.append(
                    Member(choice.experiment, variant, view, tuple(fold_runs), tuple(test_runs))
                )
    return members


def oof_predictions(members: list[Member], cache: Path, raw: bool = False) -> list[Predictions]:
    """Every member's out-of-fold predictions (its folds' held-out sets put together), all
    of the same images in the same order."""
    from cephalo.train import fold_split, prepared_images

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

    def fold_model(member: Member, run: FoldRun) -> ModelPrediction:
        def predicted(items: Callable[[], Any], view: View, raw: bool) -> Predictions:
            compute = partial(_predict, predictors, run.run_dir, items, view, raw)
            path = _cache_path(cache, member, run, "test") if cache else None
            return cached(path, compute, raw) if path else compute()

        return predicted

    models = [[fold_model(member, run) for run in member.test_models] for member in members]
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
    from cephalo.predict import stack_images

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
    """One fold model's predictions of ``items()`` under ``view`` (models loaded once)."""
    if run_dir not in predictors:
        predictors[run_dir] = Predictor.of_run(run_dir)
    return predictors[run_dir].predict(items(), view, save_raw=raw)


def _cache_path(cache: Path, member: Member, run: FoldRun, split: str) -> Path:
    """Where a fold model's predictions are cached: named after the run's settings and when
    it started, so a run redone (new settings, new checkpoint) is predicted afresh."""
    state = RunFolder(run.run_dir).read_state()
    stamp = hashlib.sha256(f"{state['digest']}-{state['started']}".encode()).hexdigest()[:12]
    folder = cache / member.experiment / member.variant / run.label
    return folder / f"{member.view.name}-{split}-{stamp}.npz"


def member_coords(predictions: list[list[Predictions]]) -> tuple[np.ndarray, np.ndarray]:
    """(M, N, K, 2) coordinates and (M, N, K) confidences, each member's fold models
    averaged."""
    coords = np.stack([np.mean([p.coords for p in parts], axis=0) for parts in predictions])
    confidence = np.stack([np.mean([p.confidence for p in parts], axis=0) for parts in predictions])
    return coords, confidence


def fuse(
    method: str,
    members: list[Member],
    predictions: list[list[Predictions]],
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """(N, K, 2): the members' predictions (per member, one per fold model) fused by
    ``method`` (learned methods apply ``weights``), clipped to the images."""
    sizes = predictions[0][0].image_size
    if method == DISTRIBUTION:
        entries, shares = [], []
        for member, parts in zip(members, predictions, strict=True):
            entries += [(p, member.view) for p in parts]
            shares += [1 / (len(members) * len(parts))] * len(parts)
        return inside(fuse_distributions(entries, np.array(shares)), sizes)
    coords, confidence = member_coords(predictions)
    if method in fusion.LEARNED:
        return inside(fusion.apply_weights(coords, weights), sizes)
    return inside(fusion.fuse_fixed(coords, method, confidence), sizes)


def fused_out_of_fold(
    method: str,
    members: list[Member],
    oof: list[Predictions],
    truth: np.ndarray,
    spacing: np.ndarray,
    folds: np.ndarray,
) -> np.ndarray:
    """(N, K, 2) out-of-fold coordinates of ``method``; learned methods cross-validated over
    ``folds`` (weights fitted without the images they predict)."""
    if method in fusion.LEARNED:
        coords, _ = member_coords([[p] for p in oof])
        fused = fusion.cross_validated(method, coords, truth, spacing, folds)
        return inside(fused, oof[0].image_size)
    return fuse(method, members, [[p] for p in oof])


WITHOUT_TTA = "fusion without TTA: "


def tta_effect(manifest: dict[str, Any]) -> str | None:
    """What the TTA views did to the submitted fusion out-of-fold, when there are views."""
    scores, method = manifest["oof"], manifest["fusion"]
    if f"{WITHOUT_TTA}{method}" not in scores:
        return None
    with_tta = scores[f"fusion: {method}"][MRE]
    without = scores[f"{WITHOUT_TTA}{method}"][MRE]
    return (
        f"TTA: fusion '{method}' OOF MRE {with_tta:.3f} mm with the views, {without:.3f} mm "
        f"with the members' identity views only ({with_tta / without:.3f}x)"
    )


def build_ensemble(spec_path: str | os.PathLike[str], out: str | os.PathLike[str]) -> dict:
    """Fit and score the fusions on OOF, write the submission; returns the manifest."""
    spec_path, out = Path(spec_path).resolve(), Path(out)
    spec = read_ensemble_spec(spec_path)
    registry = spec.registry or Workspace.of_spec(spec_path).registry
    members = members_of(spec, registry)
    raw = spec.distribution or spec.fusion == DISTRIBUTION
    oof = oof_predictions(members, out / "cache", raw)
    ids = oof[0].image_id
    coords, _ = member_coords([[p] for p in oof])

    dataset = members[0].runs[0].dataset_dir
    images = {i.image_id: i for i in load_images(dataset)}
    truth = np.stack([images[i].points for i in ids])
    spacing = np.array([images[i].spacing for i in ids])
    folds = load_folds(dataset).set_index("image_id").loc[ids, "fold"].to_numpy()

    scores = {
        m.name: summarize(radial_errors(coords[j], truth, spacing)) for j, m in enumerate(members)
    }
    fused_oof = {}
    for method in fusion.METHODS + ((DISTRIBUTION,) if raw else ()):
        fused_oof[method] = fused_out_of_fold(method, members, oof, truth, spacing, folds)
        scores[f"fusion: {method}"] = summarize(radial_errors(fused_oof[method], truth, spacing))
    plain = [j for j, m in enumerate(members) if m.view == IDENTITY]
    if 0 < len(plain) < len(members):  # the same fusion of the members' identity views
        without = fused_out_of_fold(
            spec.fusion, [members[j] for j in plain], [oof[j] for j in plain], truth, spacing, folds
        )
        scores[f"{WITHOUT_TTA}{spec.fusion}"] = summarize(radial_errors(without, truth, spacing))
    weights = None
    if spec.fusion in fusion.LEARNED:
        weights = fusion.FITTERS[spec.fusion](coords, truth, spacing)
    manifest: dict[str, Any] = dict(
        spec=str(spec_path),
        fusion=spec.fusion,
        raw=raw,
        test_models=spec.test_models,
        members=[
            dict(
                name=m.name,
                experiment=m.experiment,
                variant=m.variant,
                view=dict(flip=m.view.flip, scale=m.view.scale, shift=list(m.view.shift)),
                runs=[_run_entry(r) for r in m.runs],
                test_runs=[_run_entry(r) for r in m.test_models],
            )
            for m in members
        ],
        weights=None if weights is None else weights.tolist(),
        oof=scores,
    )
    if spec.test:
        manifest["test_stack"] = str(spec.test.stack)
        test = test_predictions(members, spec.test.stack, spec.test.gt, out / "cache", raw)
        slices, sizes = test[0][0].image_id, test[0][0].image_size
        submitted = fuse(spec.fusion, members, test, weights)
        if spec.test.gt:
            manifest["test"] = _score_test(spec.test.gt, slices, submitted)

    # Every prediction is made: the files are written, the manifest last. While it is
    # missing the folder is a submission in the making (a kill from here on leaves no old
    # manifest describing new files).
    (out / MANIFEST).unlink(missing_ok=True)
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
    if spec.test:
        write_submission(out, slices, submitted, sizes, manifest)
    else:
        dump_json(out / MANIFEST, manifest)
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


def _run_entry(run: FoldRun) -> dict[str, Any]:
    return dict(run_dir=str(run.run_dir), fold=run.fold, dataset_dir=str(run.dataset_dir))


def load_members(manifest: dict[str, Any]) -> list[Member]:
    """The manifest's members (a manifest written before ``test_runs`` predicts with its
    fold models)."""

    def runs(entries: list[dict[str, Any]]) -> tuple[FoldRun, ...]:
        return tuple(
            FoldRun(Path(r["run_dir"]), r["fold"], Path(r["dataset_dir"])) for r in entries
        )

    return [
        Member(
            m["experiment"],
            m["variant"],
            parse_view(m["view"]),
            runs(m["runs"]),
            runs(m.get("test_runs", [])),
        )
        for m in manifest["members"]
    ]


def predict_stack(ensemble: Path, stack: Path, out: Path) -> Path:
    """The submission's ensemble on a stack: every member with its view, fused with the
    stored weights, written as the challenge's JSON and validated."""
    from cephalo.submission import validate

    manifest = json.loads((ensemble / MANIFEST).read_text())
    members = load_members(manifest)
    test = test_predictions(members, stack, None, raw=manifest["raw"])
    slices, sizes = test[0][0].image_id, test[0][0].image_size
    weights = np.array(manifest["weights"]) if manifest["weights"] is not None else None
    fused = fuse(manifest["fusion"], members, test, weights)
    write_json(out, slices, fused)
    validate(out, slices, sizes)
    return out
