"""Papermill's cost on training: every run is ``notebooks/train.py`` executed by papermill, whose
kernel runs the same ``Runner.train()`` a script would. Target: under 5 % fewer training
images/s than a plain ``Runner`` training the run's own ``config.py`` in a fresh interpreter.

``--images`` synthetic images at scale 0.15 (4 folds; fold 0), ``rtmpose-tiny`` at 128,
``--repeats`` pairs alternating which side goes first; training time is MMEngine's own
per-iteration ``time`` from each side's ``scalars.json``, each side at its best repeat
(interference only slows a run down). The same seed trains the same batches: the last loss
of both sides shows equal work. The notebook's fixed cost is reported beside.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from benchmarks.harness import Bench, in_fresh_process, main, notebook_parts
from cephalo.data.prepare import prepare_release
from cephalo.data.synth import synthesize
from cephalo.notebooks import execute
from cephalo.reports.runs import read_scalars
from cephalo.runs.folder import RunFolder

PARAMS = dict(model="rtmpose-tiny", input_size=[128, 128], num_workers=0)


def child(config: str, work_dir: str) -> dict[str, float]:
    """The plain side: ``config`` trained by ``Runner.from_cfg`` in this interpreter."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    import cephalo.mm_metric  # noqa: F401  (registers the metric)
    from cephalo.checkpoints import use_safe_checkpoint_loader

    use_safe_checkpoint_loader()
    start = time.perf_counter()
    cfg = Config.fromfile(config)
    cfg.work_dir = work_dir
    Runner.from_cfg(cfg).train()
    return dict(runner_seconds=time.perf_counter() - start)


def training(run_dir: Path, images: int) -> dict[str, float]:
    """Images/s over the logged training time, and the last loss, from ``scalars.json``."""
    scalars = read_scalars(run_dir)
    train = scalars.dropna(subset=["loss", "time"])
    covered = train["step"].diff().fillna(train["step"].iloc[0])  # iterations per window
    seconds = float((train["time"] * covered).sum())
    return dict(
        images_per_s=images / seconds, training_seconds=seconds, last_loss=train["loss"].iloc[-1]
    )


def measure(bench: Bench, images: int, epochs: int, repeats: int) -> None:
    if images < 8:
        raise SystemExit("--images: 4 folds need at least 8 images")
    params = dict(PARAMS, epochs=epochs, val_interval=epochs)
    sides: dict[str, list[dict[str, float]]] = dict(notebook=[], plain=[])
    files = synthesize(bench.scratch / "raw", images, scale=0.15, seed=0)["train"]
    dataset = prepare_release(
        files.stack, files.gt, bench.scratch / "prepared", folds=4, progress=False
    )
    first = RunFolder(bench.scratch / "notebook-0")  # its config.py is the plain side's
    for repeat in range(repeats):
        for side in ("notebook", "plain")[:: 1 if repeat % 2 == 0 else -1]:
            folder = RunFolder(bench.scratch / f"{side}-{repeat}")
            if side == "notebook":
                inputs = dict(
                    dataset_dir=str(dataset), fold=0, run_dir=str(folder.path), params=params
                )
                start = time.perf_counter()
                execute("train", folder.notebook, inputs)
                wall, parts = time.perf_counter() - start, notebook_parts(folder.path)
                run = dict(parts, wall_seconds=wall, fixed_seconds=wall - parts["runner_seconds"])
            else:
                config, work_dir = str(first.config_file), str(folder.work_dir)
                run = in_fresh_process(__spec__.name, config=config, work_dir=work_dir)
            trained = len(json.loads(first.train_subset.read_text())["images"]) * epochs
            sides[side].append(dict(run, **training(folder.path, trained)))
    notebook, plain = (max(r["images_per_s"] for r in sides[s]) for s in ("notebook", "plain"))
    bench.informative("notebook: training images/s (best repeat)", notebook)
    bench.informative("plain Runner: training images/s (best repeat)", plain)
    overhead = 100 * (plain / notebook - 1)
    bench.held("papermill overhead on training images/s (best repeats)", overhead, "%", "<", 5)
    fixed = min(r["fixed_seconds"] for r in sides["notebook"])
    bench.informative("notebook's fixed cost (wall - Runner)", fixed, "s")
    bench.informative("training time above which it is under 5 %", fixed / 0.05, "s")
    losses = [sides[s][0]["last_loss"] for s in ("notebook", "plain")]
    bench.informative("last logged loss, notebook - plain (equal work)", losses[0] - losses[1])
    bench.record(**sides, params=params, images=images)


if __name__ == "__main__":
    main(measure, child, images=104, epochs=10, repeats=2)
