"""The challenge metric: the numpy definition, ``cephalo evaluate`` on files, and the MMEngine
metric that validation and best-checkpoint selection use."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from cephalo.challenge.evaluate import evaluate_files
from cephalo.challenge.points import read_predictions
from cephalo.cli import main
from cephalo.cli.evaluate import evaluate_command
from cephalo.data.release import ImageLandmarks, write_gt
from cephalo.errors import DataError
from cephalo.landmarks import LANDMARK_NAMES, NUM_LANDMARKS
from cephalo.metrics import (
    LEADERBOARD,
    MRE,
    MRE_STD,
    SDR_2_0,
    SDR_2_5,
    SDR_3_0,
    SDR_4_0,
    SDR_NAMES,
    SUMMARY,
    THRESHOLDS_MM,
    per_group,
    per_landmark,
    radial_errors,
    summarize,
)

SPACINGS = np.array([0.1, 0.125, 0.1, 0.125])
# Unit directions: along x for the first two images, a 3-4-5 diagonal for the other two.
DIRECTIONS = np.array([[1.0, 0.0], [1.0, 0.0], [0.6, 0.8], [0.6, 0.8]])


def ground_truth(n: int = 4, seed: int = 0) -> np.ndarray:
    """(n, 38, 2) non-integer pixel coordinates, so that shifting them is inexact."""
    return np.random.default_rng(seed).uniform(0, 2400, (n, NUM_LANDMARKS, 2))


def shifted(gt: np.ndarray, mm: float) -> np.ndarray:
    """``gt`` moved by ``mm`` millimetres: mm / spacing pixels along each image's direction."""
    return gt + (DIRECTIONS * (mm / SPACINGS)[:, None])[:, None, :]


# --- the numpy definition --------------------------------------------------------------


def test_leaderboard_names() -> None:
    assert THRESHOLDS_MM == (2.0, 2.5, 3.0, 4.0)
    assert (SDR_2_0, SDR_2_5, SDR_3_0, SDR_4_0) == SDR_NAMES
    assert LEADERBOARD == ("MRE", "SDR 2.0mm", "SDR 2.5mm", "SDR 3.0mm", "SDR 4.0mm")
    assert SUMMARY[:2] == (MRE, MRE_STD) and SUMMARY[2:] == LEADERBOARD[1:]
    assert (MRE, MRE_STD) == ("MRE", "MRE std")


def test_perfect_prediction() -> None:
    gt = ground_truth()
    summary = summarize(radial_errors(gt.copy(), gt, SPACINGS))
    assert list(summary) == list(SUMMARY)
    assert summary[MRE] == 0 and summary[MRE_STD] == 0
    assert all(summary[name] == 100.0 for name in SDR_NAMES)


def test_error_is_pixels_times_spacing() -> None:
    gt = np.zeros((2, 1, 2))
    pred = np.array([[[3.0, 4.0]], [[6.0, 8.0]]])  # 5 px and 10 px
    errors = radial_errors(pred, gt, np.array([0.1, 0.125]))
    assert errors.shape == (2, 1)
    np.testing.assert_allclose(errors[:, 0], [0.5, 1.25])


def test_shift_of_exactly_2mm_counts_as_within_2mm() -> None:
    gt = ground_truth()
    errors = radial_errors(shifted(gt, 2.0), gt, SPACINGS)
    # The shift is 2 mm, but floating point makes some errors a hair above 2: the `<=`
    # rule must still count them, or this test proves nothing.
    assert (errors > 2.0).any()
    summary = summarize(errors)
    assert summary[MRE] == pytest.approx(2.0, abs=1e-9)
    assert summary[MRE_STD] == pytest.approx(0.0, abs=1e-9)
    assert summary[SDR_2_0] == 100.0
    assert summary[SDR_4_0] == 100.0


