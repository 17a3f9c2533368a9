"""What every benchmark shares: a plain-text table of figures and targets, and the JSON
result written atomically so runs can be compared across commits.

Each result holds ``checks``: the figures held to a target, one dict each (``check()``), which
``benchmarks/run_all.py`` (``make bench``) gathers into one summary across benchmarks."""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime
from pathlib import Path
from typing import Any

from cephalo.files import atomic_open

RESULTS = Path(__file__).parent / "results"
VERDICT = {True: "PASS", False: "FAIL"}


def layout(head: list[str], rows: list[list[str]]) -> str:
    """Columns aligned: the first to the left, the figures to the right."""
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        first, rest = cells[0].ljust(widths[0]), zip(cells[1:], widths[1:], strict=True)
        return "  ".join([first, *(c.rjust(w) for c, w in rest)])

    return "\n".join([line(head), "  ".join("-" * w for w in widths), *map(line, rows)])


def environment() -> dict[str, Any]:
    """What a result records of where it ran: the Python and the machine."""
    return dict(
        python=platform.python_version(),
        machine=dict(cpus=os.cpu_count(), platform=platform.platform()),
    )


def write_result(path: str | Path, result: dict[str, Any]) -> None:
    with atomic_open(Path(path), "w") as f:
        f.write(json.dumps(result, indent=1) + "\n")
    print(f"\nwritten: {path}")


def status_kib() -> dict[str, int]:
    """This process's resident set now and its high-water mark (``VmRSS``, ``VmHWM``), KiB."""
    with open("/proc/self/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return {key: int(fields[key].split()[0]) for key in ("VmRSS", "VmHWM")}


def check(name: str, value: float, unit: str, target: str, ok: bool) -> dict[str, Any]:
    """One figure held to its target (``target`` as printed, e.g. ``"< 5 s"``)."""
    return dict(name=name, value=float(value), unit=unit, target=target, ok=bool(ok))


def mtime(path: Path) -> float:
    return path.stat().st_mtime_ns / 1e9


def _timestamp(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def notebook_seconds(run_dir: Path) -> dict[str, float]:
    """Where an executed training notebook's time went, from papermill's cell timings and
    when the run wrote its files: ``cells_seconds`` in all, of which the imports cell, the
    setup before ``config.py``, the Runner (``config.py`` to ``last_checkpoint``), the
    prediction, the scoring, and the other cells.

    Finds the cells by their tags in notebooks/train.py (``setup``: the imports and the
    run's inputs; ``train``: the ``run_fold`` call)."""
    import nbformat

    from cephalo.run_folder import RunFolder

    folder = RunFolder(run_dir)
    cells = [c for c in nbformat.read(folder.notebook, as_version=4).cells if c.cell_type == "code"]
    timing = {id(c): c.metadata.papermill for c in cells}
    imports = next(c for c in cells if "setup" in c.metadata.get("tags", []))
    fold = next(c for c in cells if "train" in c.metadata.get("tags", []))
    start, end = (_timestamp(timing[id(fold)][key]) for key in ("start_time", "end_time"))
    config = mtime(folder.config_file)
    trained = mtime(folder.work_dir / "last_checkpoint")
    predicted = mtime(folder.oof)
    rest = [c for c in cells if c is not imports and c is not fold]
    return dict(
        cells_seconds=sum(t["duration"] for t in timing.values()),
        imports_seconds=timing[id(imports)]["duration"],
        setup_seconds=config - start,
        runner_seconds=trained - config,
        predict_seconds=predicted - trained,
        score_seconds=end - predicted,
        other_cells_seconds=sum(timing[id(c)]["duration"] for c in rest),
    )
