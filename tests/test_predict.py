"""Batched prediction: the documented predictions format holds, raw outputs included, and
the raw outputs map back to the decoded coordinates through the saved crop geometry."""

from __future__ import annotations

import numpy as np
import pytest

from cephalo.landmarks import mmpose_metainfo
from cephalo.models import config as cfg
from cephalo.models.params import TrainParams
from cephalo.predict import predict_images
from cephalo.predictions import load_predictions


def random_model(params: TrainParams):
    """An untrained model whose weights do not depend on what ran before in this process."""
    import torch
    from mmengine.config import Config
    from mmpose.apis import init_model
    from mmpose.datasets.datasets.utils import parse_pose_metainfo

    torch.manual_seed(0)
    model = init_model(Config(dict(model=cfg.model(params, 38))), checkpoint=None, device="cpu")
    model.dataset_meta = parse_pose_metainfo(mmpose_metainfo())
    return model


def images(rng: np.random.Generator) -> list[tuple[int, np.ndarray, float]]:
    sizes = [(90, 120), (130, 100), (64, 64)]
    return [
        (i + 1, rng.integers(0, 255, (h, w, 3), dtype=np.uint8), 0.5)
        for i, (h, w) in enumerate(sizes)
    ]


def to_original(
    points_input: np.ndarray, center: np.ndarray, scale: np.ndarray, input_size: np.ndarray
) -> np.ndarray:
    """Input-frame pixels back to the original image (MMPose's non-UDP affine)."""
    return points_input / input_size * scale + center - 0.5 * scale


@pytest.mark.parametrize("model_name", ["rtmpose-tiny", "hrnet-tiny"])
def test_format_and_raw_outputs(model_name, tmp_path):
    params = TrainParams(model=model_name, input_size=(64, 96), save_raw=True)
    model = random_model(params)
    _, pipeline = cfg.pipelines(params)
    predictions = predict_images(
        model, pipeline, images(np.random.default_rng(0)), batch_size=2, save_raw=True
    )
    path = predictions.save(tmp_path / "p.npz")
    loaded = load_predictions(path)

    assert loaded.image_id.tolist() == [1, 2, 3]
    assert loaded.coords.shape == (3, 38, 2) and loaded.confidence.shape == (3, 38)
    assert loaded.image_size.tolist() == [[120, 90], [100, 130], [64, 64]]
    assert loaded.input_size.tolist() == [64, 96]
    if model_name == "rtmpose-tiny":
        assert loaded.raw["simcc_x"].shape == (3, 38, 128)
        assert loaded.raw["simcc_y"].shape == (3, 38, 192)
        # argmax bin / split ratio = input pixel; the crop geometry maps it back
        x = loaded.raw["simcc_x"].astype(np.float32).argmax(-1) / 2.0
        y = loaded.raw["simcc_y"].astype(np.float32).argmax(-1) / 2.0
        for i in range(3):
            back = to_original(
                np.stack([x[i], y[i]], -1),
                loaded.input_center[i],
                loaded.input_scale[i],
                loaded.input_size,
            )
            np.testing.assert_allclose(
                back, loaded.coords[i], atol=0.6 * loaded.input_scale[i].max() / 64
            )
    else:
        assert loaded.raw["heatmaps"].shape == (3, 38, 24, 16)