def test_shift_of_2_5mm() -> None:
    gt = ground_truth()
    summary = summarize(radial_errors(shifted(gt, 2.5), gt, SPACINGS))
    assert summary[MRE] == pytest.approx(2.5, abs=1e-9)
    assert summary[SDR_2_0] == 0.0
    assert summary[SDR_2_5] == summary[SDR_3_0] == summary[SDR_4_0] == 100.0


def test_a_micrometre_past_the_threshold_does_not_count() -> None:
    gt = ground_truth()
    summary = summarize(radial_errors(shifted(gt, 2.0 + 1e-6), gt, SPACINGS))
    assert summary[SDR_2_0] == 0.0 and summary[SDR_2_5] == 100.0


def test_mixed_errors_give_percentages() -> None:
    errors = np.array([[0.5, 2.0, 2.4], [3.0, 3.9, 10.0]])
    summary = summarize(errors)
    assert summary[MRE] == pytest.approx(21.8 / 6)
    assert summary[MRE_STD] == pytest.approx(np.std(errors))
    assert summary[SDR_2_0] == pytest.approx(200 / 6)
    assert summary[SDR_2_5] == pytest.approx(300 / 6)
    assert summary[SDR_3_0] == pytest.approx(400 / 6)
    assert summary[SDR_4_0] == pytest.approx(500 / 6)


def test_errors_are_pooled_not_averaged_per_image() -> None:
    # Image A: four landmarks 1 mm off; image B: one landmark 5 mm off (the others not
    # annotated). Pooled MRE: 9 / 5 = 1.8 mm; the mean of per-image means would be 3 mm.
    image_a, image_b = np.full(4, 1.0), np.array([5.0])
    summary = summarize(np.concatenate([image_a, image_b]))
    assert summary[MRE] == pytest.approx(1.8)
    assert summary[MRE] != pytest.approx(np.mean([image_a.mean(), image_b.mean()]))
    # With every landmark present the means agree, but the spread does not: the pooled
    # std sees the difference between images, the mean of per-image stds does not.
    errors = np.array([[1.0, 1.0], [3.0, 3.0]])
    summary = summarize(errors)
    assert summary[MRE_STD] == pytest.approx(1.0)
    assert errors.std(axis=1).mean() == 0.0


def test_per_landmark_table() -> None:
    errors = np.array([[0.0, 1.0, 2.5], [0.0, 3.0, 5.0]])
    table = per_landmark(errors, ["a", "b", "c"])
    assert list(table.index) == ["a", "b", "c"] and table.index.name == "landmark"
    assert list(table.columns) == list(SUMMARY)
    assert table.loc["a", MRE] == 0 and table.loc["a", SDR_2_0] == 100
    assert table.loc["b", MRE] == 2.0 and table.loc["b", MRE_STD] == 1.0
    assert table.loc["b", SDR_2_0] == 50 and table.loc["b", SDR_3_0] == 100
    assert table.loc["c", MRE] == 3.75 and table.loc["c", SDR_2_5] == 50
    assert table.loc["c", SDR_4_0] == 50
    with pytest.raises(DataError, match="landmark names"):
        per_landmark(errors, ["a", "b"])


def test_per_group_table() -> None:
    errors = np.array([[1.0, 1.0], [3.0, 5.0], [2.0, 2.0]])
    table = per_group(errors, ["0.125mm", "0.1mm", "0.125mm"])
    assert list(table.index) == ["0.125mm", "0.1mm"] and table.index.name == "group"
    assert list(table.columns) == ["images", *SUMMARY]
    assert table.loc["0.125mm", "images"] == 2 and table.loc["0.1mm", "images"] == 1
    assert table.loc["0.125mm", MRE] == 1.5 and table.loc["0.125mm", SDR_2_0] == 100
    assert table.loc["0.1mm", MRE] == 4.0 and table.loc["0.1mm", SDR_3_0] == 50
    with pytest.raises(DataError, match="one group label per image"):
        per_group(errors, ["a", "b"])


