"""The data pipelines of a run: the training cache's image size, the augmentations (geometric
before the affine, photometric after it) and the train / validation pipelines."""

from __future__ import annotations

from typing import Any

from cephalo.models.network import codec, uses_udp
from cephalo.models.params import TrainParams

BBOX_PADDING = 1.0
"""The bbox is the whole image; padding 1.0 frames it exactly, in training and validation
(the public HRNet baseline trained at 1.0 and validated at 1.25; the kit does not)."""


def cache_long_side(params: TrainParams) -> int:
    """The long side of the training cache's images: twice the input's, so that the affine
    still downsamples (rotation and scale augmentation lose no detail the input can show)."""
    return 2 * max(params.input_size)


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
