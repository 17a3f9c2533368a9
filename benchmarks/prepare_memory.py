"""Peak memory of ``cephalo data prepare`` on full-size stacks, in padded slices (2400 x 2880
RGB = 20.7 MB): the release's stack is 8 GB decoded, so it is read a slice at a time. Target:
an increment under 4 slices at every count (``--counts``) and projected to 400 slices; the
largest count's within 10 % of the smallest's (a slice kept per image shows as growth).

The command runs in a fresh interpreter (:func:`child`): baseline = ``VmRSS`` after what it
imports (scikit-learn's fold splitter too, which it imports after the last slice: 40 MB of
code is no slice's memory); peak = ``VmHWM`` over the command, reset just before
(``ru_maxrss`` would carry over the parent's mark). The stack is read from the page cache.
"""

from __future__ import annotations

import shutil
import sys
import time

from benchmarks.harness import Bench, in_fresh_process, main, reset_peak_memory, status_kib
from cephalo.data.synth import padded_size, synthesize

SLICE_BYTES = padded_size(1.0)[0] * padded_size(1.0)[1] * 3
RELEASE_SLICES = 400


def child(args: list[str]) -> dict:
    """``cephalo ARGS`` exactly as ``python -m cephalo.cli`` runs it; its memory (KiB)."""
    import runpy

    import click  # noqa: F401  (all that `data prepare` imports before reading a slice)
    import sklearn.model_selection  # noqa: F401  (and, once they are read, to make the folds)

    import cephalo.data.prepare  # noqa: F401

    before, modules = status_kib(), set(sys.modules)
    reset_peak_memory()
    sys.argv, start = ["cephalo", *args], time.perf_counter()
    try:
        runpy.run_module("cephalo.cli", run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        if exit_.code:
            raise
    return dict(
        baseline_kib=before["VmRSS"],
        peak_kib=status_kib()["VmHWM"],
        seconds=time.perf_counter() - start,
        late_imports=sorted(set(sys.modules) - modules),
    )


def measure(bench: Bench, counts: list[int]) -> None:
    counts = sorted(set(counts))
    if counts[0] < 5:
        raise SystemExit("--counts: prepare's 5 default folds need at least 5 slices")
    increments = {}
    for n in counts:
        root = bench.scratch / f"{n}-slices"
        files = synthesize(root / "release", n, scale=1.0, seed=0)["train"]
        args = ["data", "prepare", "--stack", str(files.stack), "--gt", str(files.gt)]
        run = in_fresh_process(__spec__.name, args=[*args, "--out", str(root / "prepared")])
        shutil.rmtree(root)  # 21 MB a slice
        increments[n] = (run["peak_kib"] - run["baseline_kib"]) * 1024 / SLICE_BYTES
        bench.informative(
            f"{n} slices: baseline after imports / slice", run["baseline_kib"] * 1024 / SLICE_BYTES
        )
        bench.informative(f"{n} slices: throughput (warm cache)", n / run["seconds"], "images/s")
        bench.held(f"increment / slice, {n} slices", increments[n], "slices", "<", 4)
        bench.record(**{f"{n}_slices": run})
    if len(counts) > 1:
        small, large = counts[0], counts[-1]
        bench.held(
            f"increment {large} / {small} slices",
            increments[large] / increments[small],
            "x",
            "<=",
            1.1,
        )
        growth = max(0.0, increments[large] - increments[small]) / (large - small)
        projected = increments[large] + growth * max(0, RELEASE_SLICES - large)
        bench.held(f"increment / slice, projected to {RELEASE_SLICES}", projected, "slices", "<", 4)


if __name__ == "__main__":
    main(measure, child, counts=[20, 40])
