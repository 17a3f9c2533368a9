"""What every benchmark shares: a plain-text table of figures and targets, and the JSON
result written atomically so runs can be compared across commits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cephalo.files import atomic_open


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
