"""One function from :class:`~cephalo.models.params.TrainParams` to a complete MMEngine config.

Every setting that depends on another is derived here, once, by a small function: the target
sigma in codec units, the head's feature-map size, the SimCC bins, the heatmap size and the
deconvolution layers that produce it, the codec, the flip-test mode, the pipelines, the
learning-rate schedule. Train and validation crops share one bbox padding (the public HRNet
baseline trained at 1.0 and validated at 1.25; the kit does not).
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cephalo.errors import DeviceError
from cephalo.landmarks import mmpose_metainfo
from cephalo.models.params import DEFAULT_SIGMA, SELECTION_RULES, TrainParams
from cephalo.models.zoo import HRNetVariant, RTMPoseVariant, get_variant

BBOX_PADDING = 1.0
"""The bbox is the whole image; padding 1.0 frames it exactly, in training and validation."""
SIGMA_REFERENCE_WIDTH = 256
NATIVE_HEATMAP_STRIDE = 4  # HRNet's highest-resolution branch
CSPNEXT_STRIDE = 32
IMAGENET_MEAN = [123.675, 116.28, 103.53]
IMAGENET_STD = [58.395, 57.12, 57.375]


@dataclass(frozen=True)
class DataSpec:
    """Where a run's data is: COCO files (subsets of a prepared dataset) and its images."""

    image_dir: Path
    train_ann: Path
    val_ann: Path | None
    landmark_names: tuple[str, ...]


# ------------------------------------------------------------------ derived settings


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
    return dict(
        type="BoundedDarkHeatmap",  # MMPose's MSRAHeatmap, DARK kept within a pixel
        input_size=params.input_size,
        heatmap_size=heatmap_size(params),
        sigma=sigma_heatmap,
        unbiased=True,
    )


def cache_long_side(params: TrainParams) -> int:
    """The long side of the training cache's images: twice the input's, so that the affine
    still downsamples (rotation and scale augmentation lose no detail the input can show)."""
    return 2 * max(params.input_size)


def uses_udp(params: TrainParams) -> bool:
    return params.family == "hrnet" and params.codec == "udp"


def flip_test(params: TrainParams) -> bool:
    """Flip test when asked for, else exactly when the model trained on flipped images."""
    return params.flip if params.flip_test is None else params.flip_test


def test_cfg(params: TrainParams) -> dict[str, Any]:
    if params.family == "rtmpose":
        return dict(flip_test=flip_test(params))
    # MSRA heatmaps of a flipped image are off by one pixel; UDP's are not.
    return dict(
        flip_test=flip_test(params), flip_mode="heatmap", shift_heatmap=not uses_udp(params)
    )


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
            norm_cfg=dict(type="BN"),
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
    return dict(type="HRNet", in_channels=3, extra=extra)


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
        loss=dict(type="KeypointMSELoss", use_target_weight=True),
        decoder=codec(params),
    )


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


def geometric_augmentations(params: TrainParams) -> list[dict[str, Any]]:
    """Training-only transforms of the crop (flip, shift, scale, rotation), before the affine
    that applies them; scaled by ``params.augmentation`` (1 = the winner's)."""
    transforms: list[dict[str, Any]] = []
    if params.flip:
        transforms.append(dict(type="RandomFlip", direction="horizontal"))
    strength = params.augmentation
    if strength > 0:
        transforms.append(
            dict(
                type="RandomBBoxTransform",
                shift_factor=0.16 * strength,
                shift_prob=0.3,
                scale_factor=(1 - 0.5 * strength, 1 + 0.5 * strength),
                scale_prob=1.0,
                rotate_factor=80.0 * strength,
                rotate_prob=0.6,
            )
        )
    return transforms


