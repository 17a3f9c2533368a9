"""Fusion throughput: how long fusing many members' coordinates takes.

Why: the ensemble step scores every fusion on the out-of-fold set and refits learned ones
fold by fold; with 10 fold/variant models x 4 TTA views, that is 40 members over all 600
images of the release x 38 landmarks. The target (issue "Ensemble") is well under a second
for one fusion of that array; fitting learned weights is reported beside it.

What: random coordinates (40, 600, 38, 2) around a random truth, spacing 0.1 mm; each fixed
fusion, applying learned weights, fitting them (NNLS per landmark), and a greedy
selection of 5 rounds; median of 5 timings each (after a warm-up; 3 for the fits). Pure
NumPy/SciPy: run with ``OMP_NUM_THREADS=1`` to see one core's figure (``make bench`` does).
Held to the target: each fixed fusion and applying learned weights; the fits are reported.
It prints a table (case, time, target, PASS/FAIL), writes the figures as JSON, and exits 1
when the target is missed.
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from cephalo.ensemble import fusion
from report import RESULTS, VERDICT, check, layout, write_result

MODELS, VIEWS, IMAGES, LANDMARKS = 10, 4, 600, 38
TARGET_S = 1.0
RESULT = RESULTS / "fusion_throughput.json"


def timed(function, repeats: int = 5) -> float:
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 2000, (IMAGES, LANDMARKS, 2))
    coords = truth[None] + rng.normal(0, 20, (MODELS * VIEWS, IMAGES, LANDMARKS, 2))
    confidence = rng.uniform(0, 1, coords.shape[:3])
    spacing = np.full(IMAGES, 0.1)
    weights = fusion.fit_learned(coords, truth, spacing)
    cases = {
        **{
            f"fuse {m}": (lambda m=m: fusion.fuse_fixed(coords, m, confidence))
            for m in fusion.FIXED
        },
        "apply learned weights": lambda: fusion.apply_weights(coords, weights),
        "fit learned weights": lambda: fusion.fit_learned(coords, truth, spacing),
        "fit greedy (5 rounds)": lambda: fusion.fit_greedy(coords, truth, spacing, rounds=5),
    }
    figures = {
        name: timed(case, repeats=3 if name.startswith("fit") else 5)
        for name, case in cases.items()
    }
    held = {name: s for name, s in figures.items() if name.startswith(("fuse", "apply"))}
    rows = []
    for name, seconds in figures.items():
        verdict = VERDICT[seconds < TARGET_S] if name in held else "(informative)"
        ratio = f"{seconds / TARGET_S:.3f}" if name in held else ""
        rows.append([name, f"{seconds * 1000:.1f} ms", ratio, verdict])
    print(f"fusion of {MODELS} models x {VIEWS} views x {IMAGES} images x {LANDMARKS} landmarks")
    print(layout(["case", "median time", "time / 1 s target", "target < 1 s"], rows))
    passed = all(s < TARGET_S for s in held.values())
    write_result(
        RESULT,
        dict(
            benchmark="fusion_throughput",
            shape=[MODELS * VIEWS, IMAGES, LANDMARKS, 2],
            target_s=TARGET_S,
            seconds=figures,
            checks=[
                check(f"{name} (median)", 1000 * s, "ms", f"< {1000 * TARGET_S:g} ms", s < TARGET_S)
                for name, s in held.items()
            ],
            passed=passed,
        ),
    )
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
