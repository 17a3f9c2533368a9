"""The network of a run: backbone, head, codec and test-time settings, each derived from the
training parameters by one small function (the target sigma in codec units, the head's
feature-map size, the SimCC bins, the heatmap size and the deconvolution layers that produce
it, the flip-test mode, the normalisation)."""

from __future__ import annotations

import math
from typing import Any

from cephalo.models.device import uses_gpu
from cephalo.models.params import DEFAULT_SIGMA, TrainParams
from cephalo.models.zoo import HRNetVariant, RTMPoseVariant, get_variant

SIGMA_REFERENCE_WIDTH = 256
NATIVE_HEATMAP_STRIDE = 4  # HRNet's highest-resolution branch
CSPNEXT_STRIDE = 32
IMAGENET_MEAN = [123.675, 116.28, 103.53]
IMAGENET_STD = [58.395, 57.12, 57.375]


def sigma_input_px(params: TrainParams) -> float:
    """The target Gaussian's std in pixels of this run's model input."""
    sigma = params.sigma if params.sigma is not None else DEFAULT_SIGMA[params.family]
    return sigma * params.input_size[0] / SIGMA_REFERENCE_WIDTH


def simcc_split_ratio(params: TrainParams) -> float:
    """The split ratio, snapped to a multiple of 1 / gcd(width, height) (1/32 or finer) so
    both SimCC vector lengths are whole numbers: MMPose's codec rounds ``side * ratio`` and
    its head truncates it, which disagree by one bin otherwise (a tuned 2.4 at 96 px)."""
    ratio = params.simcc_split_ratio if params.simcc_split_ratio is not None else 2.0
    step = math.gcd(*params.input_size)
    return round(ratio * step) / step


def heatmap_stride(params: TrainParams) -> int:
    return params.heatmap_stride if params.heatmap_stride is not None else NATIVE_HEATMAP_STRIDE


