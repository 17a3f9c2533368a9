"""A submission's ensemble as one self-contained folder: what the challenge's container runs.

A submission folder (``cephalo ensemble``) points at run folders and a prepared dataset by
absolute path. ``cephalo export SUBMISSION --out BUNDLE`` copies what prediction needs into
one folder that points nowhere else::

    bundle.json                the fusion and its weights, each member's TTA view and models,
                               the landmark names, a SHA-256 of every file, the package
                               versions and the git commit it came from
    models/<name>/model.json   the model's config, the pipeline it was validated with, its
                               batch size and precision (data only)
    models/<name>/weights.pth  the kept checkpoint's weights (EMA weights when the run kept
                               an average) and dataset meta; no optimizer state

``cephalo predict --bundle BUNDLE --input DIR_OR_FILE --out FILE`` loads it (checksums
checked, checkpoints through the weights-only loader) and predicts a stack as
``cephalo predict --ensemble`` does: every member's models under its view, fused with the
stored weights, the challenge's JSON validated. An input folder must hold exactly one
``.mha``, whatever its name, as the platform mounts it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cephalo.challenge.points import write_json
from cephalo.challenge.submission import git_commit, read_submission_manifest, versions
from cephalo.errors import DataError
from cephalo.files import dump_json
from cephalo.landmarks import LANDMARK_NAMES
from cephalo.runs.folder import RunFolder
from cephalo.runs.work_dir import best_checkpoint

if TYPE_CHECKING:
    from cephalo.models.params import TrainParams

BUNDLE = "bundle.json"
MODEL, WEIGHTS = "model.json", "weights.pth"  # in models/<name>/
FORMAT = 1
PLATFORM_INPUT = Path("/input/images/lateral-dental-x-rays")
PLATFORM_OUTPUT = Path("/output/orthodontic-landmarks.json")


def export_bundle(submission: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Write the bundle of ``submission`` to ``out`` (replaced when it exists); its manifest
    last, so an interrupted export leaves no bundle that looks complete."""
    from cephalo.checkpoints import load_checkpoint_file
    from cephalo.ensemble.members import load_members
    from cephalo.models.params import trained_params

    manifest = read_submission_manifest(submission)
    out = Path(out)
    partial = partial_folder(out)
    models: dict[Path, str] = {}  # run folder -> model name in the bundle
    landmarks: set[tuple[str, ...]] = set()  # the names each model predicts, in order
    members = []
    for member, entry in zip(load_members(manifest), manifest["members"], strict=True):
        names = []
        for run in member.test_models:
            if run.run_dir not in models:
                folder = RunFolder(run.run_dir)
                name = f"{member.experiment}-{member.variant}-{run.label}"
                saved = load_checkpoint_file(best_checkpoint(folder.work_dir), map_location="cpu")
                meta = saved.get("meta", {}).get("dataset_meta") or {}
                id2name = meta.get("keypoint_id2name", dict(enumerate(LANDMARK_NAMES)))
                landmarks.add(tuple(id2name[i] for i in sorted(id2name)))
                write_model(
                    partial / "models" / name,
                    folder.trained_config(),
                    trained_params(folder.read_params()),
                    saved["state_dict"],
                    meta or None,
                )
                models[run.run_dir] = name
            names.append(models[run.run_dir])
        members.append(dict(name=member.name, view=entry["view"], models=names))
    if len(landmarks) != 1:
        raise DataError(f"{submission}: its models predict different landmarks")
    description = dict(
        landmarks=list(landmarks.pop()),
        fusion=manifest["fusion"],
        test_models=manifest.get("test_models", "folds"),
        weights=manifest["weights"],
        raw=manifest["raw"],
        members=members,
    )
    return seal(partial, out, description)


