"""``cephalo demo``: the kit end to end on the built-in synthetic data, on a CPU.

Each step is what a user runs on the real release with bigger settings, and the demo prints
that command as it goes: a synthetic release, its preparation into folds, the exploration
notebook, and a training run of the training notebook (one fold, predicting the test stack).
It grows with the kit (batch runs, tuning, fusion and a report come with their issues).
"""

from __future__ import annotations

import json
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

import click

from cephalo.data.default import synthetic_release
from cephalo.data.prepare import prepare_release
from cephalo.notebooks import execute
from cephalo.paths import DATA, EXPERIMENTS


@dataclass(frozen=True)
class DemoSize:
    n_images: int
    n_test: int
    scale: float
    folds: int
    epochs: int


FULL = DemoSize(n_images=60, n_test=10, scale=0.15, folds=5, epochs=60)
FAST = DemoSize(n_images=24, n_test=4, scale=0.1, folds=3, epochs=4)


def _step(title: str, command: list[str]) -> None:
    """Announce a step with the command a user would type for it."""
    click.secho(f"\n== {title}", bold=True)
    click.echo("   $ " + shlex.join(command))


def run_demo(fast: bool = False, data_dir: Path | None = None, out: Path | None = None) -> Path:
    """Run the demo; returns the folder holding its results."""
    size = FAST if fast else FULL
    name = "demo-fast" if fast else "demo"
    data_dir = data_dir or DATA / name
    out = out or EXPERIMENTS / name
    started = time.perf_counter()

    raw = data_dir / "raw"
    _step(
        "1. a synthetic CL-Detection 2023 release",
        [
            "cephalo",
            "data",
            "synth",
            "--out",
            str(raw),
            "--n-images",
            str(size.n_images),
            "--n-test",
            str(size.n_test),
            "--scale",
            str(size.scale),
            "--seed",
            "0",
        ],
    )
    synthetic_release(raw, size.n_images, size.n_test, size.scale, seed=0)

    prepared = data_dir / "prepared"
    _step(
        "2. prepare it: cropped PNGs, COCO annotations, stratified folds",
        [
            "cephalo",
            "data",
            "prepare",
            "--stack",
            str(raw / "train_stack.mha"),
            "--gt",
            str(raw / "train-gt.json"),
            "--out",
            str(prepared),
            "--folds",
            str(size.folds),
        ],
    )
    prepare_release(raw / "train_stack.mha", raw / "train-gt.json", prepared, folds=size.folds)

    explored = out / "explore_data.ipynb"
    _step(
        "3. explore it (papermill)",
        ["cephalo", "notebook", "explore_data", str(explored), "-p", "dataset_dir", str(prepared)],
    )
    execute("explore_data", explored, dict(dataset_dir=str(prepared)))

    run = out / "runs" / "rtmpose-tiny" / "fold0"
    params = dict(
        model="rtmpose-tiny",
        input_size=[128, 128],
        epochs=size.epochs,
        lr=5e-3,
        augmentation=0.2,
        val_interval=max(1, size.epochs // 6),
        num_workers=0,
    )
    _step(
        "4. train RTMPose on fold 0, predict the held-out fold and the test stack",
        [
            "cephalo",
            "notebook",
            "train",
            str(run / "notebook.ipynb"),
            "-p",
            "dataset_dir",
            str(prepared),
            "-p",
            "fold",
            "0",
            "-p",
            "run_dir",
            str(run),
            "-p",
            "test_stack",
            str(raw / "test_stack.mha"),
            "-p",
            "test_gt",
            str(raw / "test-gt.json"),
            "-p",
            "params",
            json.dumps(params),
        ],
    )
    execute(
        "train",
        run / "notebook.ipynb",
        dict(
            dataset_dir=str(prepared),
            fold=0,
            run_dir=str(run),
            params=params,
            test_stack=str(raw / "test_stack.mha"),
            test_gt=str(raw / "test-gt.json"),
        ),
    )

    metrics = json.loads((run / "metrics.json").read_text())
    baseline = metrics["mean_shape_baseline"]
    click.secho(f"\n== done in {time.perf_counter() - started:.0f} s", bold=True)
    click.echo(
        f"   fold 0: MRE {metrics['MRE']:.2f} mm, SDR 2.0mm {metrics['SDR 2.0mm']:.1f}% "
        f"(mean-shape baseline: MRE {baseline['MRE']:.2f} mm)"
    )
    click.echo(f"   data:      {data_dir}\n   results:   {out}")
    click.echo(f"   notebooks: .venv/bin/jupyter lab {out}")
    return out
