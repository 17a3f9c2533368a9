"""Lint and notebook hygiene, enforced by the test suite so CI holds every change to them.

Notebooks are kept as jupytext percent scripts (``notebooks/*.py``): diffs show code, never
outputs or base64. JupyterLab opens them as notebooks through jupytext; the kit converts
them for papermill when it executes them. A committed ``.ipynb`` would be a second copy.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

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


# What may not appear in code that reads files a user might have received from elsewhere
# (README, "What the kit trusts"); each with the one module allowed to do it, if any.
UNSAFE_CALLS = {
    r"\bpickle\.loads?\(": None,
    r"\bjoblib\.load\(": None,
    r"\byaml\.(unsafe_|full_)?load\(": None,
    r"weights_only\s*=\s*False": None,
    r"allow_pickle\s*=\s*True": None,
    r"\btorch\.load\(": "lib/cephalo/checkpoints.py",  # weights_only=True + allow-list
    r"\bConfig\.fromfile\(": "lib/cephalo/distributed.py",  # the config its run just wrote
    r"0\.0\.0\.0": None,
}


def test_no_unsafe_loading_or_public_binding():
    tracked = subprocess.run(
        ["git", "ls-files", "lib", "notebooks", "tools"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    found = []
    for path in (p for p in tracked if p.endswith((".py", ".sh"))):
        text = (ROOT / path).read_text()
        for pattern, allowed_in in UNSAFE_CALLS.items():
            if path != allowed_in and re.search(pattern, text):
                found.append(f"{path}: {pattern}")
    assert not found, found
    assert "weights_only=True" in (ROOT / "lib/cephalo/checkpoints.py").read_text()


def test_every_array_load_refuses_pickles():
    for path in (ROOT / "lib").rglob("*.py"):
        for line in path.read_text().splitlines():
            if "np.load(" in line:
                assert "allow_pickle=False" in line, f"{path}: {line.strip()}"


RUN_FOLDER_FILES = re.compile(
    r"""["'](run\.json|params\.json|metrics\.json|config\.py|config\.json|run\.log|"""
    r"""notebook\.ipynb|train\.json|val\.json)["']|/\s*["']predictions["']"""
)


WORKSPACE_PATHS = re.compile(
    r"""["'](registry\.db|study\.db)["']|-best\.yaml["']|/\s*["']trials["']"""
)


@pytest.mark.parametrize(
    ("owner", "pattern"),
    [("runs/folder.py", RUN_FOLDER_FILES), ("workspace.py", WORKSPACE_PATHS)],
    ids=["run folder", "workspace"],
)
def test_only_the_owner_of_a_folder_names_its_files(owner, pattern):
    """A run folder's layout is known in one module (cephalo.runs.folder), the workspace's
    (the registry, each experiment's runs, trials and study) in another (cephalo.workspace):
    everything else asks them for a path, so a change of layout is made once."""
    owner = ROOT / "lib" / "cephalo" / owner
    sources = [*(ROOT / "lib").rglob("*.py"), *(ROOT / "benchmarks").rglob("*.py")]
    sources += [*(ROOT / "notebooks").glob("*.py"), *(ROOT / "tools").glob("*.sh")]
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in sources
        if path != owner
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not found, "\n".join(found)
    assert pattern.search(owner.read_text())  # the pattern finds what it looks for


def test_library_modules_log_and_never_print():
    """Library modules log (``logging.getLogger(__name__)``); only the commands (the ``cli``
    package and the demo), which own the terminal, print."""
    library = ROOT / "lib" / "cephalo"
    terminal = {library / "demo.py", library / "logs.py"}  # logs.py writes log records out
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in library.rglob("*.py")
        if path not in terminal and library / "cli" not in path.parents
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if re.search(r"(?<![\w.])print\(|click\.(echo|secho)\(", line)
    ]
    assert not found, found
