"""What every benchmark shares: a plain-text table of figures and targets, and the JSON
result written atomically so runs can be compared across commits.

Each result holds ``checks``: the figures held to a target, one dict each (``check()``), which
``benchmarks/run_all.py`` (``make bench``) gathers into one summary across benchmarks."""

from __future__ import annotations

import json
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


def write_result(path: str | Path, result: dict[str, Any]) -> None:
    with atomic_open(Path(path), "w") as f:
        f.write(json.dumps(result, indent=1) + "\n")
    print(f"\nwritten: {path}")


def check(name: str, value: float, unit: str, target: str, ok: bool) -> dict[str, Any]:
    """One figure held to its target (``target`` as printed, e.g. ``"< 5 s"``)."""
    return dict(name=name, value=float(value), unit=unit, target=target, ok=bool(ok))