def test_non_finite_predictions_are_refused() -> None:
    gt = ground_truth()
    pred = gt.copy()
    pred[2, 16, 1] = np.nan
    with pytest.raises(DataError, match=r"prediction of image 2 .*landmark 17 is not finite"):
        radial_errors(pred, gt, SPACINGS)
    pred[2, 16, 1] = np.inf
    with pytest.raises(DataError, match="not finite"):
        radial_errors(pred, gt, SPACINGS)
    with pytest.raises(DataError, match="finite"):
        summarize(np.array([1.0, np.nan]))
    with pytest.raises(DataError, match="positive"):
        radial_errors(gt, gt, np.array([0.1, 0.0, 0.1, 0.1]))
    with pytest.raises(DataError, match="same shape"):
        radial_errors(gt[:, :3], gt, SPACINGS)
    with pytest.raises(DataError, match="no errors"):
        summarize(np.zeros((0, 38)))


# --- cephalo evaluate -------------------------------------------------------------------


def write_release_gt(folder: Path) -> tuple[Path, Path, list[ImageLandmarks]]:
    """Three images (spacings 0.1, 0.125, 0.1; centres A, B, B) and their meta sidecar."""
    points = ground_truth(3, seed=1)
    records = [
        ImageLandmarks(z=z, points=points[z - 1], spacing=spacing)
        for z, spacing in zip((1, 2, 3), (0.1, 0.125, 0.1), strict=True)
    ]
    gt = write_gt(folder / "train-gt.json", records)
    meta = folder / "train-meta.json"
    images = [
        dict(z=r.z, centre=centre, height=2400, width=1935, spacing=r.spacing)
        for r, centre in zip(records, "ABB", strict=True)
    ]
    meta.write_text(json.dumps(dict(generator="test", images=images)))
    return gt, meta, records


def prediction_entries(records: list[ImageLandmarks], mm: dict[int, float]) -> list[dict]:
    """Every landmark of slice z moved ``mm[z]`` millimetres along x."""
    return [
        dict(name=name, point=[x + mm[r.z] / r.spacing, y, r.z])
        for r in records
        for name, (x, y) in zip(LANDMARK_NAMES, r.points.tolist(), strict=True)
    ]


def write_predictions(path: Path, entries: list[dict]) -> Path:
    document = dict(
        name="Orthodontic landmarks",
        type="Multiple points",
        points=entries,
        version=dict(major=1, minor=0),
    )
    path.write_text(json.dumps(document))  # allow_nan: a NaN must reach the reader
    return path


@pytest.fixture
def release(tmp_path: Path) -> tuple[Path, Path, list[ImageLandmarks], Path]:
    gt, meta, records = write_release_gt(tmp_path)
    # Slice 1 exact, slice 2 off by 2 mm, slice 3 by 3 mm.
    pred = write_predictions(
        tmp_path / "pred.json", prediction_entries(records, {1: 0.0, 2: 2.0, 3: 3.0})
    )
    return gt, meta, records, pred


def test_evaluate_files(release: tuple[Path, Path, list[ImageLandmarks], Path]) -> None:
    gt, meta, _, pred = release
    report = evaluate_files(pred, gt, groups=meta)
    assert report.z == [1, 2, 3] and report.errors.shape == (3, NUM_LANDMARKS)
    assert report.summary[MRE] == pytest.approx(5 / 3)
    assert report.summary[SDR_2_0] == pytest.approx(200 / 3)
    assert report.summary[SDR_2_5] == pytest.approx(200 / 3)
    assert report.summary[SDR_3_0] == report.summary[SDR_4_0] == 100
    assert list(report.per_landmark.index) == list(LANDMARK_NAMES)
    assert report.per_landmark[MRE].to_numpy() == pytest.approx(np.full(NUM_LANDMARKS, 5 / 3))
    groups = report.per_group
    assert list(groups.index) == [
        ("spacing", "0.125mm"),
        ("spacing", "0.1mm"),
        ("centre", "A"),
        ("centre", "B"),
    ]
    assert groups.loc[("spacing", "0.1mm"), MRE] == pytest.approx(1.5)
    assert groups.loc[("spacing", "0.1mm"), "images"] == 2
    assert groups.loc[("centre", "B"), MRE] == pytest.approx(2.5)
    assert groups.loc[("centre", "A"), SDR_2_0] == 100
    # Without a sidecar only the spacing rows remain; a mapping works like a sidecar.
    assert list(evaluate_files(pred, gt).per_group.index.get_level_values("by")) == ["spacing"] * 2
    mapped = evaluate_files(pred, gt, groups={"vendor": {1: "x", 2: "x", 3: "y"}})
    assert mapped.per_group.loc[("vendor", "x"), "images"] == 2


