"""``cephalo tune``: an Optuna study whose trials are runs of the training notebook.

A trial trains the suggested parameters on each of the spec's folds, one papermill run per
fold under ``outputs/<name>/trials/trial-NNNN/fold<k>/`` (recorded in the registry with
the trial number), and returns the mean held-out metric. Inside the notebook a hook reports
every validation to the trial, and the pruner may stop it: the trial ends PRUNED. A failing
run ends the trial FAILED with its error and the study goes on. Each trial keeps its run
folders, parameters and per-fold metrics as user attributes, so the dashboard links back to
the runs.

Any number of ``cephalo tune`` processes may work on one study at once (each is one worker);
together they stop at the requested number of trials (concurrent workers may overshoot by
at most one trial each, when they finish at the same moment).
"""

from __future__ import annotations

import logging
import os
import socket
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import yaml

from cephalo.experiments.spec import Run, SpecError, prepared_dataset
from cephalo.experiments.worker import execute_run, prepare_run
from cephalo.models.params import parse_params
from cephalo.run_states import COMPLETED, INTERRUPTED, PRUNED
from cephalo.runs.folder import RunFolder
from cephalo.tuning.pruning import PRUNING_MODULE, pruning_hook
from cephalo.tuning.spec import TuneSpec, exported_params, read_tune_spec, trial_params
from cephalo.tuning.storage import HEARTBEAT_S, masked, open_storage
from cephalo.tuning.study import enqueued, make_pruner, make_sampler, suggest
from cephalo.workspace import Workspace

_log = logging.getLogger(__name__)

ACTIVE = (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)


class RunFailed(Exception):
    """A trial's notebook run failed; the trial ends FAILED and the study goes on."""


def open_study(
    spec_path: Path,
    spec: TuneSpec,
    storage_url: str | None = None,
    study_name: str | None = None,
    heartbeat_s: int = HEARTBEAT_S,
) -> tuple[optuna.Study, str]:
    """The spec's study (created on first use), and its storage URL."""
    url = storage_url or Workspace.of_spec(spec_path).study_storage(spec_path.stem)
    study = optuna.create_study(
        study_name=study_name or spec_path.stem,
        storage=open_storage(url, heartbeat_s),
        direction=spec.direction,
        pruner=make_pruner(spec.pruner),
        load_if_exists=True,
    )
    return study, url


def tune(
    spec_path: str | os.PathLike[str],
    trials: int | None = None,
    storage_url: str | None = None,
    study_name: str | None = None,
    heartbeat_s: int = HEARTBEAT_S,
    on_trial: Callable[[optuna.Study, optuna.trial.FrozenTrial, int], None] | None = None,
) -> optuna.Study:
    """Work on the spec's study until it holds ``trials`` trials (default: the spec's).
    ``on_trial(study, trial, target)`` is called after each trial this process ran."""
    spec_path = Path(spec_path).resolve()
    spec = read_tune_spec(spec_path)
    dataset, available = prepared_dataset(spec.dataset, spec_path)
    missing = sorted(set(spec.folds) - set(available))
    if missing:
        raise SpecError(f"{spec_path}: folds {missing} not in {dataset} (it has {available})")
    study, url = open_study(spec_path, spec, storage_url, study_name, heartbeat_s)
    if not study.trials:
        study.set_user_attr("spec", str(spec_path))
        study.set_user_attr("objective", spec.objective)
        for fixed in enqueued(spec):
            study.enqueue_trial(fixed, skip_if_exists=True)
    fail_orphaned_trials(study)

    target = spec.trials if trials is None else trials
    started = [t for t in study.trials if t.state != optuna.trial.TrialState.WAITING]
    remaining = target - len(started)
    if remaining <= 0:
        _log.info("%s: already holds %d of %d trials", study.study_name, len(started), target)
        return study
    study.sampler = make_sampler(spec.sampler, seed_offset=len(study.trials))
    objective = _Objective(spec, spec_path, study.study_name, url, dataset)
    study.optimize(
        objective,
        n_trials=remaining,
        callbacks=[
            optuna.study.MaxTrialsCallback(target, states=None),
            *([lambda study, trial: on_trial(study, trial, target)] if on_trial else []),
        ],
        catch=(RunFailed,),
    )
    return study


