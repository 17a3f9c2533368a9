"""Ensemble members: trained variants chosen from the registry, predicted under TTA views.

A member is one variant of one experiment seen through one TTA view. Its out-of-fold
predictions put together the held-out predictions of its fold models (every image predicted
by the model that never saw it). Its test predictions average its test models: the fold
models, the variant's full fit (trained on every image), or both (``test_models``); the
fusion is learned on the fold models' out-of-fold predictions in every case.

Models are rebuilt from the config each run trained with (``config.json``, as data; see
:mod:`cephalo.runs.folder`) and its best checkpoint (loaded with the kit's weights-only
loader); nothing in a run folder is executed. Predictions are cached as
``.npz`` files (written atomically), so an interrupted ensemble resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cephalo.errors import DataError
from cephalo.predictions import Predictions, load_predictions
from cephalo.run_states import COMPLETED
from cephalo.runs.folder import RunFolder
from cephalo.tta import View, parse_view


@dataclass(frozen=True)
class FoldRun:
    run_dir: Path
    fold: int | None  # None: a full fit
    dataset_dir: Path

    @property
    def label(self) -> str:
        return "full" if self.fold is None else f"fold{self.fold}"


@dataclass(frozen=True)
class Member:
    experiment: str
    variant: str
    view: View
    runs: tuple[FoldRun, ...]  # the fold models: the out-of-fold predictions
    test_runs: tuple[FoldRun, ...] = ()  # the models of the test predictions; () = runs

    @property
    def name(self) -> str:
        return f"{self.experiment}/{self.variant}/{self.view.name}"

    @property
    def test_models(self) -> tuple[FoldRun, ...]:
        return self.test_runs or self.runs


def choose_variants(
    runs: pd.DataFrame,
    experiment: str,
    variant: str | None,
    best: int | None,
    test_models: str = "folds",
) -> dict[str, tuple[list[FoldRun], list[FoldRun]]]:
    """Variant -> (its completed held-out runs, its test models), from registry rows: one
    variant, all of the experiment's, or its ``best`` k by mean fold MRE."""
    from cephalo.experiments.leaderboard import leaderboard

    completed = runs[(runs["experiment"] == experiment) & (runs["status"] == COMPLETED)]
    chosen = completed[completed["fold"].notna()]
    if variant is not None:
        chosen = chosen[chosen["variant"] == variant]
    if chosen.empty:
        what = f"variant {variant!r} of " if variant else ""
        raise DataError(f"no completed held-out runs of {what}experiment {experiment!r}")
    if best is not None:
        ranked = leaderboard(chosen)["variant"].tolist()[:best]
        chosen = chosen[chosen["variant"].isin(ranked)]
    full_fits = completed[completed["fold"].isna()]
    variants = {}
    for name, group in chosen.groupby("variant", sort=False):
        full_fit = full_fits[full_fits["variant"] == name].head(1)
        if test_models != "folds" and full_fit.empty:
            raise DataError(
                f"test_models: {test_models} needs a full fit of variant {name!r} of experiment "
                f"{experiment!r}, and the registry has no completed one (add `full` to the "
                "experiment's folds and run it)"
            )
        folds = [_fold_run(row) for row in group.sort_values("fold").itertuples()]
        full = [_fold_run(row) for row in full_fit.itertuples()]
        test = {"folds": folds, "full": full, "both": folds + full}[test_models]
        variants[str(name)] = (folds, test)
    return variants


def _fold_run(row: Any) -> FoldRun:
    fold = None if pd.isna(row.fold) else int(row.fold)
    dataset = RunFolder(row.run_dir).read_state()["parameters"]["dataset_dir"]
    return FoldRun(Path(row.run_dir), fold, Path(dataset))


class Predictor:
    """A trained model predicting images under a view, with the pipeline it was validated
    with and its batch size and precision."""

    def __init__(self, model: Any, pipeline: list[dict[str, Any]], batch_size: int, amp: bool):
        self.model, self.pipeline, self.batch_size, self.amp = model, pipeline, batch_size, amp

    @classmethod
    def of_run(cls, run_dir: Path) -> Predictor:
        """A fold model rebuilt from its run folder, on the GPU when there is one (the same
        decision as training)."""
        from cephalo.models.device import inference_device
        from cephalo.models.params import trained_params
        from cephalo.models.training import uses_amp

        folder = RunFolder(run_dir)
        params = trained_params(folder.read_params())
        config = folder.trained_config()  # what the run trained with
        model = folder.load_model(inference_device(params), config)
        return cls(model, config["val_pipeline"], params.batch_size, uses_amp(params))

    def predict(
        self, images: Iterable[tuple[int, np.ndarray, float]], view: View, save_raw: bool = False
    ) -> Predictions:
        """Predictions of the images under ``view``, coordinates mapped back to the
        original images (raw outputs, when kept, stay in the view's frame)."""
        from cephalo.runs.predict import predict_images

        sizes = {}

        def viewed() -> Iterator[tuple[int, np.ndarray, float]]:
            for image_id, image, spacing in images:
                sizes[image_id] = image.shape[1::-1]
                yield image_id, view.apply(image), spacing

        result = predict_images(
            self.model, self.pipeline, viewed(), self.batch_size, save_raw=save_raw, amp=self.amp
        )
        for i, image_id in enumerate(result.image_id):
            width, height = sizes[int(image_id)]
            result.coords[i] = view.inverse(result.coords[i], width, height)
        return result


def cached(path: Path, compute: Any, raw: bool = False) -> Predictions:
    """The predictions at ``path``, computed and saved (atomically) when missing (or when
    ``raw`` outputs are wanted and the cached ones lack them)."""
    if path.is_file():
        predictions = load_predictions(path)
        if predictions.raw or not raw:
            return predictions
    predictions = compute()
    predictions.save(path)
    return predictions


def combine_folds(parts: list[Predictions]) -> Predictions:
    """Held-out predictions of several folds as one set, sorted by image id."""
    ids = np.concatenate([p.image_id for p in parts])
    if len(np.unique(ids)) != len(ids):
        raise DataError("an image is held out by two folds of one member")
    order = np.argsort(ids)

    def joined(arrays: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(arrays)[order]

    return Predictions(
        image_id=ids[order],
        coords=joined([p.coords for p in parts]),
        confidence=joined([p.confidence for p in parts]),
        spacing=joined([p.spacing for p in parts]),
        image_size=joined([p.image_size for p in parts]),
        input_center=joined([p.input_center for p in parts]),
        input_scale=joined([p.input_scale for p in parts]),
        input_size=parts[0].input_size,
        raw={key: joined([p.raw[key] for p in parts]) for key in parts[0].raw},
    )


def check_same_images(parts: list[Predictions]) -> None:
    """Test predictions of a member's fold models must cover the same images."""
    for part in parts[1:]:
        if not np.array_equal(part.image_id, parts[0].image_id):
            raise DataError("fold models predicted different test images")


def member_entry(member: Member) -> dict[str, Any]:
    """A member as the submission's manifest stores it (read back by :func:`load_members`)."""

    def runs(entries: tuple[FoldRun, ...]) -> list[dict[str, Any]]:
        return [
            dict(run_dir=str(r.run_dir), fold=r.fold, dataset_dir=str(r.dataset_dir))
            for r in entries
        ]

    view = member.view
    return dict(
        name=member.name,
        experiment=member.experiment,
        variant=member.variant,
        view=dict(flip=view.flip, scale=view.scale, shift=list(view.shift)),
        runs=runs(member.runs),
        test_runs=runs(member.test_models),
    )


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
