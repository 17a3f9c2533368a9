"""Pruning from inside a running notebook: an MMEngine hook that reports each validation to
the live Optuna trial and stops training when the study's pruner says so.

The tuner passes the hook's config (the trial's address: storage URL, study, trial id) and
this module's name to the training notebook; :func:`cephalo.runs.train.run_fold` adds both to the
run's config, as data. Raising
``optuna.TrialPruned`` ends the training cell; the tuner reads that from the executed
notebook and ends the trial PRUNED (not FAILED).
"""

from __future__ import annotations

from typing import Any

from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

PRUNING_MODULE = "cephalo.tuning.pruning"  # what a config needs in custom_imports for the hook


def pruning_hook(trial: dict[str, Any]) -> dict[str, Any]:
    """The hook's config entry from the ``trial`` that ``cephalo tune`` hands the notebook
    (storage, study, trial_id, metric, pruner, step_offset)."""
    return dict(type="OptunaPruningHook", **trial)


@HOOKS.register_module()
class OptunaPruningHook(Hook):
    """Report ``metric`` after each validation epoch as the trial's intermediate value at
    step ``step_offset + epoch``; raise ``optuna.TrialPruned`` when the pruner says so."""

    priority = "LOWEST"  # after the checkpoint hook has kept the best model

    def __init__(
        self,
        storage: str,
        study: str,
        trial_id: int,
        metric: str,
        pruner: dict[str, Any],
        step_offset: int = 0,
    ) -> None:
        self.storage, self.study, self.trial_id = storage, study, trial_id
        self.metric, self.pruner, self.step_offset = metric, pruner, step_offset
        self._trial = None

    def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
        import optuna

        if not is_main_process() or not metrics or self.metric not in metrics:
            return
        trial = self._open()
        step = self.step_offset + runner.epoch
        value = float(metrics[self.metric])
        trial.report(value, step)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned at epoch {runner.epoch}: {self.metric} {value:.4g}")

    def _open(self) -> Any:
        import optuna

        from cephalo.tuning.spec import Pruner
        from cephalo.tuning.storage import open_storage
        from cephalo.tuning.study import make_pruner

        if self._trial is None:  # the study's pruner lives in the tuner, not in the storage
            study = optuna.load_study(
                study_name=self.study,
                storage=open_storage(self.storage),
                pruner=make_pruner(Pruner(**self.pruner)),
            )
            self._trial = optuna.Trial(study, self.trial_id)
        return self._trial
