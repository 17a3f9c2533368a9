"""The tuner's overhead per trial: the seconds a ``cephalo tune`` trial spends outside training.

Why: every trial of a study is a papermill run of the training notebook in a fresh Jupyter
kernel (:mod:`cephalo.tuning.tuner`), recorded in the run registry and the Optuna storage.
That buys isolation (a crashing trial cannot take the study down), a notebook per trial and
pruning from inside the run, at a fixed price per trial that a study of many short trials
pays many times over. The target: at most 8 s per trial outside training (17.6 s measured
before trials skipped the notebook's plot cells and the imports they do not need).

What: a real tiny study through the kit's own command, ``python -m cephalo.cli tune SPEC
--trials N`` (default 3) in a child process, with the default SQLite storage and registry
beside the spec, on a small prepared dataset (``cephalo.data.default.synthetic_release(dir,
n_images=12, n_test=2, scale=0.1)`` prepared in 2 folds, as the tests' ``dataset`` fixture).
The spec trains ``rtmpose-tiny`` at 64x64 for 2 epochs (batch 4, CPU, no loader workers) on
fold 0 (6 training images, validated each epoch), searches ``sigma`` and
``simcc_split_ratio`` with the default sampler (TPE, random for its first 5 trials), and has
no pruner (``type: none``): each trial trains the same schedule, while the pruning hook
still reports every validation to the trial, as it does under any pruner.

How each trial's seconds are split, from what the run leaves behind:

- trial wall: Optuna's own ``datetime_complete - datetime_start`` of the trial.
- tuner: trial wall minus the worker's span (``run.json``'s ``finished - started``, stamped
  by :func:`cephalo.experiments.worker.execute_run`): suggesting, the run folder, the
  registry row, the trial's attributes in the storage, reading the metrics back.
- papermill: the worker's span minus the durations of the notebook's cells (papermill
  records each cell's ``start_time``/``end_time`` in the executed notebook): the kernel's
  start and shutdown, converting, writing the notebook, one registry write.
- the cells: imports (torch, MMEngine, MMPose, the kit); the run's setup (training cell
  start to the mtime of the run's ``config.py``, dumped just before ``Runner.train()``);
  training (``config.py`` to ``train/last_checkpoint``, the last file ``train()`` writes:
  building the Runner, the iterations, validation, checkpoints); predicting the held-out
  fold (to ``predictions/oof.npz``); scoring (to the cell's end); the other cells (plots).
- the pruning hook runs inside training: each validation reports to the trial, and the
  first opens the study (importing Optuna and opening the storage). It is tuner overhead,
  so it is measured on its own, in a fresh interpreter that has first imported what the
  kernel holds by then (this script with ``--hook``: :func:`time_the_hook`), on a scratch
  copy of the study with a new trial, and moved from training to the overhead: the first
  validation's cost plus each later one's.

Overhead = trial wall - (training - the pruning hook). Held to the target: its mean over
the trials. The first trial of a ``cephalo tune`` process also imports papermill, jupytext
and Jupyter's client (the worker imports them on first use: seconds, in its "tuner" part),
so the mean over the later trials (the steady state of a long study) is reported too, as
is the command's own start (interpreter, imports, opening the study: once per command).

Run: ``.venv/bin/python benchmarks/tuner_overhead.py [--trials 3]
[--out benchmarks/results/tuner_overhead.json]``. About a minute on two idle cores. It
prints a table (figure, target, PASS/FAIL), writes the figures as JSON, and exits 1 when the
target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from cephalo.data.default import synthetic_release
from cephalo.data.prepare import prepare_release
from cephalo.run_folder import RunFolder
from cephalo.tuning.spec import Pruner
from cephalo.work_dir import scalar_logs
from cephalo.workspace import Workspace
from report import RESULTS, VERDICT, check, environment, layout, notebook_seconds, write_result

TARGET_S = 8.0  # mean seconds per trial outside training, at most
STUDY = "overhead"
PARAMS = dict(
    model="rtmpose-tiny",
    input_size=[64, 64],
    epochs=2,
    batch_size=4,
    num_workers=0,
    lr=5e-3,
    device="cpu",
)
SEARCH = dict(
    sigma={"low": 2.0, "high": 6.0, "log": True},
    simcc_split_ratio={"low": 1.5, "high": 3.0},
)


def time_the_hook(address: dict[str, Any], report: str) -> None:
    """Run in the child (``--hook ADDRESS REPORT``): OptunaPruningHook's first and second
    validation, in an interpreter that holds what the notebook's kernel holds by then (and
    Optuna only if that already imported it)."""
    import cephalo.mmpose_plugins  # the run's custom_imports
    import cephalo.train  # noqa: F401  (what the notebook imported: MMEngine, the kit)
    from cephalo.tuning.pruning import OptunaPruningHook

    had_optuna = "optuna" in sys.modules
    hook = OptunaPruningHook(**address)

    class FakeRunner:
        epoch = 0

    seconds = []
    for epoch in (1, 2):
        FakeRunner.epoch = epoch
        start = time.perf_counter()
        hook.after_val_epoch(FakeRunner, {address["metric"]: 1.0})
        seconds.append(time.perf_counter() - start)
    figures = dict(
        first_seconds=seconds[0], next_seconds=seconds[1], optuna_imported_before=had_optuna
    )
    Path(report).write_text(json.dumps(figures))


# ------------------------------------------------------------------ the study


def make_dataset(root: Path) -> Path:
    """12 small synthetic images prepared in 2 folds (the tests' ``dataset`` fixture)."""
    raw = synthetic_release(root / "raw", n_images=12, n_test=2, scale=0.1)
    return prepare_release(
        raw / "train_stack.mha", raw / "train-gt.json", root / "prepared", folds=2, progress=False
    )


def write_spec(folder: Path, dataset: Path, trials: int) -> Path:
    spec = dict(
        description="tuner overhead benchmark",
        dataset=str(dataset),
        params=PARAMS,
        search=SEARCH,
        folds=[0],
        trials=trials,
        pruner={"type": "none"},
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{STUDY}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def run_study(spec: Path, trials: int) -> float:
    """``cephalo tune SPEC --trials N`` in a child process; its wall seconds."""
    log = spec.parent / "tune.log"
    command = [sys.executable, "-m", "cephalo.cli", "tune", str(spec), "--trials", str(trials)]
    start = time.perf_counter()
    with open(log, "wb") as output:
        code = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"cephalo tune exited with status {code}:\n{log.read_text()[-3000:]}")
    return wall


def storage_url(spec: Path) -> str:
    return Workspace.of_spec(spec).study_storage(spec.stem)


# ------------------------------------------------------------------ one trial's seconds


def trial_parts(trial: Any) -> dict[str, Any]:
    """Where a completed trial's wall time went (see the module docstring)."""
    run_dir = Path(trial.user_attrs["run_dirs"][0])
    state = RunFolder(run_dir).read_state()
    wall = (trial.datetime_complete - trial.datetime_start).total_seconds()
    worker = state["finished"] - state["started"]
    parts = notebook_seconds(run_dir)
    (scalars,) = scalar_logs(run_dir)
    entries = [json.loads(line) for line in scalars.read_text().splitlines() if line.strip()]
    return dict(
        number=trial.number,
        state=trial.state.name,
        params=trial.params,
        run_dir=str(run_dir),
        wall_seconds=wall,
        tuner_seconds=wall - worker,
        papermill_seconds=worker - parts["cells_seconds"],
        **parts,
        validations=sum(1 for e in entries if "MRE" in e and "loss" not in e),
    )


def hook_cost(spec: Path, workdir: Path) -> dict[str, Any]:
    """The pruning hook's first and later validation, timed in a fresh interpreter on a
    scratch copy of the study (a new trial there; the measured study is left as it was)."""
    copy = workdir / "scratch-study.sqlite"
    shutil.copy(storage_url(spec).removeprefix("sqlite:///"), copy)
    url = f"sqlite:///{copy}"
    import optuna

    study = optuna.load_study(study_name=STUDY, storage=url)
    trial = study.ask()
    address = dict(
        storage=url,
        study=STUDY,
        trial_id=trial._trial_id,
        metric="MRE",
        pruner=Pruner(type="none").model_dump(),  # as the tuner hands it to the notebook
        step_offset=0,
    )
    report = workdir / "hook.json"
    command = [sys.executable, __file__, "--hook", json.dumps(address), str(report)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the hook timing exited with status {done.returncode}:\n{done.stderr}")
    return json.loads(report.read_text())


def overhead(trial: dict[str, Any], hook: dict[str, Any]) -> dict[str, float]:
    """The trial's seconds outside training, the pruning hook moved out of training."""
    inside = hook["first_seconds"] + hook["next_seconds"] * max(trial["validations"] - 1, 0)
    return dict(
        hook_seconds=inside,
        training_only_seconds=trial["runner_seconds"] - inside,
        overhead_seconds=trial["wall_seconds"] - trial["runner_seconds"] + inside,
    )


# ------------------------------------------------------------------ report

PARTS = [
    ("tuner: Optuna storage, run folder, registry", "tuner_seconds"),
    ("papermill: kernel start/stop, notebook I/O", "papermill_seconds"),
    ("imports cell (torch, MMEngine, MMPose, kit)", "imports_seconds"),
    ("run setup (fold subsets, config)", "setup_seconds"),
    ("pruning hook inside training (measured apart)", "hook_seconds"),
    ("load best checkpoint + predict held-out fold", "predict_seconds"),
    ("scoring + metrics.json", "score_seconds"),
    ("other cells (plots)", "other_cells_seconds"),
]


def table(trials: list[dict[str, Any]], mean: dict[str, float]) -> str:
    head = ["seconds", *(f"trial {t['number']}" for t in trials), "mean", "target", "result"]

    def row(label: str, key: str, target: str = "", result: str = "") -> list[str]:
        return [label, *(f"{t[key]:.2f}" for t in trials), f"{mean[key]:.2f}", target, result]

    rows = [
        row("trial wall (Optuna start to complete)", "wall_seconds"),
        row("training (config.py to last_checkpoint)", "runner_seconds"),
        row("training without the pruning hook", "training_only_seconds"),
        *(row(f"  {label}", key) for label, key in PARTS),
        row(
            "overhead = wall - training (hook moved out)",
            "overhead_seconds",
            f"<= {TARGET_S:g}",
            VERDICT[mean["overhead_seconds"] <= TARGET_S],
        ),
    ]
    return layout(head, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=3, help="trials in the study (default 3)")
    parser.add_argument("--out", type=Path, default=RESULTS / "tuner_overhead.json")
    parser.add_argument("--hook", nargs=2, metavar=("ADDRESS", "REPORT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.hook:  # the child: the pruning hook timed in this fresh process
        time_the_hook(json.loads(args.hook[0]), args.hook[1])
        return 0
    import optuna  # here, not above: the child must not hold it before the notebook would

    if args.trials < 1:
        parser.error("--trials: at least 1")

    load_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="tuner_overhead-") as tmp:
        root = Path(tmp)
        dataset = make_dataset(root / "data")
        spec = write_spec(root / "experiments", dataset, args.trials)
        command_wall = run_study(spec, args.trials)
        study = optuna.load_study(study_name=STUDY, storage=storage_url(spec))
        states = [t.state.name for t in study.trials]
        if states != ["COMPLETE"] * args.trials:
            raise RuntimeError(f"expected {args.trials} completed trials, the study holds {states}")
        trials = [trial_parts(t) for t in study.trials]
        hook = hook_cost(spec, root)
    load_end = os.getloadavg()
    for trial in trials:
        trial.update(overhead(trial, hook))
    keys = [k for k, v in trials[0].items() if k.endswith("_seconds") and isinstance(v, float)]
    mean = {key: statistics.mean(t[key] for t in trials) for key in keys}
    per_command = command_wall - sum(t["wall_seconds"] for t in trials)
    later = [t["overhead_seconds"] for t in trials[1:]]
    steady = statistics.mean(later) if later else None
    passed = mean["overhead_seconds"] <= TARGET_S

    print(
        f"tuner overhead per trial: `cephalo tune` ({args.trials} trials, SQLite storage), "
        f"{PARAMS['model']} {PARAMS['input_size'][0]}x{PARAMS['input_size'][1]}, "
        f"{PARAMS['epochs']} epochs on 6 images, CPU\n"
    )
    print(table(trials, mean))
    print(
        f"\nPruning hook (fresh interpreter): first validation {hook['first_seconds']:.2f} s "
        f"(opens the study{'' if hook['optuna_imported_before'] else ', imports Optuna'}), "
        f"each later one {hook['next_seconds']:.2f} s."
    )
    if steady is not None:
        print(
            f"Overhead of the trials after the first (steady state): {steady:.2f} s per trial "
            f"(the first also imports papermill in the tuner: {trials[0]['tuner_seconds']:.2f} s)."
        )
    print(
        f"Once per `cephalo tune` command, not per trial: {per_command:.1f} s (interpreter, "
        f"imports, opening the study); the command took {command_wall:.1f} s in all."
    )
    print(
        f"Load average (1, 5, 15 min) on {os.cpu_count()} CPUs: start "
        f"{', '.join(f'{x:.2f}' for x in load_start)}; end "
        f"{', '.join(f'{x:.2f}' for x in load_end)}"
    )
    result = dict(
        benchmark="tuner_overhead",
        command="python -m cephalo.cli tune SPEC --trials N (SQLite storage beside the spec)",
        method="overhead = Optuna's trial wall - (config.py to train/last_checkpoint mtime, "
        "minus the pruning hook's calls timed apart); parts from run.json, papermill's cell "
        "timings and the run's files; mean over the trials",
        params=PARAMS,
        search=SEARCH,
        trials=trials,
        pruning_hook=hook,
        mean=mean,
        steady_overhead_seconds=steady,
        per_command_seconds=per_command,
        command_wall_seconds=command_wall,
        target_overhead_seconds=TARGET_S,
        load_average_start=list(load_start),
        load_average_end=list(load_end),
        **environment(),
        checks=[
            check(
                "overhead per trial outside training (mean)",
                mean["overhead_seconds"],
                "s",
                f"<= {TARGET_S:g} s",
                passed,
            )
        ],
        passed=passed,
    )
    write_result(args.out, result)
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
