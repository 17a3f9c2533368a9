"""Tuning specs: a YAML file in ``experiments/`` saying what an Optuna study searches.

::

    kind: tuning
    notebook: train              # the notebook every trial executes (default: train)
    dataset: null                # a prepared dataset; null: the built-in synthetic one
    params:                      # fixed training parameters (only what differs from defaults)
      model: rtmpose-tiny
      epochs: 20
    search:                      # name -> a categorical set or a numeric range
      input_size: {choices: [[96, 96], [128, 128], [160, 160]]}
      simcc_split_ratio: {low: 1.5, high: 3.0}
      sigma: {low: 1.5, high: 6.0, log: true}
    objective: MRE               # the mean held-out metric over `folds`; its direction follows
    folds: [0]                   # the folds each trial trains and validates on
    trials: 20                   # how many trials the study should hold in the end
    sampler: {type: tpe, seed: 0}            # tpe | random | qmc
    pruner: {type: median, warmup_steps: 2}  # median | percentile | hyperband | threshold | none
    enqueue: [{sigma: 3.0}]      # optional: trials to try first (known good settings)
    export:                      # optional: what --export-best's experiment changes
      params: {epochs: 200}      #   the final schedule, over the best trial's parameters
      folds: [0, 1, 2, 3, 4, full]   # default: all

``sigma`` is in the models' convention (pixels of a 256-px-wide input, see
:mod:`cephalo.models.params`), so one range means the same at every input size.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cephalo.experiments.spec import SpecError, beside, read_yaml_model
from cephalo.metrics import lower_is_better
from cephalo.models.params import TrainParams, parse_params


class Choices(BaseModel):
    model_config = ConfigDict(extra="forbid")

    choices: list[Any] = Field(min_length=1)


class Range(BaseModel):
    model_config = ConfigDict(extra="forbid")

    low: float
    high: float
    log: bool = False
    step: float | None = None
    integer: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> Range:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        if self.log and self.step is not None:
            raise ValueError("a range is either log-scaled or stepped, not both")
        return self


class Sampler(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["tpe", "random", "qmc"] = "tpe"
    seed: int | None = 0
    startup_trials: int = Field(default=5, ge=0)
    """TPE only: random trials before the model-based search begins."""


class Pruner(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["median", "percentile", "hyperband", "threshold", "none"] = "median"
    warmup_steps: int = Field(default=1, ge=0)
    """Validation rounds a trial always gets before it can be pruned."""
    startup_trials: int = Field(default=2, ge=0)
    """Median / percentile: trials that finish before any is pruned."""
    percentile: float = Field(default=25.0, gt=0, lt=100)
    upper: float | None = None
    """Threshold: prune a trial whose metric rises above this (e.g. MRE in mm)."""
    lower: float | None = None
    """Threshold: prune a trial whose metric falls below this (e.g. an SDR in %)."""


class Export(BaseModel):
    """What the experiment exported from the best trial changes: the training parameters
    (a longer final schedule, say) and the folds (``full`` adds a fit on every image)."""

    model_config = ConfigDict(extra="forbid")

    params: dict[str, Any] = Field(default_factory=dict)
    folds: Literal["all"] | list[int | Literal["full"]] = "all"


class TuneSpec(BaseModel):
    """What a tuning file may say (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    description: str = ""
    notebook: str = "train"
    dataset: Path | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    search: dict[str, Choices | Range] = Field(min_length=1)
    objective: Literal["MRE", "SDR 2.0mm", "SDR 2.5mm", "SDR 3.0mm", "SDR 4.0mm"] = "MRE"
    folds: list[int] = Field(default=[0], min_length=1)
    trials: int = Field(default=20, ge=1)
    sampler: Sampler = Field(default_factory=Sampler)
    pruner: Pruner = Field(default_factory=Pruner)
    enqueue: list[dict[str, Any]] = Field(default_factory=list)
    export: Export = Field(default_factory=Export)

    @property
    def direction(self) -> str:
        return "minimize" if lower_is_better(self.objective) else "maximize"


def read_tune_spec(path: str | os.PathLike[str]) -> TuneSpec:
    """Parse and validate a tuning file: the structure, the searched names, and that the
    fixed parameters with any point of the space are valid training parameters."""
    spec = read_yaml_model(path, TuneSpec, "tuning")
    spec.dataset = beside(Path(path), spec.dataset)
    try:
        for name in spec.search:
            if name not in TrainParams.model_fields:
                raise ValueError(f"search: {name!r} is not a training parameter")
            if name in spec.params:
                raise ValueError(f"search: {name!r} is also fixed in params; keep one")
        for corner in (0, -1):
            trial = trial_params(spec, {n: _corner(d, corner) for n, d in spec.search.items()})
            try:
                exported_params(spec, trial)
            except ValueError as error:
                raise ValueError(f"export: {error}") from None
        for fixed in spec.enqueue:
            unknown = set(fixed) - set(spec.search)
            if unknown:
                raise ValueError(f"enqueue: {sorted(unknown)} are not searched")
    except ValueError as error:
        raise SpecError(f"{path}: {error}") from None
    return spec


def trial_params(spec: TuneSpec, suggested: dict[str, Any]) -> dict[str, Any]:
    """A trial's training parameters: the fixed ones with the suggested ones, validated."""
    params = parse_params({**spec.params, **suggested})
    return params.model_dump(mode="json", exclude_defaults=True)


def exported_params(spec: TuneSpec, trial: dict[str, Any]) -> dict[str, Any]:
    """The exported experiment's parameters: a trial's, with the spec's ``export.params``."""
    params = parse_params({**trial, **spec.export.params})
    return params.model_dump(mode="json", exclude_defaults=True)


def _corner(distribution: Choices | Range, index: int) -> Any:
    if isinstance(distribution, Choices):
        return distribution.choices[index]
    value = (distribution.low, distribution.high)[index]
    return int(value) if distribution.integer else value
