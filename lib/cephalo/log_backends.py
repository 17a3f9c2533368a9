"""MMEngine's MLflow logging, pointed at the tracking server the environment names.

MMEngine's ``MLflowVisBackend`` takes its tracking URI from the config and, without one,
logs to a folder of its own. A tracking URI may hold a password, and a run's config is
written to disk: this backend reads ``MLFLOW_TRACKING_URI`` when the run starts instead, so
the URI never enters a file the kit writes.
"""

from __future__ import annotations

import os
from typing import Any

from mmengine.registry import VISBACKENDS
from mmengine.visualization import MLflowVisBackend


@VISBACKENDS.register_module()
class EnvironmentMLflowVisBackend(MLflowVisBackend):
    """MLflow logging to ``MLFLOW_TRACKING_URI``, else to ``mlruns`` in the run's work dir."""

    def __init__(self, save_dir: str, **kwargs: Any) -> None:
        uri = os.environ.get("MLFLOW_TRACKING_URI")
        super().__init__(save_dir, tracking_uri=uri, **kwargs)