def heatmap_size(params: TrainParams) -> tuple[int, int]:
    stride = heatmap_stride(params)
    return (params.input_size[0] // stride, params.input_size[1] // stride)


def codec(params: TrainParams) -> dict[str, Any]:
    """The keypoint codec: targets for training, decoding for prediction."""
    if params.family == "rtmpose":
        ratio = simcc_split_ratio(params)
        sigma_bins = sigma_input_px(params) * ratio
        return dict(
            type="SimCCLabel",
            input_size=params.input_size,
            sigma=(sigma_bins, sigma_bins),
            simcc_split_ratio=ratio,
            normalize=False,
            use_dark=False,
        )
    sigma_heatmap = sigma_input_px(params) / heatmap_stride(params)
    if (params.codec or "msra") == "udp":
        return dict(
            type="UDPHeatmap",
            input_size=params.input_size,
            heatmap_size=heatmap_size(params),
            sigma=sigma_heatmap,
        )
    if params.dark is False:
        return dict(
            type="MSRAHeatmap",
            input_size=params.input_size,
            heatmap_size=heatmap_size(params),
            sigma=sigma_heatmap,
        )
    return dict(
        type="BoundedDarkHeatmap",  # MMPose's MSRAHeatmap, DARK kept within a pixel
        input_size=params.input_size,
        heatmap_size=heatmap_size(params),
        sigma=sigma_heatmap,
        unbiased=True,
    )


def uses_udp(params: TrainParams) -> bool:
    return params.family == "hrnet" and params.codec == "udp"


def flip_test(params: TrainParams) -> bool:
    """Flip test when asked for, else exactly when the model trained on flipped images."""
    return params.flip if params.flip_test is None else params.flip_test


def shift_flipped_heatmap(params: TrainParams) -> bool:
    """Whether the heatmaps of the mirrored input are shifted by one heatmap pixel before
    averaging. An MSRA heatmap pixel i covers input pixels from i * stride, so mirroring the
    input moves a point by 1 - 1 / stride heatmap pixels more than mirroring its heatmap: 3/4
    of a pixel at stride 4 (the one-pixel shift is nearer), 0 at stride 1 (the winner's, no
    shift). UDP's grid mirrors exactly."""
    return not uses_udp(params) and heatmap_stride(params) > 2


def test_cfg(params: TrainParams) -> dict[str, Any]:
    if params.family == "rtmpose":
        return dict(flip_test=flip_test(params))
    return dict(
        flip_test=flip_test(params),
        flip_mode="heatmap",
        shift_heatmap=shift_flipped_heatmap(params),
    )


def norm_cfg(params: TrainParams) -> dict[str, Any]:
    """Batch norm, synchronised across GPUs when several train one model (statistics of the
    whole batch, not of each GPU's few images)."""
    synced = params.processes > 1 and uses_gpu(params)
    return dict(type="SyncBN" if synced else "BN")


def backbone(params: TrainParams) -> dict[str, Any]:
    variant = get_variant(params.model)
    if isinstance(variant, RTMPoseVariant):
        return dict(
            type="CSPNeXt",
            arch="P5",
            expand_ratio=0.5,
            deepen_factor=variant.deepen_factor,
            widen_factor=variant.widen_factor,
            out_indices=(4,),
            channel_attention=True,
            norm_cfg=norm_cfg(params),
            act_cfg=dict(type="SiLU"),
        )
    assert isinstance(variant, HRNetVariant)
    channels, blocks = variant.branch_channels, variant.num_blocks

    def stage(n_branches: int, block: str = "BASIC") -> dict[str, Any]:
        return dict(
            num_modules=variant.num_modules[n_branches - 1],
            num_branches=n_branches,
            block=block,
            num_blocks=(blocks,) * n_branches,
            num_channels=channels[:n_branches],
        )

    extra = dict(
        stage1=dict(
            num_modules=variant.num_modules[0],
            num_branches=1,
            block="BOTTLENECK",
            num_blocks=(blocks,),
            num_channels=(variant.stem_channels,),
        ),
        stage2=stage(2),
        stage3=stage(3),
        stage4=stage(4),
    )
    return dict(type="HRNet", in_channels=3, extra=extra, norm_cfg=norm_cfg(params))


def head(params: TrainParams, n_landmarks: int) -> dict[str, Any]:
    variant = get_variant(params.model)
    if isinstance(variant, RTMPoseVariant):
        return dict(
            type="RTMCCHead",
            in_channels=variant.out_channels,
            out_channels=n_landmarks,
            input_size=params.input_size,
            in_featuremap_size=tuple(side // CSPNEXT_STRIDE for side in params.input_size),
            simcc_split_ratio=simcc_split_ratio(params),
            final_layer_kernel_size=variant.final_layer_kernel_size,
            gau_cfg=dict(
                hidden_dims=variant.gau_hidden_dims,
                s=variant.gau_s,
                expansion_factor=2,
                dropout_rate=0.0,
                drop_path=0.0,
                act_fn="SiLU",
                use_rel_bias=False,
                pos_enc=False,
            ),
            loss=dict(type="KLDiscretLoss", use_target_weight=True, beta=10.0, label_softmax=True),
            decoder=codec(params),
        )
    assert isinstance(variant, HRNetVariant)
    # Each stride-2 deconvolution doubles the resolution of HRNet's stride-4 output.
    n_deconv = int(math.log2(NATIVE_HEATMAP_STRIDE // heatmap_stride(params)))
    return dict(
        type="HeatmapHead",
        in_channels=variant.width,
        out_channels=n_landmarks,
        deconv_out_channels=(variant.width,) * n_deconv or None,
        deconv_kernel_sizes=(4,) * n_deconv or None,
        loss=heatmap_loss(params),
        decoder=codec(params),
    )


def heatmap_loss(params: TrainParams) -> dict[str, Any]:
    if params.loss == "adaptive-wing":
        return dict(type="AdaptiveWingLoss", use_target_weight=True)
    return dict(type="KeypointMSELoss", use_target_weight=True)


def model(params: TrainParams, n_landmarks: int) -> dict[str, Any]:
    """The pose estimator. A ``pretrained`` file is mapped onto the backbone when the run
    starts, since that needs the file (:func:`cephalo.models.pretrained.with_pretrained`)."""
    return dict(
        type="TopdownPoseEstimator",
        data_preprocessor=dict(
            type="PoseDataPreprocessor", mean=IMAGENET_MEAN, std=IMAGENET_STD, bgr_to_rgb=True
        ),
        backbone=backbone(params),
        head=head(params, n_landmarks),
        test_cfg=test_cfg(params),
    )
