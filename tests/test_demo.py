"""``cephalo demo --fast`` runs the whole current recipe, and the commands it prints exist."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import pytest
from click.testing import CliRunner

from cephalo.cli import main
from cephalo.demo import run_demo

pytestmark = pytest.mark.slow


def test_fast_demo_end_to_end(tmp_path, capsys):
    out = run_demo(fast=True, data_dir=tmp_path / "data", out=tmp_path / "demo")
    printed = capsys.readouterr().out
    run = out / "runs" / "rtmpose-tiny" / "fold0"
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"MRE", "SDR 2.0mm", "mean_shape_baseline"} <= metrics.keys()
    assert (run / "predictions" / "test.npz").is_file()
    assert (out / "explore_data.ipynb").is_file() and (run / "notebook.ipynb").is_file()
    assert f"fold 0: MRE {metrics['MRE']:.2f} mm" in printed

    # every command the demo prints is one the CLI accepts
    commands = [
        shlex.split(line.strip()[2:])
        for line in printed.splitlines()
        if line.strip().startswith("$ cephalo ")
    ]
    assert len(commands) == 4
    runner = CliRunner()
    for command in commands:
        result = runner.invoke(main, [*command[1:3], "--help"])
        assert result.exit_code == 0, (command, result.output)


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
