"""Training throughput of the training notebook under papermill against a plain MMEngine run.

Why: every training run of the kit goes through ``notebooks/train.py`` executed by papermill
(:func:`cephalo.notebooks.execute`) on the ``cephalo`` Jupyter kernel. The promise is that
the notebook costs nothing per image: the kernel runs the same ``Runner.train()`` a script
would. The target is a papermill overhead under 5 % on training throughput (images trained
per second of training time). The fixed costs of a notebook (starting the kernel, imports,
predicting the held-out fold, plots) are reported separately, with the training time above
which they stay under 5 % of a run too.

What, on a synthetic release (``cephalo.data.synth.synthesize(dir, N, scale=0.15, seed=0)``,
prepared with 4 folds; fold 0 holds out a quarter), for each repeat:

1. notebook: ``execute("train", ..., dict(dataset_dir, fold=0, run_dir, params))`` with
   ``params = {"model": "rtmpose-tiny", "input_size": [128, 128], "epochs": E,
   "num_workers": 0, "val_interval": E}``: train, validate once at the end, predict the
   held-out fold, plot.
2. plain: the run's own dumped ``config.py`` (the identical config: same data subsets,
   seed, schedule, hooks), its ``work_dir`` changed, trained by
   ``Runner.from_cfg(cfg).train()`` in a fresh process (this script with ``--plain``), after
   ``import cephalo.mm_metric`` and ``use_safe_checkpoint_loader()``. Each plain run gets
   its own interpreter as each notebook gets its own kernel, so a repeat never trains in a
   process that already built a Runner (registries and lazy imports warm) while the kernel
   starts cold. Repeats alternate which of the two goes first.

How time is measured:

- training time: MMEngine's own per-iteration ``time`` (``IterTimerHook``: from the end of
  one training iteration to the end of the next, data loading included, checkpointing and
  validation excluded), read from ``train/*/vis_data/scalars.json`` of both runs, so both
  sides are timed by the same code. Each logged value is the mean over the last
  ``window_size`` (10) iterations; with the default 104 images fold 0 trains on 78, 10
  iterations of 8 per epoch, so the logged windows tile the run exactly and
  sum(mean x 10) is the total training time. Other sizes are summed as mean x iterations
  since the previous log (flagged ``windows_tile: false``). Throughput = images trained
  (training images x epochs) / that time. The throughput at the median window is reported
  too: it shows whether a difference is a burst of contention or a steady cost.
- Runner wall: the plain run's ``Runner.from_cfg`` + ``train()`` (build, training,
  validation, checkpoints), timed in the child. In the kernel the same span runs from the
  mtime of the run's ``config.py`` (dumped just before ``train()``) to that of
  ``train/last_checkpoint`` (the last file ``train()`` writes); the child checks this
  mtime method against its own clock (``mtime_gap_seconds``).
- notebook wall: the whole ``execute()`` call. Its parts: papermill with the kernel's start
  and shutdown (wall minus the cells' durations, which papermill records), the imports
  cell, the run's setup (cell start to ``config.py``), the Runner, loading the best
  checkpoint and predicting the held-out fold (``last_checkpoint`` to
  ``predictions/oof.npz``), scoring, plots. Fixed overhead = notebook wall - Runner wall.

Overheads are notebook / plain - 1 (positive: the notebook is slower), each side taken at
its best repeat (most images/s, fewest seconds: ``timeit``'s convention, since on a shared
machine interference only ever slows a run down, and a second job on two cores slows
PyTorch's two OpenMP threads far more than twofold). The held target is the training-only
overhead; the Runner wall, end-to-end and all-repeats-pooled overheads and each repeat's
pair (with the load average before it) are reported for information. The same seed trains
the same batches, so the last logged loss of both runs is printed as a check of equal
work (on this CPU every run's last loss was the same to the last bit).

Run: ``.venv/bin/python benchmarks/training_throughput.py [--images 104] [--epochs 10]
[--repeats 2] [--out benchmarks/results/training_throughput.json]``. About 2 minutes on two
idle cores; when the machine is shared, many times longer (the load average is in the
output), and more repeats give a better chance of one quiet pair. It prints a table
(figure, target, PASS/FAIL), writes the figures as JSON, and exits 1 when the target is
missed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cephalo.data.prepare import prepare_release
from cephalo.data.synth import synthesize
from cephalo.notebooks import execute
from cephalo.run_folder import RunFolder
from report import RESULTS, check, environment, layout, mtime, notebook_seconds, write_result

TARGET_OVERHEAD = 0.05  # training-only: notebook seconds per image / plain - 1
SCALE = 0.15
FOLDS = 4
FOLD = 0
MODEL = "rtmpose-tiny"
INPUT_SIZE = [128, 128]


def plain_runner(config: str, work_dir: str, report: str) -> None:
    """Run in the child (``--plain CONFIG WORK_DIR REPORT``): CONFIG trained by a plain
    MMEngine Runner, with the seconds of its imports, its build and its training."""
    start = time.perf_counter()
    from mmengine.config import Config
    from mmengine.runner import Runner

    import cephalo.mm_metric  # noqa: F401  (registers the metric)
    from cephalo.checkpoints import use_safe_checkpoint_loader

    imports = time.perf_counter() - start
    use_safe_checkpoint_loader()
    start = time.perf_counter()
    cfg = Config.fromfile(config)
    cfg.work_dir = work_dir
    runner = Runner.from_cfg(cfg)
    built = time.perf_counter()
    runner.train()
    end = time.perf_counter()
    figures = dict(
        import_seconds=imports,
        build_seconds=built - start,
        train_seconds=end - built,
        end_epoch_time=time.time(),
    )
    Path(report).write_text(json.dumps(figures))


# ------------------------------------------------------------------ reading a run


def training_log(work_dir: Path, window: int) -> dict[str, Any]:
    """Training time and last loss from MMEngine's ``scalars.json`` in ``work_dir``."""
    (scalars,) = work_dir.glob("*/vis_data/scalars.json")
    entries = [json.loads(line) for line in scalars.read_text().splitlines() if line.strip()]
    train = [e for e in entries if "loss" in e and "time" in e]
    steps = [e["step"] for e in train]
    gaps = [b - a for a, b in zip([0, *steps[:-1]], steps, strict=True)]
    seconds = sum(e["time"] * gap for e, gap in zip(train, gaps, strict=True))
    return dict(
        iterations=steps[-1],
        logged_windows=len(train),
        windows_tile=all(gap == window for gap in gaps),
        iteration_seconds=seconds,
        median_iteration_seconds=statistics.median(e["time"] for e in train),
        window_seconds=[round(e["time"], 4) for e in train],
        last_loss=train[-1]["loss"],
    )


