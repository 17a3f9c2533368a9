"""The model zoo and the config builder: every derived field follows from the parameters,
every variant builds and produces outputs of the derived shapes, bad parameters are named."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from cephalo.models import config as cfg
from cephalo.models import device, network, pipelines
from cephalo.models.params import TrainParams, parse_params
from cephalo.models.zoo import VARIANTS

DATA = cfg.DataSpec(
    image_dir=Path("/data/images"),
    train_ann=Path("/data/train.json"),
    val_ann=Path("/data/val.json"),
    landmark_names=tuple("abcdefghij"),
)


def build_model(params: TrainParams, n_landmarks: int = 10):
    from mmpose.registry import MODELS
    from mmpose.utils import register_all_modules

    import cephalo.mmpose_plugins  # noqa: F401  (what a run's config imports: the codecs)

    register_all_modules()
    return MODELS.build(network.model(params, n_landmarks)).eval()


def test_sigma_means_the_same_at_every_size():
    # The organisers' RTMPose-m baseline: 512 px, SimCC sigma 12 at split ratio 2.
    rtm = parse_params(dict(model="rtmpose-m", input_size=(512, 512), sigma=3.0))
    assert network.codec(rtm)["sigma"] == (12.0, 12.0)
    # Their HRNet baseline: 512 px, heatmap sigma 2 at stride 4.
    hrnet = parse_params(dict(model="hrnet-w32", input_size=(512, 512), sigma=4.0))
    assert network.codec(hrnet)["sigma"] == 2.0
    # Same sigma, other size / stride / ratio: the same extent relative to the image.
    for params in [
        dict(model="rtmpose-m", input_size=(256, 256), sigma=3.0, simcc_split_ratio=3.0),
        dict(model="hrnet-w32", input_size=(1024, 1024), sigma=3.0, heatmap_stride=1),
    ]:
        params = parse_params(params)
        assert network.sigma_input_px(params) / params.input_size[0] == pytest.approx(3.0 / 256)
    assert (
        network.codec(
            parse_params(
                dict(model="hrnet-w32", input_size=(1024, 1024), sigma=1.5, heatmap_stride=1)
            )
        )["sigma"]
        == 6.0
    )  # the winner's


def test_family_defaults():
    assert network.codec(TrainParams(model="rtmpose-t"))["simcc_split_ratio"] == 2.0
    hrnet = network.codec(TrainParams(model="hrnet-w18"))
    assert hrnet["type"] == "BoundedDarkHeatmap" and hrnet["unbiased"] is True  # DARK decoding
    assert hrnet["heatmap_size"] == (64, 64)


def test_udp_changes_codec_affine_and_flip_test_together():
    params = TrainParams(model="hrnet-w18", codec="udp")
    assert network.codec(params)["type"] == "UDPHeatmap"
    train, val = pipelines.pipelines(params)
    assert all(t["use_udp"] for t in train + val if t["type"] == "TopdownAffine")
    assert network.test_cfg(params)["shift_heatmap"] is False
    assert network.test_cfg(TrainParams(model="hrnet-w18"))["shift_heatmap"] is True


def test_train_and_validation_crop_alike():
    train, val = pipelines.pipelines(TrainParams(augmentation=1.0))
    crops = [t for t in train + val if t["type"] == "GetBBoxCenterScale"]
    assert len(crops) == 2 and crops[0] == crops[1]
    assert [t["type"] for t in val] == [
        "LoadImage",
        "GetBBoxCenterScale",
        "TopdownAffine",
        "PackPoseInputs",
    ]
    rotate = next(t for t in train if t["type"] == "RandomBBoxTransform")
    assert rotate["rotate_factor"] == 80.0 and rotate["scale_factor"] == (0.5, 1.5)


def test_geometric_transforms_before_the_affine_photometric_after():
    """MMPose's order: the crop is chosen and warped first; pixel transforms then run on the
    input-size crop, not on the full-size image."""
    train, _ = pipelines.pipelines(TrainParams(augmentation=0.5, flip=True))
    assert [t["type"] for t in train] == [
        "LoadImage",
        "GetBBoxCenterScale",
        "RandomFlip",
        "RandomBBoxTransform",
        "TopdownAffine",
        "PhotometricDistortion",
        "GenerateTarget",
        "PackPoseInputs",
    ]


def test_loader_workers_follow_the_device(monkeypatch):
    cpu = device.loader_settings(TrainParams())
    assert cpu == dict(num_workers=0, persistent_workers=False)
    assert device.loader_settings(TrainParams(num_workers=3))["num_workers"] == 3
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(device.os, "cpu_count", lambda: 16)
    gpu = device.loader_settings(TrainParams())
    assert gpu == dict(num_workers=8, persistent_workers=True, pin_memory=True, prefetch_factor=4)
    assert device.loader_settings(TrainParams(processes=4))["num_workers"] == 3  # 16 cores / 4
    assert device.loader_settings(TrainParams(device="cpu"))["num_workers"] == 0


def test_flip_switches():
    plain = TrainParams(flip=False, augmentation=0.0, flip_test=False)
    train, _ = pipelines.pipelines(plain)
    assert [t["type"] for t in train] == [
        "LoadImage",
        "GetBBoxCenterScale",
        "TopdownAffine",
        "GenerateTarget",
        "PackPoseInputs",
    ]
    assert network.test_cfg(plain) == {"flip_test": False}
    flipped = TrainParams(flip=True)
    assert any(t["type"] == "RandomFlip" for t in pipelines.pipelines(flipped)[0])
    # the flip test follows training flips unless set: a model that never saw a mirrored
    # cephalogram cannot predict one
    assert network.test_cfg(flipped)["flip_test"] is True
    assert network.test_cfg(TrainParams())["flip_test"] is False
    assert network.test_cfg(TrainParams(flip_test=True))["flip_test"] is True


def test_config_selects_and_stops_by_the_chosen_metric():
    params = TrainParams(select_by="SDR 2.0mm", early_stop_patience=3)
    config = cfg.build_config(params, DATA, Path("/work"))
    assert config["default_hooks"]["checkpoint"]["save_best"] == "SDR 2.0mm"
    assert config["default_hooks"]["checkpoint"]["rule"] == "greater"
    assert config["custom_hooks"] == [
        dict(type="EarlyStoppingHook", monitor="SDR 2.0mm", rule="greater", patience=3)
    ]
    assert config["val_evaluator"]["ann_file"] == "/data/val.json"
    assert config["model"]["head"]["out_channels"] == 10
    full_fit = cfg.build_config(
        params,
        cfg.DataSpec(DATA.image_dir, DATA.train_ann, None, DATA.landmark_names),
        Path("/work"),
    )
    assert "val_dataloader" not in full_fit and "save_best" not in str(full_fit)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (dict(modle="rtmpose-t"), r"modle: unknown name; did you mean 'model'"),
        (dict(model="rtmpose-x"), r"unknown model 'rtmpose-x'. Did you mean 'rtmpose-t'"),
        (dict(model="hrnet-w32", simcc_split_ratio=2.0), r"simcc_split_ratio applies to rtmpose"),
        (dict(model="rtmpose-s", codec="udp"), r"codec applies to hrnet models only"),
        (dict(model="rtmpose-s", heatmap_stride=2), r"heatmap_stride applies to hrnet"),
        (dict(input_size=(250, 256)), r"multiples of 32"),
        (dict(heatmap_stride=3, model="hrnet-w18"), r"heatmap_stride: Input should be 1, 2 or 4"),
        (dict(sigma=-1), r"sigma: Input should be greater than 0"),
        (dict(pretrained="/nowhere/ckpt.pth"), r"/nowhere/ckpt.pth does not exist"),
    ],
)
def test_bad_parameters_are_named(values, message):
    with pytest.raises(ValueError, match=message):
        parse_params(values)


@pytest.mark.parametrize("name", list(VARIANTS))
def test_every_variant_builds_with_derived_output_shapes(name):
    params = TrainParams(model=name, input_size=(64, 96))
    model = build_model(params)
    with torch.no_grad():
        out = model._forward(torch.zeros(1, 3, 96, 64))
    if params.family == "rtmpose":
        x, y = out
        assert x.shape == (1, 10, 64 * 2) and y.shape == (1, 10, 96 * 2)  # SimCC bins
    else:
        assert out.shape == (1, 10, 96 // 4, 64 // 4)


@pytest.mark.parametrize("stride", [1, 2])
def test_finer_heatmaps_add_deconvolutions(stride):
    params = TrainParams(model="hrnet-tiny", input_size=(64, 64), heatmap_stride=stride)
    assert network.codec(params)["heatmap_size"] == (64 // stride, 64 // stride)
    with torch.no_grad():
        out = build_model(params)._forward(torch.zeros(1, 3, 64, 64))
    assert out.shape == (1, 10, 64 // stride, 64 // stride)


@pytest.mark.parametrize("ratio, size", [(2.4, (96, 96)), (1.73, (64, 96)), (3.14159, (128, 64))])
def test_any_split_ratio_gives_matching_codec_and_head_lengths(ratio, size):
    """A tuned ratio (any float) must not make the head's SimCC vectors one bin shorter than
    the codec's targets."""
    from mmpose.codecs import SimCCLabel

    params = TrainParams(model="rtmpose-tiny", input_size=size, simcc_split_ratio=ratio)
    assert network.simcc_split_ratio(params) == pytest.approx(ratio, abs=1 / 64)
    codec = {k: v for k, v in network.codec(params).items() if k != "type"}
    keypoints = torch.rand(1, 10, 2).numpy() * torch.tensor(size).numpy()
    target = SimCCLabel(**codec).encode(keypoints)
    with torch.no_grad():
        x, y = build_model(params)._forward(torch.zeros(1, 3, size[1], size[0]))
    assert x.shape[-1] == target["keypoint_x_labels"].shape[-1]
    assert y.shape[-1] == target["keypoint_y_labels"].shape[-1]


