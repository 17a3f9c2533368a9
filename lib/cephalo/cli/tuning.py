"""The tuning commands of the CLI: ``cephalo tune`` and ``cephalo dashboard``."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from cephalo.tuning.storage import HEARTBEAT_S

if TYPE_CHECKING:
    import optuna


@click.command("tune")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option(
    "--trials",
    type=click.IntRange(min=0),
    help="Trials the study should hold in the end (default: the spec's).",
)
@click.option(
    "--storage",
    help="sqlite:///file.db, journal:file.journal or postgresql://... "
    "(default: sqlite under outputs/NAME/).",
)
@click.option("--study", "study_name", help="Study name (default: the spec's file name).")
@click.option(
    "--export-best",
    is_flag=True,
    help="Afterwards, write outputs/NAME-best.yaml: the best parameters on every fold.",
)
@click.option(
    "--heartbeat",
    type=click.IntRange(min=1),
    default=HEARTBEAT_S,
    show_default=True,
    help="Seconds between a database storage's heartbeats; a trial silent for twice this "
    "is failed and retried.",
)
def tune_command(
    spec: str,
    trials: int | None,
    storage: str | None,
    study_name: str | None,
    export_best: bool,
    heartbeat: int,
) -> None:
    """Tune with the Optuna study of SPEC (a tuning file in experiments/): each trial runs the
    training notebook on the spec's folds. Re-running continues the study; start the same
    command in several terminals or machines (with a shared --storage) to add workers."""
    from cephalo.tuning import tuner

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # fails the trial, stops the kernel
    ran: list[optuna.trial.FrozenTrial] = []

    def report(study: optuna.Study, trial: optuna.trial.FrozenTrial, target: int) -> None:
        ran.append(trial)
        click.echo(f"[{_finished(study)}/{target}] {_describe(trial)}; best so far: {_best(study)}")

    study = tuner.tune(spec, trials, storage, study_name, heartbeat, on_trial=report)
    counts = {}
    for trial in study.trials:
        counts[trial.state.name] = counts.get(trial.state.name, 0) + 1
    click.echo(f"{study.study_name}: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    completed = [t for t in study.trials if t.state.name == "COMPLETE"]
    if completed:
        best = study.best_trial
        click.echo(f"best: trial {best.number}, value {best.value:.4g}, params {best.params}")
        if export_best:
            click.echo(f"wrote {tuner.export_best(study, Path(spec).resolve())}")
    elif export_best:
        raise click.ClickException("no completed trial to export")
    if ran and all(t.state.name == "FAIL" for t in ran):
        raise click.ClickException(
            f"every trial of this run failed ({len(ran)}); the first: {_describe(ran[0])}"
        )


def _finished(study: optuna.Study) -> int:
    active = ("RUNNING", "WAITING")
    return sum(t.state.name not in active for t in study.get_trials(deepcopy=False))


def _describe(trial: optuna.trial.FrozenTrial) -> str:
    state = trial.state.name.lower()
    if state == "complete":
        return f"trial {trial.number} complete: {trial.value:.4g}"
    error = trial.user_attrs.get("error")
    return f"trial {trial.number} {state}" + (f": {error}" if error else "")


def _best(study: optuna.Study) -> str:
    try:
        best = study.best_trial
    except ValueError:  # no completed trial yet
        return "none yet"
    return f"{best.value:.4g} (trial {best.number})"


@click.command("dashboard")
@click.argument("spec", required=False, type=click.Path(dir_okay=False))
@click.option("--storage", help="The study storage URL (default: that of SPEC).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=8080, show_default=True)
def dashboard_command(spec: str | None, storage: str | None, host: str, port: int) -> None:
    """Serve optuna-dashboard on a study storage (localhost only unless --host says)."""
    from optuna_dashboard import run_server

    from cephalo.tuning.storage import open_storage
    from cephalo.workspace import Workspace

    if storage is None:
        if spec is None:
            raise click.UsageError("name a tuning SPEC or a --storage URL")
        storage = Workspace.of_spec(spec).study_storage(Path(spec).stem)
    opened = open_storage(storage)
    click.echo(f"optuna-dashboard on http://{host}:{port}/ (Ctrl-C to stop)", err=True)
    run_server(opened, host=host, port=port)
