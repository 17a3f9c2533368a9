"""The words for where a run stands, in one place.

A run's ``run.json`` (and its row in the results registry) records one of ``RUNNING``,
``COMPLETED``, ``FAILED`` or ``PRUNED`` (a tuning trial its pruner stopped). Before a batch
runs, it also tells ``PENDING`` (never started), ``CHANGED`` (completed with other settings)
and ``INTERRUPTED`` (left ``running`` by a process that is gone).
"""

from __future__ import annotations

RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
PRUNED = "pruned"

PENDING = "pending"
CHANGED = "changed"
INTERRUPTED = "interrupted"
