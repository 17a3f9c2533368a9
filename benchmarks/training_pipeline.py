"""Training data path throughput at the real image size, per core, before and after the
training cache. At about 2000 x 2400 px the input pipeline, not the network, sets the pace
of GPU training: decoding the full-size image every epoch and distorting its colours before
the affine fed about 4 images/s per core at 512. The kit trains from images reduced to twice
the input's long side (``cephalo.data.cache``), colours after the affine. Target: at least
5x the old images/s per core at 512 (HRNet-W48 at 1024, stride 1, reported).

Each pipeline (up to ``PackPoseInputs``) over ``--images`` full-scale synthetic images in one
process, best of ``--repeats`` passes; ``make bench`` runs it with ``OMP_NUM_THREADS=1``.
Reported too: the cache's one-off build and the cores that feed a GPU at 200 images/s.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks.harness import Bench, main
from cephalo.data.cache import training_cache
from cephalo.data.prepare import prepare_release
from cephalo.data.synth import synthesize
from cephalo.models.params import TrainParams
from cephalo.models.pipelines import cache_long_side, pipelines

CASES = {
    "rtmpose-m @ 512": dict(model="rtmpose-m", input_size=(512, 512)),
    "hrnet-w32 @ 512": dict(model="hrnet-w32", input_size=(512, 512)),
    "hrnet-w48 @ 1024, stride 1": dict(
        model="hrnet-w48", input_size=(1024, 1024), heatmap_stride=1
    ),
}


def old_pipeline(params: TrainParams) -> list[dict[str, Any]]:
    """The training pipeline as it was: photometric distortion before the affine."""
    train, _ = pipelines(params)
    kinds = [t["type"] for t in train]
    photometric = train.pop(kinds.index("PhotometricDistortion"))
    train.insert(kinds.index("TopdownAffine"), photometric)
    return train


def images_per_second(root: Path, pipeline: list[dict[str, Any]], repeats: int) -> float:
    """Best of ``repeats`` passes of ``pipeline`` over the COCO folder ``root``'s images."""
    from mmcv.transforms import Compose
    from mmpose.datasets import CocoDataset

    from cephalo.landmarks import mmpose_metainfo

    dataset = CocoDataset(
        data_root=str(root),
        ann_file="annotations.json",
        data_prefix=dict(img="images/"),
        metainfo=mmpose_metainfo(),
        pipeline=[],
    )
    transform, infos, best = Compose(pipeline), [dataset[i] for i in range(len(dataset))], math.inf
    for _ in range(repeats):
        np.random.seed(0)
        start = time.perf_counter()
        for info in infos:
            transform(dict(info))
        best = min(best, time.perf_counter() - start)
    return len(infos) / best


def measure(bench: Bench, images: int, repeats: int) -> None:
    from mmpose.utils import register_all_modules

    import cephalo.mmpose_plugins  # noqa: F401  (the kit's codecs, as a run's config imports them)

    cv2.setNumThreads(1)
    register_all_modules()
    raw = synthesize(bench.scratch / "raw", images, scale=1.0, seed=0)["train"]
    dataset = prepare_release(
        raw.stack, raw.gt, bench.scratch / "prepared", folds=2, progress=False
    )
    for name, values in CASES.items():
        params = TrainParams(augmentation=1.0, **values)
        start = time.perf_counter()
        cache = training_cache(dataset, cache_long_side(params))
        bench.informative(f"{name}: cache build", time.perf_counter() - start, "s")
        old = images_per_second(dataset, old_pipeline(params), repeats)
        new = images_per_second(cache, pipelines(params)[0], repeats)
        bench.informative(f"{name}: images/s per core, full size", old)
        bench.informative(f"{name}: images/s per core, cache", new)
        bench.informative(f"{name}: cores to feed 200 images/s, cache", 200 / new)
        speedup = f"training pipeline images/s per core, cache vs full size, {name}"
        if params.input_size[0] == 512:
            bench.held(speedup, new / old, "x", ">=", 5)
        else:
            bench.informative(speedup, new / old, "x")


if __name__ == "__main__":
    main(measure, images=6, repeats=3)
