"""A run's folder: the one place that knows its layout.

A run is one model trained on one fold. Training (:mod:`cephalo.runs.train`), the batch runner
and the tuner (:mod:`cephalo.experiments.worker`), the ensemble and the benchmarks all read
and write the same folder; each goes through :class:`RunFolder` for its files::

    run.json               the runner's record: experiment, parameters, digest, status
    notebook.ipynb         the executed training notebook
    run.log                the notebook's cells and the training log
    params.json            the validated parameters, defaults filled in
    config.py              the complete MMEngine config (MMPose's own tools run it)
    config.json            the same config as data: what prediction rebuilds the model from
    data/train.json        the fold's training images (COCO subset of the prepared dataset,
                           or of its training cache: cephalo.data.cache)
    data/val.json          its held-out images (absent for a full fit)
    train/                 MMEngine's work dir: checkpoints, logs, scalars (cephalo.runs.work_dir)
    predictions/oof.npz    held-out predictions (cephalo.predictions format)
    predictions/test.npz   test-stack predictions, when a test stack is given
    metrics.json           MRE / SDR on the held-out fold, per landmark, and the mean-shape
                           baseline's figures for comparison

A trained model is rebuilt from ``config.json``, the config it was trained with, executing
no code and whatever the kit's config code has become since; a run made before that file
existed is rebuilt from its ``params.json``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cephalo.files import dump_json
from cephalo.runs.work_dir import WORK_DIR, best_checkpoint


@dataclass(frozen=True)
class RunFolder:
    path: Path

    def __init__(self, path: str | os.PathLike[str]) -> None:
        object.__setattr__(self, "path", Path(path))

    # ------------------------------------------------------------------ the files

    @property
    def state_file(self) -> Path:
        return self.path / "run.json"

    @property
    def notebook(self) -> Path:
        return self.path / "notebook.ipynb"

    @property
    def log(self) -> Path:
        return self.path / "run.log"

    @property
    def params_file(self) -> Path:
        return self.path / "params.json"

    @property
    def config_file(self) -> Path:
        return self.path / "config.py"

    @property
    def config_data(self) -> Path:
        return self.path / "config.json"

    @property
    def train_subset(self) -> Path:
        return self.path / "data" / "train.json"

    @property
    def val_subset(self) -> Path:
        return self.path / "data" / "val.json"

    @property
    def work_dir(self) -> Path:
        return self.path / WORK_DIR

    @property
    def predictions(self) -> Path:
        return self.path / "predictions"

    @property
    def oof(self) -> Path:
        return self.predictions / "oof.npz"

    @property
    def test(self) -> Path:
        return self.predictions / "test.npz"

    @property
    def metrics_file(self) -> Path:
        return self.path / "metrics.json"

    # ------------------------------------------------------------------ reading, writing

    def read_state(self) -> dict[str, Any] | None:
        """The runner's record, or None when the run never started."""
        return _read(self.state_file)

    def write_state(self, state: dict[str, Any]) -> None:
        dump_json(self.state_file, state)

    def read_params(self) -> dict[str, Any] | None:
        return _read(self.params_file)

    def read_metrics(self) -> dict[str, Any] | None:
        return _read(self.metrics_file)

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        dump_json(self.metrics_file, metrics)

    def write_config(self, config: dict[str, Any]) -> None:
        """The resolved config, as code (for MMPose's tools) and as data (for prediction)."""
        from mmengine.config import Config

        Config(config).dump(str(self.config_file))
        dump_json(self.config_data, config)

    def trained_config(self) -> dict[str, Any]:
        """The MMEngine config the run trained with (``val_pipeline`` included): from
        ``config.json``, else rebuilt from ``params.json`` by today's config code."""
        saved = _read(self.config_data)
        if saved is not None:
            return saved
        from cephalo.data.prepared import read_manifest
        from cephalo.models.config import DataSpec, build_config
        from cephalo.models.params import trained_params

        state = self.read_state() or {}
        dataset = Path(state["parameters"]["dataset_dir"])
        data = DataSpec(
            image_dir=dataset / "images",
            train_ann=self.train_subset,
            val_ann=None,
            landmark_names=tuple(read_manifest(dataset)["landmarks"]),
        )
        return build_config(trained_params(self.read_params() or {}), data, self.work_dir)

    def load_model(self, device: str, config: dict[str, Any] | None = None) -> Any:
        """The trained model (its kept checkpoint) on ``device``, in eval mode, built from
        ``config`` (default: :meth:`trained_config`)."""
        from cephalo.runs.predict import load_model

        config = config if config is not None else self.trained_config()
        return load_model(config, best_checkpoint(self.work_dir), device=device)


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
