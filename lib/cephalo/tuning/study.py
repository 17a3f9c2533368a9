"""Optuna objects from a tuning spec: the sampler, the pruner, the study, and the trial's
suggestions mapped back to training parameters."""

from __future__ import annotations

import json
from typing import Any

import optuna

from cephalo.tuning.spec import Choices, Pruner, Range, Sampler, TuneSpec


def make_sampler(sampler: Sampler, seed_offset: int = 0) -> optuna.samplers.BaseSampler:
    """``seed_offset`` (the trials already in the study) keeps a resumed study from
    repeating the random start of the first session."""
    seed = None if sampler.seed is None else sampler.seed + seed_offset
    if sampler.type == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if sampler.type == "qmc":
        return optuna.samplers.QMCSampler(seed=seed, scramble=True)
    # constant_liar: concurrent workers see each other's running trials as bad, not absent
    return optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=sampler.startup_trials, multivariate=True, constant_liar=True
    )


def make_pruner(pruner: Pruner) -> optuna.pruners.BasePruner:
    if pruner.type == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=pruner.startup_trials, n_warmup_steps=pruner.warmup_steps
        )
    if pruner.type == "percentile":
        return optuna.pruners.PercentilePruner(
            pruner.percentile,
            n_startup_trials=pruner.startup_trials,
            n_warmup_steps=pruner.warmup_steps,
        )
    if pruner.type == "hyperband":
        return optuna.pruners.HyperbandPruner()
    if pruner.type == "threshold":
        return optuna.pruners.ThresholdPruner(
            lower=pruner.lower, upper=pruner.upper, n_warmup_steps=pruner.warmup_steps
        )
    return optuna.pruners.NopPruner()


def suggest(trial: optuna.Trial, spec: TuneSpec) -> dict[str, Any]:
    """The trial's point of the search space, as training parameter values. Optuna's
    categories are scalars, so a list choice (an input size) is suggested as its JSON text."""
    values = {}
    for name, space in spec.search.items():
        if isinstance(space, Choices):
            if all(isinstance(c, str | int | float | bool | None) for c in space.choices):
                values[name] = trial.suggest_categorical(name, space.choices)
            else:
                labels = [json.dumps(c) for c in space.choices]
                values[name] = json.loads(trial.suggest_categorical(name, labels))
        elif isinstance(space, Range) and space.integer:
            step = int(space.step or 1)
            values[name] = trial.suggest_int(
                name, int(space.low), int(space.high), step=step, log=space.log
            )
        else:
            values[name] = trial.suggest_float(
                name, space.low, space.high, step=space.step, log=space.log
            )
    return values


def enqueued(spec: TuneSpec) -> list[dict[str, Any]]:
    """The spec's trials to try first, in Optuna's terms (list choices as JSON text)."""
    trials = []
    for fixed in spec.enqueue:
        trials.append(
            {
                name: json.dumps(value) if isinstance(value, list) else value
                for name, value in fixed.items()
            }
        )
    return trials
