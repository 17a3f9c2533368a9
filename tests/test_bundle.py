"""A submission's ensemble exported as a self-contained bundle: the challenge container's
form. Run from a copy elsewhere, with the run folders and the dataset out of reach, on a
folder holding a stack of any name, it gives the submission's own predictions."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from cephalo.challenge.points import read_predictions

pytestmark = pytest.mark.slow

CEPHALO = [sys.executable, "-m", "cephalo.cli"]


def test_a_bundle_predicts_the_submission_with_nothing_else_at_hand(fast_demo, tmp_path):
    root, submission, _ = fast_demo
    exported = subprocess.run(
        [*CEPHALO, "export", str(submission), "--out", str(tmp_path / "bundle")],
        capture_output=True,
        text=True,
    )
    assert exported.returncode == 0, exported.stderr
    assert "MB)" in exported.stdout
    description = json.loads((tmp_path / "bundle" / "bundle.json").read_text())
    manifest = json.loads((submission / "manifest.json").read_text())
    assert [m["name"] for m in description["members"]] == [m["name"] for m in manifest["members"]]
    assert description["weights"] == manifest["weights"]
    # nothing in the bundle points outside it
    text = "".join(p.read_text() for p in (tmp_path / "bundle").rglob("*.json"))
    assert str(root) not in text

    moved = tmp_path / "elsewhere" / "bundle"
    shutil.copytree(tmp_path / "bundle", moved)
    shutil.rmtree(tmp_path / "bundle")
    inputs = tmp_path / "input"
    inputs.mkdir()
    shutil.copy(root / "data" / "demo-fast" / "raw" / "test_stack.mha", inputs / "whatever.mha")
    away = {
        root / name: root / f"{name}-out-of-reach" for name in ("experiments", "outputs", "data")
    }
    for here, there in away.items():
        here.rename(there)
    try:
        out = tmp_path / "output" / "orthodontic-landmarks.json"
        command = [*CEPHALO, "predict", "--bundle", str(moved), "--input", str(inputs)]
        result = subprocess.run([*command, "--out", str(out)], capture_output=True, text=True)
    finally:
        for here, there in away.items():
            there.rename(here)
    assert result.returncode == 0, result.stderr
    assert "peak memory" in result.stdout and "GiB" in result.stdout
    submitted, predicted = read_predictions(submission / "predictions.json"), read_predictions(out)
    assert sorted(predicted) == sorted(submitted)
    assert max(np.abs(predicted[z] - submitted[z]).max() for z in submitted) < 1e-6


def test_a_bundle_refuses_what_it_cannot_trust_or_find(fast_demo, tmp_path):
    from cephalo.container.bundle import (
        export_bundle,
        input_stack,
        predict_with_bundle,
        read_bundle,
    )
    from cephalo.errors import DataError

    root, submission, _ = fast_demo
    bundle = export_bundle(submission, tmp_path / "bundle")
    description = json.loads((bundle / "bundle.json").read_text())
    assert description["landmarks"] == [str(k) for k in range(1, 39)]  # the models' names
    # models of other landmarks (an ISBI-trained ensemble, say) cannot write the challenge's JSON
    other = tmp_path / "other"
    shutil.copytree(bundle, other)
    (other / "bundle.json").write_text(json.dumps(dict(description, landmarks=list("ABC"))))
    stack = root / "data" / "demo-fast" / "raw" / "test_stack.mha"
    refused = re.escape("predict 3 landmarks (A, B, C, ...), not the challenge's 38")
    with pytest.raises(DataError, match=refused):
        predict_with_bundle(other, stack, tmp_path / "out.json")
    (tmp_path / "none").mkdir()
    with pytest.raises(DataError, match=r"expected exactly one \.mha stack, found none"):
        input_stack(tmp_path / "none")
    (tmp_path / "two").mkdir()
    for name in ("a.mha", "b.mha"):
        (tmp_path / "two" / name).write_bytes(b"")
    with pytest.raises(DataError, match=r"found a\.mha, b\.mha"):
        input_stack(tmp_path / "two")
    weights = next(bundle.glob("models/*/weights.pth"))
    weights.write_bytes(weights.read_bytes()[:-1])
    with pytest.raises(DataError, match="missing or changed since the bundle was exported"):
        read_bundle(bundle)


def _instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(instruction, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", dockerfile)
    lines = [line.strip() for line in text.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


def test_the_container_installs_the_kit_from_its_lock_and_checks_its_own_output(
    fast_demo, tmp_path
):
    from cephalo.container.bundle import read_bundle
    from cephalo.paths import REPO_ROOT

    _, submission, _ = fast_demo
    out = tmp_path / "container"
    command = [*CEPHALO, "export", str(submission), "--out", str(out), "--container"]
    exported = subprocess.run(command, capture_output=True, text=True)
    assert exported.returncode == 0, exported.stderr
    read_bundle(out)  # still a bundle: every listed file unchanged

    # the image installs this checkout's kit: its lock and setup script byte for byte
    for name in ("requirements/constraints.txt", "tools/setup_env.sh", "pyproject.toml"):
        assert (out / "kit" / name).read_bytes() == (REPO_ROOT / name).read_bytes()
    assert (out / "kit" / "lib" / "cephalo" / "cli" / "main.py").is_file()
    assert not list((out / "kit").rglob("__pycache__"))

    instructions = _instructions((out / "Dockerfile").read_text())
    ops = [op for op, _ in instructions]
    copies = [args.split() for op, args in instructions if op == "COPY"]
    for args in copies:  # every file it copies is inside the folder
        sources = [a for a in args if not a.startswith("--")][:-1]
        assert sources and all((out / source).exists() for source in sources), args
    runs = " ".join(args for op, args in instructions if op == "RUN")
    assert "bash kit/tools/setup_env.sh" in runs and "PYTHON=python3.11" in runs
    users = [args for op, args in instructions if op == "USER"]
    assert users == ["algorithm"] and ops.index("USER") < ops.index("COPY")
    entrypoint = json.loads(dict(instructions)["ENTRYPOINT"])
    bundle_in_image = next(a[-1] for a in copies if "bundle.json" in a).rsplit("/", 1)[0]
    assert entrypoint[1:] == ["predict", "--bundle", bundle_in_image]
    assert entrypoint[0] == "/opt/algorithm/venv/bin/cephalo"

    for script in ("test.sh", "export.sh"):
        assert subprocess.run(["bash", "-n", str(out / script)]).returncode == 0
        assert "@IMAGE@" not in (out / script).read_text()
    test_sh = (out / "test.sh").read_text()
    for restriction in (
        "--network=none",
        "--memory=8g",
        "--cap-drop=ALL",
        "--security-opt=no-new-privileges",
        "--shm-size=128m",
        "--pids-limit=256",
        '"$PWD/test/input:/input:ro"',
        '"$PWD/expected_output.json:/expected/orthodontic-landmarks.json:ro"',
    ):
        assert restriction in test_sh
    assert "docker save" in (out / "export.sh").read_text()

    # expected_output.json: the bundle's own prediction of the submission's first two slices
    stacks = list((out / "test" / "input" / "images" / "lateral-dental-x-rays").glob("*.mha"))
    assert len(stacks) == 1
    expected = read_predictions(out / "expected_output.json")
    submitted = read_predictions(submission / "predictions.json")
    assert sorted(expected) == [1, 2]
    assert max(np.abs(expected[z] - submitted[z]).max() for z in expected) < 1e-6

    # the check test.sh asks of the image's entrypoint, run here from the folder itself
    predict = [*CEPHALO, "predict", "--bundle", str(out), "--input", str(stacks[0].parent)]
    checked = [*predict, "--out", str(tmp_path / "out.json"), "--expected"]
    result = subprocess.run(
        [*checked, str(out / "expected_output.json")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "matches" in result.stdout
    moved = json.loads((out / "expected_output.json").read_text())
    entry = next(p for p in moved["points"] if p["point"][2] == 2 and p["name"] == "7")
    entry["point"][0] += 5.0
    (tmp_path / "moved.json").write_text(json.dumps(moved))
    result = subprocess.run(
        [*checked, str(tmp_path / "moved.json"), "--tolerance", "3"], capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "slice 2, landmark 7 is 5.00 px from" in result.stderr