def test_dark_decoding_keeps_a_flat_heatmap_landmark_near_its_maximum():
    """MMPose's DARK refinement shifts a maximum by any amount; on a flat, noisy heatmap that
    throws the landmark off the image. The kit's codec equals MMPose's on a clean Gaussian
    and keeps every landmark within a pixel of its heatmap maximum."""
    import numpy as np
    from mmpose.codecs import MSRAHeatmap

    from cephalo.models.codecs import BoundedDarkHeatmap

    settings = dict(input_size=(64, 64), heatmap_size=(16, 16), sigma=2.0, unbiased=True)
    ours, theirs = BoundedDarkHeatmap(**settings), MSRAHeatmap(**settings)
    clean = ours.encode(np.array([[[30.3, 21.7]]]), np.ones((1, 1)))["heatmaps"]
    np.testing.assert_array_equal(ours.decode(clean)[0], theirs.decode(clean)[0])
    np.testing.assert_allclose(ours.decode(clean)[0][0, 0], [30.3, 21.7], atol=0.5)

    rng = np.random.default_rng(0)
    worst = {"ours": 0.0, "theirs": 0.0}
    for _ in range(200):
        flat = rng.normal(0, 1e-3, (1, 16, 16)).astype(np.float32)
        y, x = np.unravel_index(flat[0].argmax(), (16, 16))
        for name, codec in (("ours", ours), ("theirs", theirs)):
            shift = np.abs(codec.decode(flat)[0][0, 0] / 4 - [x, y]).max()  # heatmap pixels
            worst[name] = max(worst[name], float(shift))
    assert worst["ours"] <= 1.0 < worst["theirs"], worst


