#!/usr/bin/env bash
# The GPU path on a machine that has one, measured: the environment, one epoch of rtmpose-t
# and hrnet-w18 at 512x512 with and without mixed precision, data-parallel NCCL training when
# there are two GPUs, and batched prediction of a 20-slice stack. Synthetic data at the real
# release's image size; prints one line of figures per step. Takes about 5-10 minutes.
#
#   bash tools/gpu_check.sh [WORK_FOLDER]      (default: a temporary folder)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
WORK=${1:-$(mktemp -d)}
mkdir -p "$WORK"
say() { printf '\033[1m[gpu-check]\033[0m %s\n' "$*"; }

say "environment"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$PY" -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, "GPUs", torch.cuda.device_count(), "cuDNN", torch.backends.cudnn.version())'
"$PY" -m cephalo.cli doctor || say "the doctor found problems (above)"

if [ ! -f "$WORK/prepared/dataset.json" ]; then
    say "synthetic release at full size: 40 training images, a 20-slice test stack"
    "$PY" -m cephalo.cli data synth --out "$WORK/raw" --n-images 40 --n-test 20
    "$PY" -m cephalo.cli data prepare --stack "$WORK/raw/train_stack.mha" \
        --gt "$WORK/raw/train-gt.json" --out "$WORK/prepared"
fi

WORK="$WORK" "$PY" - <<'PYTHON'
"""One epoch per model and precision, then the test stack through the kit's inference path."""
import os
import time
from pathlib import Path

import torch

from cephalo.models.params import parse_params
from cephalo.runs.predict import predict_images, stack_images
from cephalo.runs.folder import RunFolder
from cephalo.runs.train import run_fold

work = Path(os.environ["WORK"])
for model in ("rtmpose-t", "hrnet-w18"):
    for amp in (False, True):
        params = parse_params(
            dict(model=model, input_size=[512, 512], epochs=1, batch_size=8, amp=amp, device="cuda")
        )
        run = work / "runs" / f"{model}-amp{int(amp)}"
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        metrics = run_fold(params, work / "prepared", 0, run)
        seconds = time.perf_counter() - start
        peak = torch.cuda.max_memory_allocated() / 2**30
        print(f"{model} amp={amp}: one epoch + OOF {seconds:.1f} s, peak GPU memory "
              f"{peak:.2f} GiB, MRE {metrics['MRE']:.1f} mm", flush=True)
        config = RunFolder(run).trained_config()
        net = RunFolder(run).load_model("cuda:0", config)
        start = time.perf_counter()
        slices = predict_images(net, config["val_pipeline"],
                                stack_images(work / "raw" / "test_stack.mha"), amp=amp)
        print(f"  {len(slices.image_id)}-slice stack predicted in "
              f"{time.perf_counter() - start:.1f} s", flush=True)
PYTHON

if [ "$("$PY" -c 'import torch; print(torch.cuda.device_count())')" -ge 2 ]; then
    say "two NCCL processes, one per GPU"
    WORK="$WORK" "$PY" -c '
import os, time
from pathlib import Path
from cephalo.runs.train import run_fold
work = Path(os.environ["WORK"])
start = time.perf_counter()
m = run_fold(dict(model="rtmpose-t", input_size=[512, 512], epochs=1, batch_size=8,
                  device="cuda", processes=2), work / "prepared", 0, work / "runs" / "nccl")
print(f"rtmpose-t on 2 GPUs (NCCL): {time.perf_counter() - start:.1f} s, MRE {m[\"MRE\"]:.1f} mm")'
else
    say "one GPU: the two-process NCCL run needs two (skipped)"
fi
say "done: $WORK"
