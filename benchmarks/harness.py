"""What every benchmark shares, so that a benchmark module is only its measurement: options on
the command line, figures and their targets, one table, the JSON result, the exit status,
the machine's load, a scratch folder and child processes.

A benchmark defines ``measure(bench, **options)`` (and, when it needs a fresh interpreter,
``child(**kwargs)``, run by ``in_fresh_process``) and ends with ``main(measure, child,
**option_defaults)``; run it as ``.venv/bin/python -m benchmarks.<name> [--option ...]``.
``bench.held`` records a figure held to a target (a check: ``make bench`` gathers them into
one summary), ``bench.informative`` one only reported, ``bench.record`` the rest of the JSON.
"""

from __future__ import annotations

import argparse
import json
import operator
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from cephalo.files import dump_json

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
VERDICT = {True: "PASS", False: "FAIL"}
COMPARE = {"<": operator.lt, "<=": operator.le, ">=": operator.ge}


class Skip(Exception):
    """Raised by ``measure`` when its figures cannot be taken here (it says why)."""


class Bench:
    """One run's figures, what else its JSON holds, and a scratch folder deleted after it."""

    def __init__(self, name: str, scratch: Path) -> None:
        self.name, self.scratch, self.figures, self.details = name, scratch, [], {}

    def held(self, name: str, value: float, unit: str, op: str, bound: float) -> None:
        """A figure held to ``op bound`` (``"<", 4``: under 4 ``unit``)."""
        target, ok = f"{op} {bound:g} {unit}".rstrip(), bool(COMPARE[op](value, bound))
        self.figures.append(dict(name=name, value=float(value), unit=unit, target=target, ok=ok))

    def informative(self, name: str, value: float, unit: str = "") -> None:
        self.figures.append(dict(name=name, value=float(value), unit=unit))

    def record(self, **details: Any) -> None:
        self.details.update(details)

    @property
    def checks(self) -> list[dict[str, Any]]:
        return [f for f in self.figures if "ok" in f]


def table(figures: list[dict[str, Any]]) -> str:
    """Figure, value, target, PASS/FAIL (blank for an informative figure), columns aligned."""
    rows = [["figure", "value", "target", "result"]]
    for f in figures:
        value = f"{f['value']:.3g} {f['unit']}".rstrip()
        rows.append([f["name"], value, f.get("target", ""), VERDICT.get(f.get("ok"), "")])
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    rows.insert(1, ["-" * w for w in widths])
    cells = ([r[0].ljust(widths[0]), *map(str.rjust, r[1:], widths[1:])] for r in rows)
    return "\n".join("  ".join(line) for line in cells)


def environment() -> dict[str, Any]:
    """Where and when a figure was measured: the Python, the machine and its load average."""
    return dict(
        date=datetime.now().astimezone().isoformat(timespec="seconds"),
        python=platform.python_version(),
        machine=dict(cpus=os.cpu_count(), platform=platform.platform()),
        load_average=list(os.getloadavg()),
    )


