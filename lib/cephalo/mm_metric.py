"""The challenge metric as an MMEngine metric, so validation during training reports the
leaderboard numbers and ``CheckpointHook`` can keep the best checkpoint by them.

Use it in a config as::

    custom_imports = dict(imports=["cephalo.mmpose_plugins"], allow_failed_imports=False)
    val_evaluator = dict(type="CephalometricMetric", ann_file=".../annotations.json")
    default_hooks = dict(checkpoint=dict(type="CheckpointHook", save_best="SDR 2.0mm",
                                         rule="greater"))

The numbers come from :mod:`cephalo.metrics`; this module only gathers its inputs:

- **predictions**: ``data_sample["pred_instances"]["keypoints"]``, (1, K, 2). MMPose 1.3.2's
  ``TopdownPoseEstimator.add_pred_to_datasample`` has already mapped them from the model's
  input crop back to original-image pixels (``input_center``/``input_scale``), the frame of
  the annotations.
- **ground truth**: ``PackPoseInputs`` leaves it in two places: ``gt_instances["keypoints"]``
  ((1, K, 2), original-image pixels, but float32: ``TopdownAffine`` writes the warped copy to
  ``transformed_keypoints`` and leaves this one alone) and ``raw_ann_info`` (the COCO
  annotation as read, float64). Scoring uses the annotation file's float64 coordinates, so a
  2 mm error is exactly 2 mm; the data sample's ground truth is checked against them, so an
  ``ann_file`` that is not the validation set's fails loudly instead of scoring nonsense.
- **spacing**: not carried by MMPose's data samples at all (``CocoDataset`` drops the image
  entry's extra keys), so it is read per image id from the ``images`` entries of
  ``ann_file`` (the prepared dataset's ``annotations.json``, or any subset of it in the same
  format; it may hold more images than are validated).

The returned keys are the leaderboard names (``MRE``, ``SDR 2.0mm`` ... ``SDR 4.0mm``) plus
``MRE std``, with no prefix (``default_prefix = ""``): they are the project's vocabulary,
and a prefix would only lengthen every ``save_best`` key and log line. Pass ``prefix`` when
two evaluators must be told apart. MMEngine cannot infer a rule for these names, so
``save_best`` needs an explicit ``rule`` (``"greater"`` for SDR, ``"less"`` for MRE); a key
with a space and a dot works (the best checkpoint is saved as ``best_SDR 2.0mm_epoch_N.pth``).

Per-landmark numbers are deliberately *not* in the returned dict: every returned key is
printed in the one-line validation log and becomes one more scalar series in each
visualisation backend, so 38 more keys per epoch would bury the five that matter. They are
kept as :attr:`CephalometricMetric.per_landmark` (a DataFrame), logged as one line, and
written to ``per_landmark_csv`` when given.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmpose.registry import METRICS

from cephalo.data.release import parse_scale
from cephalo.errors import DataError
from cephalo.metrics import MRE, SUMMARY, per_landmark, radial_errors, summarize

GT_TOLERANCE_PX = 1e-2
"""How far the data sample's ground truth may stray from ``ann_file``'s (float32 rounding is
below 1e-3 px for images up to 8000 px) before the two are declared different datasets."""


def _numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor
        value = value.detach().cpu().numpy()
    return np.asarray(value, dtype=np.float64)


def _read_ann_file(path: Path) -> tuple[dict[int, float], dict[int, np.ndarray], list[str]]:
    """Spacing and ground truth per image id, and the landmark names, of a COCO file."""
    try:
        coco = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(f"{path}: no such file (the metric's ann_file)") from None
    except json.JSONDecodeError as error:
        raise DataError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(coco, dict) or not isinstance(coco.get("images"), list):
        raise DataError(f"{path}: expected COCO annotations with an 'images' list")
    spacing: dict[int, float] = {}
    for image in coco["images"]:
        value = parse_scale(image.get("spacing")) if isinstance(image, dict) else None
        if value is None or not value > 0:
            raise DataError(
                f"{path}: image {image.get('id') if isinstance(image, dict) else image!r} has "
                f"no positive 'spacing' (mm per pixel); the metric needs cephalo's prepared "
                "annotations.json or a subset of it"
            )
        spacing[int(image["id"])] = value
    gt: dict[int, np.ndarray] = {}
    for annotation in coco.get("annotations", []):
        if not isinstance(annotation, dict) or not {"image_id", "keypoints"} <= annotation.keys():
            raise DataError(f"{path}: every annotation needs 'image_id' and 'keypoints'")
        image_id = int(annotation["image_id"])
        if image_id in gt:
            raise DataError(f"{path}: image {image_id} has more than one annotation")
        gt[image_id] = np.asarray(annotation["keypoints"], np.float64).reshape(-1, 3)[:, :2]
    categories = coco.get("categories") or [{}]
    names = [str(name) for name in categories[0].get("keypoints", [])]
    return spacing, gt, names


@METRICS.register_module()
class CephalometricMetric(BaseMetric):
    """CL-Detection 2023's MRE and SDR over a validation set (see the module docstring).

    Args:
        ann_file: COCO annotations whose ``images`` carry ``spacing`` (mm per pixel) per id.
        data_root: Joined in front of a relative ``ann_file``, as MMPose datasets do.
        per_landmark_csv: Where to write the per-landmark table at each evaluation.
        collect_device, prefix, collect_dir: As for any MMEngine ``BaseMetric``.
    """

    default_prefix = ""

    def __init__(
        self,
        ann_file: str | os.PathLike[str],
        data_root: str | os.PathLike[str] | None = None,
        per_landmark_csv: str | os.PathLike[str] | None = None,
        collect_device: str = "cpu",
        prefix: str | None = None,
        collect_dir: str | None = None,
    ) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        path = Path(ann_file)
        if data_root is not None and not path.is_absolute():
            path = Path(data_root) / path
        self.ann_file = path
        self.spacing, self.gt, self.landmark_names = _read_ann_file(path)
        self.per_landmark_csv = None if per_landmark_csv is None else Path(per_landmark_csv)
        self.per_landmark = None
        """The per-landmark table of the last evaluation (a pandas DataFrame), or None."""

    def process(self, data_batch: Any, data_samples: Sequence[dict]) -> None:
        """Keep each sample's image id, predicted and ground-truth keypoints ((K, 2) each)."""
        for sample in data_samples:
            image_id = int(sample["img_id"])
            pred = _numpy(sample["pred_instances"]["keypoints"])
            raw = sample.get("raw_ann_info")
            if isinstance(raw, list) and len(raw) == 1:
                raw = raw[0]
            if isinstance(raw, dict) and "keypoints" in raw:
                gt = _numpy(raw["keypoints"]).reshape(-1, 3)[:, :2]
            else:
                gt = _numpy(sample["gt_instances"]["keypoints"])
            if pred.ndim == 3 and pred.shape[0] == 1:
                pred = pred[0]
            if gt.ndim == 3 and gt.shape[0] == 1:
                gt = gt[0]
            if pred.ndim != 2 or pred.shape[1] != 2 or pred.shape != gt.shape:
                raise DataError(
                    f"image id {image_id}: need one instance of (K, 2) predicted and "
                    f"ground-truth keypoints, got {pred.shape} and {gt.shape}"
                )
            self.results.append(dict(img_id=image_id, pred=pred, gt=gt))

    def evaluate(self, size: int) -> dict:
        """As ``BaseMetric.evaluate``, but the processed results are dropped even when the
        evaluation fails, so a failed validation cannot leak into the next one."""
        try:
            return super().evaluate(size)
        finally:
            self.results.clear()

    def _names(self, n_landmarks: int) -> list[str]:
        if len(self.landmark_names) == n_landmarks:
            return self.landmark_names
        return [str(i) for i in range(1, n_landmarks + 1)]

    def compute_metrics(self, results: list) -> dict[str, float]:
        """``MRE``, ``MRE std`` and ``SDR 2.0mm`` .. ``SDR 4.0mm`` over all results."""
        image_ids = [result["img_id"] for result in results]
        if len(set(image_ids)) != len(image_ids):
            repeated = sorted({i for i in image_ids if image_ids.count(i) > 1})
            raise DataError(f"image id(s) {repeated[:10]} were evaluated more than once")
        missing = [i for i in image_ids if i not in self.spacing or i not in self.gt]
        if missing:
            raise DataError(
                f"{self.ann_file}: has no image/annotation for validated image id(s) "
                f"{missing[:10]}; is it the validation set's annotation file?"
            )
        pred = np.stack([result["pred"] for result in results])
        sample_gt = np.stack([result["gt"] for result in results])
        gt = np.stack([self.gt[i] for i in image_ids])
        if gt.shape != sample_gt.shape or not np.allclose(gt, sample_gt, atol=GT_TOLERANCE_PX):
            raise DataError(
                f"{self.ann_file}: its keypoints disagree with the validation data's ground "
                "truth for the same image ids; is it the validation set's annotation file?"
            )
        bad = ~np.isfinite(pred).all(axis=2)
        if bad.any():
            n, k = np.argwhere(bad)[0]
            names = self._names(pred.shape[1])
            raise DataError(
                f"image id {image_ids[n]}, landmark {names[k]}: predicted keypoint "
                f"{pred[n, k].tolist()} is not finite ({int(bad.sum())} non-finite in all)"
            )
        errors = radial_errors(pred, gt, np.array([self.spacing[i] for i in image_ids]))
        summary = summarize(errors)
        table = per_landmark(errors, self._names(errors.shape[1]))
        self.per_landmark = table
        if self.per_landmark_csv is not None:
            self.per_landmark_csv.parent.mkdir(parents=True, exist_ok=True)
            table.to_csv(self.per_landmark_csv, float_format="%.6g")
        print_log(
            f"{type(self).__name__}: per-landmark MRE (mm) over {len(image_ids)} images: "
            + " ".join(f"{name}:{value:.3f}" for name, value in table[MRE].items()),
            logger="current",
        )
        return {key: summary[key] for key in SUMMARY}