@pytest.mark.parametrize(
    "values",
    [
        dict(model="rtmpose-tiny", input_size=(128, 96)),
        dict(model="hrnet-tiny", input_size=(128, 96)),
        dict(model="hrnet-tiny", input_size=(128, 96), heatmap_stride=1, dark=False),
        dict(model="hrnet-tiny", input_size=(128, 96), codec="udp"),
    ],
    ids=["simcc", "msra-dark", "msra-stride1", "udp"],
)
def test_a_flipped_image_trains_on_the_targets_of_its_mirror(values):
    """The kit's flip path: an image flipped by the train pipeline's RandomFlip gives the
    very input and targets that the mirrored image with mirrored landmarks (x -> w - 1 - x,
    the pixel-centre convention of the prepared annotations) gives unflipped."""
    import numpy as np
    from mmcv.transforms import Compose
    from mmpose.utils import register_all_modules

    import cephalo.mmpose_plugins  # noqa: F401  (BoundedDarkHeatmap)

    register_all_modules()
    params = parse_params(dict(values, flip=True, augmentation=0))
    train, _ = pipelines.pipelines(params)
    flipping = [dict(t, prob=1.0) if t["type"] == "RandomFlip" else t for t in train]
    plain = [t for t in train if t["type"] != "RandomFlip"]
    rng = np.random.default_rng(1)
    height, width, k = 150, 200, 6
    image = rng.integers(0, 255, (height, width, 3), dtype=np.uint8)
    points = rng.uniform([5, 5], [width - 6, height - 6], (1, k, 2)).astype(np.float32)

    def sample(pixels, keypoints, pipeline):
        info = dict(
            img=pixels,
            img_shape=pixels.shape[:2],
            ori_shape=pixels.shape[:2],
            bbox=np.array([[0, 0, width - 1, height - 1]], np.float32),
            bbox_score=np.ones(1, np.float32),
            keypoints=keypoints.copy(),
            keypoints_visible=np.ones((1, k), np.float32),
            flip_indices=list(range(k)),
            id=0,
            img_id=0,
        )
        return Compose(pipeline[1:])(info)  # after LoadImage: the pixels are given

    flipped = sample(image, points, flipping)
    mirrored_points = points.copy()
    mirrored_points[..., 0] = width - 1 - points[..., 0]
    mirrored = sample(np.ascontiguousarray(image[:, ::-1]), mirrored_points, plain)
    assert flipped["data_samples"].metainfo["flip"] is True
    np.testing.assert_array_equal(flipped["inputs"].numpy(), mirrored["inputs"].numpy())

    def targets(packed) -> dict:
        labels = packed["data_samples"].gt_instance_labels
        found = {name: labels.get(name) for name in ("keypoint_x_labels", "keypoint_y_labels")}
        if "gt_fields" in packed["data_samples"]:
            found["heatmaps"] = packed["data_samples"].gt_fields.heatmaps
        return {name: np.asarray(value) for name, value in found.items() if value is not None}

    ours, theirs = targets(flipped), targets(mirrored)
    assert ours and ours.keys() == theirs.keys()
    for name, value in ours.items():
        np.testing.assert_allclose(value, theirs[name], atol=1e-5, err_msg=name)
