"""CPU inference throughput of the kit's batched prediction against MMPose's per-image API.

Why: the kit predicts held-out folds and test stacks with
:func:`cephalo.predict.predict_images`, which runs the model's validation pipeline over
batches. MMPose's own entry point, ``mmpose.apis.inference_topdown``, takes one image per
call. The promise is that batching pays on a CPU: the target is at least 2x the images per
second of ``inference_topdown`` called image by image, at the kit's default batch size (8).

What, for ``rtmpose-t`` and ``hrnet-w18`` at 256x256 input, flip test on in both paths
(each prediction averaged with that of the mirrored image: two backbone passes per image):

- the model: ``cephalo.models.config.build_config(TrainParams(model=..., input_size=(256,
  256), flip_test=True), ...)`` (the 38 landmarks' metainfo; the validation pipeline added
  as the config's ``test_dataloader`` pipeline, which is what ``inference_topdown`` reads),
  built by ``mmpose.apis.init_model(config, checkpoint=None, device="cpu")``: random
  weights (seeded), nothing trained or downloaded. Speed does not depend on the weights.
- the images: synthetic cephalograms at scale 0.15 (``cephalo.data.synth.generate_image``,
  test split; 290 to 432 pixels a side, the three centres' sizes), greyscale made BGR, in
  memory: reading files is not timed.
- per image: ``inference_topdown(model, image, bboxes=[[0, 0, w - 1, h - 1]])`` in a loop:
  the whole-image box that ``predict_images`` builds, so both paths crop identically.
- batched: ``predict_images(model, val_pipeline, [(id, image, spacing), ...],
  batch_size=B)`` for B in 1, 8, 16.
- informative: the data pipeline alone (``Compose(val_pipeline)`` per image), the part of
  the work that batching cannot change.

Equal work: an untimed pass of each path keeps the model's raw outputs (SimCC vectors or
heatmaps: ``output_heatmaps`` for ``inference_topdown``, ``save_raw`` for
``predict_images``); their largest difference, relative to the largest output, must stay
under 1e-3. The kit keeps raw outputs in float16 (:class:`cephalo.predictions.Predictions`),
whose step is 2^-10 (9.8e-4) of the value at most, so that is the finest agreement the kit's
side can show; a float32 difference of a different batch shape is about 1e-7, and a
different computation (another crop, another model) is orders of magnitude beyond 1e-3.
The keypoints of the timed runs
are compared too (largest difference in original-image pixels, and how many differ by more
than 1e-3 px). They agree exactly for SimCC, whose decoding is an argmax. Heatmaps are
decoded with DARK (``MSRAHeatmap(unbiased=True)``), a Newton step on the log of the blurred
heatmap: on the noise a random-weight HRNet outputs, that step is ill-conditioned and turns
1e-7 differences into pixels (hundreds of keypoints land outside the image). So the
keypoint difference is reported, and held to 1e-3 px only for SimCC models; the raw outputs
are what shows that both paths computed the same thing.

How time is measured: each path first runs once per batch shape (warm-up: oneDNN builds its
kernels per input shape on the first call). Then ``--repeats`` rounds time every path over
all images, in turn, with ``time.perf_counter``; a path's figure is its best round
(``timeit``'s convention: on a shared machine interference only ever slows a round down),
and every round is kept in the JSON. PyTorch's intra-op thread count and the load average
are printed: on a machine shared with other jobs, the figures are noisy.

Run: ``.venv/bin/python benchmarks/inference_throughput.py [--images 32] [--hrnet-images 16]
[--repeats 3] [--out benchmarks/results/inference_throughput.json]``. About 2 minutes on two
idle cores. It prints a table (figure, target, PASS/FAIL), writes the figures as JSON, and
exits 1 when a target is missed or the two paths disagree.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from cephalo.data.synth import generate_image
from cephalo.landmarks import LANDMARK_NAMES
from cephalo.models.config import DataSpec, build_config
from cephalo.models.params import TrainParams
from cephalo.models.pipelines import pipelines
from cephalo.predict import predict_images, raw_outputs
from report import RESULTS, check, environment, layout, write_result

TARGET_SPEEDUP = 2.0  # batched images/s at the default batch size / inference_topdown's
DEFAULT_BATCH = 8  # TrainParams.batch_size and predict_images' default
BATCH_SIZES = (1, 8, 16)
TOLERANCE_PX = 1e-3  # keypoints, SimCC models
TOLERANCE_RAW = 1e-3  # raw outputs, relative to the largest (the kit's are float16)
INPUT_SIZE = (256, 256)
SCALE = 0.15
PER_IMAGE = "inference_topdown"
KIT = "predict_images B={}"

Item = tuple[int, np.ndarray, float]


def build_model(name: str, work_dir: Path) -> tuple[torch.nn.Module, list[dict[str, Any]]]:
    """A randomly initialised model of variant ``name`` on the CPU, and its validation
    pipeline, configured exactly as a training run would be."""
    from mmengine.config import Config
    from mmpose.apis import init_model

    import cephalo.mmpose_plugins  # noqa: F401  (the kit's codecs, as a run's config imports them)

    params = TrainParams(model=name, input_size=INPUT_SIZE, flip_test=True, device="cpu")
    data = DataSpec(
        image_dir=work_dir,  # only named in the config: no dataset is built
        train_ann=work_dir / "unused.json",
        val_ann=None,
        landmark_names=LANDMARK_NAMES,
    )
    config = build_config(params, data, work_dir=work_dir)
    _, val_pipeline = pipelines(params)
    config["test_dataloader"] = dict(dataset=dict(pipeline=val_pipeline))
    torch.manual_seed(0)
    model = init_model(Config(config), checkpoint=None, device="cpu")
    return model, val_pipeline


def make_images(n: int) -> list[Item]:
    """``n`` synthetic test-split cephalograms as (id, BGR image, spacing)."""
    items = []
    for index in range(n):
        synth = generate_image(seed=0, split=1, index=index, scale=SCALE)
        items.append((index + 1, cv2.cvtColor(synth.image, cv2.COLOR_GRAY2BGR), synth.spacing))
    return items


# ------------------------------------------------------------------ the paths


def topdown(model: torch.nn.Module, items: list[Item], raw: bool = False) -> Any:
    """Keypoints (n, K, 2) from ``inference_topdown`` called once per image; with ``raw``,
    the model's raw outputs instead ({name: (n, ...)})."""
    from mmpose.apis import inference_topdown

    samples = []
    for _, image, _ in items:
        height, width = image.shape[:2]
        box = np.array([[0, 0, width - 1, height - 1]], np.float32)
        samples += inference_topdown(model, image, bboxes=box)
    if raw:
        outputs = [raw_outputs(sample) for sample in samples]
        return {key: np.stack([o[key] for o in outputs]) for key in outputs[0]}
    return np.stack([np.asarray(s.pred_instances.keypoints[0], np.float64) for s in samples])


