"""cephalo.checkpoints keeps torch's weights_only protection while loading what MMEngine saves."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

from cephalo.checkpoints import load_checkpoint_file, use_safe_checkpoint_loader


class Payload:
    """Stands for any class a received checkpoint could smuggle in."""

    def __reduce__(self):
        return (print, ("this must never run",))


def test_loads_numpy_and_history_buffers(tmp_path):
    buffer = HistoryBuffer()
    buffer.update(0.5)
    path = tmp_path / "ckpt.pth"
    meta = dict(
        sigmas=np.arange(3, dtype=np.float32),
        links=np.zeros((0, 2), dtype=np.int64),
        flip=np.int64(2),
        hub=buffer,
    )
    torch.save(dict(meta=meta, state_dict={"w": torch.ones(2)}), path)

    loaded = load_checkpoint_file(path)

    np.testing.assert_array_equal(loaded["meta"]["sigmas"], np.arange(3, dtype=np.float32))
    assert loaded["meta"]["links"].shape == (0, 2)
    assert loaded["meta"]["flip"] == 2
    assert loaded["meta"]["hub"].current() == 0.5
    assert torch.equal(loaded["state_dict"]["w"], torch.ones(2))


def test_refuses_anything_else(tmp_path):
    path = tmp_path / "evil.pth"
    torch.save({"meta": Payload()}, path)
    with pytest.raises(pickle.UnpicklingError, match="print"):
        load_checkpoint_file(path)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nope\.pth"):
        load_checkpoint_file(tmp_path / "nope.pth")


def test_mmengine_uses_it_for_local_files(tmp_path):
    use_safe_checkpoint_loader()
    path = tmp_path / "evil.pth"
    torch.save({"meta": Payload()}, path)
    with pytest.raises(pickle.UnpicklingError):
        CheckpointLoader.load_checkpoint(str(path))


class EscapesThroughGetattr:
    """``getattr(getattr, "__self__")`` is the builtins module: the way to ``eval``."""

    def __reduce__(self):
        return (getattr, (getattr, "__self__"))


def test_getattr_serves_history_buffer_statistics_only(tmp_path):
    path = tmp_path / "escape.pth"
    torch.save({"meta": EscapesThroughGetattr()}, path)
    with pytest.raises(pickle.UnpicklingError, match="only HistoryBuffer statistics"):
        load_checkpoint_file(path)


def test_a_file_that_is_no_checkpoint_is_named(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("this is not a checkpoint")
    with pytest.raises(pickle.UnpicklingError, match=r"notes\.pth is not a checkpoint"):
        load_checkpoint_file(path)


class _Killed(Exception):
    """Stands for the process dying while ``torch.save`` writes a checkpoint."""


def test_a_save_cut_short_leaves_a_checkpoint_to_resume_from(tmp_path):
    """MMEngine's CheckpointHook removes the checkpoints beyond ``max_keep_ckpts`` before it
    writes the next one, and moves ``last_checkpoint`` only after: the hook the kit configures
    keeps the one the pointer names while a save is under way."""
    from types import SimpleNamespace

    from mmengine.logging import MessageHub
    from mmengine.registry import HOOKS

    from cephalo.models.params import TrainParams
    from cephalo.models.training import hooks
    from cephalo.runs.work_dir import WORK_DIR, resume_point

    work_dir = tmp_path / WORK_DIR
    work_dir.mkdir()
    fails = {"epoch": None}

    def save_checkpoint(out_dir, filename, *args, **kwargs):
        path = work_dir / filename
        path.write_bytes(b"partial" if fails["epoch"] == filename else b"complete")
        if fails["epoch"] == filename:
            raise _Killed

    runner = SimpleNamespace(
        work_dir=str(work_dir),
        message_hub=MessageHub.get_instance("checkpoint-save-test"),
        save_checkpoint=save_checkpoint,
        logger=SimpleNamespace(info=lambda *a: None),
        meta=None,
    )
    default, _ = hooks(TrainParams(epochs=5, val_interval=1), validating=False)
    hook = HOOKS.build(default["checkpoint"])
    hook.before_train(runner)
    for epoch in (1, 2, 3):
        hook._save_checkpoint_with_step(runner, epoch, meta={})
    fails["epoch"] = "epoch_4.pth"
    with pytest.raises(_Killed):
        hook._save_checkpoint_with_step(runner, 4, meta={})

    resumed = resume_point(tmp_path)
    assert resumed is not None and resumed.name == "epoch_3.pth"
    assert resumed.read_bytes() == b"complete"
