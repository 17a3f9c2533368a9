"""Where the kit writes what it makes from a folder of experiment specs: the one owner of
those paths.

A workspace is a folder of hand-written specs (``experiments/`` in a checkout). What the kit
makes from them goes to one outputs folder, ``outputs/`` beside ``experiments/`` (ignored by
git), so that ``experiments/`` holds only specs::

    experiments/<name>.yaml               a hand-written spec
    outputs/
        registry.db                       the results registry of every experiment
        <name>-best.yaml                  the experiment a study exports (``--export-best``)
        <name>/runs/<variant>/fold<k>     run folders (cephalo.runs.folder)
        <name>/trials/<trial>/fold<k>     a study's trial runs
        <name>/study.db                   the study's default storage

A spec in ``outputs/`` (an exported one) belongs to the same workspace. A specs folder of
another name keeps its outputs beside its specs, and so does one that already holds a
registry (the layout before ``outputs/``: ``experiments/registry.db`` and
``experiments/<name>/runs/...`` still read, and new runs go beside them).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cephalo.paths import EXPERIMENTS

REGISTRY = "registry.db"
STUDY = "study.db"
SPECS, OUTPUTS = "experiments", "outputs"


@dataclass(frozen=True)
class Workspace:
    folder: Path  # the specs

    @classmethod
    def of_spec(cls, spec_path: str | os.PathLike[str]) -> Workspace:
        """The workspace of the spec file at ``spec_path``: its folder."""
        return cls(Path(spec_path).resolve().parent)

    @classmethod
    def default(cls) -> Workspace:
        """The checkout's ``experiments/``."""
        return cls(EXPERIMENTS)

    @property
    def root(self) -> Path:
        """The outputs folder (see the module docstring)."""
        if self.folder.name != SPECS or (self.folder / REGISTRY).exists():
            return self.folder
        return self.folder.parent / OUTPUTS

    @property
    def registry(self) -> Path:
        return self.root / REGISTRY

    def outputs(self, experiment: str) -> Path:
        """Everything the experiment ``experiment`` writes."""
        return self.root / experiment

    def run_dir(self, experiment: str, run_name: str) -> Path:
        """The run ``<variant>/fold<k>`` (or ``<variant>/full``) of an experiment."""
        return self.outputs(experiment) / "runs" / run_name

    def trial_dir(self, experiment: str, trial: str, fold: int) -> Path:
        """A study's trial run on one fold."""
        return self.outputs(experiment) / "trials" / trial / f"fold{fold}"

    def study_storage(self, experiment: str) -> str:
        """The default storage URL of a tuning experiment's study: SQLite, one machine."""
        return f"sqlite:///{self.outputs(experiment) / STUDY}"

    def exported_spec(self, experiment: str) -> Path:
        """The experiment a study's best trial is exported to."""
        return self.root / f"{experiment}-best.yaml"
