"""Every benchmark in one run (``make bench``), ending with one table of all figures held to a
target, so that one commit can be compared with another.

Each benchmark runs as its own ``python -m benchmarks.<name>`` process, in turn (no benchmark
warms another's imports or caches), with its output shown as it runs; ``fusion_throughput``
and ``training_pipeline`` with ``OMP_NUM_THREADS=1`` (their one-core figures). A benchmark
that fails, or leaves no result newer than its start, counts as a failed check. The summary
is written to ``benchmarks/results/summary.json`` with the commit (and whether the working
tree differed), and copied to ``benchmarks/results/history/<date>-<commit>.json``.

Run: ``.venv/bin/python -m benchmarks.run_all [NAME ...]`` (default: all; about 21 minutes on
two idle cores). Exits 1 when a target is missed or a benchmark fails.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any

from benchmarks.harness import RESULTS, ROOT, environment, table
from cephalo.files import dump_json

BENCHMARKS: dict[str, dict[str, str]] = {  # name -> extra environment, in the order they run
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
    command = ["git", "--no-optional-locks", "-C", str(ROOT), *args]
    done = subprocess.run(command, capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else ""


def run(name: str) -> dict[str, Any]:
    """One benchmark in its own process; its checks, from the result it wrote (one failed
    check when it wrote none, one passed when it skipped and said why)."""
    print(f"\n===== {name} " + "=" * max(0, 80 - len(name)), flush=True)
    result_file, started = RESULTS / f"{name}.json", time.time()
    env = dict(os.environ, **BENCHMARKS[name])
    code = subprocess.run(
        [sys.executable, "-m", f"benchmarks.{name}"], cwd=ROOT, env=env
    ).returncode
    seconds, result = round(time.time() - started), {}
    if result_file.is_file() and result_file.stat().st_mtime >= started:
        result = json.loads(result_file.read_text())
    if result.get("skipped"):
        why, ok = f"skipped: {result['skipped']}", True
    elif not result.get("checks"):  # it failed before writing, or held nothing to a target
        why, ok = f"exited with status {code}, no checks written", False
    else:
        return dict(benchmark=name, seconds=seconds, checks=result["checks"])
    row = dict(name=why, value=code, unit="", target="", ok=ok)
    return dict(benchmark=name, seconds=seconds, checks=[row])


def main() -> int:
    parser = argparse.ArgumentParser("python -m benchmarks.run_all", description=__doc__)
    parser.add_argument("names", nargs="*", choices=[[], *BENCHMARKS], help="default: all")
    names = parser.parse_args().names or list(BENCHMARKS)
    commit, dirty = (
        git("rev-parse", "HEAD"),
        bool(git("status", "--porcelain", "--untracked-files=no")),
    )
    start = environment()
    entries = [run(name) for name in names]
    checks = [dict(c, name=f"{e['benchmark']}: {c['name']}") for e in entries for c in e["checks"]]
    ok = all(c["ok"] for c in checks)
    changes = " + local changes" if dirty else ""
    print(f"\n===== summary: commit {commit[:12]}{changes}, {start['date']}")
    print(f"{table(checks)}\n\nAll targets met: {'yes' if ok else 'NO'}")
    result = dict(
        commit=commit, dirty=dirty, start=start, end=environment(), benchmarks=entries, passed=ok
    )
    dump_json(RESULTS / "summary.json", result)
    stamp = f"{start['date'][:19]}-{commit[:12] or 'unknown'}{'-dirty' if dirty else ''}"
    dump_json(RESULTS / "history" / f"{stamp.replace(':', '')}.json", result)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
