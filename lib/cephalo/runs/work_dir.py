"""What MMEngine's training leaves in a run folder's work dir (``train/``): the checkpoint a
trained run keeps, the one an interrupted run resumes from, and the scalars it logged.

A fold run on a GPU takes hours. One that was killed or failed after its first checkpoint
goes on from there when it runs again with the same settings: MMEngine's resume restores the
weights, the optimizer, the schedule, the epoch and the best score so far, through the kit's
weights-only loader. The batch runner and the tuner keep such a run's folder
(:func:`cephalo.experiments.worker.prepare_run`, which records the epoch in ``run.json``)
and :func:`cephalo.runs.train.run_fold` resumes it; a run whose settings changed starts afresh.
"""

from __future__ import annotations

import re
from pathlib import Path

from cephalo.errors import NotFound

WORK_DIR = "train"  # MMEngine's work dir inside a run folder
_POINTER = "last_checkpoint"  # written by MMEngine's CheckpointHook beside each checkpoint
_EPOCH = re.compile(r"epoch_(\d+)\.pth")


def resume_point(run_dir: str | Path) -> Path | None:
    """The last checkpoint the run's training saved, if it is still there. Looked up by name
    in the run's own work dir: MMEngine's pointer file holds an absolute path, which a moved
    folder (a retried tuning trial's) no longer matches."""
    pointer = Path(run_dir) / WORK_DIR / _POINTER
    if not pointer.is_file():
        return None
    checkpoint = pointer.parent / Path(pointer.read_text().strip()).name
    return checkpoint if checkpoint.is_file() else None


def checkpoint_epoch(checkpoint: Path) -> int:
    """The epoch after which ``epoch_N.pth`` was saved."""
    found = _EPOCH.fullmatch(checkpoint.name)
    if found is None:
        raise ValueError(f"{checkpoint}: not an epoch checkpoint (epoch_N.pth)")
    return int(found.group(1))


def best_checkpoint(work_dir: Path) -> Path:
    """The checkpoint a run keeps: the best by its selection metric, else the last epoch's."""
    best = sorted(work_dir.glob("best_*.pth"), key=lambda p: p.stat().st_mtime)
    if best:
        return best[-1]
    last = sorted(work_dir.glob("epoch_*.pth"), key=checkpoint_epoch)
    if not last:
        raise NotFound(f"no checkpoint in {work_dir}")
    return last[-1]


def scalar_logs(run_dir: str | Path) -> list[Path]:
    """The ``scalars.json`` of each training attempt (a resumed run has several), oldest
    first: one JSON object a line (loss, learning rate, epoch, validation metrics)."""
    return sorted(Path(run_dir).glob(f"{WORK_DIR}/*/vis_data/scalars.json"))