def batched(model: torch.nn.Module, pipeline: list, items: list[Item], batch_size: int) -> Any:
    """Keypoints (n, K, 2) from the kit's ``predict_images`` in batches of ``batch_size``."""
    return predict_images(model, pipeline, items, batch_size=batch_size).coords


def pipeline_only(model: torch.nn.Module, pipeline: list, items: list[Item]) -> None:
    """The per-image data pipeline (load, box, affine crop, pack) without the model."""
    from mmcv.transforms import Compose

    transform = Compose(pipeline)
    for image_id, image, _ in items:
        height, width = image.shape[:2]
        transform(
            dict(
                img=image,
                img_id=image_id,
                bbox=np.array([[0, 0, width - 1, height - 1]], np.float32),
                bbox_score=np.ones(1, np.float32),
                **model.dataset_meta,
            )
        )


def raw_difference(model: torch.nn.Module, pipeline: list, items: list[Item], size: int) -> float:
    """Largest difference of the raw outputs of the two paths, relative to the largest."""
    saved = model.test_cfg
    model.test_cfg = dict(saved, output_heatmaps=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # RTMCCHead: "simcc values are normalized ..."
            reference = topdown(model, items, raw=True)
            kit = predict_images(model, pipeline, items, batch_size=size, save_raw=True).raw
    finally:
        model.test_cfg = saved
    return max(
        float(np.abs(kit[key] - value).max() / np.abs(value).max())
        for key, value in reference.items()
    )


def measure(name: str, n_images: int, repeats: int, work_dir: Path) -> dict[str, Any]:
    """Every path for model ``name`` over ``n_images``: timings and agreement."""
    model, pipeline = build_model(name, work_dir)
    items = make_images(n_images)
    paths: dict[str, Callable[[], Any]] = {PER_IMAGE: partial(topdown, model, items)}
    for size in BATCH_SIZES:
        paths[KIT.format(size)] = partial(batched, model, pipeline, items, size)
    paths["pipeline only"] = partial(pipeline_only, model, pipeline, items)

    # Warm-up: every batch shape once (the last batch of a run may be smaller).
    warm = items[: max(BATCH_SIZES)]
    topdown(model, items[:1])
    for size in BATCH_SIZES:
        batched(model, pipeline, warm[:size], size)
        if n_images % size:
            batched(model, pipeline, warm[: n_images % size], size)

    seconds: dict[str, list[float]] = {path: [] for path in paths}
    outputs: dict[str, Any] = {}
    for _ in range(repeats):
        for path, run in paths.items():
            start = time.perf_counter()
            outputs[path] = run()
            seconds[path].append(time.perf_counter() - start)

    per_image_rate = n_images / min(seconds[PER_IMAGE])
    timings: dict[str, dict[str, Any]] = {}
    for path, values in seconds.items():
        timings[path] = dict(
            images_per_s=n_images / min(values), seconds=[round(v, 4) for v in values]
        )
        if path != PER_IMAGE and outputs[path] is not None:
            difference = np.abs(outputs[path] - outputs[PER_IMAGE]).max(-1)
            timings[path].update(
                speedup=timings[path]["images_per_s"] / per_image_rate,
                max_difference_px=float(difference.max()),
                keypoints_over_tolerance=int((difference > TOLERANCE_PX).sum()),
            )
    for size in BATCH_SIZES:
        timings[KIT.format(size)]["raw_difference"] = raw_difference(model, pipeline, items, size)

    simcc = model.head.__class__.__name__ == "RTMCCHead"
    kit_paths = [timings[KIT.format(size)] for size in BATCH_SIZES]
    raw_agree = all(t["raw_difference"] < TOLERANCE_RAW for t in kit_paths)
    keypoints_agree = all(t["max_difference_px"] < TOLERANCE_PX for t in kit_paths)
    speedup = timings[KIT.format(DEFAULT_BATCH)]["speedup"]
    return dict(
        model=name,
        head=model.head.__class__.__name__,
        input_size=list(INPUT_SIZE),
        flip_test=bool(model.test_cfg.get("flip_test")),
        images=n_images,
        image_sizes=sorted({image.shape[1::-1] for _, image, _ in items}),
        parameters=sum(p.numel() for p in model.parameters()),
        paths=timings,
        speedup=speedup,
        target_speedup=TARGET_SPEEDUP,
        speedup_passed=speedup >= TARGET_SPEEDUP,
        raw_agree=raw_agree,
        keypoints_agree=keypoints_agree,
        keypoints_held=simcc,
        passed=speedup >= TARGET_SPEEDUP and raw_agree and (keypoints_agree or not simcc),
    )


# ------------------------------------------------------------------ report


def checks(run: dict[str, Any]) -> list[dict[str, Any]]:
    """One model's figures held to a target, for the summary of ``make bench``."""
    kit = [run["paths"][KIT.format(size)] for size in BATCH_SIZES]
    default = KIT.format(DEFAULT_BATCH)
    held = [
        check(
            f"{run['model']}: {default} / {PER_IMAGE} images/s",
            run["speedup"],
            "x",
            f">= {TARGET_SPEEDUP:g}x",
            run["speedup_passed"],
        ),
        check(
            f"{run['model']}: raw outputs, max |batched - per image| / max",
            max(t["raw_difference"] for t in kit),
            "",
            f"< {TOLERANCE_RAW:g}",
            run["raw_agree"],
        ),
    ]
    if run["keypoints_held"]:
        held.append(
            check(
                f"{run['model']}: keypoints, max |batched - per image|",
                max(t["max_difference_px"] for t in kit),
                "px",
                f"< {TOLERANCE_PX:g} px",
                run["keypoints_agree"],
            )
        )
    return held


def table(runs: list[dict[str, Any]]) -> str:
    verdict = {True: "PASS", False: "FAIL"}
    head = ["figure", *(f"{r['model']} ({r['images']} img)" for r in runs), "target", "result"]

    def row(
        label: str, cell: Callable[[dict[str, Any]], str], target: str = "", result: str = ""
    ) -> list[str]:
        return [label, *(cell(r) for r in runs), target, result]

    def figure(path: str, key: str, form: str) -> Callable[[dict[str, Any]], str]:
        return lambda r: format(r["paths"][path][key], form)

    rows = [
        row(f"{path} (images/s)", figure(path, "images_per_s", ".2f")) for path in runs[0]["paths"]
    ]
    for size in BATCH_SIZES:
        path = KIT.format(size)
        if size == DEFAULT_BATCH:
            passed = all(r["speedup_passed"] for r in runs)
            target = (f">= {TARGET_SPEEDUP:g}x", verdict[passed])
            rows.append(
                row(
                    f"speedup B={size} (kit default) / per image",
                    figure(path, "speedup", ".2f"),
                    *target,
                )
            )
        else:
            rows.append(row(f"speedup B={size} / per image", figure(path, "speedup", ".2f")))
    for size in BATCH_SIZES:
        path = KIT.format(size)
        passed = all(r["paths"][path]["raw_difference"] < TOLERANCE_RAW for r in runs)
        rows.append(
            row(
                f"raw outputs: max |B={size} - per image| / max",
                figure(path, "raw_difference", ".1e"),
                f"< {TOLERANCE_RAW:g}",
                verdict[passed],
            )
        )
    for size in BATCH_SIZES:
        path = KIT.format(size)
        held = [r for r in runs if r["keypoints_held"]]
        passed = all(r["paths"][path]["max_difference_px"] < TOLERANCE_PX for r in held)
        rows.append(
            row(
                f"keypoints: max |B={size} - per image| (px)",
                figure(path, "max_difference_px", ".1e"),
                f"< {TOLERANCE_PX:g} (SimCC)",
                verdict[passed],
            )
        )
        rows.append(
            row(
                f"keypoints: B={size} differing > {TOLERANCE_PX:g} px",
                lambda r, p=path: (
                    f"{r['paths'][p]['keypoints_over_tolerance']} of "
                    f"{r['images'] * len(LANDMARK_NAMES)}"
                ),
            )
        )
    return layout(head, rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=32, help="images for rtmpose-t")
    parser.add_argument("--hrnet-images", type=int, default=16, help="images for hrnet-w18")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds per path")
    parser.add_argument("--out", type=Path, default=RESULTS / "inference_throughput.json")
    args = parser.parse_args(argv)

    load_start = os.getloadavg()
    runs = []
    with tempfile.TemporaryDirectory(prefix="inference_throughput-") as tmp:
        for name, n in (("rtmpose-t", args.images), ("hrnet-w18", args.hrnet_images)):
            start = time.perf_counter()
            runs.append(measure(name, n, args.repeats, Path(tmp)))
            print(f"{name}: measured in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    load_end = os.getloadavg()
    passed = all(r["passed"] for r in runs)

    print(
        f"CPU inference throughput, batched predict_images vs inference_topdown per image: "
        f"{INPUT_SIZE[0]}x{INPUT_SIZE[1]} input, flip test on, random weights, "
        f"{torch.get_num_threads()} torch threads, best of {args.repeats} rounds\n"
    )
    print(table(runs))
    print(
        "\nSpeedups are over inference_topdown per image. "
        "'pipeline only': the data pipeline without "
        "the model, the same per image in both paths.\nKeypoints are held to the tolerance "
        "for SimCC heads only: DARK decoding of a random-weight\nHRNet's heatmaps amplifies "
        "float rounding (see the docstring); the raw outputs are held for both."
    )
    print(
        f"Load average (1, 5, 15 min) on {os.cpu_count()} CPUs: start "
        f"{', '.join(f'{x:.2f}' for x in load_start)}; end "
        f"{', '.join(f'{x:.2f}' for x in load_end)}"
    )
    result = dict(
        benchmark="inference_throughput",
        command="cephalo.predict.predict_images(model, val_pipeline, items, batch_size=B) vs "
        "mmpose.apis.inference_topdown(model, image, bboxes=[[0, 0, w - 1, h - 1]]) per image",
        method="best of --repeats rounds over all images per path, after one warm-up call per "
        "batch shape; images in memory; random-weight models from build_config; flip test on",
        batch_sizes=list(BATCH_SIZES),
        default_batch=DEFAULT_BATCH,
        tolerance_px=TOLERANCE_PX,
        tolerance_raw=TOLERANCE_RAW,
        torch=torch.__version__,
        torch_threads=torch.get_num_threads(),
        load_average_start=list(load_start),
        load_average_end=list(load_end),
        **environment(),
        runs=runs,
        checks=[c for run in runs for c in checks(run)],
        passed=passed,
    )
    write_result(args.out, result)
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
