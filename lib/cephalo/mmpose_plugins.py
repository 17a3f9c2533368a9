"""The kit's additions to MMPose, imported by every run's ``config.py`` (its
``custom_imports``): the challenge metric, the bounded DARK heatmap codec, MLflow logging to
the environment's server, the weights-only checkpoint loader, and Albumentations kept offline.

Importing this module is all MMPose's own tools need to run a run's dumped config:
``tools/train.py config.py --resume``, ``tools/test.py config.py best_*.pth`` and
``mmpose.apis.init_model(config.py, best_*.pth)`` each load the config with
``Config.fromfile``, which imports ``custom_imports``; without the loader, torch >= 2.6 refuses
the kit's (and MMEngine's) checkpoints (see :mod:`cephalo.checkpoints`).
"""

from __future__ import annotations

import os

# Albumentations (the Albumentation transform) asks PyPI for a newer release when it is first
# imported, in every data-loading worker; a run never reaches the network.
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import cephalo.log_backends
import cephalo.mm_metric
import cephalo.models.codecs  # noqa: F401  (registers BoundedDarkHeatmap)
from cephalo.checkpoints import use_safe_checkpoint_loader

use_safe_checkpoint_loader()
