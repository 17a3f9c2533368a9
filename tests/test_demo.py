"""``cephalo demo --fast`` runs the whole recipe, and the commands it prints exist."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from cephalo.cli import main
from cephalo.demo import run_demo
from cephalo.paths import EXPERIMENTS
from cephalo.submission import validate
from cephalo.tuning.report import load_study

pytestmark = pytest.mark.slow


def test_fast_demo_end_to_end(tmp_path, capsys):
    """The whole competition at toy size, in a scratch checkout layout holding the
    demo-fast specs of experiments/."""
    (tmp_path / "experiments").mkdir()
    for spec in EXPERIMENTS.glob("demo-fast*.yaml"):
        shutil.copy(spec, tmp_path / "experiments")
    submission = run_demo(fast=True, root=tmp_path)
    printed = capsys.readouterr().out

    assert submission == tmp_path / "submissions" / "demo-fast"
    manifest = json.loads((submission / "manifest.json").read_text())
    assert [m["name"] for m in manifest["members"]] == [
        f"{e}/base/{view}"
        for e in ("demo-fast-tune-best", "demo-fast")
        for view in ("identity", "flip")
    ]
    validate(submission / "predictions.json", [1, 2, 3], _test_sizes(tmp_path))
    html = (submission / "report.html").read_text()
    assert html.count("data:image/png;base64") >= 8 and "fusion" in html

    study = load_study(
        f"sqlite:///{tmp_path / 'experiments' / 'demo-fast-tune' / 'study.db'}", "demo-fast-tune"
    )
    assert len(study.trials) == 2
    assert "beat the best member" in printed or "beats the best member" in printed

    # every command the demo prints is one the CLI accepts
    commands = [
        shlex.split(line.strip()[2:])
        for line in printed.splitlines()
        if line.strip().startswith("$ cephalo ")
    ]
    assert [c[1] for c in commands] == [
        "data", "data", "notebook", "tune", "run", "run", "leaderboard", "ensemble", "notebook",
    ]  # fmt: skip
    runner = CliRunner()
    for command in commands:
        subcommand = command[1:3] if command[1] == "data" else command[1:2]
        result = runner.invoke(main, [*subcommand, "--help"])
        assert result.exit_code == 0, (command, result.output)


def _test_sizes(root):
    from cephalo.predict import stack_images

    stack = root / "data" / "demo-fast" / "raw" / "test_stack.mha"
    return np.array([image.shape[1::-1] for _, image, _ in stack_images(stack)])


def test_notebook_command_refuses_unknown_parameters(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cephalo.cli",
            "notebook",
            "explore_data",
            str(tmp_path / "x.ipynb"),
            "-p",
            "n_exmaples",
            "3",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "no parameter 'n_exmaples'; did you mean 'n_examples'?" in result.stderr
    assert not (tmp_path / "x.ipynb").exists()
