"""Every benchmark in one run (``make bench``), ending with one table of all figures held to a
target: figure, value, target, PASS/FAIL.

Why: each benchmark prints its own table and writes its own JSON; comparing a commit with
another needs them all, run the same way, with the commit they ran on.

What: each benchmark runs as its own ``python benchmarks/<name>.py`` process, in turn (a
fresh process per benchmark: ``prepare_memory`` reads its child's peak RSS, and no benchmark
warms another's imports or caches), with its output shown as it runs; ``fusion_throughput``
and ``training_pipeline`` with ``OMP_NUM_THREADS=1`` (their one-core figures). Each writes
``benchmarks/results/<name>.json`` holding ``checks`` (name, value, unit, target, ok); a
benchmark that fails, or leaves no result newer than its start, counts as a failed check.
The summary is printed and written to ``benchmarks/results/summary.json`` with the commit
(and whether the working tree differed from it), the date, the load average and each
benchmark's wall time, and copied to ``benchmarks/results/history/<date>-<commit>.json``
so that runs on several commits sit side by side.

Run: ``.venv/bin/python benchmarks/run_all.py [NAME ...]`` (default: all; about 21 minutes on
two idle cores). Exits 1 when any target is missed or a benchmark fails.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from report import RESULTS, VERDICT, environment, layout, write_result

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# name -> extra environment; run in this order
BENCHMARKS: dict[str, dict[str, str]] = {
    "prepare_memory": {},
    "training_throughput": {},
    "training_pipeline": {"OMP_NUM_THREADS": "1"},
    "inference_throughput": {},
    "fusion_throughput": {"OMP_NUM_THREADS": "1"},
    "tuner_overhead": {},
    "recipe_memory": {},
    "bundle_prediction": {},
    "setup_time": {},
}


def git(*args: str) -> str:
    """A read-only git query in the checkout ('' outside one); takes no index lock."""
    try:
        done = subprocess.run(
            ["git", "--no-optional-locks", "-C", str(ROOT), *args],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return ""
    return done.stdout.strip()


def run(name: str, env: dict[str, str]) -> dict[str, Any]:
    """One benchmark in its own process; its checks, from the result it wrote."""
    print(f"\n===== {name} " + "=" * max(0, 80 - len(name)), flush=True)
    result_file = RESULTS / f"{name}.json"
    start_epoch = time.time()
    start = time.perf_counter()
    code = subprocess.run(
        [sys.executable, str(HERE / f"{name}.py")], cwd=ROOT, env=dict(os.environ, **env)
    ).returncode
    seconds = time.perf_counter() - start
    entry: dict[str, Any] = dict(
        benchmark=name, returncode=code, seconds=round(seconds, 1), env=env, checks=[]
    )
    if not result_file.is_file() or result_file.stat().st_mtime < start_epoch:
        entry["error"] = f"exited with status {code} and wrote no result"
        return entry
    result = json.loads(result_file.read_text())
    entry.update(result_file=str(result_file.relative_to(ROOT)), checks=result.get("checks", []))
    if result.get("skipped"):
        entry["skipped"] = result["skipped"]
    elif not entry["checks"]:
        entry["error"] = "its result holds no checks"
    return entry


def passed(entry: dict[str, Any]) -> bool:
    if "error" in entry:
        return False
    return all(c["ok"] for c in entry["checks"])


def summary(entries: list[dict[str, Any]]) -> str:
    """One row per check, under a row naming its benchmark (and its wall time)."""
    rows = []
    for entry in entries:
        rows.append([f"{entry['benchmark']} ({entry['seconds']:.0f} s)", "", "", ""])
        if "error" in entry:
            rows.append([f"  {entry['error']}", "", "", "FAIL"])
        elif "skipped" in entry:
            rows.append([f"  skipped: {entry['skipped']}", "", "", "SKIP"])
        for c in entry["checks"]:
            value = f"{c['value']:.3g} {c['unit']}".rstrip()
            rows.append([f"  {c['name']}", value, c["target"], VERDICT[c["ok"]]])
    return layout(["benchmark: figure", "value", "target", "result"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help=f"of {', '.join(BENCHMARKS)} (default: all)")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"no benchmark {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    names = args.names or list(BENCHMARKS)

    commit = git("rev-parse", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    started = datetime.now(UTC)
    load_start = os.getloadavg()
    start = time.perf_counter()
    entries = [run(name, BENCHMARKS[name]) for name in names]
    wall = time.perf_counter() - start
    load_end = os.getloadavg()
    ok = all(passed(e) for e in entries)

    print("\n===== summary " + "=" * 73)
    print(
        f"commit {commit[:12] or '(unknown)'}{' + local changes' if dirty else ''}, "
        f"{started:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, load average "
        f"{load_start[0]:.2f} -> {load_end[0]:.2f}, {wall / 60:.1f} minutes\n"
    )
    print(summary(entries))
    print(f"\nAll targets met: {'yes' if ok else 'NO'}")
    result = dict(
        commit=commit,
        dirty=dirty,
        date=started.isoformat(timespec="seconds"),
        seconds=round(wall, 1),
        load_average_start=list(load_start),
        load_average_end=list(load_end),
        **environment(),
        benchmarks=entries,
        passed=ok,
    )
    write_result(RESULTS / "summary.json", result)
    stamp = f"{started:%Y%m%dT%H%M%SZ}-{commit[:12] or 'unknown'}{'-dirty' if dirty else ''}"
    write_result(RESULTS / "history" / f"{stamp}.json", result)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
