"""Training data path throughput: images per second per core of the training pipeline at the
real image size, before and after the training cache.

Why: at the real size (about 2000 x 2400 px, ~7 MB PNGs) the input pipeline, not the
network, sets the pace of GPU training: decoding the full-size image every epoch and running
photometric distortion on it before the affine fed about 4 images/s per core at 512 px. The
kit now trains from a cache of images reduced to twice the input's long side (grey, fast
PNG; ``cephalo.data.cache``) with photometric transforms after the affine. Target: at least
5x the old images/s per core at 512.

What: ``cephalo.data.synth`` images at full scale, prepared; for RTMPose-m at 512, HRNet-W32
at 512 and HRNet-W48 at 1024 with stride-1 heatmaps (the winner's), augmentation 1.0:

- old: the full-size prepared PNGs through the old order (``RandomBBoxTransform``,
  ``PhotometricDistortion``, then ``TopdownAffine``);
- new: the cache's images through the kit's pipeline (``models.pipelines.pipelines``).

Each pipeline runs over the images (everything up to ``PackPoseInputs`` included) in one
process with one thread (``OMP_NUM_THREADS=1`` and ``cv2.setNumThreads(1)``), best of
``--repeats`` passes; the cache's one-off build time is reported, and the cores it takes to
feed a GPU at 200 and at 500 images/s. Prints a table, writes JSON, exits 1 when the target
is missed.

Run: ``.venv/bin/python benchmarks/training_pipeline.py [--images 6] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from cephalo.data.cache import training_cache
from cephalo.data.prepare import prepare_release
from cephalo.data.synth import synthesize
from cephalo.models.params import TrainParams
from cephalo.models.pipelines import cache_long_side, pipelines
from report import RESULTS, VERDICT, check, environment, layout, write_result

RESULT = RESULTS / "training_pipeline.json"
TARGET_SPEEDUP = 5.0
CASES = {
    "rtmpose-m @ 512": dict(model="rtmpose-m", input_size=(512, 512)),
    "hrnet-w32 @ 512": dict(model="hrnet-w32", input_size=(512, 512)),
    "hrnet-w48 @ 1024, stride 1": dict(
        model="hrnet-w48", input_size=(1024, 1024), heatmap_stride=1
    ),
}
GPU_RATES = (200, 500)


def old_pipeline(params: TrainParams) -> list[dict[str, Any]]:
    """The training pipeline as it was: photometric distortion on the full-size image,
    before the affine."""
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
    transform = Compose(pipeline)
    infos = [dataset[i] for i in range(len(dataset))]
    best = math.inf
    for _ in range(repeats):
        np.random.seed(0)
        start = time.perf_counter()
        for info in infos:
            transform(dict(info))
        best = min(best, time.perf_counter() - start)
    return len(infos) / best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=6, help="full-size synthetic images")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    from mmpose.utils import register_all_modules

    register_all_modules()
    with tempfile.TemporaryDirectory() as scratch:
        raw = synthesize(Path(scratch) / "raw", args.images, scale=1.0, seed=0)["train"]
        dataset = prepare_release(
            raw.stack, raw.gt, Path(scratch) / "prepared", folds=2, progress=False
        )
        sizes = [p.stat().st_size for p in (dataset / "images").iterdir()]
        rows, figures, checks = [], {}, []
        for name, values in CASES.items():
            params = TrainParams(augmentation=1.0, **values)
            start = time.perf_counter()
            cache = training_cache(dataset, cache_long_side(params))
            build = time.perf_counter() - start
            train, _ = pipelines(params)
            old = images_per_second(dataset, old_pipeline(params), args.repeats)
            new = images_per_second(cache, train, args.repeats)
            speedup = new / old
            cached = [p.stat().st_size for p in (cache / "images").iterdir()]
            figures[name] = dict(
                old_images_per_s=old,
                new_images_per_s=new,
                speedup=speedup,
                cache_long_side=cache_long_side(params),
                cache_build_s=build,
                cache_mb_per_image=float(np.mean(cached)) / 1e6,
                cores_to_feed={str(r): dict(old=r / old, new=r / new) for r in GPU_RATES},
            )
            held = params.input_size[0] == 512
            rows.append(
                [
                    name,
                    f"{old:.1f}",
                    f"{new:.1f}",
                    f"{speedup:.1f}x",
                    " / ".join(f"{r / old:.0f} -> {r / new:.0f}" for r in GPU_RATES),
                    f"{build:.1f} s",
                    VERDICT[speedup >= TARGET_SPEEDUP] if held else "(informative)",
                ]
            )
            if held:
                checks.append(
                    check(
                        f"training pipeline images/s per core, cache vs full size, {name}",
                        speedup,
                        "x",
                        f">= {TARGET_SPEEDUP:g}x",
                        speedup >= TARGET_SPEEDUP,
                    )
                )
    print(
        f"{args.images} full-size synthetic images ({np.mean(sizes) / 1e6:.1f} MB PNG each), "
        "one core, augmentation 1.0"
    )
    print(
        layout(
            [
                "pipeline",
                "old img/s",
                "new img/s",
                "speedup",
                "cores for 200 / 500 img/s",
                "cache build",
                f">= {TARGET_SPEEDUP:g}x",
            ],
            rows,
        )
    )
    passed = all(c["ok"] for c in checks)
    write_result(
        RESULT,
        dict(
            benchmark="training_pipeline",
            images=args.images,
            full_size_mb_per_image=float(np.mean(sizes)) / 1e6,
            figures=figures,
            checks=checks,
            passed=passed,
            **environment(),
        ),
    )
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
