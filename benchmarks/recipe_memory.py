"""The GPU memory each public recipe needs to train, estimated on a CPU, against what its
spec's description says ("about N GB"), so that a competitor knows before renting a GPU.

Per recipe, in a fresh interpreter (:func:`child`): the run's model built from the spec's
resolved parameters in training mode, ``VmHWM`` reset to the resident set, one batch-1
forward and backward at the recipe's input size; the high-water mark's rise is what one
image keeps for backward, in float32. Estimate at the spec's batch size B: B x that (halved
with ``amp``), + 16 bytes per parameter (weights, gradients, Adam's two moments) + 0.5 GiB
of CUDA context. It ignores the data pipeline and fragmentation, so it errs a little low.
Held: the stated figure within 25 % of the estimate. About a minute and 7 GB of free memory.
"""

from __future__ import annotations

import re

from benchmarks.harness import Bench, in_fresh_process, main, reset_peak_memory, status_kib
from cephalo.experiments.spec import read_spec, variant_params
from cephalo.models.params import parse_params
from cephalo.paths import EXPERIMENTS

RECIPES = {  # spec -> the variant measured
    "organiser-rtmpose-m-512": "base",
    "organiser-hrnet-w48-512": "mse",
    "winner-hrnet-w48-1024": "base",
}
GIB = 2**30
STATED = re.compile(r"about (\d+(?:\.\d+)?) GB")


def child(values: dict) -> dict[str, int]:
    """One batch-1 training step of the model of ``values``: its parameters, the step's peak."""
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
    reset_peak_memory()
    outputs = model.head.forward(model.extract_feat(image))
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    sum(o.pow(2).mean() for o in outputs).backward()
    return dict(
        parameters=sum(p.numel() for p in model.parameters()),
        step_kib=status_kib()["VmHWM"] - before["VmRSS"],
    )


def measure(bench: Bench) -> None:
    for spec, variant in RECIPES.items():
        path = EXPERIMENTS / f"{spec}.yaml"
        parsed = read_spec(path)
        values = variant_params(parsed, path)[variant]
        params = parse_params(values)
        step = in_fresh_process(__spec__.name, values=values)
        per_image = step["step_kib"] * 1024 / GIB
        activations = params.batch_size * per_image * (0.5 if params.amp else 1.0)
        estimate = activations + step["parameters"] * 16 / GIB + 0.5
        stated = STATED.search(" ".join(parsed.description.split()))
        stated_gb = float(stated.group(1)) if stated else float("inf")
        bench.informative(f"{spec}: per image, float32", per_image, "GiB")
        bench.informative(f"{spec}: estimate at batch {params.batch_size}", estimate, "GiB")
        deviation = 100 * abs(stated_gb - estimate) / estimate
        bench.held(f"{spec}: stated {stated_gb:g} GB vs the estimate", deviation, "%", "<=", 25)
        bench.record(**{spec: dict(step, batch_size=params.batch_size, amp=params.amp)})


if __name__ == "__main__":
    main(measure, child)