def partial_folder(out: Path) -> Path:
    """Where a bundle is written (emptied first) before :func:`seal` moves it to ``out``."""
    partial = out.with_name(f".{out.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    return partial


def write_model(
    folder: Path,
    config: dict[str, Any],
    params: TrainParams,
    state_dict: dict[str, Any],
    dataset_meta: dict[str, Any] | None,
) -> None:
    """One model of a bundle: its config and pipeline as data, and its weights (no optimizer
    state)."""
    import torch

    folder.mkdir(parents=True)
    described = dict(
        model=config["model"],
        val_pipeline=config["val_pipeline"],
        batch_size=params.batch_size,
        amp=params.amp,  # autocast when predicting on a GPU
    )
    dump_json(folder / MODEL, described)
    torch.save(dict(state_dict=state_dict, meta={"dataset_meta": dataset_meta}), folder / WEIGHTS)


def seal(partial: Path, out: Path, description: dict[str, Any]) -> Path:
    """Finish a bundle written into ``partial``: ``description`` (landmarks, fusion, weights,
    raw, members and their models) with a checksum of every file, the versions and the commit as
    its manifest, written last; then the folder moved to ``out`` (replacing it)."""
    files = {
        str(path.relative_to(partial)): _sha256(path)
        for path in sorted(partial.rglob("*"))
        if path.is_file()
    }
    manifest = dict(
        format=FORMAT, **description, files=files, versions=versions(), commit=git_commit()
    )
    dump_json(partial / BUNDLE, manifest)
    shutil.rmtree(out, ignore_errors=True)
    partial.rename(out)
    return out


def submission_test_stack(submission: Path) -> Path:
    """The test stack the submission was made for (its manifest names it)."""
    manifest = read_submission_manifest(submission)
    if "test_stack" not in manifest:
        raise DataError(f"{submission}: the manifest names no test stack (give --test-stack)")
    return Path(manifest["test_stack"])


def bundle_size(bundle: str | os.PathLike[str]) -> int:
    return sum(p.stat().st_size for p in Path(bundle).rglob("*") if p.is_file())


def read_bundle(bundle: str | os.PathLike[str]) -> dict[str, Any]:
    """The bundle's manifest, once every file it lists matches its checksum."""
    bundle = Path(bundle)
    if not (bundle / BUNDLE).is_file():
        raise DataError(f"{bundle}: not a bundle (no {BUNDLE}; write one with cephalo export)")
    description = json.loads((bundle / BUNDLE).read_text())
    for name, digest in description["files"].items():
        path = bundle / name
        if not path.is_file() or _sha256(path) != digest:
            raise DataError(f"{path}: missing or changed since the bundle was exported")
    return description


def input_stack(path: str | os.PathLike[str]) -> Path:
    """The stack to predict: ``path`` itself, or the one ``.mha`` in the folder ``path``."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise DataError(f"{path}: no such file or folder")
    stacks = sorted(path.glob("*.mha"))
    if len(stacks) != 1:
        found = ", ".join(p.name for p in stacks) or "none"
        raise DataError(f"{path}: expected exactly one .mha stack, found {found}")
    return stacks[0]


def predict_with_bundle(
    bundle: str | os.PathLike[str], stack_or_folder: str | os.PathLike[str], out: Path
) -> Path:
    """The bundle's ensemble on a stack, written as the challenge's JSON and validated."""
    from cephalo.challenge.submission import validate
    from cephalo.ensemble.fused import fuse
    from cephalo.ensemble.inference import stack_predictions
    from cephalo.ensemble.members import Member, Predictor
    from cephalo.models.device import inference_device
    from cephalo.models.params import TrainParams
    from cephalo.runs.predict import load_model
    from cephalo.tta import parse_view

    bundle = Path(bundle)
    stack = input_stack(stack_or_folder)
    description = read_bundle(bundle)
    if description["landmarks"] != list(LANDMARK_NAMES):
        raise DataError(
            f"{bundle}: its models predict {len(description['landmarks'])} landmarks "
            f"({', '.join(description['landmarks'][:3])}, ...), not the challenge's "
            f"{len(LANDMARK_NAMES)} ({', '.join(LANDMARK_NAMES[:3])}, ...)"
        )
    device = inference_device(TrainParams())  # the GPU when there is one, as in training
    predictors: dict[str, Predictor] = {}

    def predictor(name: str) -> Predictor:
        """The bundle's model ``name``, loaded once."""
        if name not in predictors:
            folder = bundle / "models" / name
            described = json.loads((folder / MODEL).read_text())
            model = load_model(dict(model=described["model"]), folder / WEIGHTS, device)
            amp = described["amp"] and device != "cpu"
            predictors[name] = Predictor(
                model, described["val_pipeline"], described["batch_size"], amp
            )
        return predictors[name]

    def model(name: str) -> Any:
        return lambda items, view, raw: predictor(name).predict(items(), view, save_raw=raw)

    members, models = [], []
    for member in description["members"]:
        experiment, variant, _ = member["name"].split("/")
        members.append(Member(experiment, variant, parse_view(member["view"]), ()))
        models.append([model(name) for name in member["models"]])
    test = stack_predictions(members, models, stack, raw=description["raw"])
    slices, sizes = test[0][0].image_id, test[0][0].image_size
    weights = None if description["weights"] is None else np.array(description["weights"])
    fused = fuse(description["fusion"], members, test, weights)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, slices, fused)
    validate(out, slices, sizes)
    return out


def check_expected(out: Path, expected: Path, tolerance_px: float) -> float:
    """The largest distance (pixels) between a landmark of ``out`` and of ``expected``;
    DataError, naming the slice and landmark, when it exceeds ``tolerance_px`` or the two
    files hold other slices."""
    from cephalo.challenge.points import read_predictions

    got, wanted = read_predictions(out), read_predictions(expected)
    if sorted(got) != sorted(wanted):
        raise DataError(f"{out}: slices {sorted(got)}, {expected} expects {sorted(wanted)}")
    distances = {z: np.linalg.norm(got[z] - wanted[z], axis=1) for z in wanted}
    z = max(distances, key=lambda z: distances[z].max())
    worst = float(distances[z].max())
    if worst > tolerance_px:
        name = LANDMARK_NAMES[int(distances[z].argmax())]
        raise DataError(
            f"{out}: slice {z}, landmark {name} is {worst:.2f} px from {expected} "
            f"(tolerance {tolerance_px} px)"
        )
    return worst


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
