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
from cephalo.models.params import DEFAULT_SIGMA, SELECTION_RULES, TrainParams, stage2_params
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


def cache_long_side(params: TrainParams) -> int:
    """The long side of the training cache's images: twice the input's, so that the affine
    still downsamples (rotation and scale augmentation lose no detail the input can show)."""
    return 2 * max(params.input_size)


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


def bbox_transform(params: TrainParams) -> dict[str, Any] | None:
    """MMPose's RandomBBoxTransform: the ranges given, else those ``augmentation`` implies
    (1 = the winner's: MMPose's defaults); None when nothing moves."""
    strength = params.augmentation
    low, high = params.scale_range or (1 - 0.5 * strength, 1 + 0.5 * strength)
    rotation = params.rotation if params.rotation is not None else 80.0 * strength
    shift = params.shift if params.shift is not None else 0.16 * strength
    if (low, high) == (1, 1) and rotation == 0 and shift == 0:
        return None
    return dict(
        type="RandomBBoxTransform",
        shift_factor=shift,
        shift_prob=0.3,
        scale_factor=(low, high),
        scale_prob=1.0,
        rotate_factor=rotation,
        rotate_prob=0.6,
    )


def geometric_augmentations(params: TrainParams) -> list[dict[str, Any]]:
    """Training-only transforms of the crop (flip, shift, scale, rotation), before the affine
    that applies them."""
    transforms: list[dict[str, Any]] = []
    if params.flip:
        transforms.append(dict(type="RandomFlip", direction="horizontal"))
    if (transform := bbox_transform(params)) is not None:
        transforms.append(transform)
    return transforms


def photometric_augmentations(params: TrainParams) -> list[dict[str, Any]]:
    """Training-only transforms of the pixels, after the affine (MMPose's order): they run on
    the input-size crop, not on the full-size image."""
    transforms: list[dict[str, Any]] = []
    strength = params.augmentation
    if strength > 0:
        # Exposure and contrast differ between centres. X-rays have no colour to jitter:
        # saturation stays, and a hue shift leaves grey pixels grey (0 is not accepted).
        transforms.append(
            dict(
                type="PhotometricDistortion",
                brightness_delta=int(32 * strength),
                contrast_range=(1 - 0.5 * strength, 1 + 0.5 * strength),
                saturation_range=(1.0, 1.0),
                hue_delta=1,
            )
        )
    albumentations = [
        dict(type=name, p=p, **settings)
        for name, p, settings in (
            ("Blur", params.blur, {}),
            ("MedianBlur", params.median_blur, {}),
            ("CoarseDropout", params.coarse_dropout, COARSE_DROPOUT_HOLE),
        )
        if p > 0
    ]
    if albumentations:
        transforms.append(dict(type="Albumentation", transforms=albumentations))
    return transforms


COARSE_DROPOUT_HOLE = dict(
    max_holes=1, max_height=0.2, max_width=0.2, min_holes=1, min_height=0.1, min_width=0.1
)
"""One hole, 10-20 % of the crop's side (the organisers' RTMPose recipe)."""


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


def weight_decay(params: TrainParams) -> float:
    if params.weight_decay is not None:
        return params.weight_decay
    return 0.05 if params.optimizer == "adamw" else 0.0


def optim_wrapper(params: TrainParams) -> dict[str, Any]:
    """The optimizer, in MMEngine's mixed-precision wrapper when ``amp`` is on a GPU."""
    optimizer = dict(
        type={"adamw": "AdamW", "adam": "Adam"}[params.optimizer],
        lr=params.lr,
        weight_decay=weight_decay(params),
    )
    wrapper: dict[str, Any] = dict(
        optimizer=optimizer,
        paramwise_cfg=dict(norm_decay_mult=0, bias_decay_mult=0, bypass_duplicate=True),
    )
    if uses_amp(params):
        wrapper.update(type="AmpOptimWrapper", loss_scale="dynamic")
    return wrapper


def uses_amp(params: TrainParams) -> bool:
    """Mixed precision: asked for, and on a GPU (:func:`uses_gpu`)."""
    return params.amp and uses_gpu(params)


