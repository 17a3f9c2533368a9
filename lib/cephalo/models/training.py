"""How a model trains: the optimizer and its weight decay, mixed precision, the learning-rate
schedule, the hooks (best checkpoint, EMA, stage 2, early stop) and the logging backends."""

from __future__ import annotations

from typing import Any

from cephalo.metrics import DIRECTION
from cephalo.models.device import uses_gpu
from cephalo.models.params import TrainParams, stage2_params
from cephalo.models.pipelines import pipelines


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
    rule = DIRECTION[params.select_by]
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