def test_cli_text_and_json(release: tuple[Path, Path, list[ImageLandmarks], Path]) -> None:
    gt, meta, _, pred = release
    runner = CliRunner()
    args = ["--pred", str(pred), "--gt", str(gt), "--meta", str(meta)]
    result = runner.invoke(evaluate_command, args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "3 images x 38 landmarks"
    assert lines[1].startswith("MRE 1.667 ± 1.247 mm | ") and "SDR 2.0mm 66.67%" in lines[1]
    assert "SDR 3.0mm 100.00%" in lines[1]
    assert "Per landmark:" in lines and "Per group:" in lines
    assert any(line.startswith("38 Lower molar (L6)") and "1.667" in line for line in lines)
    assert any(line.split()[:3] == ["centre", "A", "1"] for line in lines)

    result = runner.invoke(evaluate_command, [*args, "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert set(document) == {"n_images", "n_landmarks", "summary", "per_landmark", "per_group"}
    assert list(document["summary"]) == list(SUMMARY)
    assert document["summary"][SDR_2_0] == pytest.approx(200 / 3)
    assert [row["landmark"] for row in document["per_landmark"]] == list(LANDMARK_NAMES)
    rows = {(row["by"], row["group"]): row for row in document["per_group"]}
    assert rows[("centre", "B")]["images"] == 2
    assert rows[("spacing", "0.125mm")][MRE] == pytest.approx(2.0)


def _invoke_error(gt: Path, pred: Path, *extra: str) -> str:
    arguments = ["evaluate", "--pred", str(pred), "--gt", str(gt), *extra]
    result = CliRunner().invoke(main, arguments)  # through the CLI's one error handler
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1
    return result.output


def test_cli_refuses_bad_predictions(
    tmp_path: Path, release: tuple[Path, Path, list[ImageLandmarks], Path]
) -> None:
    gt, _, records, _ = release
    good = prediction_entries(records, {1: 0.0, 2: 0.0, 3: 0.0})
    pred = tmp_path / "bad.json"

    write_predictions(pred, [e for e in good if (e["point"][2], e["name"]) != (2, "17")])
    assert "z=2 lacks 1 landmark(s): 17" in _invoke_error(gt, pred)

    extra = [dict(e, point=[*e["point"][:2], 4]) for e in good if e["point"][2] == 1]
    write_predictions(pred, good + extra)
    output = _invoke_error(gt, pred)
    assert "z=4" in output and "not in the ground truth" in output

    write_predictions(pred, [*good, dict(name="1", point=[1.0, 2.0, 4])])
    assert "z=4 lacks 37 landmark(s): 2, 3, 4, 5, 6, 7, 8, 9, 10, 11 ..." in _invoke_error(gt, pred)

    write_predictions(pred, [e for e in good if e["point"][2] != 3])
    output = _invoke_error(gt, pred)
    assert "z=3" in output and "nothing for ground-truth" in output

    entries = [dict(e, point=list(e["point"])) for e in good]
    entries[40]["point"][0] = float("nan")  # slice 2, landmark 3
    write_predictions(pred, entries)
    output = _invoke_error(gt, pred)
    assert "bad.json: z=2, landmark '3'" in output and "not finite" in output

    write_predictions(pred, [*good, good[5]])
    assert "z=1, landmark '6': predicted twice" in _invoke_error(gt, pred)

    write_predictions(pred, [*good[:-1], dict(name="39", point=[1.0, 1.0, 3])])
    assert "landmark '39'" in _invoke_error(gt, pred)

    pred.write_text(json.dumps(good))  # a bare list, not the challenge's object
    assert "'points' list" in _invoke_error(gt, pred)

    write_predictions(pred, [*good[:-1], dict(name="38", point=[1.0, 1.0])])
    assert "[x, y, z]" in _invoke_error(gt, pred)

    pred.write_text("{not json")
    assert "not valid JSON" in _invoke_error(gt, pred)

    assert "no such file" in _invoke_error(gt, tmp_path / "missing.json")
    assert "no such file" in _invoke_error(tmp_path / "missing-gt.json", release[3])

    other_meta = tmp_path / "other-meta.json"
    other_meta.write_text(json.dumps(dict(images=[dict(z=1, centre="A")])))
    assert "nothing for ground-truth slice(s) z=2, 3" in _invoke_error(
        gt, release[3], "--meta", str(other_meta)
    )


def test_read_predictions_orders_landmarks(tmp_path: Path) -> None:
    entries = [
        dict(name=name, point=[float(k), 2.0 * k, 7]) for k, name in enumerate(LANDMARK_NAMES)
    ]
    path = write_predictions(tmp_path / "p.json", entries[::-1])
    points = read_predictions(path)
    assert list(points) == [7]
    np.testing.assert_array_equal(points[7][:, 0], np.arange(NUM_LANDMARKS))
    np.testing.assert_array_equal(points[7][:, 1], 2 * np.arange(NUM_LANDMARKS))


# --- the MMEngine metric ----------------------------------------------------------------


def write_ann_file(path: Path, points: np.ndarray, spacings: np.ndarray) -> Path:
    """A prepared-style annotations.json: image ids 1..N with their spacing."""
    n, k, _ = points.shape
    images = [
        dict(
            id=i + 1,
            file_name=f"{i + 1:04d}.png",
            width=2400,
            height=2400,
            z=i + 1,
            spacing=float(spacings[i]),
            group="g",
        )
        for i in range(n)
    ]
    annotations = [
        dict(
            id=i + 1,
            image_id=i + 1,
            category_id=1,
            iscrowd=0,
            num_keypoints=k,
            keypoints=np.concatenate([points[i], np.full((k, 1), 2.0)], 1).ravel().tolist(),
            bbox=[0, 0, 2400, 2400],
            area=2400 * 2400,
        )
        for i in range(n)
    ]
    categories = [dict(id=1, name="cephalogram", keypoints=list(LANDMARK_NAMES[:k]), skeleton=[])]
    path.write_text(json.dumps(dict(images=images, annotations=annotations, categories=categories)))
    return path


def pose_sample(image_id: int, pred: np.ndarray, gt: np.ndarray, raw: bool = True) -> dict:
    """A data sample as MMEngine's Evaluator hands it to a metric: the ``to_dict()`` of the
    ``PoseDataSample`` that ``PackPoseInputs`` built and ``TopdownPoseEstimator`` filled
    with ``pred_instances`` (keypoints already in original-image pixels)."""
    from mmengine.structures import InstanceData
    from mmpose.structures import PoseDataSample

    k = gt.shape[0]
    sample = PoseDataSample()
    sample.gt_instances = InstanceData(
        bboxes=np.array([[0, 0, 2399, 2399]], np.float32),
        bbox_scores=np.ones(1, np.float32),
        keypoints=gt[None].astype(np.float32),
        keypoints_visible=np.ones((1, k), np.float32),
    )
    sample.pred_instances = InstanceData(
        keypoints=pred[None].astype(np.float32),
        keypoint_scores=np.ones((1, k), np.float32),
        keypoints_visible=np.ones((1, k), np.float32),
    )
    meta: dict[str, Any] = dict(
        id=image_id,
        img_id=image_id,
        img_path=f"images/{image_id:04d}.png",
        ori_shape=(2400, 2400),
        img_shape=(2400, 2400),
        input_size=(256, 256),
        input_center=np.array([1200, 1200], np.float32),
        input_scale=np.array([3000, 3000], np.float32),
        flip=False,
        flip_indices=list(range(k)),
        category_id=1,
    )
    if raw:
        keypoints = np.concatenate([gt, np.full((k, 1), 2.0)], 1).ravel().tolist()
        meta["raw_ann_info"] = dict(id=image_id, image_id=image_id, keypoints=keypoints)
    sample.set_metainfo(meta)
    return sample.to_dict()


def exact_points(n: int, seed: int) -> np.ndarray:
    """Coordinates on a 1/8-pixel grid: float32 holds them exactly, as it holds
    ``point + 2 mm / spacing`` for spacings 0.1 and 0.125."""
    return np.random.default_rng(seed).integers(0, 8 * 2000, (n, NUM_LANDMARKS, 2)) / 8


@pytest.fixture
def metric_setup(tmp_path: Path) -> tuple[Path, np.ndarray]:
    gt = exact_points(4, seed=2)
    return write_ann_file(tmp_path / "annotations.json", gt, SPACINGS), gt


def run_metric(metric: Any, samples: list[dict], batch: int = 3) -> dict[str, float]:
    for start in range(0, len(samples), batch):
        metric.process([], samples[start : start + batch])
    return metric.evaluate(len(samples))


def test_mm_metric_equals_the_numpy_metric(
    tmp_path: Path, metric_setup: tuple[Path, np.ndarray]
) -> None:
    from mmpose.registry import METRICS

    import cephalo.mm_metric  # noqa: F401  (registers CephalometricMetric)

    ann_file, gt = metric_setup
    rng = np.random.default_rng(3)
    pred = gt + rng.integers(-160, 160, gt.shape) / 8
    metric = METRICS.build(
        dict(
            type="CephalometricMetric",
            ann_file=ann_file.name,
            data_root=str(tmp_path),
            per_landmark_csv=str(tmp_path / "out" / "per_landmark.csv"),
        )
    )
    samples = [pose_sample(i + 1, pred[i], gt[i], raw=i % 2 == 0) for i in range(4)]
    result = run_metric(metric, samples[::-1])
    expected = summarize(radial_errors(pred, gt, SPACINGS))
    assert list(result) == list(SUMMARY)  # no prefix, no per-landmark keys
    assert result == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert metric.per_landmark is not None and len(metric.per_landmark) == NUM_LANDMARKS
    assert metric.per_landmark[MRE].to_numpy() == pytest.approx(
        radial_errors(pred, gt, SPACINGS).mean(axis=0)
    )
    assert (tmp_path / "out" / "per_landmark.csv").read_text().startswith("landmark,MRE,")

    # The `<=` rule holds through the metric too. MMPose's keypoints are float32, which
    # resolves ~1e-4 px at 2000 px, so only shifts float32 holds exactly (2 mm along x:
    # 20 px and 16 px) can land exactly on the threshold here.
    along_x = gt + np.array([2.0, 0.0]) / SPACINGS[:, None, None]
    result = run_metric(metric, [pose_sample(i + 1, p, gt[i]) for i, p in enumerate(along_x)])
    assert result[MRE] == pytest.approx(2.0, abs=1e-9) and result[SDR_2_0] == 100.0


def test_mm_metric_refuses_bad_input(tmp_path: Path, metric_setup: tuple[Path, np.ndarray]) -> None:
    from cephalo.mm_metric import CephalometricMetric

    ann_file, gt = metric_setup
    metric = CephalometricMetric(ann_file=ann_file)
    pred = gt.copy()
    pred[1, 4, 0] = np.nan
    with pytest.raises(DataError, match=r"image id 2, landmark 5: .*not finite"):
        run_metric(metric, [pose_sample(i + 1, pred[i], gt[i]) for i in range(4)])
    with pytest.raises(DataError, match="no image/annotation for validated image id"):
        run_metric(metric, [pose_sample(9, gt[0], gt[0])])
    with pytest.raises(DataError, match="disagree"):
        run_metric(metric, [pose_sample(1, gt[0], gt[1])])
    with pytest.raises(DataError, match="more than once"):
        run_metric(metric, [pose_sample(1, gt[0], gt[0]), pose_sample(1, gt[0], gt[0])])
    coco = json.loads(ann_file.read_text())
    del coco["images"][0]["spacing"]
    (tmp_path / "plain.json").write_text(json.dumps(coco))
    with pytest.raises(DataError, match="no positive 'spacing'"):
        CephalometricMetric(ann_file=tmp_path / "plain.json")
    with pytest.raises(DataError, match="no such file"):
        CephalometricMetric(ann_file=tmp_path / "absent.json")


def test_mm_metric_through_mmpose_pipeline_and_estimator(tmp_path: Path) -> None:
    """Real data samples: a prepared synthetic dataset through MMPose's val pipeline
    (``TopdownAffine``, ``PackPoseInputs``), predictions made in the model's input crop and
    mapped back by ``TopdownPoseEstimator.add_pred_to_datasample``, scored through MMEngine's
    ``Evaluator``: predicting the crop's own ground truth scores (almost) perfectly, and any
    prediction scores what :mod:`cephalo.metrics` says on the image-frame keypoints."""
    from types import SimpleNamespace

    from mmengine.evaluator import Evaluator
    from mmengine.registry import init_default_scope
    from mmengine.structures import InstanceData
    from mmpose.datasets import CocoDataset
    from mmpose.models.pose_estimators import TopdownPoseEstimator

    from cephalo.data.prepare import prepare_release
    from cephalo.data.prepared import load_images
    from cephalo.data.synth import synthesize
    from cephalo.landmarks import mmpose_metainfo

    files = synthesize(tmp_path / "release", 6, scale=0.1)["train"]
    root = prepare_release(files.stack, files.gt, tmp_path / "prepared", folds=2, progress=False)
    init_default_scope("mmpose")
    dataset = CocoDataset(
        data_root=str(root),
        ann_file="annotations.json",
        data_prefix=dict(img="images/"),
        data_mode="topdown",
        metainfo=mmpose_metainfo(),
        test_mode=True,
        pipeline=[
            dict(type="LoadImage"),
            dict(type="GetBBoxCenterScale"),
            dict(type="TopdownAffine", input_size=(64, 80)),
            dict(type="PackPoseInputs", pack_transformed=True),
        ],
    )
    estimator = SimpleNamespace(test_cfg={})  # add_pred_to_datasample only reads test_cfg
    images = {image.image_id: image for image in load_images(root)}
    rng = np.random.default_rng(4)

    def evaluate(noise_px: float) -> tuple[dict[str, float], dict[str, float]]:
        evaluator = Evaluator(
            dict(type="CephalometricMetric", ann_file=str(root / "annotations.json"))
        )
        samples = [dataset[i]["data_samples"] for i in range(len(dataset))]
        preds = [
            InstanceData(
                keypoints=(
                    s.gt_instances.transformed_keypoints
                    + rng.normal(0, noise_px, (1, NUM_LANDMARKS, 2))
                ).astype(np.float32),
                keypoint_scores=np.ones((1, NUM_LANDMARKS), np.float32),
            )
            for s in samples
        ]
        samples = TopdownPoseEstimator.add_pred_to_datasample(estimator, preds, None, samples)
        evaluator.process(samples, data_batch=None)
        ids = [s.img_id for s in samples]
        expected = summarize(
            radial_errors(
                np.stack([s.pred_instances.keypoints[0] for s in samples]),
                np.stack([images[i].points for i in ids]),
                np.array([images[i].spacing for i in ids]),
            )
        )
        return evaluator.evaluate(len(samples)), expected

    result, expected = evaluate(0.0)
    assert result[MRE] < 1e-3 and result[SDR_2_0] == 100.0
    result, expected = evaluate(3.0)
    assert result == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert 0 < result[SDR_2_0] < 100


@pytest.mark.slow
@pytest.mark.parametrize(
    "save_best, rule, expected",
    [
        ("SDR 2.0mm", "greater", {"best_SDR 2.0mm_epoch_1.pth": ("best_score", 100.0)}),
        (
            ["SDR 2.0mm", "MRE"],
            ["greater", "less"],
            {
                "best_SDR 2.0mm_epoch_1.pth": ("best_score_SDR 2.0mm", 100.0),
                "best_MRE_epoch_2.pth": ("best_score_MRE", 1.1),
            },
        ),
    ],
)
def test_checkpoint_hook_saves_best_by_leaderboard_names(
    tmp_path: Path,
    metric_setup: tuple[Path, np.ndarray],
    save_best: str | list[str],
    rule: str | list[str],
    expected: dict[str, tuple[str, float]],
) -> None:
    """A real Runner: three epochs whose validation scores are set by hand, and
    ``save_best`` on the leaderboard names, spaces and dots included; ``SDR 2.0mm``
    (greater) and ``MRE`` (less) pick different epochs."""
    import torch
    from mmengine.dataset import pseudo_collate
    from mmengine.model import BaseModel
    from mmengine.runner import Runner
    from mmengine.structures import InstanceData
    from mmpose.structures import PoseDataSample

    import cephalo.mm_metric  # noqa: F401  (registers CephalometricMetric)

    ann_file, gt = metric_setup
    # Per epoch, the error of each image in mm: epoch 1 has every point within 2 mm (best
    # SDR 2.0mm), epoch 2 the lowest MRE.
    schedule = [[1.9, 1.9, 1.9, 1.9], [0.0, 0.0, 2.2, 2.2], [3.0, 3.0, 3.0, 3.0]]

    class ScheduledModel(BaseModel):
        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))
            self.rounds = 0

        def forward(self, inputs: Any, data_samples: Any = None, mode: str = "tensor") -> Any:
            if mode == "loss":
                return dict(loss=(self.weight**2).sum())
            errors_mm = np.array(schedule[self.rounds])
            self.rounds += 1
            for sample in data_samples:
                i = sample.img_id - 1
                pred = gt[i] + np.array([errors_mm[i] / SPACINGS[i], 0.0])
                sample.pred_instances = InstanceData(keypoints=pred[None].astype(np.float32))
            return data_samples

    def item(i: int) -> dict:
        sample = PoseDataSample(metainfo=dict(img_id=i + 1))
        sample.gt_instances = InstanceData(keypoints=gt[i][None].astype(np.float32))
        return dict(inputs=torch.zeros(1), data_samples=sample)

    items = [item(i) for i in range(4)]
    loader = torch.utils.data.DataLoader(items, batch_size=4, collate_fn=pseudo_collate)
    runner = Runner(
        model=ScheduledModel(),
        work_dir=str(tmp_path / "work"),
        train_dataloader=torch.utils.data.DataLoader(
            items, batch_size=4, collate_fn=pseudo_collate
        ),
        train_cfg=dict(by_epoch=True, max_epochs=3, val_interval=1),
        optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.0)),
        val_dataloader=loader,
        val_cfg=dict(),
        val_evaluator=dict(type="CephalometricMetric", ann_file=str(ann_file)),
        default_hooks=dict(
            checkpoint=dict(type="CheckpointHook", interval=100, save_best=save_best, rule=rule),
            logger=dict(type="LoggerHook", interval=1),
        ),
        default_scope="mmpose",
        experiment_name=f"save-best-{uuid.uuid4().hex[:8]}",
    )
    runner.train()
    saved = {p.name for p in (tmp_path / "work").glob("best_*.pth")}
    assert saved == set(expected)
    for key, score in expected.values():
        assert runner.message_hub.get_info(key) == pytest.approx(score)
    scalars = [
        json.loads(line)
        for line in next((tmp_path / "work").rglob("scalars.json")).read_text().splitlines()
    ]
    assert any("SDR 2.0mm" in row and "MRE std" in row for row in scalars)