def n_train_images(run_dir: Path) -> int:
    return len(json.loads(RunFolder(run_dir).train_subset.read_text())["images"])


def throughput(log: dict[str, Any], images: int, epochs: int) -> dict[str, float]:
    """Images per second of training time: over all iterations, and at the median window."""
    per_iteration = images * epochs / log["iterations"]
    return dict(
        images_per_s=images * epochs / log["iteration_seconds"],
        median_images_per_s=per_iteration / log["median_iteration_seconds"],
    )


def notebook_parts(run_dir: Path, wall: float) -> dict[str, float]:
    """Where the notebook's wall time went, from papermill's cell timings and the run's files."""
    parts = notebook_seconds(run_dir)
    return dict(
        wall_seconds=wall, papermill_and_kernel_seconds=wall - parts["cells_seconds"], **parts
    )


# ------------------------------------------------------------------ the two runs


def run_notebook(dataset: Path, run_dir: Path, epochs: int, window: int) -> dict[str, Any]:
    params = dict(
        model=MODEL, input_size=INPUT_SIZE, epochs=epochs, num_workers=0, val_interval=epochs
    )
    notebook = RunFolder(run_dir).notebook
    load = os.getloadavg()[0]
    start = time.perf_counter()
    execute(
        "train",
        notebook,
        dict(dataset_dir=str(dataset), fold=FOLD, run_dir=str(run_dir), params=params),
    )
    wall = time.perf_counter() - start
    parts = notebook_parts(run_dir, wall)
    log = training_log(RunFolder(run_dir).work_dir, window)
    images = n_train_images(run_dir)
    return dict(
        kind="notebook",
        load_before=load,
        load_after=os.getloadavg()[0],
        train_images=images,
        **parts,
        fixed_overhead_seconds=wall - parts["runner_seconds"],
        **log,
        **throughput(log, images, epochs),
    )


