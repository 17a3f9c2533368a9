"""The container's job at the platform's size: ``cephalo predict --bundle`` on a stack of
``--slices`` real-size slices (2400 x 2880 padded; a few full-scale synthetic images
repeated) with a bundle of 5 fold models x 2 views (identity, flip) of ``rtmpose-m`` at 512
(random weights, written by the kit's bundle writer: the cost does not depend on them).

The command runs in a fresh process on the first 2 slices, then on all; per image =
(wall(all) - wall(2)) / (slices - 2), which leaves out the fixed cost (imports, 5 models).
Held: the peak resident memory the command itself reports (its ``VmHWM``) under the
organisers' ``--memory=8g``. Times are informative: two CPU cores here, a GPU on the platform
(``cephalo predict`` takes it when there is one). About 10 minutes and 2.1 GB of disk.
"""

from __future__ import annotations

import itertools
import re
import sys
import time
from pathlib import Path

from benchmarks.harness import Bench, command, main

MODEL, INPUT_SIZE, FOLDS, VIEWS = "rtmpose-m", (512, 512), 5, ("identity", "flip")


def write_test_stack(path: Path, n_slices: int) -> None:
    """``n_slices`` real-size slices: four full-scale synthetic images, repeated."""
    from cephalo.data.release import write_stack
    from cephalo.data.synth import generate_image, padded_size

    images = [generate_image(0, 1, i).image for i in range(4)]
    write_stack(path, itertools.islice(itertools.cycle(images), n_slices), padded_size(), n_slices)


def write_benchmark_bundle(out: Path) -> None:
    """FOLDS randomly initialised models, each under the VIEWS, fused by their mean."""
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
    partial, names = partial_folder(out), [f"{MODEL}-fold{fold}" for fold in range(FOLDS)]
    for fold, name in enumerate(names):
        torch.manual_seed(fold)
        model = MODELS.build(config["model"])
        model.init_weights()
        write_model(partial / "models" / name, config, params, model.state_dict(), meta)
    members = [dict(name=f"benchmark/{MODEL}/{view}", view=view, models=names) for view in VIEWS]
    landmarks = list(meta["keypoint_id2name"].values())
    seal(
        partial,
        out,
        dict(landmarks=landmarks, fusion="mean", weights=None, raw=False, members=members),
    )


def predict(bundle: Path, stack: Path, out: Path) -> tuple[float, float]:
    """``cephalo predict --bundle`` in a fresh process: its wall seconds, the GiB it reports."""
    start = time.perf_counter()
    done = command(
        [
            sys.executable,
            "-m",
            "cephalo.cli",
            "predict",
            "--bundle",
            str(bundle),
            "--input",
            str(stack),
            "--out",
            str(out),
        ]
    )
    return time.perf_counter() - start, float(
        re.search(r"peak memory ([0-9.]+) GiB", done.stdout).group(1)
    )


def measure(bench: Bench, slices: int) -> None:
    if slices < 3:
        raise SystemExit("--slices must be at least 3")
    bundle, runs = bench.scratch / "bundle", {}
    write_benchmark_bundle(bundle)
    for n in (2, slices):
        stack = bench.scratch / f"stack{n}.mha"
        write_test_stack(stack, n)
        runs[n] = predict(bundle, stack, bench.scratch / f"out{n}.json")
        stack.unlink()
    (first, _), (wall, peak) = runs[2], runs[slices]
    per_image = (wall - first) / (slices - 2)
    what = f"{slices} slices, {FOLDS} x {MODEL} @ {INPUT_SIZE[0]} x {len(VIEWS)} views"
    bench.held(f"peak RSS, {what}", peak, "GiB", "<", 8)
    bench.informative("wall time", wall, "s")
    bench.informative("fixed cost (imports, 5 models)", first - 2 * per_image, "s")
    bench.informative("ensemble latency per image", per_image, "s")
    bench.informative("model passes/s", FOLDS * len(VIEWS) / per_image)


if __name__ == "__main__":
    main(measure, slices=100)