def photometric_augmentations(params: TrainParams) -> list[dict[str, Any]]:
    """Training-only transforms of the pixels, after the affine (MMPose's order): they run on
    the input-size crop, not on the full-size image."""
    strength = params.augmentation
    if strength == 0:
        return []
    # Exposure and contrast differ between centres. X-rays have no colour to jitter:
    # saturation stays, and a hue shift leaves grey pixels grey (0 is not accepted).
    return [
        dict(
            type="PhotometricDistortion",
            brightness_delta=int(32 * strength),
            contrast_range=(1 - 0.5 * strength, 1 + 0.5 * strength),
            saturation_range=(1.0, 1.0),
            hue_delta=1,
        )
    ]


def pipelines(params: TrainParams) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, validation) pipelines: the same crop, the same affine, augmentation only in
    training."""
    load = [dict(type="LoadImage"), dict(type="GetBBoxCenterScale", padding=BBOX_PADDING)]
    affine = dict(type="TopdownAffine", input_size=params.input_size, use_udp=uses_udp(params))
    train = [
        *load,
        *geometric_augmentations(params),
        affine,
        *photometric_augmentations(params),
        dict(type="GenerateTarget", encoder=codec(params)),
        dict(type="PackPoseInputs"),
    ]
    val = [*load, affine, dict(type="PackPoseInputs")]
    return train, val


def param_schedulers(params: TrainParams) -> list[dict[str, Any]]:
    schedulers: list[dict[str, Any]] = []
    warmup = min(params.warmup_epochs, params.epochs)
    if warmup > 0:
        schedulers.append(
            dict(
                type="LinearLR",
                start_factor=1e-3,
                by_epoch=True,
                begin=0,
                end=warmup,
                convert_to_iter_based=True,
            )
        )
    if params.schedule == "cosine":
        schedulers.append(
            dict(
                type="CosineAnnealingLR",
                eta_min=params.lr * 0.01,
                by_epoch=True,
                begin=0,
                end=params.epochs,
                convert_to_iter_based=True,
            )
        )
    return schedulers


def hooks(params: TrainParams, validating: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(default hooks, custom hooks): the best checkpoint by the chosen metric, early stop."""
    rule = SELECTION_RULES[params.select_by]
    # MMEngine removes the checkpoints beyond ``max_keep_ckpts`` before it writes the next
    # one and moves ``last_checkpoint`` only after: keeping two keeps the one the pointer
    # names while a save is under way, for a run killed then to resume from.
    checkpoint = dict(type="CheckpointHook", interval=params.val_interval, max_keep_ckpts=2)
    if validating:
        checkpoint.update(save_best=params.select_by, rule=rule)
    default = dict(
        checkpoint=checkpoint,
        logger=dict(type="LoggerHook", interval=10),
        visualization=dict(type="PoseVisualizationHook", enable=False),
    )
    custom = []
    if validating and params.early_stop_patience:
        custom.append(
            dict(
                type="EarlyStoppingHook",
                monitor=params.select_by,
                rule=rule,
                patience=params.early_stop_patience,
            )
        )
    return default, custom


