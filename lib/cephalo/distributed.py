"""Data-parallel training of a run's dumped config with MMEngine's PyTorch launcher.

``run_fold`` starts this under ``torch.distributed.run`` when a run asks for more than one
process: one process per GPU (NCCL), or several CPU processes (gloo). Each process reads the
same ``config.py``; MMEngine shards the data and averages the gradients. ``batch_size`` is
per process.

    python -m torch.distributed.run --nproc_per_node 2 -m cephalo.distributed RUN/config.py
"""

from __future__ import annotations

import sys


def train(config_path: str) -> None:
    from mmengine.config import Config
    from mmengine.runner import Runner

    from cephalo.checkpoints import use_safe_checkpoint_loader

    use_safe_checkpoint_loader()
    config = Config.fromfile(config_path)  # its custom_imports register the kit's metric
    config.launcher = "pytorch"
    Runner.from_cfg(config).train()


if __name__ == "__main__":
    train(sys.argv[1])
