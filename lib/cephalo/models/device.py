"""The one device decision: whether a run trains and predicts on a GPU, and what follows from
it (data-loader workers, the inference device, the distributed backend)."""

from __future__ import annotations

import os
from typing import Any

from cephalo.errors import DeviceError
from cephalo.models.params import TrainParams


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