def num_workers(params: TrainParams) -> int:
    """Data-loading processes per training process: as asked; else, on a GPU, the machine's
    cores shared between the training processes (at most 8 each: decoding and augmenting at
    the real image size is what keeps a GPU waiting), and none on a CPU, whose cores train."""
    if params.num_workers is not None:
        return params.num_workers
    if not uses_gpu(params):
        return 0
    return max(1, min(8, (os.cpu_count() or 1) // params.processes - 1))


def loader_settings(params: TrainParams) -> dict[str, Any]:
    """A data loader's worker settings: workers kept alive between epochs, pinned memory and
    a deeper prefetch on a GPU."""
    workers = num_workers(params)
    settings: dict[str, Any] = dict(num_workers=workers, persistent_workers=workers > 0)
    if uses_gpu(params):
        settings["pin_memory"] = True
    if workers > 0:
        settings["prefetch_factor"] = 4 if uses_gpu(params) else 2
    return settings


def uses_gpu(params: TrainParams) -> bool:
    """Whether the run trains and predicts on a GPU: when there is one, unless told not to.
    The one device decision: training, its loaders, the ensemble and ``cephalo predict``."""
    import torch

    available = torch.cuda.is_available()
    if params.device == "cuda" and not available:
        raise DeviceError(
            "device: cuda, but torch sees no GPU (CUDA_VISIBLE_DEVICES="
            f"{os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')!r}, torch {torch.__version__}); "
            "use device: auto to fall back to the CPU"
        )
    return params.device != "cpu" and available


def inference_device(params: TrainParams) -> str:
    """Where a trained model predicts: the first visible GPU, or the CPU (:func:`uses_gpu`)."""
    return "cuda:0" if uses_gpu(params) else "cpu"


def dist_backend(params: TrainParams) -> str:
    """NCCL between GPUs, gloo between CPU processes."""
    return "nccl" if uses_gpu(params) else "gloo"


# ------------------------------------------------------------------------ the config


def build_config(params: TrainParams, data: DataSpec, work_dir: Path) -> dict[str, Any]:
    """The complete MMEngine config of one training run."""
    train_pipeline, val_pipeline = pipelines(params)
    metainfo = mmpose_metainfo(data.landmark_names)

    def dataset(ann_file: Path, pipeline: list[dict[str, Any]], test_mode: bool) -> dict:
        return dict(
            type="CocoDataset",
            data_root="",
            data_mode="topdown",
            ann_file=str(ann_file),
            data_prefix=dict(img=f"{data.image_dir}/"),
            metainfo=metainfo,
            pipeline=pipeline,
            test_mode=test_mode,
        )

    def loader(ann_file: Path, pipeline: list[dict[str, Any]], train: bool) -> dict:
        return dict(
            batch_size=params.batch_size,
            **loader_settings(params),
            drop_last=False,
            sampler=dict(type="DefaultSampler", shuffle=train),
            dataset=dataset(ann_file, pipeline, test_mode=not train),
        )

    validating = data.val_ann is not None
    default_hooks, custom_hooks = hooks(params, validating)
    config: dict[str, Any] = dict(
        default_scope="mmpose",
        # The metric and the weights-only loader, so MMPose's own tools run this config too.
        custom_imports=dict(imports=["cephalo.mmpose_plugins"], allow_failed_imports=False),
        work_dir=str(work_dir),
        model=model(params, len(data.landmark_names)),
        train_dataloader=loader(data.train_ann, train_pipeline, train=True),
        train_cfg=dict(by_epoch=True, max_epochs=params.epochs, val_interval=params.val_interval),
        optim_wrapper=dict(
            optimizer=dict(type="AdamW", lr=params.lr, weight_decay=params.weight_decay),
            paramwise_cfg=dict(norm_decay_mult=0, bias_decay_mult=0, bypass_duplicate=True),
        ),
        param_scheduler=param_schedulers(params),
        default_hooks=default_hooks,
        custom_hooks=custom_hooks,
        env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend=dist_backend(params))),
        vis_backends=[dict(type="LocalVisBackend")],
        visualizer=dict(
            type="PoseLocalVisualizer",
            vis_backends=[dict(type="LocalVisBackend")],
            name="visualizer",
        ),
        log_processor=dict(type="LogProcessor", window_size=10, by_epoch=True),
        log_level="INFO",
        randomness=dict(seed=params.seed),
        load_from=None,
        resume=False,
    )
    if validating:
        # MMPose's configs test on the validation set; so does tools/test.py on this one.
        held_out = loader(data.val_ann, val_pipeline, train=False)
        evaluator = dict(type="CephalometricMetric", ann_file=str(data.val_ann))
        config.update(
            val_dataloader=held_out,
            val_cfg=dict(),
            val_evaluator=evaluator,
            test_dataloader=copy.deepcopy(held_out),
            test_cfg=dict(),
            test_evaluator=dict(evaluator),
        )
    return config
