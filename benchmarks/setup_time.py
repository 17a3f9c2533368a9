"""``make setup`` with a warm wheel cache: a fresh virtualenv built from the lock. MMCV is
compiled from its sdist (10-15 minutes on two cores) and xtcocotools built against numpy 2,
so ``tools/setup_env.sh`` caches the wheels it builds outside the checkout. The README's
promise: a fresh clone on the same machine takes about three minutes (target 180 s).

``VENV=<temporary>/venv bash tools/setup_env.sh``, what ``make setup`` runs, timed whole and
split by its ``[setup]`` lines; packages come from the configured indexes, so their download
counts. Skipped when a wheel the script would use is not cached (it would compile: a cold
cache is not timed) or when 10 GB are not free (the virtualenv takes about 7 GB).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.harness import ROOT, Bench, Skip, main

SCRIPT, LOCK = ROOT / "tools" / "setup_env.sh", ROOT / "requirements" / "constraints.txt"
STEP = re.compile(r"\[setup\]\S*\s+(.*)")  # the script's progress lines (bold escape codes)


def pin(name: str) -> str:
    return re.search(rf"^{re.escape(name)}==(\S+)$", LOCK.read_text(), re.MULTILINE).group(1)


def cold_wheel_folders() -> list[str]:
    """The wheel cache folders, computed as ``setup_env.sh`` does, that hold no wheel."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cephalo" / "wheels"
    root = Path(os.environ.get("CEPHALO_WHEEL_CACHE") or cache)
    key = f"cp{sys.version_info[0]}{sys.version_info[1]}-torch{pin('torch')}-numpy{pin('numpy')}"
    folders = []
    for name, file, patch in re.findall(
        r"^build_wheel (\S+) (\S+) '([^']*)'", SCRIPT.read_text(), re.M
    ):
        digest = hashlib.sha1(f"{file} {patch}\n".encode()).hexdigest()[:8]
        folders.append(root / key / f"{name}-{pin(name)}-{digest}")
    return [str(folder) for folder in folders if not any(folder.glob("*.whl"))]


def measure(bench: Bench) -> None:
    cold, free = cold_wheel_folders(), shutil.disk_usage(tempfile.gettempdir()).free
    if cold:
        raise Skip(f"wheel cache cold (no wheel in {', '.join(cold)}): setup would compile")
    if free < 10e9:
        raise Skip(f"{free / 1e9:.1f} GB free in {tempfile.gettempdir()}, 10 needed")
    with tempfile.TemporaryDirectory(prefix="setup_time-") as tmp:
        venv, output, steps = Path(tmp) / "venv", [], []
        start = time.perf_counter()
        process = subprocess.Popen(
            ["bash", str(SCRIPT)],
            cwd=ROOT,
            env=dict(os.environ, VENV=str(venv)),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for line in process.stdout:  # a step starts when its line appears
            output.append(line)
            if match := STEP.search(line):
                label = re.sub(r"\s+in /\S+", "", match.group(1).replace(str(venv), "the venv"))
                steps.append(dict(step=label.strip(), started_s=time.perf_counter() - start))
        code = process.wait()
        wall = time.perf_counter() - start  # before the 7 GB folder is deleted
    if code != 0:
        raise RuntimeError(f"setup_env.sh exited with status {code}:\n{''.join(output)[-3000:]}")
    for step, end in zip(steps, [s["started_s"] for s in steps[1:]] + [wall], strict=True):
        bench.informative(f"  {step['step']}", end - step["started_s"], "s")
    bench.held("make setup: fresh venv, warm wheel cache", wall, "s", "<", 180)


if __name__ == "__main__":
    main(measure)