def main(measure: Callable[..., None], child: Callable[..., Any] | None = None, **options: Any):
    """The benchmark run as ``python -m benchmarks.<name>``: one flag per option given here,
    ``measure`` run, its figures printed and written as JSON (``--out``, default
    ``benchmarks/results/<name>.json``); exits 1 when a target is missed."""
    module, argv = sys.modules["__main__"], sys.argv[1:]
    name = module.__spec__.name.rsplit(".", 1)[-1]
    if argv[:1] == ["--child"] and child is not None:
        dump_json(argv[2], child(**json.loads(argv[1])))
        raise SystemExit(0)
    parser = argparse.ArgumentParser(f"python -m benchmarks.{name}", description=module.__doc__)
    for key, default in options.items():
        many = isinstance(default, list)
        parser.add_argument(
            "--" + key.replace("_", "-"),
            type=type(default[0] if many else default),
            nargs="+" if many else None,
            default=default,
        )
    parser.add_argument("--out", type=Path, default=RESULTS / f"{name}.json")
    chosen = vars(parser.parse_args(argv))
    out, start, skipped = chosen.pop("out"), environment(), None
    with tempfile.TemporaryDirectory(prefix=f"{name}-") as scratch:
        bench = Bench(name, Path(scratch))
        try:
            measure(bench, **chosen)
        except Skip as reason:
            skipped = str(reason)
    end, passed = environment(), all(c["ok"] for c in bench.checks)
    print(f"\n{name}{f': skipped: {skipped}' if skipped else ''}\n{table(bench.figures)}")
    print(f"load average {start['load_average'][0]:.2f} -> {end['load_average'][0]:.2f}")
    result = dict(benchmark=name, options=chosen, start=start, end=end, skipped=skipped)
    result.update(figures=bench.figures, checks=bench.checks, details=bench.details)
    dump_json(out, dict(result, passed=passed))
    print(f"written: {out}")
    raise SystemExit(0 if passed else 1)


def command(args: list[str], **kwargs: Any) -> subprocess.CompletedProcess:
    """``args`` run with its output captured; an error with the output's tail if it fails."""
    done = subprocess.run(args, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-3000:]
        raise RuntimeError(f"{' '.join(args[:4])} ... exited with {done.returncode}:\n{tail}")
    return done


def in_fresh_process(benchmark: str, **kwargs: Any) -> Any:
    """What ``child(**kwargs)`` of module ``benchmark`` returns in a new interpreter."""
    with tempfile.TemporaryDirectory(prefix="child-") as tmp:
        report = Path(tmp) / "child.json"
        args = [sys.executable, "-m", benchmark, "--child", json.dumps(kwargs), str(report)]
        command(args, cwd=ROOT)
        return json.loads(report.read_text())


def median_seconds(function: Callable[[], Any], repeats: int) -> float:
    """Median wall time of ``repeats`` calls, after one untimed warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def status_kib() -> dict[str, int]:
    """This process's resident set now and its high-water mark (``VmRSS``, ``VmHWM``), KiB."""
    with open("/proc/self/status") as f:
        fields = dict(line.split(":", 1) for line in f)
    return {key: int(fields[key].split()[0]) for key in ("VmRSS", "VmHWM")}


def reset_peak_memory() -> None:
    """``VmHWM`` restarts from the current resident set (Linux ``clear_refs``)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def notebook_parts(run_dir: Path) -> dict[str, float]:
    """Where an executed training notebook's seconds went, from papermill's cell timings and
    the run's files: all cells; the imports cell (tag ``setup``); in the ``train`` cell, the
    setup (to ``config.py``), the Runner (to ``last_checkpoint``), the prediction (to
    ``oof.npz``) and the scoring (to the cell's end); the other cells."""
    import nbformat

    from cephalo.runs.folder import RunFolder

    folder = RunFolder(run_dir)
    cells = [c for c in nbformat.read(folder.notebook, as_version=4).cells if c.cell_type == "code"]
    tagged = {tag: c.metadata.papermill for c in cells for tag in c.metadata.get("tags", [])}
    imports, fold = tagged["setup"], tagged["train"]
    start, end = (
        datetime.fromisoformat(fold[key]).timestamp() for key in ("start_time", "end_time")
    )
    config, trained, predicted = (
        path.stat().st_mtime_ns / 1e9
        for path in (folder.config_file, folder.work_dir / "last_checkpoint", folder.oof)
    )
    cells_seconds = sum(c.metadata.papermill["duration"] for c in cells)
    return dict(
        cells_seconds=cells_seconds,
        imports_seconds=imports["duration"],
        setup_seconds=config - start,
        runner_seconds=trained - config,
        predict_seconds=predicted - trained,
        score_seconds=end - predicted,
        other_cells_seconds=cells_seconds - imports["duration"] - fold["duration"],
    )
