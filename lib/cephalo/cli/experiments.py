"""The experiment commands of the CLI: ``cephalo run`` and ``cephalo leaderboard``."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import click

from cephalo.metrics import LEADERBOARD, MRE
from cephalo.workspace import Workspace


@click.command("run")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option(
    "--only",
    multiple=True,
    metavar="PATTERN",
    help="Run only the runs whose names match (e.g. 'hrnet-*/fold0'); repeatable.",
)
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True)
@click.option(
    "--gpus",
    default="",
    metavar="IDS",
    help="Comma-separated GPU ids, one per worker (e.g. 0,1): each worker sees its own.",
)
@click.option("--dry-run", is_flag=True, help="List the runs and where each stands; run nothing.")
@click.option(
    "--redo-changed", is_flag=True, help="Redo completed runs whose settings the spec changed."
)
@click.option(
    "--restart",
    is_flag=True,
    help="Start unfinished runs afresh instead of resuming them from their last checkpoint.",
)
def run_command(
    spec: str,
    only: tuple[str, ...],
    workers: int,
    gpus: str,
    dry_run: bool,
    redo_changed: bool,
    restart: bool,
) -> None:
    """Execute the experiment SPEC (experiments/NAME.yaml): every run not yet complete, each a
    papermill execution of the spec's notebook under outputs/NAME/runs/. Resumable: re-run
    the same command after a failure or an interruption; a run that saved a checkpoint goes
    on from it. Exits 1 if a run failed."""
    from cephalo.experiments.runner import run_experiment

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the workers, then exit
    result = run_experiment(
        spec,
        only=only,
        workers=workers,
        dry_run=dry_run,
        redo_changed=redo_changed,
        restart=restart,
        gpus=[g for g in gpus.split(",") if g],
    )
    if dry_run:
        return
    failed = result.failed
    click.echo(
        f"{result.experiment.name}: {len(result.statuses) - len(failed)} of "
        f"{len(result.statuses)} runs complete; leaderboard: cephalo leaderboard "
        f"{result.experiment.name} --registry {result.experiment.registry}"
    )
    if failed:
        raise click.ClickException(f"failed: {', '.join(failed)} (re-run to retry them)")


@click.command("config")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--variant", help="The variant (default: the spec's only one).")
@click.option("--fold", default="0", show_default=True, help="A fold number, or full.")
@click.option(
    "--out", type=click.Path(dir_okay=False), help="Write the config here instead of printing it."
)
def config_command(spec: str, variant: str | None, fold: str, out: str | None) -> None:
    """Print the fully resolved MMEngine config of one run of the experiment SPEC without
    training it (MMEngine's print_config for a kit run): what its config.py will hold, before
    a pretrained file is mapped onto the backbone. Needs no prepared dataset."""
    from cephalo.experiments.spec import FULL, read_spec, variant_params

    path = Path(spec).resolve()
    parsed = read_spec(path)
    variants = variant_params(parsed, path)
    if variant is None and len(variants) > 1:
        raise click.UsageError(f"--variant: one of {', '.join(variants)}")
    name = variant or next(iter(variants))
    if name not in variants:
        raise click.UsageError(f"--variant: no {name!r} in {path.name} ({', '.join(variants)})")
    if fold != FULL and not fold.isdigit():
        raise click.UsageError(f"--fold: a fold number or {FULL}, not {fold!r}")
    text = resolved_config_text(path, parsed.dataset, name, variants[name], fold)
    if out is None:
        click.echo(text)
        return
    Path(out).write_text(text)
    click.echo(f"wrote {out}")


def resolved_config_text(
    spec_path: Path, dataset: Path | None, variant: str, params: dict, fold: str
) -> str:
    """The config text of run ``variant``/``fold`` of a spec, as :func:`cephalo.runs.train.run_fold`
    would dump it (the landmark names of the dataset when it is prepared, else the 38)."""
    from mmengine.config import Config

    from cephalo.data.default import SYNTHETIC
    from cephalo.data.prepared import read_manifest
    from cephalo.experiments.spec import FULL, run_name
    from cephalo.landmarks import LANDMARK_NAMES
    from cephalo.models.params import parse_params
    from cephalo.runs.train import run_config

    dataset = dataset or SYNTHETIC / "prepared"
    manifest = read_manifest(dataset)
    names = manifest["landmarks"] if manifest else LANDMARK_NAMES
    run_dir = Workspace.of_spec(spec_path).run_dir(spec_path.stem, run_name(variant, fold))
    fold_number = None if fold == FULL else int(fold)
    config = run_config(parse_params(params), dataset, fold_number, run_dir, names)
    return Config(config).pretty_text


@click.command("leaderboard")
@click.argument("experiments", nargs=-1)
@click.option("--metric", type=click.Choice(list(LEADERBOARD)), default=MRE, show_default=True)
@click.option("--runs", "show_runs", is_flag=True, help="Also list every run.")
@click.option(
    "--registry",
    "registry_file",
    type=click.Path(dir_okay=False),
    default=str(Workspace.default().registry),
    show_default=True,
)
def leaderboard_command(
    experiments: tuple[str, ...], metric: str, show_runs: bool, registry_file: str
) -> None:
    """Variants ranked by their mean held-out METRIC over folds (± the fold spread), from the
    results registry; EXPERIMENTS narrows it to some experiments (names or spec files)."""
    from cephalo.experiments import leaderboard, registry

    names = [Path(e).stem for e in experiments] or None
    runs = registry.read_runs(registry_file, names)
    if runs.empty:
        raise click.ClickException(f"no runs of {', '.join(names or [])} in {registry_file}")
    click.echo(leaderboard.format_leaderboard(leaderboard.leaderboard(runs, metric), metric))
    click.echo("\nruns by status:\n" + leaderboard.status_counts(runs).to_string())
    if show_runs:
        columns = ["experiment", "run", "status", "seconds", "error"]
        scores = runs["metrics"].map(lambda m: m.get(MRE))
        click.echo("\n" + runs[columns].assign(MRE=scores).to_string(index=False))
