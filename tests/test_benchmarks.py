"""The benchmark harness: figures held to their targets, the JSON a summary is made from, and
child processes whose failure shows why."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.harness import Bench, in_fresh_process, table
from benchmarks.run_all import BENCHMARKS

ROOT = Path(__file__).resolve().parent.parent


def test_a_figure_held_to_its_target_passes_or_fails_and_an_informative_one_has_no_verdict(
    tmp_path: Path,
) -> None:
    bench = Bench("example", tmp_path)
    bench.held("increment / slice", 4.37, "slices", "<", 4)
    bench.held("overhead", 7.6, "s", "<=", 8)
    bench.informative("throughput", 4.2, "images/s")
    assert [(c["name"], c["target"], c["ok"]) for c in bench.checks] == [
        ("increment / slice", "< 4 slices", False),
        ("overhead", "<= 8 s", True),
    ]
    rows = table(bench.figures).splitlines()[2:]
    assert rows[0].split()[-1] == "FAIL" and rows[1].split()[-1] == "PASS"
    assert rows[2].split()[-1] == "images/s"  # no verdict column


def test_a_benchmark_run_writes_its_checks_and_exits_by_them(tmp_path: Path) -> None:
    out = tmp_path / "fusion.json"
    command = [sys.executable, "-m", "benchmarks.fusion_throughput", "--repeats", "1"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run(
        [*command, "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    result = json.loads(out.read_text())
    assert result["options"] == {"repeats": 1}
    assert result["details"] == {"shape": [40, 600, 38, 2]}  # what bench.record kept
    assert {c["name"] for c in result["checks"]} >= {"fuse mean (median)", "fuse robust (median)"}
    assert all(c["target"] == "< 1000 ms" for c in result["checks"])
    informative = [f for f in result["figures"] if "ok" not in f]
    assert [f["name"] for f in informative] == [
        "fit learned weights (median)",
        "fit greedy (5 rounds) (median)",
    ]
    assert done.returncode == (0 if result["passed"] else 1)
    assert "fuse mean (median)" in done.stdout


def test_a_failing_child_process_says_what_went_wrong() -> None:
    with pytest.raises(RuntimeError, match="exited with 1") as raised:
        in_fresh_process("benchmarks.recipe_memory", values={"model": "rtmpose-xxl"})
    assert "rtmpose-xxl" in str(raised.value)


def test_make_bench_runs_every_benchmark_module() -> None:
    modules = {p.stem for p in (ROOT / "benchmarks").glob("*.py")}
    assert set(BENCHMARKS) == modules - {"__init__", "harness", "run_all"}
    imports = "; ".join(f"import benchmarks.{name}" for name in BENCHMARKS)
    subprocess.run([sys.executable, "-c", imports], cwd=ROOT, check=True)