def run_plain(config: Path, work_dir: Path, epochs: int, window: int) -> dict[str, Any]:
    report, log_file = work_dir.parent / "plain.json", work_dir.parent / "plain.log"
    work_dir.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, __file__, "--plain", str(config), str(work_dir), str(report)]
    load = os.getloadavg()[0]
    with open(log_file, "wb") as output:
        code = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT).returncode
    if code != 0:
        tail = log_file.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"the plain Runner exited with status {code}:\n{tail}")
    inside = json.loads(report.read_text())
    log = training_log(work_dir, window)
    images = n_train_images(config.parent)
    return dict(
        kind="plain",
        load_before=load,
        load_after=os.getloadavg()[0],
        train_images=images,
        import_seconds=inside["import_seconds"],
        build_seconds=inside["build_seconds"],
        train_call_seconds=inside["train_seconds"],
        runner_seconds=inside["build_seconds"] + inside["train_seconds"],
        mtime_gap_seconds=inside["end_epoch_time"] - mtime(work_dir / "last_checkpoint"),
        **log,
        **throughput(log, images, epochs),
    )


def ratios(notebooks: list[dict[str, Any]], plains: list[dict[str, Any]]) -> dict[str, Any]:
    """Overheads (notebook / plain - 1): each side's best repeat (held to the target), all
    repeats pooled, and each repeat's pair."""

    def best(runs: list[dict[str, Any]], key: str) -> float:
        values = [r[key] for r in runs]
        return max(values) if key.endswith("per_s") else min(values)

    def pooled(runs: list[dict[str, Any]]) -> float:
        images = sum(r["train_images"] * r["epochs"] for r in runs)
        return images / sum(r["iteration_seconds"] for r in runs)

    nb_rate, plain_rate = best(notebooks, "images_per_s"), best(plains, "images_per_s")
    training = plain_rate / nb_rate - 1
    fixed = best(notebooks, "fixed_overhead_seconds")
    return dict(
        notebook_images_per_s=nb_rate,
        plain_images_per_s=plain_rate,
        training_overhead=training,
        pooled_notebook_images_per_s=pooled(notebooks),
        pooled_plain_images_per_s=pooled(plains),
        pooled_training_overhead=pooled(plains) / pooled(notebooks) - 1,
        pair_training_overheads=[
            p["images_per_s"] / n["images_per_s"] - 1
            for n, p in zip(notebooks, plains, strict=True)
        ],
        median_window_overhead=best(plains, "median_images_per_s")
        / best(notebooks, "median_images_per_s")
        - 1,
        runner_wall_overhead=best(notebooks, "runner_seconds") / best(plains, "runner_seconds") - 1,
        end_to_end_overhead=best(notebooks, "wall_seconds") / best(plains, "runner_seconds") - 1,
        fixed_overhead_seconds=fixed,
        break_even_training_seconds=fixed / TARGET_OVERHEAD,
        target_training_overhead=TARGET_OVERHEAD,
        passed=training < TARGET_OVERHEAD,
    )


# ------------------------------------------------------------------ report


