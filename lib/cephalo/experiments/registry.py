"""The results registry: every run of every experiment in one SQLite table.

Run folders are the record (``run.json``, ``metrics.json``); the registry is the index over
them that leaderboards, the results notebook and the tuner query. One file per experiments
folder (``outputs/registry.db``), written by many processes at once (batch workers,
tuning workers): SQLite in WAL mode with a busy timeout serialises the writers, and every
write is one upsert of one run, so a killed writer never leaves half a row.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path
from typing import Any

import pandas as pd

from cephalo.errors import NotFound

COLUMNS = {
    "experiment": "TEXT NOT NULL",
    "run": "TEXT NOT NULL",
    "variant": "TEXT",
    "fold": "INTEGER",  # NULL: a full fit
    "notebook": "TEXT",
    "status": "TEXT NOT NULL",  # running | completed | failed
    "error": "TEXT",
    "started": "REAL",  # unix time
    "finished": "REAL",
    "seconds": "REAL",
    "run_dir": "TEXT",
    "host": "TEXT",
    "pid": "INTEGER",
    "digest": "TEXT",
    "params": "TEXT",  # JSON: the training parameters that differ from the defaults
    "metrics": "TEXT",  # JSON: metrics.json of the run, when it completed
    "trial": "INTEGER",  # the Optuna trial number, for tuning runs
}
JSON_COLUMNS = ("params", "metrics")
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS runs ("
    + ", ".join(f"{name} {kind}" for name, kind in COLUMNS.items())
    + ", PRIMARY KEY (experiment, run))"
)


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """A connection to the registry at ``path`` (created on first use)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(path, timeout=60, isolation_level=None)
    connection.execute("PRAGMA busy_timeout = 60000")
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute(SCHEMA)
    return connection


def record(path: str | os.PathLike[str], row: dict[str, Any]) -> None:
    """Insert or replace the row of ``(row["experiment"], row["run"])``."""
    unknown = set(row) - set(COLUMNS)
    if unknown:
        raise KeyError(f"registry has no columns {sorted(unknown)}")
    values = {
        k: json.dumps(v) if k in JSON_COLUMNS and v is not None else v for k, v in row.items()
    }
    names = ", ".join(values)
    marks = ", ".join(f":{k}" for k in values)
    updates = ", ".join(f"{k} = excluded.{k}" for k in values if k not in ("experiment", "run"))
    with closing(connect(path)) as connection:
        connection.execute(
            f"INSERT INTO runs ({names}) VALUES ({marks}) "
            f"ON CONFLICT (experiment, run) DO UPDATE SET {updates}",
            values,
        )


def read_runs(
    path: str | os.PathLike[str], experiments: Iterable[str] | None = None
) -> pd.DataFrame:
    """The registry as a table (params and metrics parsed), optionally of some experiments."""
    if not Path(path).is_file():
        raise NotFound(f"no results registry at {path} (nothing has run yet)")
    with closing(connect(path)) as connection:
        runs = pd.read_sql_query("SELECT * FROM runs ORDER BY experiment, run", connection)
    if experiments is not None:
        runs = runs[runs["experiment"].isin(list(experiments))]
    for column in JSON_COLUMNS:
        runs[column] = [json.loads(v) if isinstance(v, str) else {} for v in runs[column]]
    runs["fold"] = runs["fold"].astype("Int64")
    runs["trial"] = runs["trial"].astype("Int64")
    return runs.reset_index(drop=True)
