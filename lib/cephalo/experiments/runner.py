"""``cephalo run``: an experiment's runs executed by papermill, N at a time, resumably.

Each run executes in a worker process of its own (:mod:`cephalo.experiments.worker`) under
``outputs/<name>/runs/<variant>/<fold>/``: the executed notebook, its log, ``run.json``
and everything the notebook writes. Re-running an experiment skips the runs that completed
with the same settings and redoes the rest (failed, interrupted, never started). A run that
completed with other settings (the spec was edited) is refused unless asked to redo it, so
results are never thrown away silently.

Workers are separate processes with their own kernels, talking to them over Unix sockets
(no TCP ports to clash), each given its share of the CPU threads. On Linux every worker gets
SIGTERM when the runner dies, even by SIGKILL, and its kernel follows its worker, so nothing
keeps training behind a dead runner.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import fnmatch
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from cephalo.experiments import registry
from cephalo.experiments.spec import Experiment, Run, SpecError, load_experiment
from cephalo.experiments.worker import prepare_run, registry_row
from cephalo.models.params import parse_params
from cephalo.run_states import CHANGED, COMPLETED, FAILED, INTERRUPTED, PENDING
from cephalo.runs.work_dir import scalar_logs

_log = logging.getLogger(__name__)


def run_status(run: Run) -> str:
    """Where ``run`` stands, from its folder."""
    state = run.folder.read_state()
    if state is None:
        return PENDING
    if state["status"] == COMPLETED:
        return COMPLETED if state["digest"] == run.digest else CHANGED
    if state["status"] == FAILED:
        return FAILED
    return INTERRUPTED  # "running" in a folder no live runner holds


@dataclass
class BatchResult:
    experiment: Experiment
    statuses: dict[str, str] = field(default_factory=dict)  # run name -> status

    @property
    def failed(self) -> list[str]:
        return [name for name, status in self.statuses.items() if status != COMPLETED]


def select(runs: Sequence[Run], only: Sequence[str]) -> list[Run]:
    """The runs whose names match any of the ``only`` patterns (fnmatch); all without any."""
    if not only:
        return list(runs)
    chosen = [r for r in runs if any(fnmatch.fnmatchcase(r.name, p) for p in only)]
    if not chosen:
        names = ", ".join(r.name for r in runs)
        raise SpecError(f"no run matches {' or '.join(only)} (runs: {names})")
    return chosen


def run_experiment(
    spec_path: str | os.PathLike[str],
    only: Sequence[str] = (),
    workers: int = 1,
    dry_run: bool = False,
    redo_changed: bool = False,
    gpus: Sequence[str] = (),
    restart: bool = False,
) -> BatchResult:
    """Execute the experiment's runs that have not completed; see the module docstring.
    ``gpus`` (device ids) gives each worker its own GPU: worker i sees ``gpus[i]`` only.
    ``restart`` starts unfinished runs afresh instead of resuming them."""
    if gpus and len(gpus) < workers:
        raise SpecError(f"{workers} workers need {workers} GPUs, got {', '.join(gpus)}")
    experiment = load_experiment(spec_path)
    runs = select(experiment.runs, only)
    result = BatchResult(experiment, {run.name: run_status(run) for run in runs})
    if dry_run:
        for run in runs:
            _log.info("%-12s %s  %s", result.statuses[run.name], run.name, run.run_dir)
        return result
    changed = [name for name, status in result.statuses.items() if status == CHANGED]
    if changed and not redo_changed:
        raise SpecError(
            f"{experiment.spec_path}: runs {', '.join(changed)} completed with other settings; "
            "pass --redo-changed to redo them, or give the new settings a new variant name"
        )
    with _experiment_lock(experiment):
        for run in runs:  # the registry catches up with runs whose recording was cut short
            if result.statuses[run.name] == COMPLETED:
                registry.record(experiment.registry, registry_row(run.folder.read_state()))
        todo = [run for run in runs if result.statuses[run.name] != COMPLETED]
        _log.info(
            "%s: %d of %d runs already complete, %d to run with %d worker(s)",
            *(experiment.name, len(runs) - len(todo), len(runs), len(todo), workers),
        )
        result.statuses.update(_execute(experiment, todo, workers, gpus, restart))
    return result


def _execute(
    experiment: Experiment, runs: list[Run], workers: int, gpus: Sequence[str], restart: bool
) -> dict[str, str]:
    """Run ``runs`` in at most ``workers`` worker processes; their final statuses."""
    queue = list(runs)
    running: dict[str, tuple[Run, subprocess.Popen[bytes], int]] = {}  # name -> run, worker, slot
    statuses = {}
    progress = tqdm(total=len(runs), unit="run", desc=experiment.name, disable=None)
    try:
        while queue or running:
            while queue and len(running) < workers:
                run = queue.pop(0)
                slot = min(set(range(workers)) - {s for *_, s in running.values()})
                env = worker_environment(workers, gpus[slot] if gpus else None)
                running[run.name] = (run, _start(experiment, run, env, restart), slot)
                tqdm.write(f"  start   {run.name}: log in {run.folder.log}")
            time.sleep(0.5)
            for name, (run, process, _) in list(running.items()):
                if process.poll() is None:
                    continue
                del running[name]
                statuses[name] = _finish(experiment, run, process.returncode)
                progress.update()
            progress.set_postfix_str(", ".join(_where(run) for run, *_ in running.values()))
    except BaseException:  # Ctrl-C or SIGTERM: stop the workers, which record the interruption
        for _, process, _ in running.values():
            process.terminate()
        for _, process, _ in running.values():
            process.wait()
        raise
    finally:
        progress.close()
    return statuses


def _where(run: Run) -> str:
    """A running run's name and epoch, from the scalars its training logs."""
    epoch = last_epoch(run.run_dir)
    if epoch is None:
        return run.name
    return f"{run.name} epoch {epoch}/{parse_params(run.parameters['params']).epochs}"


