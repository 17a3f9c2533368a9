"""``cephalo demo``: a whole miniature competition on the built-in synthetic data, on a CPU.

Each step is what a user runs on the real release with bigger settings, and the demo prints
that command as it goes: a synthetic release and its preparation into folds, the exploration
notebook, a short Optuna study whose best trial is exported and trained on every fold,
HRNet fold models beside it, the leaderboard, the ensemble of both under shift TTA with
weights learned out-of-fold, a validated submission, and a report (an executed notebook
exported to HTML beside the submission). The specs are ordinary files in ``experiments/``
(``demo-*.yaml``; ``demo-fast-*.yaml`` for ``--fast``). Re-running resumes: finished steps
are not redone.
"""

from __future__ import annotations

import json
import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

import click

from cephalo.logs import show_logs
from cephalo.paths import REPO_ROOT
from cephalo.workspace import Workspace


@dataclass(frozen=True)
class DemoSize:
    n_images: int
    n_test: int
    scale: float
    folds: int


WORKERS = ("--workers", "2")  # two runs at a time, a core each: kernels start in parallel
FULL = DemoSize(n_images=45, n_test=10, scale=0.15, folds=3)
FAST = DemoSize(n_images=30, n_test=3, scale=0.1, folds=3)


class Demo:
    """The demo's paths, under ``root`` (a checkout: data/, experiments/, submissions/)."""

    def __init__(self, root: Path, fast: bool) -> None:
        self.root, self.name = root, "demo-fast" if fast else "demo"
        self.size = FAST if fast else FULL
        self.raw = root / "data" / self.name / "raw"
        self.prepared = root / "data" / self.name / "prepared"
        self.workspace = Workspace(root / "experiments")
        self.out = self.workspace.outputs(self.name)
        self.submission = root / "submissions" / self.name

    def spec(self, suffix: str = "") -> Path:
        return self.workspace.folder / f"{self.name}{suffix}.yaml"

    def shown(self, path: Path) -> str:
        return os.path.relpath(path, self.root) if path.is_relative_to(self.root) else str(path)

    def step(self, title: str, *command: str | Path) -> None:
        """Announce a step with the command a user would type for it."""
        words = [self.shown(w) if isinstance(w, Path) else w for w in command]
        click.secho(f"\n== {title}", bold=True)
        click.echo("   $ " + shlex.join(["cephalo", *words]))


def run_demo(fast: bool = False, root: Path = REPO_ROOT) -> Path:
    """Run the demo; returns the submission folder (which holds report.html)."""
    from cephalo.data.default import synthetic_release
    from cephalo.data.prepare import prepare_release
    from cephalo.ensemble.build import build_ensemble, scores_table
    from cephalo.ensemble.fused import tta_effect
    from cephalo.experiments import leaderboard
    from cephalo.experiments.registry import read_runs
    from cephalo.experiments.runner import run_experiment
    from cephalo.notebooks import execute, export_html
    from cephalo.tuning.tuner import export_best, tune

    show_logs()  # what the steps report (runs complete, trials held) among the demo's lines
    demo, started = Demo(root, fast), time.perf_counter()
    size = demo.size
    demo.step(
        "1. a synthetic CL-Detection 2023 release",
        *("data", "synth", "--out", demo.raw, "--n-images", str(size.n_images)),
        *("--n-test", str(size.n_test), "--scale", str(size.scale), "--seed", "0"),
    )
    synthetic_release(demo.raw, size.n_images, size.n_test, size.scale, seed=0)

    stack, gt = demo.raw / "train_stack.mha", demo.raw / "train-gt.json"
    demo.step(
        "2. prepare it: cropped PNGs, COCO annotations, stratified folds",
        *("data", "prepare", "--stack", stack, "--gt", gt),
        *("--out", demo.prepared, "--folds", str(size.folds)),
    )
    prepare_release(stack, gt, demo.prepared, folds=size.folds, progress=False)

    explored = demo.out / "explore_data.ipynb"
    demo.step(
        "3. explore it (papermill)",
        *("notebook", "explore_data", explored, "-p", "dataset_dir", demo.prepared),
    )
    execute("explore_data", explored, dict(dataset_dir=str(demo.prepared)))

    tuning = demo.spec("-tune")
    demo.step("4. tune RTMPose with Optuna, export the best trial", "tune", tuning, "--export-best")
    best = export_best(tune(tuning), tuning)

    # the exported spec is rewritten whenever the study finds a better trial
    for spec, redo in ((best, ("--redo-changed",)), (demo.spec(), ())):
        demo.step(
            f"5. train {spec.stem} on every fold (papermill batch)", "run", spec, *WORKERS, *redo
        )
        failed = run_experiment(spec, workers=int(WORKERS[1]), redo_changed=bool(redo)).failed
        if failed:
            raise click.ClickException(f"runs failed: {', '.join(failed)}; see their notebooks")

    members = [best.stem, demo.name]
    demo.step("6. the leaderboard", "leaderboard", *members)
    runs = read_runs(demo.workspace.registry, members)
    click.echo(leaderboard.format_leaderboard(leaderboard.leaderboard(runs)))

    ensemble = demo.spec("-ensemble")
    demo.step(
        "7. ensemble: shift TTA, fusion learned out-of-fold, the submission",
        *("ensemble", ensemble, "--out", demo.submission),
    )
    manifest = build_ensemble(ensemble, demo.submission)
    click.echo(
        "   out-of-fold MRE / SDR 2 mm of every member and fusion (fusions cross-validated):"
    )
    scores = scores_table(manifest)[["MRE", "SDR 2.0mm"]].round(3)
    click.echo("   " + scores.to_string().replace("\n", "\n   "))
    if effect := tta_effect(manifest):
        click.echo(f"   {effect}")

    report = demo.out / "report.ipynb"
    parameters = dict(
        dataset_dir=demo.prepared,
        experiments=members,
        registry=demo.workspace.registry,
        tuning_spec=tuning,
        submission=demo.submission,
    )
    demo.step(
        "8. the report (executed notebook, exported to HTML beside the submission)",
        *("notebook", "report", report),
        *(
            w
            for k, v in parameters.items()
            for w in ("-p", k, demo.shown(v) if isinstance(v, Path) else json.dumps(v))
        ),
    )
    execute(
        "report", report, {k: str(v) if isinstance(v, Path) else v for k, v in parameters.items()}
    )
    html = export_html(report, demo.submission / "report.html")

    from cephalo.reports.ensemble import EnsembleResult

    click.secho(f"\n== done in {time.perf_counter() - started:.0f} s", bold=True)
    click.echo(leaderboard.baseline_verdict(leaderboard.leaderboard(runs)))
    click.echo(EnsembleResult(demo.submission).verdict())
    click.echo(f"   submission: {demo.shown(demo.submission)}  report: {demo.shown(html)}")
    click.echo(f"   notebooks:  .venv/bin/jupyter lab {demo.shown(demo.out)}")
    click.echo(f"   dashboard:  .venv/bin/cephalo dashboard {demo.shown(tuning)}")
    click.echo(f"   leaderboard: .venv/bin/cephalo leaderboard {' '.join(members)}")
    return demo.submission
