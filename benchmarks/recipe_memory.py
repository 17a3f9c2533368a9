"""The memory each public recipe needs to train, estimated on a CPU, against what its spec says.

Why: each recipe spec in ``experiments/`` (``organiser-*``, ``winner-*``) states in its
description the GPU memory it needs at its batch size, so that a competitor knows before
renting a GPU. Without a GPU at hand that figure is an estimate; this benchmark makes it a
measured one and holds the descriptions to it.

What, per recipe, in a fresh child process (this script with ``--step``,
:func:`training_step`):

1. the run's model is built from the spec's resolved parameters (``parse_params``, then
   ``cephalo.models.network.model``) in training mode; its parameter count is taken;
2. ``/proc/self/clear_refs`` resets the kernel's high-water mark (``VmHWM``) to the current
   resident set, and one training step runs at batch 1 on the CPU: forward through backbone
   and head at the recipe's input size, a loss on every output, backward;
3. ``VmHWM`` - ``VmRSS`` before the step = the activations one image keeps for backward
   (plus the gradients' and the autograd buffers' memory), in float32.

The GPU estimate at the spec's batch size B: B x that per-image figure (halved with ``amp``:
activations in float16, a rough factor), + 16 bytes per parameter (float32 weights,
gradients and Adam's two moments), + 0.5 GiB for the CUDA context and cuDNN workspace. It
ignores the data pipeline (CPU side) and allocator fragmentation, so it errs low by a
little. Held to a target: the figure the spec's description states ("about N GB") is
within 25 % of the estimate.

Run: ``.venv/bin/python benchmarks/recipe_memory.py [--out ...]``; about a minute and 7 GB
of free memory (the winner's 1024 x 1024 stride-1 HRNet-W48 keeps 5.6 GiB per image).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from cephalo.experiments.spec import read_spec, variant_params
from cephalo.models.params import parse_params
from cephalo.paths import EXPERIMENTS
from report import RESULTS, VERDICT, check, environment, layout, status_kib, write_result

RECIPES = {  # spec -> the variant measured
    "organiser-rtmpose-m-512": "base",
    "organiser-hrnet-w48-512": "mse",
    "winner-hrnet-w48-1024": "base",
}
GIB = 2**30
CONTEXT_GIB = 0.5
BYTES_PER_PARAMETER = 16  # float32 weights, gradients, Adam's two moments
TOLERANCE = 0.25
STATED = re.compile(r"about (\d+(?:\.\d+)?) GB")


def training_step(values: dict[str, Any]) -> dict[str, int]:
    """Run in the child (``--step``): the model of ``values`` built in training mode, then
    one batch-1 forward and backward; its parameter count and the step's peak memory."""
    import torch
    from mmpose.registry import MODELS
    from mmpose.utils import register_all_modules

    import cephalo.mmpose_plugins  # noqa: F401  (the kit's codecs)
    from cephalo.models.network import model as network_config

    params = parse_params(values)
    register_all_modules()
    model = MODELS.build(network_config(params, 38)).train()
    width, height = params.input_size
    image = torch.randn(1, 3, height, width)
    before = status_kib()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # VmHWM restarts from the current resident set: the step's own peak
    outputs = model.head.forward(model.extract_feat(image))
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    sum(o.pow(2).mean() for o in outputs).backward()
    after = status_kib()
    return dict(
        parameters=sum(p.numel() for p in model.parameters()),
        step_kib=after["VmHWM"] - before["VmRSS"],
    )


def measure(spec: str, variant: str) -> dict[str, Any]:
    path = EXPERIMENTS / f"{spec}.yaml"
    parsed = read_spec(path)
    values = variant_params(parsed, path)[variant]
    params = parse_params(values)
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "child.json"
        command = [sys.executable, __file__, "--step", json.dumps(values), str(report)]
        subprocess.run(command, check=True, capture_output=True)
        child = json.loads(report.read_text())
    per_image = child["step_kib"] * 1024 / GIB
    activations = params.batch_size * per_image * (0.5 if params.amp else 1.0)
    estimate = activations + child["parameters"] * BYTES_PER_PARAMETER / GIB + CONTEXT_GIB
    stated = STATED.search(" ".join(parsed.description.split()))
    return dict(
        spec=spec,
        batch_size=params.batch_size,
        amp=params.amp,
        parameters=child["parameters"],
        per_image_gib=per_image,
        estimate_gib=estimate,
        stated_gb=float(stated.group(1)) if stated else None,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=RESULTS / "recipe_memory.json", help="JSON")
    parser.add_argument("--step", nargs=2, metavar=("VALUES", "REPORT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.step:  # the child: one training step in this fresh process
        values, report = args.step
        Path(report).write_text(json.dumps(training_step(json.loads(values))))
        return 0
    rows, checks = [], []
    for spec, variant in RECIPES.items():
        r = measure(spec, variant)
        stated = r["stated_gb"]
        ok = stated is not None and abs(stated - r["estimate_gib"]) <= TOLERANCE * r["estimate_gib"]
        target = f"within {TOLERANCE:.0%} of {r['estimate_gib']:.1f}"
        checks.append(check(f"{spec}: stated GB", stated or 0.0, "GB", target, ok))
        rows.append(
            [
                spec,
                f"{r['parameters'] / 1e6:.1f} M",
                f"{r['per_image_gib']:.2f} GiB",
                f"{r['batch_size']}{' amp' if r['amp'] else ''}",
                f"{r['estimate_gib']:.1f} GiB",
                "none" if stated is None else f"{stated:g} GB",
                VERDICT[ok],
            ]
        )
    head = ["recipe", "parameters", "per image", "batch", "GPU estimate", "spec says", ""]
    print("GPU memory to train each public recipe, estimated from one CPU training step\n")
    print(layout(head, rows))
    passed = all(c["ok"] for c in checks)
    write_result(
        args.out,
        dict(benchmark="recipe_memory", environment=environment(), checks=checks, passed=passed),
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