def table(notebooks: list[dict[str, Any]], plains: list[dict[str, Any]], r: dict[str, Any]) -> str:
    """Best repeat per side, the overheads, then every repeat."""
    verdict = {True: "PASS", False: "FAIL"}

    def both(label: str, key: str, plain_key: str | None = None) -> list[str]:
        """Each side's best repeat of ``key`` (most images/s, fewest seconds)."""
        values = []
        for runs, k in ((notebooks, key), (plains, plain_key or key)):
            figures = [run[k] for run in runs]
            values.append(max(figures) if k.endswith("per_s") else min(figures))
        return [label, *(f"{v:.2f}" for v in values), "", ""]

    def overhead(label: str, value: float, target: str = "", result: str = "") -> list[str]:
        return [label, "", f"{100 * value:+.1f} %", target, result]

    def repeat(n: dict[str, Any], p: dict[str, Any], pair: float) -> list[str]:
        cells = [f"{x['images_per_s']:.2f} ({x['load_before']:.1f})" for x in (n, p)]
        return [
            f"repeat {n['repeat']}: images/s (load avg); pair",
            *cells,
            f"{100 * pair:+.1f} %",
            "",
        ]

    head = ["figure (best repeat of each side)", "notebook", "plain", "target", "result"]
    rows = [
        both("training images/s", "images_per_s"),
        both("training images/s at the median window", "median_images_per_s"),
        both("training seconds (logged iterations)", "iteration_seconds"),
        both("Runner build + train() + val (s)", "runner_seconds"),
        both("whole notebook / plain Runner (s)", "wall_seconds", "runner_seconds"),
        both("last logged loss (same work)", "last_loss"),
        overhead(
            "overhead, training only",
            r["training_overhead"],
            f"< {100 * TARGET_OVERHEAD:g} %",
            verdict[r["passed"]],
        ),
        overhead("overhead, median window (informative)", r["median_window_overhead"]),
        overhead("overhead, Runner wall (informative)", r["runner_wall_overhead"]),
        overhead("overhead, end to end (informative)", r["end_to_end_overhead"]),
        overhead("overhead, all repeats pooled (informative)", r["pooled_training_overhead"]),
    ]
    pairs = zip(notebooks, plains, r["pair_training_overheads"], strict=True)
    rows += [repeat(n, p, pair) for n, p, pair in pairs]
    return layout(head, rows)


