"""CPU inference throughput of the kit's batched ``predict_images`` against MMPose's per-image
``inference_topdown``. Target: at least 2x the images/s at the kit's default batch (8).

``rtmpose-t`` and ``hrnet-w18`` at 256, flip test on, seeded random weights from the kit's
``build_config``, synthetic images at scale 0.15 in memory, the same whole-image box; every
batch shape warmed, a path's best of ``--repeats`` rounds. Equal work, with the flip test off
(the kit moves flip-test points by MMPose's flip bias on purpose): raw outputs within 1e-3 of
the largest (float16 in the kit); SimCC keypoints within 1e-3 px (DARK decoding of a random
HRNet's heatmaps turns rounding into pixels: reported only). Batch 1 and 16 are reported.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from benchmarks.harness import Bench, main
from cephalo.data.synth import generate_image
from cephalo.landmarks import LANDMARK_NAMES
from cephalo.models.config import DataSpec, build_config
from cephalo.models.params import TrainParams
from cephalo.models.pipelines import pipelines
from cephalo.runs.predict import predict_images, raw_outputs

BATCH_SIZES, DEFAULT_BATCH = (1, 8, 16), 8


def build_model(name: str, work_dir: Path) -> tuple[torch.nn.Module, list[dict[str, Any]]]:
    """A seeded random model of variant ``name`` configured as a training run would be, with
    its validation pipeline as the ``test_dataloader`` pipeline ``inference_topdown`` reads."""
    from mmengine.config import Config
    from mmpose.apis import init_model

    import cephalo.mmpose_plugins  # noqa: F401  (the kit's codecs, as a run's config imports them)

    params = TrainParams(model=name, input_size=(256, 256), flip_test=True, device="cpu")
    data = DataSpec(work_dir, work_dir / "unused.json", None, LANDMARK_NAMES)  # nothing is read
    config = build_config(params, data, work_dir=work_dir)
    _, val_pipeline = pipelines(params)
    config["test_dataloader"] = dict(dataset=dict(pipeline=val_pipeline))
    torch.manual_seed(0)
    return init_model(Config(config), checkpoint=None, device="cpu"), val_pipeline


def topdown(model: torch.nn.Module, items: list) -> list:
    """MMPose's samples from ``inference_topdown`` called once per image."""
    from mmpose.apis import inference_topdown

    return [
        sample
        for _, image, _ in items
        for sample in inference_topdown(model, image, bboxes=whole_image(image))
    ]


def whole_image(image: np.ndarray) -> np.ndarray:
    return np.array([[0, 0, image.shape[1] - 1, image.shape[0] - 1]], np.float32)


def agreement(
    model: torch.nn.Module, pipeline: list, items: list, size: int
) -> tuple[float, float]:
    """Both paths without the flip test (the kit moves a flip test's points by MMPose's flip
    bias, :func:`cephalo.runs.predict.flip_test_bias`): the largest difference of their raw
    outputs relative to the largest output, and of their keypoints in pixels."""
    saved, model.test_cfg = (
        model.test_cfg,
        dict(model.test_cfg, output_heatmaps=True, flip_test=False),
    )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # RTMCCHead: "simcc values are normalized ..."
            samples = topdown(model, items)
            kit = predict_images(model, pipeline, items, batch_size=size, save_raw=True)
    finally:
        model.test_cfg = saved
    reference = [raw_outputs(sample) for sample in samples]
    raw = max(
        float(
            np.abs(kit.raw[k] - np.stack([r[k] for r in reference])).max()
            / np.abs(kit.raw[k]).max()
        )
        for k in kit.raw
    )
    keypoints = np.stack([s.pred_instances.keypoints[0] for s in samples])
    return raw, float(np.abs(kit.coords - keypoints).max())


def measure_model(bench: Bench, name: str, n_images: int, repeats: int, work_dir: Path) -> None:
    model, pipeline = build_model(name, work_dir)
    items = []
    for index in range(n_images):
        synth = generate_image(seed=0, split=1, index=index, scale=0.15)
        items.append((index + 1, cv2.cvtColor(synth.image, cv2.COLOR_GRAY2BGR), synth.spacing))
    paths = {"inference_topdown": lambda: topdown(model, items)}
    for size in BATCH_SIZES:
        paths[f"predict_images B={size}"] = lambda s=size: predict_images(
            model, pipeline, items, batch_size=s
        )
        for n in {size, n_images % size} - {0}:  # warm-up: every batch shape once
            predict_images(model, pipeline, items[:n], batch_size=size)
    topdown(model, items[:1])
    seconds = {path: [] for path in paths}
    for _ in range(repeats):
        for path, run in paths.items():
            start = time.perf_counter()
            run()
            seconds[path].append(time.perf_counter() - start)
    rate = {path: n_images / min(values) for path, values in seconds.items()}
    for path in paths:
        bench.informative(f"{name}: {path}", rate[path], "images/s")
    speedup = rate[f"predict_images B={DEFAULT_BATCH}"] / rate["inference_topdown"]
    bench.held(
        f"{name}: predict_images B={DEFAULT_BATCH} / inference_topdown images/s",
        speedup,
        "x",
        ">=",
        2,
    )
    raw, keypoints = np.max(
        [agreement(model, pipeline, items, size) for size in BATCH_SIZES], axis=0
    )
    bench.held(f"{name}: raw outputs, max |batched - per image| / max", raw, "", "<", 1e-3)
    if model.head.__class__.__name__ == "RTMCCHead":
        bench.held(f"{name}: keypoints, max |batched - per image|", keypoints, "px", "<", 1e-3)
    else:
        bench.informative(f"{name}: keypoints, max |batched - per image| (DARK)", keypoints, "px")
    bench.record(**{name: dict(images=n_images, seconds=seconds, threads=torch.get_num_threads())})


def measure(bench: Bench, images: int, hrnet_images: int, repeats: int) -> None:
    for name, n in (("rtmpose-t", images), ("hrnet-w18", hrnet_images)):
        measure_model(bench, name, n, repeats, bench.scratch)


if __name__ == "__main__":
    main(measure, images=32, hrnet_images=16, repeats=3)
