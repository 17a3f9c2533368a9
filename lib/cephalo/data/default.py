"""The built-in synthetic dataset: what every command, notebook and the demo use when no
dataset is named. Made on first use under ``data/synthetic/`` and reused after."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cephalo.data.prepare import prepare_release
from cephalo.data.synth import synthesize
from cephalo.paths import DATA

SYNTHETIC = DATA / "synthetic"


def synthetic_release(
    root: str | os.PathLike[str] = SYNTHETIC / "raw",
    n_images: int = 60,
    n_test: int = 20,
    scale: float = 0.15,
    seed: int = 0,
) -> Path:
    """A synthetic release in ``root``, generated unless one with these settings is there."""
    root = Path(root)
    wanted = {"train": n_images, "test": n_test}
    if not all(
        _generated(root / f"{split}-meta.json", n, scale, seed) for split, n in wanted.items() if n
    ):
        synthesize(root, n_images, n_test=n_test, scale=scale, seed=seed)
    return root


def _generated(meta: Path, n_images: int, scale: float, seed: int) -> bool:
    # The meta file is written last, so its presence means the split is complete.
    if not meta.is_file():
        return False
    info = json.loads(meta.read_text())
    return (info["seed"], info["scale"], len(info["images"])) == (seed, scale, n_images)


def synthetic_dataset(
    root: str | os.PathLike[str] = SYNTHETIC, folds: int = 5, progress: bool = True
) -> Path:
    """The default prepared dataset (``root/prepared``), made from ``root/raw`` if needed."""
    root = Path(root)
    raw = synthetic_release(root / "raw")
    return prepare_release(
        raw / "train_stack.mha",
        raw / "train-gt.json",
        root / "prepared",
        folds=folds,
        progress=progress,
    )
