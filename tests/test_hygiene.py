"""Lint and notebook hygiene, enforced by the test suite so CI holds every change to them.

Notebooks are kept as jupytext percent scripts (``notebooks/*.py``): diffs show code, never
outputs or base64. JupyterLab opens them as notebooks through jupytext; the kit converts
them for papermill when it executes them. A committed ``.ipynb`` would be a second copy.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUFF = Path(sys.executable).parent / "ruff"


def test_ruff_check():
    result = subprocess.run(
        [RUFF, "check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format():
    result = subprocess.run(
        [RUFF, "format", "--check", "--no-cache", "."], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_notebooks_are_percent_scripts_only():
    tracked = subprocess.run(
        ["git", "ls-files", "notebooks"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert not [p for p in tracked if p.endswith(".ipynb")], "commit notebooks as jupytext .py"
    for path in tracked:
        if path.endswith(".py"):
            text = (ROOT / path).read_text()
            assert text.startswith("# ---\n# jupyter:"), f"{path}: no jupytext header"
            assert 'tags=["parameters"]' in text, f"{path}: no papermill parameters cell"
