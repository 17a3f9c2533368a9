"""Peak memory of ``cephalo data prepare`` on full-size stacks, in units of one slice.

Why: the CL-Detection 2023 training stack is about 8 GB decoded (400 padded slices of
2400x2880 RGB uint8), so ``prepare`` reads it one slice at a time. The promise in
:mod:`cephalo.data.prepare` is that its memory stays a small multiple of one padded slice
(2400*2880*3 bytes = 20.7 MB) whatever the slice count; the target is under 4 slices. This
benchmark measures that figure for two slice counts, so that a slice kept alive per image
(a leak, a list of arrays, a whole-volume read) shows as growth between them.

What, for each slice count (default 20 and 40):

1. ``cephalo.data.synth.synthesize(dir, n, scale=1.0, seed=0)`` writes a full-size synthetic
   release into a temporary folder (deleted afterwards). The stack was just written, so it
   is read from the page cache: the throughput is a warm-cache figure, an upper bound for a
   cold disk.
2. The real command ``python -m cephalo.cli data prepare --stack ... --gt ... --out ...``
   runs in a child process (this script with ``--child``: :func:`measured_command`), which
   first imports ``click`` and ``cephalo.data.prepare`` (numpy, SimpleITK, OpenCV, pandas,
   tqdm: all the command imports before it reads a slice), records the baseline, then runs
   the command
   exactly as ``python -m`` does (``runpy.run_module("cephalo.cli", run_name="__main__")``).

How memory is measured (Linux), all inside the child, from ``/proc/self/status``:

- baseline: ``VmRSS`` once the imports are done, before the command starts: the resting
  interpreter with its libraries.
- peak: ``VmHWM``, the kernel's high-water mark of the resident set, read when the command
  returns. Nothing samples, so no short-lived peak is missed. Just before the command starts
  the mark is reset to the current RSS (``echo 5 > /proc/self/clear_refs``), so it is the
  command's own peak; the import-time mark is kept too, and the process's total peak is
  the larger of the two.
- increment = peak - baseline: what converting the stack costs on top of the interpreter.
  Modules the command imports only after the baseline are listed (``late_imports``); their
  memory counts against the increment, so the figure errs on the high side.

Why not ``ru_maxrss`` (``getrusage``, or ``os.wait4`` on the child): Linux carries the
parent's high-water mark into it. ``subprocess`` starts the child with vfork, and exec
folds the mm it leaves (the parent's, which just rendered full-size images) into the
child's ``maxrss``; a child of a 500 MB parent reports about 500 MB even if it only
prints. ``VmHWM`` belongs to the child's own address space.

The increment is the figure held to the target (< 4 slices). The total peak over one slice
is reported too, for information only: the interpreter with numpy, SimpleITK, OpenCV and
pandas already holds more than ten slices' worth before it reads any, whatever ``prepare``
does. Growth: the ratio of the increments of the largest and smallest count must stay
within 10 % (allocator noise is a few MB), and the increment extrapolated linearly to the
release's 400 slices must stay under the target too.

Run: ``.venv/bin/python benchmarks/prepare_memory.py [--counts 20 40]
[--out benchmarks/results/prepare_memory.json]``. It prints a table (figure, target,
PASS/FAIL), writes the same figures as JSON, and exits 1 when a target is missed. The
default counts take under a minute on two cores (generation included) and need 21 MB of
free space in the temporary folder per slice of the largest count, plus its PNGs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from cephalo.data.synth import padded_size, synthesize
from report import RESULTS, check, environment, layout, status_kib, write_result

SLICE_HW = padded_size(1.0)
SLICE_BYTES = SLICE_HW[0] * SLICE_HW[1] * 3
TARGET_SLICES = 4.0  # increment / one padded slice
GROWTH_TARGET = 1.10  # increment at the largest count / at the smallest
RELEASE_SLICES = 400  # the CL-Detection 2023 training stack
MB = 1e6


def measured_command(report: str, args: list[str]) -> int:
    """Run in the child (``--child REPORT ARGS...``): ``cephalo ARGS`` exactly as
    ``python -m cephalo.cli`` runs it, its memory figures (KiB) written to REPORT."""
    import runpy

    import click  # noqa: F401  (all that `data prepare` imports before reading a slice)

    import cephalo.data.prepare  # noqa: F401

    before = status_kib()
    modules = set(sys.modules)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current RSS: from here on it is the command's peak
        reset = True
    except OSError:
        reset = False
    sys.argv = ["cephalo", *args]
    start = time.perf_counter()
    try:
        runpy.run_module("cephalo.cli", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    seconds = time.perf_counter() - start
    after = status_kib()
    figures = dict(
        baseline_rss_kib=before["VmRSS"],
        import_hwm_kib=before["VmHWM"],
        hwm_reset=reset,
        command_hwm_kib=after["VmHWM"],
        end_rss_kib=after["VmRSS"],
        seconds=seconds,
        late_imports=sorted(set(sys.modules) - modules),
    )
    Path(report).write_text(json.dumps(figures))
    return code


def measure(n_slices: int, workdir: Path) -> dict[str, Any]:
    """Synthesize a full-size release of ``n_slices`` in ``workdir`` and measure ``prepare``."""
    start = time.perf_counter()
    files = synthesize(workdir / "release", n_slices, scale=1.0, seed=0)["train"]
    synth_seconds = time.perf_counter() - start
    report, log, out = workdir / "child.json", workdir / "child.log", workdir / "prepared"
    command = [sys.executable, __file__, "--child", str(report)]
    command += ["data", "prepare", "--stack", str(files.stack), "--gt", str(files.gt)]
    command += ["--out", str(out)]
    start = time.perf_counter()
    with open(log, "wb") as log_file:
        returncode = subprocess.run(command, stdout=log_file, stderr=subprocess.STDOUT).returncode
    wall_seconds = time.perf_counter() - start
    if returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"prepare exited with status {returncode}:\n{tail}")
    inside = json.loads(report.read_text())
    prepared = json.loads((out / "dataset.json").read_text())["n_images"]
    if prepared != n_slices:
        raise RuntimeError(f"prepare wrote {prepared} images, expected {n_slices}")

    kib = 1024
    baseline = inside["baseline_rss_kib"] * kib
    command_peak = inside["command_hwm_kib"] * kib
    peak = max(command_peak, inside["import_hwm_kib"] * kib)
    increment = command_peak - baseline
    return dict(
        slices=n_slices,
        stack_bytes=files.stack.stat().st_size,
        synth_seconds=round(synth_seconds, 2),
        prepare_seconds=round(inside["seconds"], 2),
        child_wall_seconds=round(wall_seconds, 2),
        throughput_images_per_s=round(n_slices / inside["seconds"], 3),
        baseline_rss_bytes=baseline,
        import_peak_rss_bytes=inside["import_hwm_kib"] * kib,
        command_peak_rss_bytes=command_peak,
        peak_rss_bytes=peak,
        end_rss_bytes=inside["end_rss_kib"] * kib,
        peak_reset_before_command=inside["hwm_reset"],
        increment_bytes=increment,
        baseline_over_slice=round(baseline / SLICE_BYTES, 3),
        peak_over_slice=round(peak / SLICE_BYTES, 3),
        increment_over_slice=round(increment / SLICE_BYTES, 3),
        target_increment_over_slice=TARGET_SLICES,
        passed=increment / SLICE_BYTES < TARGET_SLICES,
        late_imports=inside["late_imports"],
    )


def growth(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """How the increment changes from the smallest to the largest count, and where a linear
    trend would put it for the whole release."""
    if len(runs) < 2:
        return None
    small, large = runs[0], runs[-1]
    ratio = large["increment_bytes"] / max(small["increment_bytes"], 1)
    per_slice = max(0.0, (large["increment_bytes"] - small["increment_bytes"]))
    per_slice /= large["slices"] - small["slices"]
    projected = large["increment_bytes"] + per_slice * max(0, RELEASE_SLICES - large["slices"])
    return dict(
        counts=[small["slices"], large["slices"]],
        increment_ratio=round(ratio, 3),
        target_increment_ratio=GROWTH_TARGET,
        ratio_passed=ratio <= GROWTH_TARGET,
        growth_bytes_per_slice=round(per_slice),
        release_slices=RELEASE_SLICES,
        projected_increment_over_slice=round(projected / SLICE_BYTES, 3),
        projected_passed=projected / SLICE_BYTES < TARGET_SLICES,
    )


def checks(runs: list[dict[str, Any]], trend: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The figures held to a target, for the summary of ``make bench``."""
    held = [
        check(
            f"increment / slice, {r['slices']} slices",
            r["increment_over_slice"],
            "slices",
            f"< {TARGET_SLICES:g}",
            r["passed"],
        )
        for r in runs
    ]
    if trend is not None:
        small, large = trend["counts"]
        held += [
            check(
                f"increment {large} / {small} slices",
                trend["increment_ratio"],
                "x",
                f"<= {GROWTH_TARGET:g}",
                trend["ratio_passed"],
            ),
            check(
                f"increment / slice, projected to {RELEASE_SLICES}",
                trend["projected_increment_over_slice"],
                "slices",
                f"< {TARGET_SLICES:g}",
                trend["projected_passed"],
            ),
        ]
    return held


