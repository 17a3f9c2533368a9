"""The ensemble file: which variants of which experiments, under which views, fused how.

An ensemble file (YAML)::

    kind: ensemble
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
    registry: null                 # default: the workspace's (outputs/registry.db)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cephalo.ensemble import fusion
from cephalo.ensemble.members import (
    Member,
    choose_variants,
)
from cephalo.experiments.registry import read_runs
from cephalo.experiments.spec import TestStack, beside, read_yaml_model
from cephalo.tta import parse_view


class MemberSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    experiment: str
    variant: str | None = None
    best: int | None = Field(default=None, ge=1)


Fusion = Literal[(*fusion.METHODS, fusion.DISTRIBUTION)]


class EnsembleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    members: list[MemberSpec] = Field(min_length=1)
    tta: list[Any] = Field(default_factory=lambda: ["identity"], min_length=1)
    fusion: Fusion = "learned"
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
