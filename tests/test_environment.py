"""The pinned environment is stated once (requirements/constraints.txt) and every install
path agrees with it."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENTS = ROOT / "requirements"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lock() -> dict[str, str]:
    pins = {}
    for line in (REQUIREMENTS / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonical(name)] = version
    return pins


def requirement_names(path: Path) -> list[str]:
    return [
        canonical(line.split("#")[0].strip())
        for line in path.read_text().splitlines()
        if line.split("#")[0].strip()
    ]


def test_lock_pins_every_line_exactly():
    for line in (REQUIREMENTS / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            assert re.fullmatch(r"[A-Za-z0-9_.\-]+==[A-Za-z0-9_.+\-]+", line), line


def test_every_requirement_is_locked():
    pins = lock()
    for name in ("main.txt", "dev.txt", "build.txt"):
        for requirement in requirement_names(REQUIREMENTS / name):
            assert requirement in pins, f"{requirement} ({name}) is not pinned in the lock"
    # installed with --no-deps by tools/setup_env.sh
    assert {"mmpose", "mmdet"} <= pins.keys()


def test_the_stack_the_notes_verified():
    pins = lock()
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    assert pins["mmcv"] == "2.1.0"  # mmdet 3.3.0 asserts mmcv < 2.2.0
    assert pins["mmengine"] == "0.10.7" and pins["mmpose"] == "1.3.2" and pins["mmdet"] == "3.3.0"
    assert "chumpy" not in pins
    flavours = {"opencv-python", "opencv-python-headless", "opencv-contrib-python"} & pins.keys()
    assert flavours == {"opencv-python"}


def test_environment_yml_agrees_with_the_lock():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    conda = [d for d in env["dependencies"] if isinstance(d, str)]
    assert "python=3.11" in conda
    assert project["requires-python"] == ">=3.11,<3.12"
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-c requirements/constraints.txt" in pip_section
    pins = lock()
    for entry in pip_section:
        if "==" in entry:
            name, version = entry.split("==")
            assert pins[canonical(name)] == version, f"environment.yml pins {entry}"
        elif entry.startswith("-r "):
            assert (ROOT / entry[3:]).is_file(), entry
