"""Where a study lives: an Optuna storage opened from one URL.

- ``sqlite:///path/study.db`` (the default, under the experiment's folder): one machine, a
  few workers.
- ``journal:path/study.journal``: Optuna's journal file, for many workers on one machine
  (file locks, no database server).
- ``postgresql://user@host/db`` (or any SQLAlchemy URL): workers on several machines.

Database storages keep a heartbeat: a trial whose worker died (killed, machine lost) is
failed once its heartbeat is stale and retried once with the same parameters. The journal
has no heartbeat, so the tuner fails the running trials of dead processes on its own machine
when it starts (:func:`cephalo.tuning.tuner.fail_orphaned_trials`).
"""

from __future__ import annotations

import random
import re
import time
import warnings
from pathlib import Path

import optuna

JOURNAL = "journal:"
HEARTBEAT_S = 60


class StorageError(ValueError):
    """A storage URL that cannot be opened; the message names it (password hidden)."""


def default_storage(experiment_root: Path) -> str:
    return f"sqlite:///{experiment_root / 'study.db'}"


def shown(url: str) -> str:
    """The URL without its password."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def open_storage(url: str, heartbeat_s: int = HEARTBEAT_S) -> optuna.storages.BaseStorage:
    """The storage at ``url`` (see the module docstring)."""
    try:
        if url.startswith(JOURNAL):
            path = Path(url.removeprefix(JOURNAL))
            path.parent.mkdir(parents=True, exist_ok=True)
            backend = optuna.storages.journal.JournalFileBackend(str(path))
            return optuna.storages.journal.JournalStorage(backend)
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return _database_storage(url, heartbeat_s)
    except Exception as error:  # driver missing, server down, bad URL, unreadable file
        reason = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise StorageError(f"cannot open the study storage {shown(url)}: {reason}") from None


def _database_storage(url: str, heartbeat_s: int) -> optuna.storages.RDBStorage:
    """An RDB storage with a heartbeat. Workers started together on a fresh database race to
    create Optuna's tables; the loser's CREATE fails (a unique constraint, or a table that
    appeared meanwhile), and another attempt finds the tables there."""
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(5):
        try:
            with warnings.catch_warnings():  # the heartbeat is "experimental" since Optuna 2.9
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs={"pool_pre_ping": True},
                    heartbeat_interval=heartbeat_s,
                    grace_period=2 * heartbeat_s,
                    heartbeat_stale_trial_callback=(
                        optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=1)
                    ),
                )
        except (IntegrityError, ProgrammingError):
            if attempt == 4:
                raise
            time.sleep(0.5 + random.random())
    raise AssertionError("unreachable")
