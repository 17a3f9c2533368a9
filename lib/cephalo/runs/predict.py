"""Batched prediction with a trained MMPose model: the kit's one inference path.

MMPose's ``inference_topdown`` handles one image per call; this runs the model's own
validation pipeline (the same crop and affine as in training) over batches, and returns
:class:`~cephalo.predictions.Predictions`: coordinates in original-image pixels, confidences,
the crop geometry and, on request, the raw SimCC vectors or heatmaps.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cephalo.checkpoints import use_safe_checkpoint_loader
from cephalo.errors import DataError
from cephalo.predictions import Predictions


def load_model(config: dict[str, Any], checkpoint: str | os.PathLike[str], device: str = "cpu"):
    """The run's model with the checkpoint's weights, in eval mode."""
    from mmengine.config import Config
    from mmpose.apis import init_model

    import cephalo.mmpose_plugins  # noqa: F401  (what a run's config imports: codec, metric)

    use_safe_checkpoint_loader()
    return init_model(Config(config), str(checkpoint), device=device)


def _batches(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def predict_images(
    model: torch.nn.Module,
    pipeline: list[dict[str, Any]],
    images: Iterable[tuple[int, np.ndarray, float]],
    batch_size: int = 8,
    save_raw: bool = False,
    amp: bool = False,
) -> Predictions:
    """Predict ``(image_id, BGR image, spacing)`` items in batches; ``amp``: the forward pass
    under CUDA autocast (a model trained with mixed precision, on a GPU).

    The bbox is the whole image, as MMPose's COCO loader makes it from the prepared
    annotations (x1, y1, x2, y2 = 0, 0, w - 1, h - 1), so prediction sees exactly the crops
    validation saw.
    """
    from mmcv.transforms import Compose
    from mmengine.dataset import pseudo_collate
    from scipy.ndimage import shift

    transform = Compose(pipeline)
    model.test_cfg = dict(model.test_cfg, output_heatmaps=save_raw)
    columns: dict[str, list[Any]] = {
        key: []
        for key in (
            "image_id",
            "coords",
            "confidence",
            "spacing",
            "image_size",
            "input_center",
            "input_scale",
        )
    }
    raw: dict[str, list[np.ndarray]] = {}
    input_size = None
    udp = type(model.head.decoder).__name__ == "UDPHeatmap"
    flip_bias = flip_test_bias(model)
    model.eval()
    for batch in _batches(images, batch_size):
        inputs = []
        for image_id, image, _ in batch:
            height, width = image.shape[:2]
            info = dict(
                img=image,
                img_id=image_id,
                id=image_id,
                bbox=np.array([[0, 0, width - 1, height - 1]], np.float32),
                bbox_score=np.ones(1, np.float32),
                **model.dataset_meta,
            )
            inputs.append(transform(info))
        with torch.no_grad(), torch.autocast("cuda", enabled=amp):
            samples = model.test_step(pseudo_collate(inputs))
        for (image_id, image, spacing), sample in zip(batch, samples, strict=True):
            instances = sample.pred_instances
            coords = np.asarray(instances.keypoints[0], np.float64)
            input_px = sample.metainfo["input_scale"][0] / sample.metainfo["input_size"][0]
            coords[:, 0] -= flip_bias * input_px
            columns["image_id"].append(image_id)
            columns["coords"].append(coords)
            columns["confidence"].append(np.asarray(instances.keypoint_scores[0], np.float32))
            columns["spacing"].append(spacing)
            columns["image_size"].append(image.shape[1::-1])
            columns["input_center"].append(sample.metainfo["input_center"])
            columns["input_scale"].append(sample.metainfo["input_scale"])
            input_size = sample.metainfo["input_size"]
            if save_raw:
                for key, value in raw_outputs(sample, udp).items():
                    if flip_bias and key != "simcc_y":  # moved left like the coordinates
                        bins = flip_bias * value.shape[-1] / sample.metainfo["input_size"][0]
                        value = shift(
                            value, (0,) * (value.ndim - 1) + (-bins,), order=1, mode="nearest"
                        )
                    raw.setdefault(key, []).append(value)
    if not columns["image_id"]:
        raise DataError("no images to predict")
    return Predictions(
        image_id=np.asarray(columns["image_id"], np.int64),
        coords=np.stack(columns["coords"]),
        confidence=np.stack(columns["confidence"]),
        spacing=np.asarray(columns["spacing"], np.float64),
        image_size=np.asarray(columns["image_size"], np.int64),
        input_center=np.asarray(columns["input_center"], np.float64),
        input_scale=np.asarray(columns["input_scale"], np.float64),
        input_size=np.asarray(input_size, np.int64),
        raw={key: np.stack(values) for key, values in raw.items()},
    )


def stack_images(
    stack: str | os.PathLike[str], gt: str | os.PathLike[str] | None = None
) -> Iterator[tuple[int, np.ndarray, float]]:
    """(z, BGR image with its padding cropped, spacing) for each slice of a release stack,
    read one slice at a time; the spacing comes from ``gt`` when given, else NaN."""
    import cv2

    from cephalo.data.prepare import check_stack
    from cephalo.data.release import read_gt, read_slice, unpadded_size

    n_slices, _, _ = check_stack(Path(stack))
    spacing = {record.z: record.spacing for record in read_gt(gt)} if gt else {}
    for k in range(n_slices):
        image = read_slice(stack, k)
        height, width = unpadded_size(image)
        bgr = cv2.cvtColor(image[:height, :width], cv2.COLOR_RGB2BGR)
        yield k + 1, bgr, spacing.get(k + 1, float("nan"))


def flip_test_bias(model: torch.nn.Module) -> float:
    """How far right of the truth, in input pixels, MMPose's flip test puts a point.

    The flip test mirrors the input tensor (input pixel x to W - 1 - x), mirrors the
    output back by reversing its bins, and averages. Reversing n bins maps bin j to n - 1 - j,
    which is the tensor's mirror only when the bins sit on the input's pixel centres (UDP).
    SimCC bins sit at j / r input pixels and MSRA heatmap pixels at j * stride, so the
    mirrored branch lands 1 - 1 / r (SimCC) or 1 - stride (MSRA) input pixels off, plus the
    stride when ``shift_heatmap`` moves the heatmap by one pixel; the average, half that.
    Measured with a model that tracks its input (``tests/test_predict.py``)."""
    test_cfg = model.test_cfg or {}
    if not test_cfg.get("flip_test"):
        return 0.0
    decoder = model.head.decoder
    name = type(decoder).__name__
    if name == "SimCCLabel":
        return (1 - 1 / decoder.simcc_split_ratio) / 2
    if name == "UDPHeatmap":
        return 0.0
    stride = decoder.input_size[0] / decoder.heatmap_size[0]
    shift = stride if test_cfg.get("shift_heatmap") else 0.0
    return (1 - stride + shift) / 2


def raw_outputs(sample: Any, udp: bool = False) -> dict[str, np.ndarray]:
    """SimCC vectors or heatmaps of one sample, whichever its head produced; ``udp``: the
    heatmaps are UDP-coded (kept as ``udp_heatmaps``, whose grid differs)."""
    instances = sample.pred_instances
    if "keypoint_x_labels" in instances:
        return dict(
            simcc_x=np.asarray(instances.keypoint_x_labels[0]),
            simcc_y=np.asarray(instances.keypoint_y_labels[0]),
        )
    heatmaps = sample.pred_fields.heatmaps
    heatmaps = heatmaps.cpu().numpy() if torch.is_tensor(heatmaps) else heatmaps
    return {"udp_heatmaps" if udp else "heatmaps": heatmaps}