class _Objective:
    """One trial: the suggested parameters trained on each fold by the notebook."""

    def __init__(
        self, spec: TuneSpec, spec_path: Path, study_name: str, url: str, dataset: Path
    ) -> None:
        self.spec, self.spec_path, self.study_name = spec, spec_path, study_name
        self.url, self.dataset = masked(url), dataset  # trials never see a password

    def __call__(self, trial: optuna.Trial) -> float:
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        try:
            params = trial_params(self.spec, suggest(trial, self.spec))
        except ValueError as error:
            raise RunFailed(str(error)) from None
        trial.set_user_attr("params", params)
        epochs = parse_params(params).epochs
        values = []
        for index, fold in enumerate(self.spec.folds):
            state = self._run(trial, params, fold, step_offset=index * epochs)
            run_dirs = [*trial.user_attrs.get("run_dirs", []), state["run_dir"]]
            trial.set_user_attr("run_dirs", run_dirs)
            if state["status"] == PRUNED:
                raise optuna.TrialPruned(state["error"])
            if state["error"] and state["error"].startswith(INTERRUPTED):
                raise SystemExit(143)  # asked to stop: the trial fails, the study stops
            if state["status"] != COMPLETED:
                trial.set_user_attr("error", state["error"])
                raise RunFailed(f"trial {trial.number}, fold {fold}: {state['error']}")
            metrics = RunFolder(state["run_dir"]).read_metrics()
            trial.set_user_attr(f"fold{fold}", metrics[self.spec.objective])
            values.append(metrics[self.spec.objective])
        return float(sum(values) / len(values))

    def _run(
        self, trial: optuna.Trial, params: dict[str, Any], fold: int, step_offset: int
    ) -> dict[str, Any]:
        variant = _variant(trial.number)
        run_dir = self._run_dir(trial.number, fold)
        lost = _lost_attempt(trial)
        if lost is not None:  # a retry of a trial whose worker died: its run resumes here
            _take_over(self._run_dir(lost, fold), run_dir)
        run = Run(
            experiment=self.study_name,
            name=f"{variant}/fold{fold}",
            variant=variant,
            fold=fold,
            notebook=self.spec.notebook,
            parameters=dict(
                dataset_dir=str(self.dataset),
                fold=fold,
                run_dir=str(run_dir),
                params=params,
                trial=dict(
                    hook=pruning_hook(
                        dict(
                            storage=self.url,
                            study=self.study_name,
                            trial_id=trial._trial_id,
                            metric=self.spec.objective,
                            pruner=self.spec.pruner.model_dump(),
                            step_offset=step_offset,
                        )
                    ),
                    module=PRUNING_MODULE,
                ),
            ),
            run_dir=run_dir,
        )
        prepare_run(run, Workspace.of_spec(self.spec_path).registry, trial=trial.number)
        execute_run(run_dir)
        return RunFolder(run_dir).read_state()

    def _run_dir(self, number: int, fold: int) -> Path:
        workspace = Workspace.of_spec(self.spec_path)
        return workspace.trial_dir(self.spec_path.stem, _variant(number), fold)


def _variant(number: int) -> str:
    """A trial's runs' variant name (and folder)."""
    return f"trial-{number:04d}"


def _lost_attempt(trial: optuna.Trial) -> int | None:
    """The number of the trial that ``trial`` retries (its worker died), if it is a retry."""
    frozen = trial.study._storage.get_trial(trial._trial_id)
    history = optuna.storages.RetryHeartbeatStaleTrialCallback.retry_history(frozen)
    return history[-1] if history else None


def _take_over(lost: Path, run_dir: Path) -> None:
    """Move a lost trial's unfinished run folder to its retry's place, where the retry's
    run resumes from its last checkpoint when the training parameters are the same
    (:func:`cephalo.experiments.worker.prepare_run` decides)."""
    state = RunFolder(lost).read_state() if lost.is_dir() else None
    if state is None or state["status"] == COMPLETED or run_dir.exists():
        return
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    os.replace(lost, run_dir)


def fail_orphaned_trials(study: optuna.Study) -> list[int]:
    """Fail the RUNNING trials of processes on this machine that are gone (the journal has
    no heartbeat; a database storage would also catch them once the heartbeat is stale),
    and enqueue each once more with the same parameters. Returns their numbers."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)
    orphans = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        host, pid = trial.user_attrs.get("host"), trial.user_attrs.get("pid")
        if host != socket.gethostname() or pid is None or _alive(pid):
            continue
        if study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL):
            orphans.append(trial.number)
            retry(study, study._storage.get_trial(trial._trial_id))
    return orphans


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def export_best(study: optuna.Study, spec_path: Path, out: Path | None = None) -> Path:
    """An experiment spec running the best trial's parameters, changed by the spec's
    ``export`` (the final schedule, say), on its folds (default: every fold), written to the
    workspace's outputs as ``<name>-best.yaml`` (:meth:`Workspace.exported_spec`)."""
    spec = read_tune_spec(spec_path)
    _, available = prepared_dataset(spec.dataset, spec_path)
    folds = available if spec.export.folds == "all" else spec.export.folds
    best = study.best_trial
    out = out or Workspace.of_spec(spec_path).exported_spec(spec_path.stem)
    changed = f", with {spec.export.params}" if spec.export.params else ""
    experiment = dict(
        kind="experiment",
        description=(
            f"The best trial (#{best.number}, {spec.objective} {best.value:.4g}) of the study "
            f"{study.study_name!r} from {spec_path.name}{changed}, on folds {folds}."
        ),
        notebook=spec.notebook,
        dataset=os.path.relpath(spec.dataset, out.parent) if spec.dataset else None,
        params=exported_params(spec, best.user_attrs["params"]),
        folds=folds,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(experiment, sort_keys=False))
    return out