def breakdown(notebooks: list[dict[str, Any]], plains: list[dict[str, Any]]) -> str:
    """Where the seconds outside training go, in the notebook and in the plain run."""

    def best(runs: list[dict[str, Any]], key: str) -> str:
        return f"{min(run[key] for run in runs):.2f}"

    nb = [
        ("papermill + kernel start/stop", "papermill_and_kernel_seconds"),
        ("imports cell (torch, mmengine, cephalo)", "imports_seconds"),
        ("run setup (fold subsets, config)", "setup_seconds"),
        ("load best checkpoint + predict held-out fold", "predict_seconds"),
        ("scoring + metrics.json", "score_seconds"),
        ("plot cells", "other_cells_seconds"),
        ("total fixed (notebook wall - Runner wall)", "fixed_overhead_seconds"),
    ]
    plain = [
        ("imports in the child (outside the Runner)", "import_seconds"),
        ("Config.fromfile + Runner.from_cfg", "build_seconds"),
        ("train() (training, validation, checkpoints)", "train_call_seconds"),
    ]
    rows = [[f"notebook: {label}", best(notebooks, key)] for label, key in nb]
    rows += [[f"plain: {label}", best(plains, key)] for label, key in plain]
    return layout(["seconds outside training (least over repeats)", "s"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=104, help="synthetic images (default 104)")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per run (default 10)")
    parser.add_argument("--repeats", type=int, default=2, help="notebook/plain pairs (default 2)")
    parser.add_argument("--out", type=Path, default=RESULTS / "training_throughput.json")
    parser.add_argument("--plain", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.plain:  # the child: the plain Runner in this fresh process
        plain_runner(*args.plain)
        return 0
    if args.images < 2 * FOLDS:
        parser.error(f"--images: {FOLDS} folds need at least {2 * FOLDS} images")
    window = 10  # the LogProcessor window and LoggerHook interval the kit configures

    load_start = os.getloadavg()
    notebooks: list[dict[str, Any]] = []
    plains: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="training_throughput-") as tmp:
        root = Path(tmp)
        files = synthesize(root / "raw", args.images, scale=SCALE, seed=0)["train"]
        dataset = prepare_release(
            files.stack, files.gt, root / "prepared", folds=FOLDS, progress=False
        )
        config: Path | None = None
        for repeat in range(args.repeats):
            # The first repeat runs the notebook first: its dumped config is the plain one's.
            order = ["notebook", "plain"] if repeat % 2 == 0 else ["plain", "notebook"]
            for kind in order:
                if kind == "notebook":
                    run_dir = root / f"notebook-{repeat}"
                    notebooks.append(run_notebook(dataset, run_dir, args.epochs, window))
                    notebooks[-1].update(repeat=repeat, epochs=args.epochs)
                    config = config or RunFolder(run_dir).config_file
                else:
                    assert config is not None
                    work_dir = root / f"plain-{repeat}" / "train"
                    plains.append(run_plain(config, work_dir, args.epochs, window))
                    plains[-1].update(repeat=repeat, epochs=args.epochs)
                run = (notebooks if kind == "notebook" else plains)[-1]
                print(
                    f"repeat {repeat} {kind}: {run['images_per_s']:.2f} images/s over "
                    f"{run['iteration_seconds']:.1f} s of training, load "
                    f"{run['load_before']:.1f} -> {run['load_after']:.1f}",
                    file=sys.stderr,
                )
    result = ratios(notebooks, plains)
    load_end = os.getloadavg()

    images, iterations = notebooks[0]["train_images"], notebooks[0]["iterations"]
    print(
        f"training throughput, notebook (papermill) vs plain Runner: {MODEL} "
        f"{INPUT_SIZE[0]}x{INPUT_SIZE[1]}, {images} training images x {args.epochs} epochs "
        f"({iterations} iterations), batch 8, CPU, {args.repeats} repeat(s)\n"
    )
    print(table(notebooks, plains, result))
    print("(repeat rows: each run's images/s, the 1-minute load average before it)\n")
    print(breakdown(notebooks, plains))
    print(
        f"\nFixed overhead {result['fixed_overhead_seconds']:.1f} s per notebook: under "
        f"{100 * TARGET_OVERHEAD:g} % of a run that trains for more than "
        f"{result['break_even_training_seconds']:.0f} s."
    )
    tiled = all(r["windows_tile"] for r in notebooks + plains)
    if not tiled:
        print("Logged windows do not tile the iterations: training time is approximate.")
    print(
        f"Load average (1, 5, 15 min) on {os.cpu_count()} CPUs: start "
        f"{', '.join(f'{x:.2f}' for x in load_start)}; end "
        f"{', '.join(f'{x:.2f}' for x in load_end)}"
    )
    output = dict(
        benchmark="training_throughput",
        command="cephalo.notebooks.execute('train', ...) vs Runner.from_cfg(run/config.py).train()",
        method="training time = sum of MMEngine's logged per-iteration `time` (window means x "
        "iterations covered) from scalars.json of each run; images/s = training images x "
        "epochs / that time; overhead = notebook seconds per image / plain - 1, each side at "
        "its best repeat",
        model=MODEL,
        input_size=INPUT_SIZE,
        images=args.images,
        scale=SCALE,
        fold=FOLD,
        epochs=args.epochs,
        repeats=args.repeats,
        windows_tile=tiled,
        load_average_start=list(load_start),
        load_average_end=list(load_end),
        **environment(),
        notebooks=notebooks,
        plains=plains,
        **result,
        checks=[
            check(
                "papermill overhead on training images/s (best repeats)",
                100 * result["training_overhead"],
                "%",
                f"< {100 * TARGET_OVERHEAD:g} %",
                result["passed"],
            )
        ],
    )
    write_result(args.out, output)
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
