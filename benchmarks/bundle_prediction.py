"""The container's job at the platform's size: a bundle predicting a real-size stack.

Why: the challenge runs the submission container on one stacked ``.mha`` (the test release:
100 slices of 2400 x 2880, padded) under ``--memory=8g``. Whether a bundle fits, and how long
it takes, is known only from a run of that size.

What, on a stack of ``--slices`` (default 100) real-size slices (a few full-scale synthetic
cephalograms repeated, zero-padded as in the release) and a bundle of 5 fold models x 2 TTA
views (identity, flip) of ``rtmpose-m`` at 512 x 512 (random weights: the cost does not
depend on them), written with the kit's own bundle writer:

1. ``cephalo predict --bundle B --input STACK`` in a fresh process, on the stack's first
   2 slices, then on all of them; the wall time of each and the peak resident memory the
   command itself prints (its ``VmHWM``, the kernel's high-water mark of its own address
   space: ``ru_maxrss`` would carry over the parent's, which rendered full-size images);
2. per image: (wall(all) - wall(2)) / (slices - 2), which leaves out the fixed cost
   (imports, loading 5 models); images/s = its inverse; model passes/s = 10x that.

Held to a target: peak RSS of the full stack < 8 GiB (the organisers' ``--memory=8g``). The
times are informative (two CPU cores here; the platform gives a T4-class GPU, which this
does not measure unless it runs on one: ``cephalo predict`` takes the GPU when there is one).

Run: ``.venv/bin/python benchmarks/bundle_prediction.py [--slices N]``; about 10 minutes
and 2.1 GB of temporary disk for 100 slices on two cores.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from report import RESULTS, VERDICT, check, environment, layout, write_result

MODEL, INPUT_SIZE, FOLDS = "rtmpose-m", (512, 512), 5
VIEWS = ("identity", "flip")
DISTINCT_IMAGES = 4
LIMIT_GIB = 8.0


def write_test_stack(path: Path, n_slices: int) -> None:
    """``n_slices`` real-size slices: a few full-scale synthetic images, repeated."""
    from cephalo.data.release import write_stack
    from cephalo.data.synth import generate_image, padded_size

    images = [generate_image(0, 1, i).image for i in range(DISTINCT_IMAGES)]
    slices = itertools.islice(itertools.cycle(images), n_slices)
    write_stack(path, slices, padded_size(), n_slices)


def write_benchmark_bundle(out: Path) -> None:
    """5 randomly initialised fold models of the benchmark's model, each under 2 views,
    fused by their mean: the bundle writer's own files."""
    import torch
    from mmpose.datasets.datasets.utils import parse_pose_metainfo
    from mmpose.registry import MODELS
    from mmpose.utils import register_all_modules

    import cephalo.mmpose_plugins  # noqa: F401  (the kit's codecs)
    from cephalo.container.bundle import partial_folder, seal, write_model
    from cephalo.landmarks import NUM_LANDMARKS, mmpose_metainfo
    from cephalo.models.network import model as network_config
    from cephalo.models.params import parse_params
    from cephalo.models.pipelines import pipelines

    register_all_modules()
    params = parse_params(dict(model=MODEL, input_size=list(INPUT_SIZE)))
    config = dict(model=network_config(params, NUM_LANDMARKS), val_pipeline=pipelines(params)[1])
    meta = parse_pose_metainfo(mmpose_metainfo())
    partial = partial_folder(out)
    names = []
    for fold in range(FOLDS):
        torch.manual_seed(fold)
        model = MODELS.build(config["model"])
        model.init_weights()
        names.append(f"{MODEL}-fold{fold}")
        write_model(partial / "models" / names[-1], config, params, model.state_dict(), meta)
    members = [dict(name=f"benchmark/{MODEL}/{view}", view=view, models=names) for view in VIEWS]
    landmarks = list(meta["keypoint_id2name"].values())
    description = dict(landmarks=landmarks, fusion="mean", weights=None, raw=False, members=members)
    seal(partial, out, description)


def predict(bundle: Path, stack: Path, out: Path) -> dict[str, float]:
    """``cephalo predict --bundle`` in a fresh process: its wall time and the peak memory it
    reports."""
    command = [sys.executable, "-m", "cephalo.cli", "predict", "--bundle", str(bundle)]
    start = time.perf_counter()
    done = subprocess.run(
        [*command, "--input", str(stack), "--out", str(out)], capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"cephalo predict failed ({done.returncode}):\n{done.stderr[-3000:]}")
    print(done.stdout.strip())
    peak = re.search(r"peak memory ([0-9.]+) GiB", done.stdout)
    if peak is None:
        raise SystemExit(f"cephalo predict reported no peak memory:\n{done.stdout}")
    return dict(seconds=seconds, peak_rss_gib=float(peak.group(1)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=100, help="slices of the stack (>= 3)")
    parser.add_argument("--out", type=Path, default=RESULTS / "bundle_prediction.json")
    args = parser.parse_args(argv)
    if args.slices < 3:
        parser.error("--slices must be at least 3")

    with tempfile.TemporaryDirectory(prefix="bundle-prediction-") as scratch:
        scratch = Path(scratch)
        write_benchmark_bundle(scratch / "bundle")
        runs: dict[str, dict[str, float]] = {}
        for n in (2, args.slices):
            stack = scratch / f"stack{n}.mha"
            write_test_stack(stack, n)
            runs[str(n)] = predict(scratch / "bundle", stack, scratch / f"out{n}.json")
            stack.unlink()
    first, full = runs["2"], runs[str(args.slices)]
    per_image = (full["seconds"] - first["seconds"]) / (args.slices - 2)
    fixed = first["seconds"] - 2 * per_image
    passes = FOLDS * len(VIEWS)
    figures: dict[str, Any] = dict(
        slices=args.slices,
        models=FOLDS,
        views=len(VIEWS),
        wall_seconds=full["seconds"],
        peak_rss_gib=full["peak_rss_gib"],
        seconds_per_image=per_image,
        images_per_second=1 / per_image,
        model_passes_per_second=passes / per_image,
        fixed_seconds=fixed,
        runs=runs,
    )
    fits = full["peak_rss_gib"] < LIMIT_GIB
    what = f"{args.slices} slices, {FOLDS} x {MODEL} @ {INPUT_SIZE[0]} x {len(VIEWS)} views"
    print(f"\n{what}, the CPU ({os.cpu_count()} cores):\n")
    rows = [
        ["peak RSS", f"{full['peak_rss_gib']:.2f} GiB", f"< {LIMIT_GIB:g} GiB", VERDICT[fits]],
        ["wall time", f"{full['seconds']:.1f} s", "", "(informative)"],
        ["fixed cost (imports, 5 models)", f"{fixed:.1f} s", "", "(informative)"],
        ["ensemble latency per image", f"{per_image:.2f} s", "", "(informative)"],
        ["images/s", f"{1 / per_image:.3f}", "", "(informative)"],
        ["model passes/s", f"{passes / per_image:.2f}", "", "(informative)"],
    ]
    print(layout(["figure", "value", "target", "result"], rows))
    result = dict(
        **environment(),
        **figures,
        checks=[check(f"peak RSS, {what}", full["peak_rss_gib"], "GiB", "< 8 GiB", fits)],
    )
    write_result(args.out, result)
    return 0 if fits else 1


if __name__ == "__main__":
    raise SystemExit(main())
