"""Where the kit writes beside a folder of experiment specs: the one owner of those paths.

A workspace is a folder of specs (``experiments/`` in a checkout). Every spec in it shares
one results registry; each experiment's outputs go to a folder named after its spec::

    experiments/
        <name>.yaml                       a spec (hand-written, or exported by a study)
        <name>-best.yaml                  the experiment a study exports (``--export-best``)
        registry.db                       the results registry of every experiment here
        <name>/runs/<variant>/fold<k>     run folders (cephalo.run_folder)
        <name>/trials/<trial>/fold<k>     a study's trial runs
        <name>/study.db                   the study's default storage

Every command derives these paths from here, from the spec file it is given (a spec in
another folder has its own workspace there).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from cephalo.paths import EXPERIMENTS

REGISTRY = "registry.db"
STUDY = "study.db"


@dataclass(frozen=True)
class Workspace:
    folder: Path

    @classmethod
    def of_spec(cls, spec_path: str | os.PathLike[str]) -> Workspace:
        """The workspace of the spec file at ``spec_path``: its folder."""
        return cls(Path(spec_path).resolve().parent)

    @classmethod
    def default(cls) -> Workspace:
        """The checkout's ``experiments/``."""
        return cls(EXPERIMENTS)

    @property
    def registry(self) -> Path:
        return self.folder / REGISTRY

    def outputs(self, experiment: str) -> Path:
        """Everything the experiment ``experiment`` writes."""
        return self.folder / experiment

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
        return self.folder / f"{experiment}-best.yaml"