def param_schedulers(params: TrainParams) -> list[dict[str, Any]]:
    """A linear warm-up (in epochs or iterations), then ``params.schedule``."""
    schedulers: list[dict[str, Any]] = []
    if params.warmup_iters:
        warmup = dict(by_epoch=False, begin=0, end=params.warmup_iters)
    elif params.warmup_epochs > 0:
        end = min(params.warmup_epochs, params.epochs)
        warmup = dict(by_epoch=True, begin=0, end=end, convert_to_iter_based=True)
    else:
        warmup = {}
    if warmup:
        schedulers.append(dict(type="LinearLR", start_factor=1e-3, **warmup))
    if params.schedule in ("cosine", "flat-cosine"):
        begin = 0 if params.schedule == "cosine" else cosine_from(params)
        schedulers.append(
            dict(
                type="CosineAnnealingLR",
                eta_min=params.lr * params.min_lr_ratio,
                by_epoch=True,
                begin=begin,
                end=params.epochs,
                T_max=params.epochs - begin,
                convert_to_iter_based=True,
            )
        )
    elif params.schedule == "multistep":
        schedulers.append(
            dict(
                type="MultiStepLR",
                milestones=list(params.milestones),
                gamma=params.gamma,
                by_epoch=True,
                begin=0,
                end=params.epochs,
            )
        )
    return schedulers


def cosine_from(params: TrainParams) -> int:
    """The epoch a flat-cosine schedule starts decaying at."""
    return params.cosine_from if params.cosine_from is not None else params.epochs // 2


def hooks(params: TrainParams, validating: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(default hooks, custom hooks): the best checkpoint by the chosen metric, the weights'
    moving average, the stage-2 pipeline switch, early stop."""
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
    if params.ema is not None:
        custom.append(
            dict(
                type="EMAHook",
                ema_type="ExpMomentumEMA",
                momentum=params.ema,
                update_buffers=True,
                priority=49,
            )
        )
    if params.stage2_epochs:
        custom.append(
            dict(
                type="mmdet.PipelineSwitchHook",
                switch_epoch=params.epochs - params.stage2_epochs,
                switch_pipeline=pipelines(stage2_params(params))[0],
            )
        )
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


LOG_BACKENDS = {
    "tensorboard": ("TensorboardVisBackend", "tensorboard"),
    "mlflow": ("EnvironmentMLflowVisBackend", "mlflow"),  # cephalo.log_backends
}
"""``log_to`` name: (MMEngine's backend, the package it needs)."""


def vis_backends(params: TrainParams) -> list[dict[str, Any]]:
    """Where MMEngine logs the training curves: the run's ``scalars.json``, plus ``log_to``."""
    backends = [dict(type="LocalVisBackend")]
    for name in params.log_to:
        backend = dict(type=LOG_BACKENDS[name][0])
        if name == "mlflow":
            backend.update(exp_name="cephalo")
        backends.append(backend)
    return backends


def missing_log_packages(params: TrainParams) -> list[str]:
    """The packages ``log_to`` needs that are not installed."""
    import importlib.util

    packages = [LOG_BACKENDS[name][1] for name in params.log_to]
    return [package for package in packages if importlib.util.find_spec(package) is None]


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
        # What prediction runs (cephalo.predict), named as MMPose's configs name it.
        val_pipeline=val_pipeline,
        train_cfg=dict(by_epoch=True, max_epochs=params.epochs, val_interval=params.val_interval),
        optim_wrapper=optim_wrapper(params),
        param_scheduler=param_schedulers(params),
        default_hooks=default_hooks,
        custom_hooks=custom_hooks,
        env_cfg=dict(cudnn_benchmark=False, dist_cfg=dict(backend=dist_backend(params))),
        vis_backends=vis_backends(params),
        visualizer=dict(
            type="PoseLocalVisualizer",
            vis_backends=vis_backends(params),
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
    return with_cfg_options(config, params.cfg_options)


def with_cfg_options(config: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """``config`` with ``options`` (dotted keys) set, as MMEngine's ``--cfg-options`` does."""
    if not options:
        return config
    from mmengine.config import Config

    merged = Config(config)
    merged.merge_from_dict(options)
    return merged.to_dict()
