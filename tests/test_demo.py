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

from cephalo.challenge.submission import validate
from cephalo.cli import main
from cephalo.tuning.storage import load_study

pytestmark = pytest.mark.slow


def test_fast_demo_end_to_end(fast_demo):
    tmp_path, submission, printed = fast_demo

    assert submission == tmp_path / "submissions" / "demo-fast"
    manifest = json.loads((submission / "manifest.json").read_text())
    assert [m["name"] for m in manifest["members"]] == [
        f"{e}/base/{view}"
        for e in ("demo-fast-tune-best", "demo-fast")
        for view in ("identity", "shift+0.03,+0", "shift-0.03,+0", "shift+0,+0.03", "shift+0,-0.03")
    ]
    validate(submission / "predictions.json", [1, 2, 3], _test_sizes(tmp_path))
    html = (submission / "report.html").read_text()
    assert html.count("data:image/png;base64") >= 8 and "fusion" in html

    study = load_study(
        f"sqlite:///{tmp_path / 'outputs' / 'demo-fast-tune' / 'study.db'}", "demo-fast-tune"
    )
    assert len(study.trials) == 2
    # experiments/ holds the hand-written specs only; everything made from them is in outputs/
    assert {p.suffix for p in (tmp_path / "experiments").iterdir()} == {".yaml"}
    assert {p.name for p in (tmp_path / "experiments").iterdir()} == {
        "demo-fast.yaml", "demo-fast-tune.yaml", "demo-fast-ensemble.yaml"
    }  # fmt: skip
    outputs = tmp_path / "outputs"
    assert (outputs / "registry.db").is_file() and (outputs / "demo-fast-tune-best.yaml").is_file()
    assert list((outputs / "demo-fast-tune-best" / "runs" / "base").iterdir())
    assert "beat the best member" in printed or "beats the best member" in printed
    # the TTA views' effect, against the same fusion of the identity views
    assert "fusion without TTA: learned" in manifest["oof"]
    assert "TTA: fusion 'learned' OOF MRE" in printed

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
    from cephalo.runs.predict import stack_images

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


@pytest.mark.slow
def test_the_notebook_command_streams_the_training_log(dataset, tmp_path):
    """`cephalo notebook train` shows MMEngine's log (epochs, loss, ETA, validation) while the
    notebook runs, not only once it has ended."""
    run_dir = tmp_path / "run"
    params = "{model: rtmpose-tiny, input_size: [64, 64], epochs: 2, batch_size: 4, device: cpu}"
    command = [sys.executable, "-m", "cephalo.cli", "notebook", "train", str(tmp_path / "nb.ipynb"),
               "-p", "dataset_dir", str(dataset), "-p", "fold", "0", "-p", "run_dir", str(run_dir),
               "-p", "params", params]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    lines, seen_while_running = [], False
    for line in process.stderr:
        lines.append(line)
        if "Epoch(train)" in line and "eta:" in line:
            seen_while_running |= not (run_dir / "metrics.json").exists()
    assert process.wait() == 0, "".join(lines)
    log = "".join(lines)
    assert seen_while_running, log
    assert "Epoch(val)" in log and "MRE" in log and "Executing Cell" in log


def screenshot(html, png):
    """Render a page with headless Chromium (Debian's package) into a PNG."""
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("no chromium (apt-get install chromium; .ci/run does)")
    subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--window-size=1280,3000",
         f"--screenshot={png}", html.as_uri()],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return png


def test_the_report_renders_in_a_browser(fast_demo, tmp_path):
    import cv2

    _, submission, _ = fast_demo
    png = screenshot(submission / "report.html", tmp_path / "report.png")
    image = cv2.imread(str(png), cv2.IMREAD_GRAYSCALE)
    assert image.shape == (3000, 1280)
    bands = image.reshape(10, -1)  # ten horizontal bands of the page
    assert (bands.std(axis=1) > 5).sum() >= 8, "most of the page is blank"


def test_the_report_shows_figures_and_text_not_code(fast_demo):
    """The page as Chromium renders it: every figure an image (none left as its text repr),
    no code cell's input, and the fusion's weights and the per-landmark error map there."""
    _, submission, _ = fast_demo
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("no chromium (apt-get install chromium; .ci/run does)")
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
         (submission / "report.html").as_uri()],
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    assert "<Figure size" not in dom and "&lt;Figure size" not in dom
    assert 'class="highlight' not in dom and 'class="jp-CodeMirrorEditor' not in dom
    assert "from cephalo" not in dom and "import " not in dom
    assert dom.count("data:image/png;base64") >= 10
    assert "The fusion's weights, member by landmark" in dom
    assert "Where each landmark's error goes" in dom
