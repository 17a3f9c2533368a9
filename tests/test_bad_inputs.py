"""Bad input across the command line: each command a user types refuses it with exit status 1
and one message naming the problem (no traceback), and leaves what earlier commands wrote as
it was.

Here: specs with an unknown model, inconsistent codec settings or a typo (``run``, ``tune``,
``ensemble``), a storage URL that cannot be reached, notebook parameters that are misspelled
or invalid, a prediction file missing a landmark, a truncated test stack for ``predict``.
The release's own bad inputs (truncated or corrupt ``.mha``, wrong dtype or shape, 37 or 39
landmarks, duplicate points, NaN or negative coordinates, a missing ``scale``) go through
``cephalo data prepare`` in test_prepare.py, and every way a prediction file can be wrong
through ``cephalo evaluate`` in test_metrics.py.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cephalo.cli import main
from cephalo.data.release import read_gt
from cephalo.experiments import registry
from cephalo.landmarks import LANDMARK_NAMES

TINY = dict(model="rtmpose-tiny", input_size=[64, 64], epochs=1, num_workers=0)


def refused(args: list[str], *messages: str) -> str:
    """Run ``cephalo ARGS`` in this process; it must fail cleanly, naming each message."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), result.exception  # not a crash
    # a command that streams what it runs (`cephalo notebook`) prints that first
    error = result.output[result.output.rfind("\nError: ") + 1 :]
    assert error.startswith("Error: "), result.output
    for message in messages:
        assert message in error, result.output
    return error


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def write_yaml(path: Path, content: dict) -> Path:
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


@pytest.fixture
def experiments(tmp_path: Path) -> Path:
    """An experiments folder where an earlier batch left its registry and a run."""
    folder = tmp_path / "experiments"
    (folder / "earlier" / "runs" / "base" / "fold0").mkdir(parents=True)
    (folder / "earlier" / "runs" / "base" / "fold0" / "metrics.json").write_text('{"MRE": 3}')
    registry.record(
        folder / "registry.db",
        dict(experiment="earlier", run="base/fold0", status="completed", metrics={"MRE": 3.0}),
    )
    return folder


@pytest.mark.parametrize(
    "params, message",
    [
        (dict(TINY, model="rtmpose-xxl"), "unknown model 'rtmpose-xxl'. Did you mean"),
        (
            dict(TINY, model="hrnet-tiny", simcc_split_ratio=2.0),
            "simcc_split_ratio applies to rtmpose models only, not hrnet-tiny",
        ),
        (dict(TINY, codec="udp"), "codec applies to hrnet models only, not rtmpose-tiny"),
        (dict(TINY, heatmap_stride=2), "heatmap_stride applies to hrnet models only"),
        ({"epoch": 3, **TINY}, "epoch: unknown name; did you mean 'epochs'"),
    ],
    ids=["unknown model", "SimCC ratio for HRNet", "codec for RTMPose", "stride", "typo"],
)
def test_run_refuses_a_bad_spec(params, message, dataset, experiments):
    spec = write_yaml(experiments / "bad.yaml", dict(dataset=str(dataset), params=params))
    before = snapshot(experiments)
    refused(["run", spec], str(spec), message)
    assert snapshot(experiments) == before


@pytest.mark.parametrize(
    "command, kind, use",
    [("run", "tuning", "cephalo tune"), ("tune", "ensemble", "cephalo ensemble")],
)
def test_a_spec_given_to_the_command_of_another_kind_is_refused(command, kind, use, experiments):
    spec = write_yaml(experiments / "other.yaml", dict(kind=kind, params=TINY))
    before = snapshot(experiments)
    refused([command, spec], f"a spec of kind '{kind}'", f"run it with `{use}`")
    assert snapshot(experiments) == before


def test_tune_refuses_a_search_over_an_unknown_parameter(dataset, experiments):
    spec = write_yaml(
        experiments / "bad-tune.yaml",
        dict(dataset=str(dataset), params=TINY, search={"sigam": {"low": 1, "high": 3}}),
    )
    before = snapshot(experiments)
    refused(["tune", spec], "'sigam' is not a training parameter")
    assert snapshot(experiments) == before


def test_tune_names_a_storage_it_cannot_reach_without_its_password(dataset, experiments):
    spec = write_yaml(
        experiments / "tune.yaml",
        dict(dataset=str(dataset), params=TINY, search={"sigma": {"low": 1, "high": 3}}),
    )
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    before = snapshot(experiments)
    url = f"postgresql+psycopg2://cephalo:secret@127.0.0.1:{port}/optuna"
    output = refused(["tune", spec, "--storage", url], "cannot open the study storage", str(port))
    assert "secret" not in output
    assert snapshot(experiments) == before


