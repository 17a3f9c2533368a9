"""Safe loading of MMEngine checkpoints under torch's ``weights_only`` unpickler.

Since torch 2.6, ``torch.load`` refuses to unpickle anything but tensors and plain
containers unless told otherwise, and MMEngine 0.10.7 calls ``torch.load`` without
arguments, so ``load_from`` / ``resume`` of a checkpoint saved by a Runner fail with
``UnpicklingError: Weights only load failed``. The checkpoint's ``meta`` holds numpy arrays
(the dataset meta) and MMEngine ``HistoryBuffer`` objects (the message hub).

Instead of switching the protection off (``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``), MMEngine's
loader for local files is replaced by one that keeps ``weights_only=True`` and allow-lists
exactly those types, only for the duration of the load. A checkpoint carrying any other
global still fails, with torch's message naming it.
"""

from __future__ import annotations

import os
import pickle
from typing import Any

import numpy as np
import torch
from mmengine.logging.history_buffer import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from cephalo.errors import CephaloError, NotFound


def _numpy_globals() -> list[Any]:
    """numpy's array/scalar reconstructors and dtype classes.

    Registered under the numpy 2 names and the numpy 1 names (``numpy.core...``) that
    checkpoints saved by older environments, such as the OpenMMLab model zoo, refer to.
    """
    reconstruct = np._core.multiarray._reconstruct
    scalar = np._core.multiarray.scalar
    # Object arrays are left out: nothing the kit saves needs them.
    dtype_classes = [
        getattr(np.dtypes, name)
        for name in dir(np.dtypes)
        if name.endswith("DType") and name != "ObjectDType"
    ]
    return [
        np.ndarray,
        np.dtype,
        reconstruct,
        scalar,
        (reconstruct, "numpy.core.multiarray._reconstruct"),
        (scalar, "numpy.core.multiarray.scalar"),
        *dtype_classes,
        bytes,  # an empty array's data is pickled as bytes()
    ]


def _history_buffer_statistic(owner: Any, name: str) -> Any:
    """Stands in for ``getattr`` while unpickling.

    A ``HistoryBuffer`` pickles its statistics methods as ``getattr(HistoryBuffer, "mean")``.
    Allowing the real ``getattr`` would open everything (``getattr(getattr, "__self__")`` is
    the builtins module, and ``eval`` is one more step), so only public attributes of
    ``HistoryBuffer`` itself are served.
    """
    if owner is HistoryBuffer and not name.startswith("_") and callable(vars(owner).get(name)):
        return getattr(owner, name)
    raise pickle.UnpicklingError(
        f"refused getattr({owner!r}, {name!r}) in a checkpoint: only HistoryBuffer statistics "
        "are allowed"
    )


def allowed_globals() -> list[Any]:
    """Everything besides tensors and builtins that an MMEngine/MMPose checkpoint contains."""
    return [
        *_numpy_globals(),
        HistoryBuffer,
        (_history_buffer_statistic, "builtins.getattr"),
    ]


class CheckpointError(CephaloError, pickle.UnpicklingError):
    """A file that is not a checkpoint, or holds something the allow-list refuses."""


def load_checkpoint_file(filename: str | os.PathLike, map_location: Any = None) -> Any:
    """``torch.load`` with ``weights_only=True`` and the MMEngine allow-list; a file that
    cannot be loaded so raises :class:`CheckpointError` naming it."""
    filename = os.path.expanduser(filename)
    if not os.path.isfile(filename):
        raise NotFound(f"{filename} can not be found.")
    try:
        with torch.serialization.safe_globals(allowed_globals()):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except Exception as error:  # garbage raises anything from EOFError to IndexError
        reason = str(error).strip() or type(error).__name__
        raise CheckpointError(f"{filename} is not a checkpoint the kit loads: {reason}") from None


def use_safe_checkpoint_loader() -> None:
    """Make MMEngine load local checkpoints (``load_from``, ``resume``, ``Pretrained``
    init) with :func:`load_checkpoint_file`. Idempotent."""
    CheckpointLoader.register_scheme(prefixes="", loader=load_checkpoint_file, force=True)
