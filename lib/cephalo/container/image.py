"""The challenge's algorithm image around a bundle: ``cephalo export ... --container``.

The organisers' templates ship a ``Dockerfile``, a ``test.sh`` that builds the image, runs it
on a small stack with the platform's restrictions and compares its output with an
``expected_output.json``, and an ``export.sh`` (``docker save | gzip``). This writes the
same beside a bundle, from the files of this folder::

    Dockerfile, .dockerignore   the kit's pinned environment (kit/tools/setup_env.sh and the
                                lock), a non-root user, the bundle, `cephalo predict --bundle`
    test.sh, export.sh          build + run + check; save for upload
    kit/                        the kit's own files the image installs from
    test/input/images/lateral-dental-x-rays/stack.mha
                                the first slices of the submission's test stack
    expected_output.json        the bundle's own prediction of that stack, made at export

The bundle's files stay where ``bundle.json`` lists them, so the folder is a bundle too.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from cephalo.errors import DataError
from cephalo.paths import REPO_ROOT

TEMPLATES = Path(__file__).parent
KIT = "kit"
KIT_FILES = ("pyproject.toml", "README.md", "requirements", "tools/setup_env.sh", "lib/cephalo")
"""What tools/setup_env.sh needs to install the kit: the project, the lock, the script."""
TEST_INPUT = Path("test/input/images/lateral-dental-x-rays")
EXPECTED = "expected_output.json"
SCRIPTS = ("test.sh", "export.sh")


def image_name(bundle: Path) -> str:
    """A Docker image name from the bundle folder's name."""
    name = re.sub(r"[^a-z0-9._-]+", "-", bundle.resolve().name.lower()).strip("-._")
    return f"cephalo-{name or 'bundle'}"


def write_container(bundle: str | os.PathLike[str], test_stack: Path, test_slices: int = 2) -> Path:
    """Write the container's files into the exported ``bundle`` folder; ``expected_output``
    is the bundle's prediction of the first ``test_slices`` slices of ``test_stack``."""
    from cephalo.container.bundle import predict_with_bundle
    from cephalo.data.release import read_slice, stack_info, write_stack

    bundle = Path(bundle)
    missing = [name for name in KIT_FILES if not (REPO_ROOT / name).exists()]
    if missing:
        raise DataError(
            f"{REPO_ROOT}: the image installs the kit from its checkout, which lacks "
            f"{', '.join(missing)} (export the container from a clone of the kit)"
        )
    n_slices, height, width = stack_info(test_stack)
    if not 1 <= test_slices <= n_slices:
        raise DataError(f"{test_stack}: {n_slices} slices, cannot take {test_slices} for the test")

    shutil.rmtree(bundle / KIT, ignore_errors=True)
    for name in KIT_FILES:
        source, target = REPO_ROOT / name, bundle / KIT / name
        if source.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc")
            shutil.copytree(source, target, ignore=ignore)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)

    image = image_name(bundle)
    shutil.copy2(TEMPLATES / "Dockerfile", bundle / "Dockerfile")
    shutil.copy2(TEMPLATES / "dockerignore", bundle / ".dockerignore")
    for script in SCRIPTS:
        text = (TEMPLATES / script).read_text().replace("@IMAGE@", image)
        (bundle / script).write_text(text)
        (bundle / script).chmod(0o755)

    shutil.rmtree(bundle / "test", ignore_errors=True)
    (bundle / TEST_INPUT).mkdir(parents=True)
    stack = bundle / TEST_INPUT / "stack.mha"
    slices = (read_slice(test_stack, k) for k in range(test_slices))
    write_stack(stack, slices, (height, width), test_slices)
    predict_with_bundle(bundle, bundle / TEST_INPUT, bundle / EXPECTED)
    return bundle
