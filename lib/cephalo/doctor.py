"""``cephalo doctor``: is this environment able to run the kit?

The OpenMMLab stack breaks in ways that only show at import or run time (missing compiled
MMCV ops, an xtcocotools built against another numpy, a checkpoint torch refuses to
unpickle). Each check here runs the real thing on a tiny input and says pass or fail with a
hint, so a broken setup is found in seconds rather than an hour into training.
"""

from __future__ import annotations

import contextlib
import importlib.metadata as metadata
import io
import os
import sys
import tempfile
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from cephalo.paths import LOCK_FILE, REPO_ROOT

KERNEL_NAME = "cephalo"
SETUP_HINT = "run `make setup` (it repairs an existing .venv)"

REPORTED_PACKAGES = (
    "torch",
    "torchvision",
    "numpy",
    "mmcv",
    "mmengine",
    "mmpose",
    "mmdet",
    "opencv-python",
    "xtcocotools",
    "optuna",
    "papermill",
    "SimpleITK",
)


@dataclass(frozen=True)
class Check:
    """One named check: ``run`` returns a detail line, or raises when the check fails."""

    name: str
    run: Callable[[], str]
    hint: str = SETUP_HINT


def check_pins() -> str:
    if not LOCK_FILE.is_file():
        return "no lock file beside the package (not an editable install): skipped"
    pins = dict(
        line.split("==", 1)
        for line in LOCK_FILE.read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    wrong = []
    for name, pinned in pins.items():
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = "missing"
        if installed != pinned.strip():
            wrong.append(f"{name} {installed} (lock: {pinned.strip()})")
    if wrong:
        raise RuntimeError("differs from the lock: " + ", ".join(wrong))
    return f"{len(pins)} packages match {LOCK_FILE.relative_to(REPO_ROOT)}"


def check_one_opencv() -> str:
    flavours = [
        f"{dist} {metadata.version(dist)}"
        for dist in (
            "opencv-python",
            "opencv-python-headless",
            "opencv-contrib-python",
            "opencv-contrib-python-headless",
        )
        if _installed(dist)
    ]
    if len(flavours) != 1:
        raise RuntimeError(f"expected exactly one OpenCV flavour, found: {flavours or 'none'}")
    import cv2

    return f"{flavours[0]} (cv2 {cv2.__version__})"


def _installed(dist: str) -> bool:
    try:
        metadata.version(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


def check_mmcv_ops() -> str:
    import torch
    from mmcv.ops import nms

    boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=torch.float32)
    scores = torch.tensor([0.9, 0.8, 0.7])
    _, keep = nms(boxes, scores, iou_threshold=0.5)
    if keep.tolist() != [0, 2]:
        raise RuntimeError(f"mmcv.ops.nms returned {keep.tolist()}, expected [0, 2]")
    return "mmcv._ext loaded, nms ran"


def check_model_imports() -> str:
    import mmdet.models  # noqa: F401
    import mmpose.models  # noqa: F401

    return "mmpose.models and mmdet.models import"


def check_registries() -> str:
    from mmpose.registry import MODELS
    from mmpose.utils import register_all_modules

    register_all_modules(init_default_scope=False)
    wanted = ("CSPNeXt", "RTMCCHead", "HRNet", "HeatmapHead")
    missing = [name for name in wanted if MODELS.get(name) is None]
    if missing:
        raise RuntimeError(f"not registered in mmpose MODELS: {missing}")
    return ", ".join(wanted)


def check_xtcocotools() -> str:
    import numpy as np
    from xtcocotools import mask

    rle = mask.encode(np.asfortranarray(np.eye(4, dtype=np.uint8)))
    area = int(mask.area(rle))
    if area != 4:
        raise RuntimeError(f"xtcocotools.mask.area gave {area}, expected 4")
    return f"compiled mask ops run with numpy {np.__version__}"


def check_kernel() -> str:
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel as error:
        raise RuntimeError(f"no Jupyter kernel named {KERNEL_NAME!r}") from error
    python = os.path.abspath(spec.argv[0])
    if python != os.path.abspath(sys.executable):
        raise RuntimeError(
            f"kernel {KERNEL_NAME!r} runs {python}, not this environment's {sys.executable}"
        )
    return f"{KERNEL_NAME!r} -> {python}"


def check_checkpoint_roundtrip() -> str:
    """A Runner trains one epoch and saves; a second one loads it (``load_from``), a third
    resumes from it and trains on."""
    import torch
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    from cephalo.checkpoints import use_safe_checkpoint_loader

    use_safe_checkpoint_loader()

    class Toy(BaseModel):
        def __init__(self) -> None:
            super().__init__()
            self.linear = torch.nn.Linear(2, 1)

        def forward(self, inputs, targets=None, mode="tensor"):
            out = self.linear(torch.stack(inputs))
            if mode == "loss":
                return {"loss": ((out - torch.stack(targets)) ** 2).mean()}
            return out

    generator = torch.Generator().manual_seed(0)
    dataset = [
        dict(
            inputs=torch.randn(2, generator=generator), targets=torch.randn(1, generator=generator)
        )
        for _ in range(4)
    ]

    def runner(work_dir: str, epochs: int, **kwargs) -> Runner:
        return Runner(
            model=Toy(),
            work_dir=work_dir,
            experiment_name=f"doctor-{uuid.uuid4().hex[:8]}",
            train_dataloader=dict(
                dataset=dataset,
                batch_size=2,
                num_workers=0,
                sampler=dict(type="DefaultSampler", shuffle=False),
                collate_fn=dict(type="pseudo_collate"),
            ),
            train_cfg=dict(by_epoch=True, max_epochs=epochs),
            optim_wrapper=dict(optimizer=dict(type="SGD", lr=0.1)),
            default_hooks=dict(checkpoint=dict(type="CheckpointHook", interval=1)),
            log_level="WARNING",
            **kwargs,
        )

    with tempfile.TemporaryDirectory() as tmp:
        first = runner(tmp, epochs=1)
        first.train()
        checkpoint = os.path.join(tmp, "epoch_1.pth")
        loaded = runner(tmp, epochs=1, load_from=checkpoint)
        loaded.load_or_resume()
        if not torch.equal(loaded.model.linear.weight, first.model.linear.weight):
            raise RuntimeError("load_from did not restore the saved weights")
        resumed = runner(tmp, epochs=2, load_from=checkpoint, resume=True)
        resumed.train()
        if resumed.epoch != 2:
            raise RuntimeError(f"resume ended at epoch {resumed.epoch}, expected 2")
    return "saved, loaded (load_from) and resumed under weights_only=True"


CHECKS: tuple[Check, ...] = (
    Check("installed versions match the lock", check_pins),
    Check(
        "one OpenCV flavour", check_one_opencv, "uninstall the extra flavour(s), then `make setup`"
    ),
    Check(
        "MMCV compiled ops load",
        check_mmcv_ops,
        "MMCV was installed without ops or for another torch: remove .venv and run `make setup`",
    ),
    Check("mmpose.models / mmdet.models import", check_model_imports),
    Check("registries hold the kit's models", check_registries),
    Check(
        "xtcocotools works with this numpy",
        check_xtcocotools,
        "xtcocotools must be built from source against the pinned numpy: `make setup`",
    ),
    Check(f"Jupyter kernel {KERNEL_NAME!r}", check_kernel),
    Check(
        "MMEngine checkpoint save / load_from / resume",
        check_checkpoint_roundtrip,
        "cephalo.checkpoints.use_safe_checkpoint_loader() must run before the Runner loads",
    ),
)


def describe_environment() -> list[str]:
    """Versions and the torch device, one line each."""
    lines = [f"python      {sys.version.split()[0]} ({sys.executable})"]
    for dist in REPORTED_PACKAGES:
        version = metadata.version(dist) if _installed(dist) else "not installed"
        lines.append(f"{dist:<11} {version}")
    try:
        import torch

        if torch.cuda.is_available():
            device = f"cuda: {torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda})"
        else:
            device = f"cpu ({torch.get_num_threads()} threads; no CUDA device visible)"
    except Exception as error:  # reported, and the checks below will fail too
        device = f"unknown: torch does not import ({error})"
    lines.append(f"device      {device}")
    return lines


def run_checks(checks: tuple[Check, ...] = CHECKS, echo: Callable[[str], None] = print) -> bool:
    """Print the environment and each check's verdict; True when every check passes."""
    for line in describe_environment():
        echo(line)
    echo("")
    failures = 0
    for check in checks:
        noise = io.StringIO()  # what the libraries print and warn during a check
        try:
            with contextlib.redirect_stdout(noise), contextlib.redirect_stderr(noise):
                detail = check.run()
        except Exception as error:
            failures += 1
            echo(f"FAIL  {check.name}: {type(error).__name__}: {error}")
            echo(f"      fix: {check.hint}")
            if os.environ.get("CEPHALO_DEBUG"):
                echo(noise.getvalue() + traceback.format_exc())
        else:
            echo(f"pass  {check.name}: {detail}")
    echo("")
    echo(f"{len(checks) - failures}/{len(checks)} checks pass")
    return failures == 0
