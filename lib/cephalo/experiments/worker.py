"""One run of a batch, in its own process: ``python -m cephalo.experiments.worker RUN_DIR``.

The batch runner writes ``RUN_DIR/run.json`` (what to execute) and starts this process; it
executes the notebook with papermill into ``RUN_DIR/notebook.ipynb`` and records the
outcome in ``run.json`` and the registry. ``run.json`` says ``completed`` only once
everything the run writes is in place, so a run killed at any moment is never taken for a
finished one. A failing cell, a dead kernel or a SIGTERM (sent when the runner dies) ends the
run ``failed`` with the error (``pruned`` when a tuning trial's pruner stopped it); the
executed notebook shows the failing cell.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cephalo.errors import NotFound
from cephalo.experiments import registry
from cephalo.experiments.spec import Run
from cephalo.run_states import COMPLETED, FAILED, INTERRUPTED, PRUNED, RUNNING
from cephalo.runs.folder import RunFolder
from cephalo.runs.work_dir import checkpoint_epoch, resume_point

_log = logging.getLogger(__name__)


class Interrupted(BaseException):
    """The process was asked to stop (SIGTERM)."""


def prepare_run(run: Run, registry_file: Path, restart: bool = False, **extra: Any) -> None:
    """The folder of ``run`` holding its ``run.json``; ``extra`` adds registry columns (the
    tuner's trial number). An earlier attempt with the same settings that saved a checkpoint
    is kept, to resume from it (``run.json`` says from which epoch); any other earlier
    attempt is removed, as it is with ``restart``."""
    earlier = run.folder.read_state()
    checkpoint = resume_point(run.run_dir)
    resumable = not restart and earlier is not None and checkpoint is not None
    if resumable and earlier.get("digest") != run.digest:
        _log.warning("%s: its settings changed since the last attempt; starting afresh", run.name)
        resumable = False
    if not resumable and run.run_dir.exists():
        shutil.rmtree(run.run_dir)
    run.run_dir.mkdir(parents=True, exist_ok=True)
    state = dict(
        experiment=run.experiment,
        run=run.name,
        variant=run.variant,
        fold=run.fold,
        notebook=run.notebook,
        parameters=run.parameters,
        digest=run.digest,
        run_dir=str(run.run_dir),
        registry=str(registry_file),
        status="queued",
        **extra,
    )
    if resumable:
        state["resumed_from_epoch"] = checkpoint_epoch(checkpoint)
        state["attempt"] = earlier.get("attempt", 1) + 1
    run.folder.write_state(state)


def registry_row(state: dict[str, Any]) -> dict[str, Any]:
    """The registry's row of a run, from its ``run.json`` (and metrics, once completed)."""
    metrics = None
    if state["status"] == COMPLETED:
        metrics = RunFolder(state["run_dir"]).read_metrics()
    return dict(
        {k: state.get(k) for k in registry.COLUMNS if k not in ("params", "metrics")},
        params=state["parameters"]["params"],
        metrics=metrics,
    )


def execute_run(run_dir: Path) -> int:
    """Execute the run described by ``run_dir/run.json``; 0 when it completed."""
    from papermill.exceptions import PapermillExecutionError

    from cephalo.notebooks import describe_failure, execute

    folder = RunFolder(run_dir)
    state = folder.read_state()
    if state is None:
        raise NotFound(f"{folder.state_file} does not exist")
    state.update(status=RUNNING, started=time.time(), host=socket.gethostname(), pid=os.getpid())
    folder.write_state(state)
    registry.record(state["registry"], registry_row(state))

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted(signal.Signals(signum).name)

    signal.signal(signal.SIGTERM, interrupt)
    error, status = None, COMPLETED
    try:
        with _cell_log(folder.log):
            execute(state["notebook"], folder.notebook, state["parameters"], log_output=True)
    except PapermillExecutionError as failure:
        error = describe_failure(failure)
        status = PRUNED if failure.ename == "TrialPruned" else FAILED
    except Interrupted as signal_name:
        error, status = f"{INTERRUPTED} ({signal_name})", FAILED  # how its error begins
    except Exception as failure:  # a dead kernel, a notebook that cannot start, ...
        error, status = describe_failure(failure), FAILED
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    finished = time.time()
    state.update(
        status=status,
        error=error,
        finished=finished,
        seconds=round(finished - state["started"], 1),
    )
    folder.write_state(state)
    registry.record(state["registry"], registry_row(state))
    return 0 if status == COMPLETED else 1


@contextlib.contextmanager
def _cell_log(path: Path) -> Iterator[None]:
    """Send papermill's log (each cell's start and end, and the cells' outputs) to the run's
    log file, and only there."""
    logger = logging.getLogger("papermill")
    handler = logging.FileHandler(path)  # appends: the runner's copy of stdout shares it
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def main() -> None:
    raise SystemExit(execute_run(Path(sys.argv[1])))


if __name__ == "__main__":
    main()
