"""Data-parallel training of a run's saved config with MMEngine's PyTorch launcher.

``run_fold`` starts this under ``torch.distributed.run`` when a run asks for more than one
process: one process per GPU (NCCL), or several CPU processes (gloo). Each process reads the
same ``config.json`` (the config as data: nothing in it is executed); MMEngine shards the
data and averages the gradients. ``batch_size`` is per process.

    python -m torch.distributed.run --nproc_per_node 2 -m cephalo.runs.distributed RUN/config.json
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path


def train_this_process(config_path: str) -> None:
    """This process's share of the data-parallel run of ``config_path``."""
    import torch
    from mmengine.runner import Runner

    from cephalo.runs.train import runtime_config

    config = runtime_config(json.loads(Path(config_path).read_text()))
    config.launcher = "pytorch"
    if not torch.cuda.is_available():
        # MMEngine 0.10.7 assumes GPUs here: its init_dist calls torch.cuda.set_device, and
        # it wraps the model for DDP with device_ids. Joining the gloo group first makes it
        # skip init_dist; device_ids=None is what DDP wants for a CPU module.
        torch.distributed.init_process_group(backend="gloo")
        config.model_wrapper_cfg = dict(
            type="MMDistributedDataParallel", device_ids=None, broadcast_buffers=False
        )
    try:
        Runner.from_cfg(config).train()
    finally:
        # Leave the group before exiting: a gloo group torn down by the interpreter's exit
        # can abort a rank ("terminate called without an active exception").
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def main() -> None:
    train_this_process(sys.argv[1])
    # Everything is written. Leave without the interpreter's teardown: it destroys C++ threads
    # that torch's gloo backend still holds, and a rank then aborts ("terminate called without
    # an active exception", SIGABRT) after a run that succeeded, failing it.
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