def last_epoch(run_dir: Path) -> int | None:
    """The epoch of the last training step MMEngine logged in ``run_dir``, if any."""
    logs = scalar_logs(run_dir)
    if not logs:
        return None
    with open(logs[-1], "rb") as f:
        f.seek(max(0, f.seek(0, os.SEEK_END) - 4096))
        lines = f.read().decode(errors="replace").splitlines()
    for line in reversed(lines):
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if "epoch" in entry:
                return int(entry["epoch"])
    return None


def _start(
    experiment: Experiment, run: Run, env: dict[str, str], restart: bool
) -> subprocess.Popen[bytes]:
    prepare_run(run, experiment.registry, restart=restart)
    with open(run.folder.log, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "cephalo.experiments.worker", str(run.run_dir)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            preexec_fn=_die_with_parent,
        )


def _finish(experiment: Experiment, run: Run, returncode: int) -> str:
    """Report a worker that exited; record the run failed if the worker could not."""
    state = run.folder.read_state() or {}
    if state.get("status") not in (COMPLETED, FAILED):
        how = f"signal {-returncode}" if returncode < 0 else f"exit status {returncode}"
        state.update(status=FAILED, error=f"worker died ({how}); see {run.folder.log}")
        run.folder.write_state(state)
        registry.record(experiment.registry, registry_row(state))
    if state["status"] == COMPLETED:
        mre = registry_row(state)["metrics"] or {}
        score = f"MRE {mre['MRE']:.2f} mm" if "MRE" in mre else "full fit"
        tqdm.write(f"  done    {run.name}: {score} ({state.get('seconds', 0):.0f} s)")
    else:
        tqdm.write(f"  FAILED  {run.name}: {state['error']}\n          {run.folder.notebook}")
    return state["status"]


def worker_environment(workers: int, gpu: str | None = None) -> dict[str, str]:
    """The runner's environment, with each worker's share of the CPU threads (unless the user
    set them): N workers each using every core would slow all of them down many times; and
    with ``gpu``, that GPU only."""
    env = dict(os.environ)
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    if workers > 1:
        threads = str(max(1, (os.cpu_count() or 1) // workers))
        for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env.setdefault(name, threads)
    return env


def _die_with_parent() -> None:
    """In the worker, before it starts: on Linux, get SIGTERM when the runner dies."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@contextlib.contextmanager
def _experiment_lock(experiment: Experiment) -> Iterator[None]:
    """One runner per experiment at a time (the lock dies with its process)."""
    experiment.root.mkdir(parents=True, exist_ok=True)
    with open(experiment.root / ".runner.lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SpecError(
                f"another `cephalo run` is working on {experiment.name}; wait for it to finish"
            ) from None
        yield
