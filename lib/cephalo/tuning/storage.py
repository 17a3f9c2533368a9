"""Where a study lives: an Optuna storage opened from one URL.

- ``sqlite:///path/study.db`` (the default, under the experiment's folder): one machine, a
  few workers.
- ``journal:path/study.journal``: Optuna's journal file, for many workers on one machine
  (file locks, no database server).
- ``postgresql://user@host/db`` (or any SQLAlchemy URL): workers on several machines.

A password in the URL never reaches a file the kit writes: a trial's notebook is handed the
URL with the password masked (:func:`masked`), and the password travels in this process's
environment (``CEPHALO_STORAGE_PASSWORD``), which the trial's kernel inherits;
:func:`open_storage` puts it back. PostgreSQL's own ``PGPASSWORD`` and ``~/.pgpass`` work
too, with a URL that holds no password at all.

Database storages keep a heartbeat: a trial whose worker died (killed, machine lost) is
failed once its heartbeat is stale and retried once with the same parameters. The journal
has no heartbeat, so the tuner fails the running trials of dead processes on its own machine
when it starts (:func:`cephalo.tuning.tuner.fail_orphaned_trials`).
"""

from __future__ import annotations

import os
import random
import re
import time
import warnings
from pathlib import Path

import optuna

from cephalo.errors import CephaloError

JOURNAL = "journal:"
HEARTBEAT_S = 60
PASSWORD_VARIABLE = "CEPHALO_STORAGE_PASSWORD"
HIDDEN = "***"
_PASSWORD = re.compile(r"(://[^:/@]+):([^@]*)@")


class StorageError(CephaloError, ValueError):
    """A storage URL that cannot be opened; the message names it (password hidden)."""


def without_password(url: str) -> str:
    """The URL without its password."""
    return _PASSWORD.sub(rf"\1:{HIDDEN}@", url)


def masked(url: str) -> str:
    """The URL to hand a trial's notebook: its password (if any) replaced by ``***`` and put
    in this process's environment, where the trial's kernel finds it (:func:`open_storage`)."""
    found = _PASSWORD.search(url)
    if found is None or found.group(2) == HIDDEN:
        return url
    os.environ[PASSWORD_VARIABLE] = found.group(2)
    return without_password(url)


def _unmasked(url: str) -> str:
    """A :func:`masked` URL with the password from the environment again."""
    found = _PASSWORD.search(url)
    password = os.environ.get(PASSWORD_VARIABLE)
    if found is None or found.group(2) != HIDDEN or password is None:
        return url
    return url[: found.start(2)] + password + url[found.end(2) :]


def open_storage(url: str, heartbeat_s: int = HEARTBEAT_S) -> optuna.storages.BaseStorage:
    """The storage at ``url`` (see the module docstring); a :func:`masked` URL gets its
    password from the environment."""
    url = _unmasked(url)
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
        where = without_password(url)
        raise StorageError(f"cannot open the study storage {where}: {reason}") from None


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


def load_study(storage_url: str, study_name: str) -> optuna.Study:
    """An existing study, read from its storage (the password from the environment)."""
    return optuna.load_study(study_name=study_name, storage=open_storage(storage_url))
