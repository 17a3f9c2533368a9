"""Every zoo name without ``tiny`` builds the backbone MMPose publishes under that name:
built through MMPose's registry from the kit's config and from the published config file
shipped inside the installed mmpose package, compared key by key and shape by shape."""

from __future__ import annotations

from pathlib import Path

import mmpose
import pytest
from mmengine.config import Config
from mmpose.utils import register_all_modules

from cephalo.models import network
from cephalo.models.params import TrainParams
from cephalo.models.pretrained import backbone_tensors
from cephalo.models.zoo import VARIANTS

CONFIGS = Path(mmpose.__file__).parent / ".mim" / "configs"
RTMPOSE_COCO = "body_2d_keypoint/rtmpose/coco/rtmpose-{}_8xb256-420e_coco-256x192.py"
HRNET_COCO = "body_2d_keypoint/topdown_heatmap/coco/td-hm_hrnet-{}-210e_coco-256x192.py"
HRNETV2_WFLW = "face_2d_keypoint/topdown_heatmap/wflw/td-hm_hrnetv2-{}_8xb64-60e_wflw-256x256.py"
PUBLISHED = {
    "rtmpose-t": RTMPOSE_COCO.format("t"),
    "rtmpose-s": RTMPOSE_COCO.format("s"),
    "rtmpose-m": RTMPOSE_COCO.format("m"),
    "rtmpose-l": RTMPOSE_COCO.format("l"),
    "hrnet-w32": HRNET_COCO.format("w32_8xb64"),
    "hrnet-w48": HRNET_COCO.format("w48_8xb32"),
    # No COCO HRNet-W18 is published; HRNetV2-W18's stages are the same network. Its head
    # concatenates all four branches (multiscale_output); the kit's, like the COCO HRNets',
    # reads the highest-resolution branch only.
    "hrnet-w18": HRNETV2_WFLW.format("w18"),
}
register_all_modules(init_default_scope=False)

BACKBONE_MILLIONS = {"hrnet-w32": 28.54, "hrnet-w48": 63.59}
"""MMPose's published backbone sizes (parameters, millions)."""


def published_backbone(name: str) -> dict:
    backbone = Config.fromfile(CONFIGS / PUBLISHED[name]).model.backbone.to_dict()
    backbone.pop("init_cfg", None)
    if name == "hrnet-w18":
        backbone["extra"]["stage4"]["multiscale_output"] = False
    return backbone


def parameter_count(backbone: dict) -> int:
    from mmpose.registry import MODELS

    return sum(p.numel() for p in MODELS.build(backbone).parameters())


def test_every_published_name_is_covered():
    assert set(PUBLISHED) == {name for name in VARIANTS if "tiny" not in name}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_the_backbone_is_the_published_one(name):
    ours = network.backbone(TrainParams(model=name))
    theirs = published_backbone(name)
    assert backbone_tensors(ours) == backbone_tensors(theirs)
    assert parameter_count(ours) == parameter_count(theirs)
    if name in BACKBONE_MILLIONS:
        assert round(parameter_count(ours) / 1e6, 2) == BACKBONE_MILLIONS[name]


def test_the_rtmpose_heads_match_too():
    """RTMCCHead is sized from the backbone's width: the published head loads as well."""
    from mmpose.registry import MODELS

    for name in ("rtmpose-t", "rtmpose-m"):
        published = Config.fromfile(CONFIGS / PUBLISHED[name]).model
        ours = network.model(TrainParams(model=name, input_size=(192, 256)), n_landmarks=17)
        shapes = [
            {k: v.shape for k, v in MODELS.build(m["head"]).state_dict().items()}
            for m in (ours, published.to_dict())
        ]
        assert shapes[0] == shapes[1], name


@pytest.mark.parametrize("name", ["rtmpose-tiny", "hrnet-tiny"])
def test_tiny_variants_stay_tiny(name):
    assert parameter_count(network.backbone(TrainParams(model=name))) < 1_000_000