def test_ensemble_refuses_a_spec_typo_and_members_that_never_ran(experiments, tmp_path):
    typo = dict(members=[{"experiment": "earlier"}], fuson="mean")
    typo = write_yaml(experiments / "typo.yaml", typo)
    never = write_yaml(experiments / "never.yaml", dict(members=[{"experiment": "not-run"}]))
    out = tmp_path / "submission"
    out.mkdir()
    (out / "manifest.json").write_text('{"earlier": true}')
    before = snapshot(experiments), snapshot(out)
    refused(["ensemble", typo, "--out", out], "fuson: unknown name; did you mean 'fusion'")
    refused(["ensemble", never, "--out", out], "no completed held-out runs of experiment 'not-run'")
    assert (snapshot(experiments), snapshot(out)) == before


def test_leaderboard_names_an_experiment_that_never_ran(experiments):
    refused(["leaderboard", "not-run", "--registry", experiments / "registry.db"], "not-run")


def test_evaluate_refuses_a_prediction_file_missing_a_landmark(dataset, tmp_path):
    gt = dataset.parent / "raw" / "test-gt.json"
    points = [
        dict(name=name, point=[x, y, record.z])
        for record in read_gt(gt)
        for name, (x, y) in zip(LANDMARK_NAMES, record.points.tolist(), strict=True)
        if (record.z, name) != (2, "17")
    ]
    predictions = tmp_path / "predictions.json"
    predictions.write_text(json.dumps(dict(type="Multiple points", points=points)))
    refused(["evaluate", "--pred", predictions, "--gt", gt], "z=2 lacks 1 landmark(s): 17")


def test_notebook_refuses_a_misspelled_parameter_before_starting(tmp_path):
    output = tmp_path / "train.ipynb"
    refused(["notebook", "train", output, "-p", "parms", "{}"], "did you mean 'params'")
    assert not output.exists()


@pytest.mark.slow
def test_notebook_names_invalid_training_parameters(tmp_path):
    """Checked inside the notebook (a kernel starts): the error and the cell are named."""
    output = tmp_path / "train.ipynb"
    refused(
        ["notebook", "train", output, "-p", "params", "{model: rtmpose-xxl}"],
        "train failed: ParamsError: invalid training parameters",
        "unknown model 'rtmpose-xxl'",
        f"the executed notebook: {output}",
    )


@pytest.mark.slow
def test_predict_refuses_a_truncated_stack_and_keeps_an_earlier_answer(fast_demo, tmp_path):
    root, submission, _ = fast_demo
    stack = root / "data" / "demo-fast" / "raw" / "test_stack.mha"
    truncated = tmp_path / "test_stack.mha"
    truncated.write_bytes(stack.read_bytes()[:-5000])
    out = tmp_path / "answer.json"
    out.write_text('{"earlier": true}')
    refused(
        ["predict", "--stack", truncated, "--ensemble", submission, "--out", out],
        f"{truncated}: truncated: its header promises",
    )
    assert out.read_text() == '{"earlier": true}'


def test_only_the_kits_own_errors_become_one_line(tmp_path, monkeypatch):
    """The CLI's one handler: a CephaloError (here a DataError) is one line and exit status
    1; any other exception is a programming error and keeps its traceback."""
    import cephalo.challenge.evaluate
    from cephalo.errors import DataError

    for name in ("pred.json", "gt.json"):
        (tmp_path / name).write_text("{}")
    arguments = ["evaluate", "--pred", tmp_path / "pred.json", "--gt", tmp_path / "gt.json"]

    def fails(error: Exception):
        def evaluate_files(*args, **kwargs):
            raise error

        return evaluate_files

    monkeypatch.setattr(
        cephalo.challenge.evaluate, "evaluate_files", fails(DataError("pred.json: wrong"))
    )
    assert refused(arguments, "pred.json: wrong").count("\n") == 1
    monkeypatch.setattr(cephalo.challenge.evaluate, "evaluate_files", fails(KeyError("a bug")))
    result = CliRunner().invoke(main, [str(a) for a in arguments])
    assert result.exit_code == 1 and isinstance(result.exception, KeyError)
    assert result.exc_info is not None and result.exc_info[2] is not None  # its traceback


def test_a_folder_that_is_no_submission_or_dataset_is_named(tmp_path):
    """`predict --ensemble` and `export` on a folder without a submission's manifest, and a
    run whose prepared dataset is gone: one line naming the folder and the missing file."""
    from cephalo.data.prepared import load_folds, load_images
    from cephalo.errors import NotFound

    empty = tmp_path / "not-a-submission"
    empty.mkdir()
    stack = tmp_path / "stack.mha"
    stack.write_bytes(b"")
    refused(
        ["predict", "--ensemble", empty, "--stack", stack, "--out", tmp_path / "out.json"],
        f"{empty / 'manifest.json'}: no such file (a submission's manifest",
    )
    refused(["export", empty, "--out", tmp_path / "bundle"], f"{empty / 'manifest.json'}")
    assert not (tmp_path / "bundle").exists()
    for load in (load_images, load_folds):
        with pytest.raises(NotFound, match=f"{empty}: not a prepared dataset"):
            load(empty)