def table(runs: list[dict[str, Any]], trend: dict[str, Any] | None) -> str:
    """The figures as a fixed-width table: one column per slice count."""
    verdict = {True: "PASS", False: "FAIL"}
    head = ["figure", *(f"{r['slices']} slices" for r in runs), "target", "result"]

    def row(
        label: str, key: str, scale: float = 1.0, target: str = "-", result: str = ""
    ) -> list[str]:
        return [label, *(f"{r[key] / scale:.2f}" for r in runs), target, result]

    rows = [
        row("stack on disk (MB)", "stack_bytes", MB),
        row("throughput (images/s, warm cache)", "throughput_images_per_s"),
        row("baseline RSS after imports (MB)", "baseline_rss_bytes", MB),
        row("peak RSS of the process (MB)", "peak_rss_bytes", MB),
        row("increment = peak - baseline (MB)", "increment_bytes", MB),
        row(
            "increment / slice",
            "increment_over_slice",
            target=f"< {TARGET_SLICES:g}",
            result=verdict[all(r["passed"] for r in runs)],
        ),
        row("baseline / slice (informative)", "baseline_over_slice"),
        row("peak / slice (informative)", "peak_over_slice"),
    ]
    if trend is not None:
        blank = [""] * (len(runs) - 1)
        small, large = trend["counts"]
        ratio, projected = trend["increment_ratio"], trend["projected_increment_over_slice"]
        rows += [
            [
                f"increment {large} / {small} slices",
                *blank,
                f"{ratio:.3f}",
                f"<= {GROWTH_TARGET:g}",
                verdict[trend["ratio_passed"]],
            ],
            [
                f"increment / slice, projected to {RELEASE_SLICES}",
                *blank,
                f"{projected:.2f}",
                f"< {TARGET_SLICES:g}",
                verdict[trend["projected_passed"]],
            ],
        ]
    return layout(head, rows)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:  # the measured command, in this fresh process
        return measured_command(argv[1], argv[2:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--counts", type=int, nargs="+", default=[20, 40], help="slice counts (default: 20 40)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "prepare_memory.json", help="JSON")
    args = parser.parse_args(argv)
    counts = sorted(set(args.counts))
    if counts[0] < 5:
        parser.error("--counts: prepare's 5 default folds need at least 5 slices")

    runs = []
    for n in counts:
        with tempfile.TemporaryDirectory(prefix="prepare_memory-") as workdir:
            runs.append(measure(n, Path(workdir)))
        run = runs[-1]
        print(
            f"{n} slices: synthesized in {run['synth_seconds']:.0f} s, prepared in "
            f"{run['child_wall_seconds']:.0f} s",
            file=sys.stderr,
        )
    trend = growth(runs)

    h, w = SLICE_HW
    print(
        f"prepare peak memory on full-size stacks ({h}x{w} RGB uint8; one padded slice = "
        f"{SLICE_BYTES / MB:.1f} MB)\n"
    )
    print(table(runs, trend))
    first = runs[0]
    print(
        "\nThe interpreter with its imports (numpy, SimpleITK, OpenCV, pandas, click, tqdm)\n"
        f"holds {first['baseline_rss_bytes'] / MB:.0f} MB, {first['baseline_over_slice']:.1f} "
        "slices' worth, before it reads any slice: the target applies to the increment.\n"
        "Baseline = the child's VmRSS after its imports; peak = its VmHWM over the command."
    )
    passed = all(r["passed"] for r in runs) and (
        trend is None or (trend["ratio_passed"] and trend["projected_passed"])
    )
    result = dict(
        benchmark="prepare_memory",
        command="python -m cephalo.cli data prepare --stack ... --gt ... --out ...",
        method="baseline: child VmRSS after imports; peak: child VmHWM over the command "
        "(reset through /proc/self/clear_refs before it starts)",
        slice_hw=list(SLICE_HW),
        slice_bytes=SLICE_BYTES,
        **environment(),
        runs=runs,
        growth=trend,
        checks=checks(runs, trend),
        passed=passed,
    )
    write_result(args.out, result)
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
