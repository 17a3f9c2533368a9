"""Batched prediction: the documented predictions format holds, raw outputs included, and
the raw outputs map back to the decoded coordinates through the saved crop geometry."""

from __future__ import annotations

import numpy as np
import pytest

from cephalo.landmarks import mmpose_metainfo
from cephalo.models import network, pipelines
from cephalo.models.params import TrainParams
from cephalo.predictions import load_predictions
from cephalo.runs.predict import predict_images


def random_model(params: TrainParams):
    """An untrained model whose weights do not depend on what ran before in this process."""
    import torch
    from mmengine.config import Config
    from mmpose.apis import init_model
    from mmpose.datasets.datasets.utils import parse_pose_metainfo

    import cephalo.mmpose_plugins  # noqa: F401  (the kit's codecs)

    torch.manual_seed(0)
    model = init_model(Config(dict(model=network.model(params, 38))), checkpoint=None, device="cpu")
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
    _, pipeline = pipelines.pipelines(params)
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


def tracking_model(params: TrainParams):
    """A stand-in for a trained model that sees what it is shown: its outputs are the input
    image's first channel, resampled onto the codec's grid (SimCC: its row and column
    profiles; heatmaps: the image itself), so it finds a bright blob where the blob is."""
    import torch
    import torch.nn.functional as F

    model = random_model(params)
    width, height = params.input_size
    model.extract_feat = lambda inputs: (inputs,)

    def grid(n_bins: int, size: int, udp: bool) -> torch.Tensor:
        """Each bin's position in input pixels, as the codec decodes it."""
        if udp:
            return torch.arange(n_bins) * (size - 1) / (n_bins - 1)
        return torch.arange(n_bins) * size / n_bins

    def sample(image: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
        gx, gy = (xs + 0.5) / width * 2 - 1, (ys + 0.5) / height * 2 - 1
        where = torch.stack(torch.meshgrid(gy, gx, indexing="ij")[::-1], -1)
        where = where[None].expand(len(image), -1, -1, -1)
        return F.grid_sample(image, where, align_corners=False)

    def forward(feats):
        image = feats[-1][:, :1]
        image = image - image.amin(dim=(2, 3), keepdim=True)
        if params.family == "rtmpose":
            ratio = network.simcc_split_ratio(params)
            xs = grid(int(width * ratio), width, False)
            ys = grid(int(height * ratio), height, False)
            x = sample(image, xs, torch.arange(height)).sum(2)  # (B, 1, bins): column sums
            y = sample(image, torch.arange(width), ys).sum(3)
            x, y = x / x.amax(-1, True), y / y.amax(-1, True)
            return x.expand(-1, 38, -1), y.expand(-1, 38, -1)
        columns, rows = network.heatmap_size(params)
        udp = network.uses_udp(params)
        heatmap = sample(image, grid(columns, width, udp), grid(rows, height, udp))
        return (heatmap / heatmap.amax(dim=(2, 3), keepdim=True)).expand(-1, 38, -1, -1)

    model.head.forward = forward
    return model


@pytest.mark.parametrize(
    "values, tolerance",
    [
        (dict(model="rtmpose-tiny"), 0.5),  # SimCC decodes to the nearest bin: 0.5 px
        (dict(model="hrnet-tiny"), 0.05),  # MSRA, DARK, stride 4, shifted heatmaps
        (dict(model="hrnet-tiny", heatmap_stride=2), 0.05),
        (dict(model="hrnet-tiny", heatmap_stride=1), 0.05),
        (dict(model="hrnet-tiny", codec="udp"), 0.05),
    ],
    ids=["simcc", "msra-stride4", "msra-stride2", "msra-stride1", "udp"],
)
def test_the_flip_test_mirrors_exactly(values, tolerance):
    """With the flip test, a model that tracks its input finds a blob where it is, and on
    the mirrored image at the mirrored place, to within ``tolerance`` input pixels: MMPose's
    flip test alone is off by up to half an input pixel (cephalo.runs.predict.flip_test_bias)."""
    from cephalo.runs.predict import flip_test_bias

    params = TrainParams(**values, input_size=(128, 96), flip=True)
    model = tracking_model(params)
    _, pipeline = pipelines.pipelines(params)
    width, height, blob = 512, 384, np.array([150.3, 240.7])
    rows, columns = np.mgrid[0:height, 0:width]

    def predict(centre: np.ndarray) -> np.ndarray:
        spot = np.exp(-((columns - centre[0]) ** 2 + (rows - centre[1]) ** 2) / (2 * 24.0**2))
        image = np.repeat((spot * 255).astype(np.uint8)[..., None], 3, axis=2)
        return predict_images(model, pipeline, [(1, image, 0.1)]).coords[0, 0]

    input_px = width / params.input_size[0]  # image pixels per input pixel
    found = predict(blob)
    mirror = np.array([width - 1 - blob[0], blob[1]])
    found_mirrored = predict(mirror)
    assert np.abs(found - blob).max() / input_px <= tolerance
    assert np.abs(found_mirrored - mirror).max() / input_px <= tolerance
    # what MMPose's flip test gives without the correction
    if flip_test_bias(model):
        model.test_cfg = dict(model.test_cfg, flip_test=False)
        plain = predict(blob)
        assert np.abs(plain - blob).max() / input_px <= tolerance  # not the flip's doing


@pytest.mark.slow
def test_a_member_predicts_as_trained_whatever_the_config_code_becomes(
    dataset, tmp_path, monkeypatch
):
    """The ensemble rebuilds a fold model from the config it trained with (config.json),
    not from its parameters through today's config code: a changed default (here the crop's
    padding) leaves its predictions as they were. A run without config.json (made
    before it existed) is rebuilt from params.json, and then the change shows."""
    from cephalo.data.prepared import load_images, prepared_images
    from cephalo.ensemble.members import Predictor
    from cephalo.runs.folder import RunFolder
    from cephalo.runs.train import run_fold
    from cephalo.tta import IDENTITY

    run = tmp_path / "run"
    params = dict(model="rtmpose-tiny", input_size=[64, 64], epochs=2, device="cpu")
    run_fold(params, dataset, 0, run)
    RunFolder(run).write_state(dict(parameters=dict(dataset_dir=str(dataset))))
    images = load_images(dataset)[:3]

    def predicted() -> np.ndarray:
        return Predictor.of_run(run).predict(prepared_images(dataset, images), IDENTITY).coords

    before = predicted()
    monkeypatch.setattr(pipelines, "BBOX_PADDING", 1.25)
    np.testing.assert_array_equal(predicted(), before)
    RunFolder(run).config_data.unlink()
    assert np.abs(predicted() - before).max() > 0.01
