"""The training cache: reduced images whose landmarks map back exactly, grey only where the
channels are equal, built once per size, resumable after an interruption; the training
pipeline gives the same targets from it as from the full-size images, and a run trained from
it predicts in original-image pixels."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from cephalo.data import cache as cache_module
from cephalo.data.cache import to_original, training_cache
from cephalo.data.prepared import load_images
from cephalo.models import pipelines
from cephalo.models.params import TrainParams


@pytest.fixture
def dataset_copy(dataset: Path, tmp_path: Path) -> Path:
    """A private copy of the shared small dataset (its caches are this test's own)."""
    copy = tmp_path / "prepared"
    shutil.copytree(dataset, copy, ignore=shutil.ignore_patterns("cache"))
    return copy


def test_reduced_images_and_landmarks_that_map_back(dataset_copy):
    folder = training_cache(dataset_copy, 128)
    original = {image.image_id: image for image in load_images(dataset_copy)}
    reduced = load_images(folder)
    coco = {i["id"]: i for i in json.loads((folder / "annotations.json").read_text())["images"]}
    assert len(reduced) == len(original)
    for image in reduced:
        full = original[image.image_id]
        assert max(image.width, image.height) == 128 < max(full.width, full.height)
        pixels = cv2.imread(str(folder / "images" / image.file_name), cv2.IMREAD_UNCHANGED)
        assert pixels.shape == (image.height, image.width)  # one channel: the X-ray is grey
        scale_xy = coco[image.image_id]["scale_xy"]
        assert scale_xy == [image.width / full.width, image.height / full.height]
        np.testing.assert_allclose(to_original(image.points, scale_xy), full.points, atol=1e-9)
        assert image.spacing == pytest.approx(full.spacing * full.width / image.width, rel=0.01)


def test_built_once_per_size_and_never_reused_for_another(dataset_copy):
    first = training_cache(dataset_copy, 128)
    stamp = (first / "cache.json").stat().st_mtime_ns
    assert training_cache(dataset_copy, 128) == first
    assert (first / "cache.json").stat().st_mtime_ns == stamp
    other = training_cache(dataset_copy, 96)
    assert other != first and max(load_images(other)[0].width, load_images(other)[0].height) == 96


def test_a_cache_of_another_dataset_is_rebuilt(dataset_copy):
    folder = training_cache(dataset_copy, 128)
    manifest = json.loads((folder / "cache.json").read_text())
    manifest["dataset"]["n_images"] = 999  # as if made from another preparation
    (folder / "cache.json").write_text(json.dumps(manifest))
    training_cache(dataset_copy, 128)
    assert json.loads((folder / "cache.json").read_text())["dataset"]["n_images"] == 12


def test_colour_stays_colour(dataset_copy):
    name = load_images(dataset_copy)[0].file_name
    path = dataset_copy / "images" / name
    pixels = cv2.imread(str(path))
    pixels[..., 2] = 255 - pixels[..., 2]  # channels no longer equal
    cv2.imwrite(str(path), pixels)
    folder = training_cache(dataset_copy, 128)
    assert cv2.imread(str(folder / "images" / name), cv2.IMREAD_UNCHANGED).ndim == 3


def test_an_interrupted_build_resumes_with_what_it_made(dataset_copy, monkeypatch):
    real, made = cache_module._reduce, []

    def fails_after_five(source, target, size):
        if len(made) == 5:
            raise KeyboardInterrupt
        real(source, target, size)
        made.append(target)

    monkeypatch.setattr(cache_module, "_reduce", fails_after_five)
    with pytest.raises(KeyboardInterrupt):
        training_cache(dataset_copy, 128)
    folder = cache_module.cache_dir(dataset_copy, 128)
    assert not folder.exists()  # nothing that looks complete
    stamps = {path.name: path.stat().st_mtime_ns for path in made}
    monkeypatch.setattr(cache_module, "_reduce", real)
    training_cache(dataset_copy, 128)
    assert len(list((folder / "images").iterdir())) == 12
    assert {name: (folder / "images" / name).stat().st_mtime_ns for name in stamps} == stamps


def pipeline_outputs(root: Path, params: TrainParams, seed: int) -> list[dict]:
    """The training pipeline's outputs for every image of a COCO folder, each drawn with
    the same random numbers."""
    from mmcv.transforms import Compose
    from mmpose.datasets import CocoDataset
    from mmpose.utils import register_all_modules

    from cephalo.landmarks import mmpose_metainfo

    register_all_modules()
    train, _ = pipelines.pipelines(params)
    dataset = CocoDataset(
        data_root=str(root),
        ann_file="annotations.json",
        data_prefix=dict(img="images/"),
        metainfo=mmpose_metainfo(),
        pipeline=[],
    )
    transform = Compose(train[:-1])  # up to the targets, before packing
    outputs = []
    for i in range(len(dataset)):
        np.random.seed(seed + i)
        outputs.append(transform(dataset[i]))
    return outputs


@pytest.mark.parametrize("model", ["rtmpose-tiny", "hrnet-tiny"])
def test_the_pipeline_gives_the_same_targets_from_the_cache(dataset_copy, model):
    params = TrainParams(model=model, input_size=(64, 64), augmentation=1.0)
    folder = training_cache(dataset_copy, pipelines.cache_long_side(params))
    full, cached = (pipeline_outputs(root, params, seed=3) for root in (dataset_copy, folder))
    for a, b in zip(full, cached, strict=True):
        # the same landmarks in the model's input, to interpolation error (1/5 input pixel)
        np.testing.assert_allclose(a["transformed_keypoints"], b["transformed_keypoints"], atol=0.2)
        # the same input image, to interpolation error
        difference = np.abs(a["img"].astype(float) - b["img"].astype(float))
        assert difference.mean() < 6, difference.mean()
        # and targets that peak at the same bin / heatmap pixel, give or take one
        for key in ("keypoint_x_labels", "keypoint_y_labels", "heatmaps"):
            if key in a:
                peaks = [peak_positions(np.asarray(t)) for t in (a[key], b[key])]
                assert np.abs(peaks[0] - peaks[1]).max() <= 1, key


def peak_positions(target: np.ndarray) -> np.ndarray:
    """Each landmark's target maximum: a bin index (SimCC) or (row, column) (heatmaps)."""
    if target.ndim == 3 and target.shape[0] == 1:  # SimCC: (1, K, bins)
        return target[0].argmax(axis=-1)
    flat = target.reshape(target.shape[0], -1).argmax(axis=1)  # heatmaps: (K, H, W)
    return np.stack(np.unravel_index(flat, target.shape[1:]), axis=1)


@pytest.mark.slow
def test_a_run_from_the_cache_predicts_in_original_pixels(dataset, tmp_path):
    """Each run validates while training on the images it trains from (the cache's, in
    their frame and spacing) and then predicts the held-out fold at full size. The best
    epoch's two scores agree, with the cache as without it: the predictions are in
    original-image pixels (a frame error would scale them, and the error in mm, by the
    cache's factor of about 0.6)."""
    from cephalo.checkpoints import load_checkpoint_file
    from cephalo.predictions import load_predictions
    from cephalo.runs.train import run_fold
    from cephalo.runs.work_dir import best_checkpoint

    params = dict(
        model="hrnet-tiny", input_size=(64, 64), sigma=8.0, epochs=2, lr=5e-3, batch_size=4
    )
    oof = {}
    for cached in (True, False):
        run = tmp_path / f"cache-{cached}"
        metrics = run_fold(dict(params, training_cache=cached), dataset, 0, run)
        saved = load_checkpoint_file(best_checkpoint(run / "train"))
        in_training = saved["message_hub"]["runtime_info"]["best_score"]
        assert metrics["MRE"] == pytest.approx(in_training, rel=0.05), cached
        oof[cached] = load_predictions(run / "predictions" / "oof.npz")
    assert "cache/long128/images" in (tmp_path / "cache-True" / "config.py").read_text()
    assert "cache/" not in (tmp_path / "cache-False" / "config.py").read_text()
    assert oof[True].image_id.tolist() == oof[False].image_id.tolist()
    np.testing.assert_array_equal(oof[True].image_size, oof[False].image_size)
