"""Experiment specs: a YAML file in ``experiments/`` saying which training runs to make.

::

    kind: experiment            # what the file is (experiment | tuning | ensemble)
    notebook: train             # the notebook every run executes (default: train)
    dataset: null               # a prepared dataset folder; null: the built-in synthetic one
    test: {stack: ..., gt: ...} # optional: a test stack every run predicts (gt optional)
    params:                     # training parameters of every run; only what differs
      model: rtmpose-tiny       #   from the defaults of cephalo.models.params
    variants:                   # name -> what differs from params (default: one, "base")
      rtmpose-tiny: {}
      hrnet-tiny: {model: hrnet-tiny, sigma: 8}
    grid:                       # optional: every variant x every combination of these
      sigma: [2, 4]
    folds: all                  # "all", or a list of fold numbers and/or "full"

The runs are variants x grid x folds. A run is named ``<variant>/fold<k>``, or
``<variant>/full`` for a full fit (training on every image, no held-out fold). Relative
paths are relative to the spec file's folder (``../data/...`` from ``experiments/``), so a
spec means the same whatever folder ``cephalo`` runs from.
Everything is checked when the spec is loaded, before any run starts: an unknown key, a
misspelled training parameter, a fold the dataset lacks.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cephalo.errors import CephaloError, validation_problems
from cephalo.models.params import parse_params
from cephalo.runs.folder import RunFolder
from cephalo.workspace import Workspace

FULL = "full"
Spec = TypeVar("Spec", bound=BaseModel)
VARIANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+=-]*")


class SpecError(CephaloError, ValueError):
    """An experiment spec that cannot be run; the message names the file and the problem."""


class TestStack(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stack: Path
    gt: Path | None = None


class ExperimentSpec(BaseModel):
    """What an experiment file may say (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    description: str = ""
    notebook: str = "train"
    dataset: Path | None = None
    test: TestStack | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    variants: dict[str, dict[str, Any]] = Field(default_factory=lambda: {"base": {}})
    grid: dict[str, list[Any]] = Field(default_factory=dict)
    folds: Literal["all"] | list[int | Literal["full"]] = "all"


@dataclass(frozen=True)
class Run:
    """One notebook execution of an experiment."""

    experiment: str
    name: str  # "<variant>/fold<k>" or "<variant>/full"
    variant: str
    fold: int | None
    notebook: str
    parameters: dict[str, Any]  # the notebook's parameters, run_dir included
    run_dir: Path

    @property
    def digest(self) -> str:
        """What the run computes, as a hash: a completed run whose digest differs from its
        spec's has been made with other settings. Where it writes and which tuning trial it
        reports to are not part of it (a retried trial resumes its lost run)."""
        settings = {k: v for k, v in self.parameters.items() if k not in ("run_dir", "trial")}
        text = json.dumps([self.notebook, settings], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def folder(self) -> RunFolder:
        return RunFolder(self.run_dir)


@dataclass(frozen=True)
class Experiment:
    name: str
    spec_path: Path
    spec: ExperimentSpec
    runs: list[Run]

    @property
    def root(self) -> Path:
        """Where its runs write: ``outputs/<name>/`` (:mod:`cephalo.workspace`)."""
        return Workspace.of_spec(self.spec_path).outputs(self.name)

    @property
    def registry(self) -> Path:
        return Workspace.of_spec(self.spec_path).registry


def run_name(variant: str, fold: int | str) -> str:
    """``<variant>/fold<k>``, or ``<variant>/full`` for a full fit."""
    return f"{variant}/{FULL if fold == FULL else f'fold{fold}'}"


KINDS = {"experiment": "cephalo run", "tuning": "cephalo tune", "ensemble": "cephalo ensemble"}
"""What a spec's ``kind:`` may say, and the command that takes that kind."""


def read_yaml_model(path: str | os.PathLike[str], model: type[Spec], what: str) -> Spec:
    """A YAML file (read with the safe loader) validated into ``model``; every problem is a
    SpecError naming the file. ``what``: the kind expected ("experiment", "tuning",
    "ensemble"); a spec whose ``kind:`` says another is refused with the command it needs (a
    spec that says no kind, written before kinds, is read as ``what``)."""
    path = Path(path)
    if not path.is_file():
        raise SpecError(f"{path}: no such {what} file")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise SpecError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: expected a mapping of settings, got {type(raw).__name__}")
    kind = raw.pop("kind", what)
    if kind != what:
        known = ", ".join(KINDS)
        use = f"; run it with `{KINDS[kind]}`" if kind in KINDS else f" (kinds: {known})"
        raise SpecError(f"{path}: a spec of kind {kind!r}, not {what!r}{use}")
    try:
        return model(**raw)
    except ValidationError as error:
        problems = validation_problems(error, model)
        raise SpecError(f"{path}: invalid {what} spec:\n  " + "\n  ".join(problems)) from None


def read_spec(path: str | os.PathLike[str]) -> ExperimentSpec:
    """Parse and validate an experiment file (structure only; see :func:`load_experiment`)."""
    spec = read_yaml_model(path, ExperimentSpec, "experiment")
    spec.dataset = beside(path, spec.dataset)
    if spec.test:
        spec.test.stack, spec.test.gt = beside(path, spec.test.stack), beside(path, spec.test.gt)
    return spec


def beside(spec_path: Path, value: Path | None) -> Path | None:
    """A path from a spec file, relative ones taken from the spec's folder."""
    if value is None:
        return None
    return (Path(spec_path).resolve().parent / value.expanduser()).resolve()


def load_experiment(path: str | os.PathLike[str]) -> Experiment:
    """An experiment file expanded into its runs, every run's parameters validated (the
    built-in synthetic dataset is made here when the spec asks for it)."""
    from cephalo.notebooks import ParameterError, check_parameters, load

    path = Path(path).resolve()
    spec = read_spec(path)
    variants = variant_params(spec, path)
    dataset, available = prepared_dataset(spec.dataset, path)
    folds = available if spec.folds == "all" else spec.folds
    missing = [f for f in folds if f != FULL and f not in available]
    if missing:
        raise SpecError(f"{path}: folds {missing} not in {dataset} (it has {available})")

    try:
        notebook = load(spec.notebook)
    except FileNotFoundError as error:
        raise SpecError(f"{path}: {error}") from None
    if spec.test:
        for file in (spec.test.stack, spec.test.gt):
            if file is not None and not file.is_file():
                raise SpecError(f"{path}: test file {file} does not exist")
    runs = []
    for variant, params in variants.items():
        for fold in folds:
            name = run_name(variant, fold)
            run_dir = Workspace.of_spec(path).run_dir(path.stem, name)
            parameters = dict(
                dataset_dir=str(dataset),
                fold=None if fold == FULL else fold,
                run_dir=str(run_dir),
                params=params,
            )
            if spec.test:
                parameters["test_stack"] = str(spec.test.stack)
                parameters["test_gt"] = str(spec.test.gt) if spec.test.gt else None
            try:
                check_parameters(notebook, parameters, name=spec.notebook)
            except ParameterError as error:
                raise SpecError(f"{path}: {error}") from None
            runs.append(
                Run(
                    experiment=path.stem,
                    name=name,
                    variant=variant,
                    fold=parameters["fold"],
                    notebook=spec.notebook,
                    parameters=parameters,
                    run_dir=run_dir,
                )
            )
    return Experiment(name=path.stem, spec_path=path, spec=spec, runs=runs)


def prepared_dataset(dataset: Path | None, spec_path: Path) -> tuple[Path, list[int]]:
    """The spec's prepared dataset (None: the built-in synthetic one, made on first use)
    and its fold numbers."""
    from cephalo.data.default import synthetic_dataset
    from cephalo.data.prepared import load_folds

    dataset = dataset or synthetic_dataset(progress=False)
    try:
        return dataset, sorted(set(load_folds(dataset)["fold"]))
    except FileNotFoundError:
        raise SpecError(f"{spec_path}: dataset {dataset} is not a prepared dataset") from None


def variant_params(spec: ExperimentSpec, path: Path) -> dict[str, dict[str, Any]]:
    """Variant name -> its validated training parameters (only those that differ from the
    defaults): variants x grid, each grid combination adding its values to the name."""
    combos = [
        dict(zip(spec.grid, values, strict=True))
        for values in itertools.product(*spec.grid.values())
    ]
    variants = {}
    for name, overrides in spec.variants.items():
        for combo in combos:
            variant = name + "".join(f"-{key}{_label(value)}" for key, value in combo.items())
            if not VARIANT_NAME.fullmatch(variant):
                raise SpecError(
                    f"{path}: variant name {variant!r} must match {VARIANT_NAME.pattern}"
                )
            try:
                params = parse_params({**spec.params, **overrides, **combo})
            except ValueError as error:
                raise SpecError(f"{path}: variant {variant!r}: {error}") from None
            variants[variant] = params.model_dump(mode="json", exclude_defaults=True)
    return variants


def _label(value: Any) -> str:
    """A grid value as part of a folder name: [128, 128] -> 128x128."""
    if isinstance(value, list | tuple):
        return "x".join(_label(v) for v in value)
    return str(value)
