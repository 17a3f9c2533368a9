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
