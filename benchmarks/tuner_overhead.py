"""The tuner's price per trial: the seconds a ``cephalo tune`` trial spends outside training (a
fresh Jupyter kernel, the registry, the Optuna storage). Target: at most 8 s (mean).

A real study (``python -m cephalo.cli tune SPEC --trials N``) on the tests' 12-image dataset:
``rtmpose-tiny`` at 64, 2 epochs on fold 0, TPE, no pruner (the hook still reports). Per
trial: Optuna's wall minus training (``config.py`` to ``train/last_checkpoint``), training
counted without the pruning hook, which is the tuner's and is timed apart in a fresh
interpreter holding what the kernel holds (:func:`child`, on a scratch copy of the study).
"""

from __future__ import annotations

import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import Bench, command, in_fresh_process, main, notebook_parts
from cephalo.data.default import synthetic_release
from cephalo.data.prepare import prepare_release
from cephalo.metrics import MRE
from cephalo.runs.folder import RunFolder
from cephalo.tuning.spec import Pruner
from cephalo.workspace import Workspace

STUDY = "overhead"
SPEC = """kind: tuning
description: tuner overhead benchmark
params: {model: rtmpose-tiny, input_size: [64, 64], epochs: 2, batch_size: 4, num_workers: 0,
         lr: 0.005, device: cpu}
search:
  sigma: {low: 2.0, high: 6.0, log: true}
  simcc_split_ratio: {low: 1.5, high: 3.0}
folds: [0]
pruner: {type: none}
"""


def child(address: dict[str, Any]) -> dict[str, float]:
    """The pruning hook's first and second validation, in an interpreter holding what the
    notebook's kernel holds by then (MMEngine and the kit; Optuna only if they import it)."""
    import cephalo.mmpose_plugins  # the run's custom_imports
    import cephalo.runs.train  # noqa: F401  (what the notebook imported)
    from cephalo.tuning.pruning import OptunaPruningHook

    hook, seconds = OptunaPruningHook(**address), []
    for epoch in (1, 2):
        start = time.perf_counter()
        hook.after_val_epoch(type("Runner", (), {"epoch": epoch}), {address["metric"]: 1.0})
        seconds.append(time.perf_counter() - start)
    return dict(first_seconds=seconds[0], next_seconds=seconds[1])


def run_study(root: Path, trials: int) -> tuple[Path, float]:
    """The spec written and ``cephalo tune SPEC --trials N`` run in a child process."""
    raw = synthetic_release(root / "raw", n_images=12, n_test=2, scale=0.1)
    stack, gt = raw / "train_stack.mha", raw / "train-gt.json"
    dataset = prepare_release(stack, gt, root / "prepared", folds=2, progress=False)
    path = root / "experiments" / f"{STUDY}.yaml"
    path.parent.mkdir()
    path.write_text(f"{SPEC}dataset: {dataset}\ntrials: {trials}\n")
    start = time.perf_counter()
    command([sys.executable, "-m", "cephalo.cli", "tune", str(path), "--trials", str(trials)])
    return path, time.perf_counter() - start


def hook_cost(storage: str, scratch: Path) -> dict[str, float]:
    """The pruning hook timed on a new trial of a scratch copy of the study."""
    import optuna

    copy = scratch / "scratch-study.sqlite"
    shutil.copy(storage.removeprefix("sqlite:///"), copy)
    trial = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{copy}").ask()
    address = dict(
        storage=f"sqlite:///{copy}",
        study=STUDY,
        trial_id=trial._trial_id,
        metric=MRE,
        pruner=Pruner(type="none").model_dump(),  # as the tuner hands it to the notebook
        step_offset=0,
    )
    return in_fresh_process(__spec__.name, address=address)


def trial_parts(trial: Any, hook: dict[str, float]) -> dict[str, float]:
    """Where a completed trial's wall time went, the pruning hook moved out of training."""
    from cephalo.reports.runs import read_scalars  # here: the child must not hold matplotlib

    run_dir = Path(trial.user_attrs["run_dirs"][0])
    state, parts = RunFolder(run_dir).read_state(), notebook_parts(run_dir)
    wall = (trial.datetime_complete - trial.datetime_start).total_seconds()
    worker = state["finished"] - state["started"]
    validations = int(read_scalars(run_dir)[MRE].notna().sum())
    inside = hook["first_seconds"] + hook["next_seconds"] * max(validations - 1, 0)
    return dict(
        wall_seconds=wall,
        tuner_seconds=wall - worker,
        papermill_seconds=worker - parts["cells_seconds"],
        **parts,
        hook_seconds=inside,
        overhead_seconds=wall - parts["runner_seconds"] + inside,
    )


def measure(bench: Bench, trials: int) -> None:
    import optuna  # here, not above: the child must not hold it before the notebook would

    spec, command_wall = run_study(bench.scratch, trials)
    storage = Workspace.of_spec(spec).study_storage(STUDY)
    study = optuna.load_study(study_name=STUDY, storage=storage)
    if [t.state.name for t in study.trials] != ["COMPLETE"] * trials:
        raise RuntimeError(f"expected {trials} completed trials: {study.trials}")
    hook = hook_cost(storage, bench.scratch)
    parts = [trial_parts(t, hook) for t in study.trials]
    mean = {key: statistics.mean(p[key] for p in parts) for key in parts[0]}
    for key, seconds in mean.items():
        if key != "overhead_seconds":  # held below
            bench.informative(f"{key.removesuffix('_seconds')} (mean)", seconds, "s")
    bench.informative("first validation's pruning hook", hook["first_seconds"], "s")
    if trials > 1:
        steady = statistics.mean(p["overhead_seconds"] for p in parts[1:])
        bench.informative("overhead of the trials after the first", steady, "s")
    bench.informative("once per command", command_wall - sum(p["wall_seconds"] for p in parts), "s")
    bench.held("overhead per trial outside training (mean)", mean["overhead_seconds"], "s", "<=", 8)
    bench.record(trials=parts, hook=hook)


if __name__ == "__main__":
    main(measure, child, trials=3)
