"""Experiment specs, the resumable batch runner, the registry and the leaderboard.

The batch tests drive the real command (``cephalo run``) in a subprocess on tiny runs: one
is killed with SIGKILL mid-batch and resumed; a broken variant fails while the rest
complete; the leaderboard and the results notebook read what they left.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from cephalo.experiments import leaderboard, registry
from cephalo.experiments.runner import run_status
from cephalo.experiments.spec import SpecError, load_experiment, read_spec, variant_params
from cephalo.metrics import LEADERBOARD, MRE, lower_is_better
from cephalo.notebooks import execute
from cephalo.paths import EXPERIMENTS
from cephalo.runs.work_dir import scalar_logs
from processes import alive, descendants

CEPHALO = [sys.executable, "-m", "cephalo.cli"]
TINY = dict(input_size=[64, 64], epochs=2, batch_size=4, num_workers=0, lr=5e-3, device="cpu")


def write_spec(folder: Path, name: str, **settings) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(settings, sort_keys=False))
    return path


# --- specs ---------------------------------------------------------------------------------


def test_spec_expands_variants_grid_and_folds(dataset, tmp_path):
    spec = write_spec(
        tmp_path,
        "grid",
        dataset=str(dataset),
        params=dict(model="rtmpose-tiny", epochs=3),
        variants={"small": {}, "hr": {"model": "hrnet-tiny"}},
        grid={"sigma": [2, 4], "input_size": [[64, 64]]},
        folds=[1, "full"],
    )
    experiment = load_experiment(spec)
    names = [run.name for run in experiment.runs]
    assert names == [
        f"{v}-sigma{s}-input_size64x64/{f}"
        for v in ("small", "hr")
        for s in (2, 4)
        for f in ("fold1", "full")
    ]
    first = experiment.runs[0]
    assert first.parameters["params"] == dict(
        model="rtmpose-tiny", epochs=3, sigma=2.0, input_size=[64, 64]
    )
    assert first.parameters["fold"] == 1 and experiment.runs[1].parameters["fold"] is None
    assert first.run_dir == tmp_path / "grid" / "runs" / "small-sigma2-input_size64x64" / "fold1"
    assert experiment.registry == tmp_path / "registry.db"
    assert len({run.digest for run in experiment.runs}) == len(experiment.runs)


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(varaints={"a": {}}), r"varaints: unknown name; did you mean 'variants'"),
        (dict(params={"modle": "rtmpose-t"}), r"(?s)variant 'base'.*modle: unknown name"),
        (dict(variants={"x": {"model": "rtmpose-xxl"}}), r"(?s)variant 'x'.*rtmpose-xxl"),
        (dict(variants={"a/b": {}}), r"variant name 'a/b'"),
        (dict(folds=[0, 7]), r"folds \[7\] not in"),
        (dict(notebook="trian"), r"no notebook 'trian'"),
        (dict(folds="some"), r"folds"),
    ],
)
def test_spec_errors_name_the_problem(settings, message, dataset, tmp_path):
    spec = write_spec(tmp_path, "bad", dataset=str(dataset), **settings)
    with pytest.raises(SpecError, match=message):
        load_experiment(spec)


def test_spec_with_a_dataset_that_is_not_prepared(tmp_path):
    spec = write_spec(tmp_path, "nodata", dataset=str(tmp_path / "missing"))
    with pytest.raises(SpecError, match="is not a prepared dataset"):
        load_experiment(spec)


def test_spec_typo_fails_on_the_command_line_before_running(dataset, tmp_path):
    spec = write_spec(tmp_path, "typo", dataset=str(dataset), params={"epoch": 3})
    result = subprocess.run([*CEPHALO, "run", str(spec)], capture_output=True, text=True)
    assert result.returncode == 1
    assert "epoch: unknown name; did you mean 'epochs'" in result.stderr
    assert not (tmp_path / "typo").exists()


# --- registry and leaderboard --------------------------------------------------------------


def _write_rows(path: str, worker: int, n: int) -> None:
    for i in range(n):
        registry.record(
            path,
            dict(experiment="e", run=f"w{worker}/{i}", status="completed", metrics={MRE: i}),
        )


def test_registry_takes_concurrent_writers(tmp_path):
    path = str(tmp_path / "registry.db")
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_write_rows, args=(path, w, 40)) for w in range(3)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
        assert writer.exitcode == 0
    runs = registry.read_runs(path)
    assert len(runs) == 120 and runs["run"].is_unique
    assert sorted(m[MRE] for m in runs["metrics"]) == sorted(list(range(40)) * 3)


def test_registry_upsert_replaces_a_run_and_refuses_unknown_columns(tmp_path):
    path = tmp_path / "registry.db"
    registry.record(path, dict(experiment="e", run="a/fold0", status="running"))
    registry.record(path, dict(experiment="e", run="a/fold0", status="failed", error="boom"))
    runs = registry.read_runs(path)
    assert runs[["status", "error"]].values.tolist() == [["failed", "boom"]]
    with pytest.raises(KeyError, match="mre"):
        registry.record(path, dict(experiment="e", run="a/fold0", status="x", mre=1))


def _fake_runs(rng: np.random.Generator) -> pd.DataFrame:
    rows = []
    for variant, level in [("good", 2.0), ("bad", 5.0)]:
        for fold in range(3):
            mre = level + rng.normal(0, 0.3)
            metrics = {name: float(rng.uniform(0, 100)) for name in LEADERBOARD}
            metrics.update(
                {MRE: mre, "mean_shape_baseline": {MRE: 9.0}, "per_landmark": {"L1": mre}}
            )
            rows.append(
                dict(
                    experiment="x",
                    variant=variant,
                    run=f"{variant}/fold{fold}",
                    fold=fold,
                    status="completed",
                    seconds=60.0,
                    metrics=metrics,
                )
            )
    rows.append(dict(experiment="x", variant="good", run="good/full", fold=None, status="completed",
                     seconds=60.0, metrics={}))  # fmt: skip
    rows.append(dict(experiment="x", variant="bad", run="bad/fold3", fold=3, status="failed",
                     seconds=1.0, metrics={}))  # fmt: skip
    frame = pd.DataFrame(rows)
    frame["fold"] = frame["fold"].astype("Int64")
    return frame


def test_leaderboard_means_spreads_and_order():
    runs = _fake_runs(np.random.default_rng(0))
    table = leaderboard.leaderboard(runs, MRE)
    assert table["variant"].tolist() == ["good", "bad"]
    good = runs[(runs["variant"] == "good") & runs["fold"].notna()]
    mres = [m[MRE] for m in good["metrics"]]
    assert table.loc[0, "folds"] == 3
    assert table.loc[0, MRE] == pytest.approx(np.mean(mres))
    assert table.loc[0, f"{MRE} std"] == pytest.approx(np.std(mres, ddof=1))
    assert table.loc[0, "baseline MRE"] == 9.0
    by_sdr = leaderboard.leaderboard(runs, "SDR 2.0mm")
    assert by_sdr["SDR 2.0mm"].is_monotonic_decreasing
    text = leaderboard.format_leaderboard(table)
    assert "lower is better" in text and f"{np.mean(mres):.2f} ± " in text
    assert leaderboard.per_landmark(runs).loc["x/good", "L1"] == pytest.approx(np.mean(mres))
    assert leaderboard.status_counts(runs).loc["x", "failed"] == 1
    with pytest.raises(ValueError, match="unknown metric"):
        lower_is_better("MSE")


# --- batches (slow: real papermill runs) ----------------------------------------------------


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def batch(dataset, tmp_path_factory: pytest.TempPathFactory):
    """A 2-variant x 2-fold spec plus a broken variant, run by `cephalo run --workers 2`:
    killed with SIGKILL once a run has completed, then resumed to the end."""
    folder = tmp_path_factory.mktemp("experiments")
    not_a_checkpoint = folder / "not-a-checkpoint.pth"
    not_a_checkpoint.write_text("this is not a checkpoint")
    raw = dataset.parent / "raw"
    spec = write_spec(
        folder,
        "tiny",
        dataset=str(dataset),
        test={"stack": str(raw / "test_stack.mha"), "gt": str(raw / "test-gt.json")},
        params=dict(model="rtmpose-tiny", **TINY),
        variants={
            "rtmpose": {},
            "hrnet": {"model": "hrnet-tiny", "sigma": 8},
            "broken": {"pretrained": str(not_a_checkpoint)},
        },
        folds=[0, 1],
    )
    only = ["--only", "rtmpose/*", "--only", "hrnet/*"]

    first = subprocess.Popen([*CEPHALO, "run", str(spec), "--workers", "2", *only])
    experiment = load_experiment(spec)
    _wait_for(
        lambda: any(run_status(r) == "completed" for r in experiment.runs) or first.poll(),
        timeout=600,
        what="a first completed run",
    )
    left_behind = descendants(first.pid)  # workers and their kernels
    first.send_signal(signal.SIGKILL)
    first.wait()
    killed_at = {r.name: run_status(r) for r in experiment.runs}
    _wait_for(
        lambda: not any(alive(pid) for pid in left_behind),
        timeout=60,
        what="the workers and kernels of the killed runner to stop",
    )
    completed_before = {
        r.name: json.loads((r.run_dir / "run.json").read_text())["started"]
        for r in experiment.runs
        if killed_at[r.name] == "completed"
    }

    second = subprocess.run(
        [*CEPHALO, "run", str(spec), "--workers", "2"], capture_output=True, text=True
    )
    return dict(
        spec=spec,
        experiment=experiment,
        killed_at=killed_at,
        completed_before=completed_before,
        second=second,
    )


@pytest.mark.slow
def test_killed_batch_resumes_without_redoing_finished_runs(batch):
    experiment = batch["experiment"]
    assert batch["completed_before"], "the runner was killed before any run completed"
    assert any(status != "completed" for status in batch["killed_at"].values()), (
        "the runner finished before it could be killed"
    )
    for run in experiment.runs:
        state = json.loads((run.run_dir / "run.json").read_text())
        if run.name in batch["completed_before"]:
            assert state["started"] == batch["completed_before"][run.name]  # not redone
        if run.variant != "broken":
            assert state["status"] == "completed", (run.name, state.get("error"))
            metrics = json.loads((run.run_dir / "metrics.json").read_text())
            assert np.isfinite(metrics[MRE])
            assert (run.run_dir / "predictions" / "oof.npz").is_file()
            assert (run.run_dir / "predictions" / "test.npz").is_file()
            assert (run.run_dir / "notebook.ipynb").is_file()


@pytest.mark.slow
def test_a_run_that_raises_is_recorded_while_the_others_complete(batch):
    second = batch["second"]
    assert second.returncode == 1
    assert "failed: broken/fold0, broken/fold1" in second.stderr
    runs = registry.read_runs(batch["experiment"].registry)
    status = dict(zip(runs["run"], runs["status"], strict=True))
    assert status == {
        "rtmpose/fold0": "completed",
        "rtmpose/fold1": "completed",
        "hrnet/fold0": "completed",
        "hrnet/fold1": "completed",
        "broken/fold0": "failed",
        "broken/fold1": "failed",
    }
    broken = runs[runs["run"] == "broken/fold0"].iloc[0]
    assert "not-a-checkpoint.pth is not a checkpoint" in broken["error"]
    notebook = json.loads((Path(broken["run_dir"]) / "notebook.ipynb").read_text())
    assert any(
        output.get("output_type") == "error"
        for cell in notebook["cells"]
        for output in cell.get("outputs", [])
    ), "the executed notebook shows the failing cell"
    completed = runs[runs["status"] == "completed"]
    assert all(MRE in m for m in completed["metrics"])


@pytest.mark.slow
def test_rerunning_a_complete_batch_runs_nothing(batch):
    result = subprocess.run(
        [*CEPHALO, "run", str(batch["spec"]), "--only", "rtmpose/*", "--only", "hrnet/*"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert "4 of 4 runs already complete, 0 to run" in result.stdout


@pytest.mark.slow
def test_edited_spec_is_refused_unless_asked(batch, tmp_path):
    spec = yaml.safe_load(batch["spec"].read_text())
    spec["params"]["epochs"] = 3
    edited = batch["spec"].parent / "tiny.yaml"
    original = edited.read_text()
    try:
        edited.write_text(yaml.safe_dump(spec))
        dry = subprocess.run(
            [*CEPHALO, "run", str(edited), "--dry-run"], capture_output=True, text=True
        )
        assert dry.returncode == 0
        assert "changed      rtmpose/fold0" in dry.stdout
        refused = subprocess.run(
            [*CEPHALO, "run", str(edited), "--only", "rtmpose/*"], capture_output=True, text=True
        )
        assert refused.returncode == 1 and "--redo-changed" in refused.stderr
    finally:
        edited.write_text(original)


@pytest.mark.slow
def test_leaderboard_command_and_results_notebook(batch, tmp_path):
    experiment = batch["experiment"]
    result = subprocess.run(
        [*CEPHALO, "leaderboard", "tiny", "--registry", str(experiment.registry), "--runs"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    ranked = [line.split()[2] for line in lines[2:4]]  # rank, experiment, variant, ...
    assert sorted(ranked) == ["hrnet", "rtmpose"]
    assert "broken/fold0" in result.stdout and "failed" in result.stdout

    output = tmp_path / "results.ipynb"
    execute("results", output, dict(registry=str(experiment.registry), experiments=["tiny"]))
    notebook = json.loads(output.read_text())
    outputs = [o for cell in notebook["cells"] for o in cell.get("outputs", [])]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2  # variant scores with fold spread, per-landmark heatmap


@pytest.mark.parametrize("spec", sorted(EXPERIMENTS.glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_specs_are_valid(spec):
    """Every file in experiments/ says its kind (ensemble, tuning or experiment) and reads as
    one, the GPU recipes included (their dataset is not here, so only the files are
    checked)."""
    from cephalo.ensemble.spec import read_ensemble_spec
    from cephalo.tuning.spec import read_tune_spec

    kind = yaml.safe_load(spec.read_text())["kind"]
    if kind == "ensemble":
        assert read_ensemble_spec(spec).members
    elif kind == "tuning":
        assert {"input_size", "sigma"} <= set(read_tune_spec(spec).search)
    else:
        assert kind == "experiment"
        variants = variant_params(read_spec(spec), spec)
        assert variants and all("model" in params for params in variants.values())


def test_each_worker_gets_its_share_of_threads_and_its_own_gpu(monkeypatch):
    from cephalo.experiments.runner import worker_environment

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    env = worker_environment(4, gpu="3")
    assert env["OMP_NUM_THREADS"] == "2" and env["CUDA_VISIBLE_DEVICES"] == "3"
    assert "OMP_NUM_THREADS" not in worker_environment(1)  # one worker: every core
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert worker_environment(2)["OMP_NUM_THREADS"] == "1"  # the user's setting stands


# --- resuming an interrupted run -----------------------------------------------------------


def _attempt(run, status: str, checkpoint_epoch: int | None) -> None:
    """An earlier attempt of ``run`` left in its folder, with a checkpoint if asked."""

    work_dir = run.run_dir / "train"
    work_dir.mkdir(parents=True)
    if checkpoint_epoch is not None:
        checkpoint = work_dir / f"epoch_{checkpoint_epoch}.pth"
        checkpoint.write_bytes(b"weights")
        (work_dir / "last_checkpoint").write_text(f"/elsewhere/train/{checkpoint.name}")
    run.folder.write_state(dict(digest=run.digest, status=status, attempt=1))


@pytest.mark.parametrize(
    "checkpoint_epoch, edit, restart, resumed",
    [
        (3, None, False, True),
        (None, None, False, False),  # nothing to resume from
        (3, {"epochs": 9}, False, False),  # the settings changed
        (3, None, True, False),  # --restart
    ],
)
def test_an_unfinished_run_keeps_its_checkpoint_only_with_the_same_settings(
    dataset, tmp_path, checkpoint_epoch, edit, restart, resumed
):
    from cephalo.experiments.worker import prepare_run

    spec = write_spec(tmp_path, "tiny", dataset=str(dataset), params=TINY, folds=[0])
    (run,) = load_experiment(spec).runs
    _attempt(run, "failed", checkpoint_epoch)
    if edit:
        spec.write_text(yaml.safe_dump(dict(yaml.safe_load(spec.read_text()), params=TINY | edit)))
        (run,) = load_experiment(spec).runs
    prepare_run(run, tmp_path / "registry.db", restart=restart)
    state = run.folder.read_state()
    assert state["status"] == "queued" and state["digest"] == run.digest
    assert (run.run_dir / "train").exists() == resumed
    assert state.get("resumed_from_epoch") == (3 if resumed else None)
    assert state.get("attempt") == (2 if resumed else None)


@pytest.mark.slow
def test_a_run_killed_after_a_checkpoint_resumes_from_it(dataset, tmp_path):
    spec = write_spec(
        tmp_path,
        "long",
        dataset=str(dataset),
        params=dict(TINY, model="rtmpose-tiny", epochs=12),
        folds=[0],
    )
    (run,) = load_experiment(spec).runs
    first = subprocess.Popen([*CEPHALO, "run", str(spec)], stdout=subprocess.DEVNULL)
    pointer = run.run_dir / "train" / "last_checkpoint"
    _wait_for(lambda: pointer.is_file() or first.poll() is not None, 600, "a first checkpoint")
    worker = json.loads((run.run_dir / "run.json").read_text())["pid"]
    kernel = descendants(worker)
    os.kill(worker, signal.SIGKILL)
    assert first.wait(timeout=120) == 1  # the runner records the dead worker and fails
    # the orphaned kernel notices its parent is gone within a second or so
    _wait_for(lambda: not any(alive(pid) for pid in kernel), 60, "the orphaned kernel to stop")
    killed = json.loads((run.run_dir / "run.json").read_text())
    assert killed["status"] == "failed" and "signal 9" in killed["error"]
    epoch = int(Path(pointer.read_text().strip()).stem.removeprefix("epoch_"))
    assert epoch < 12, "the run finished before it could be killed"

    second = subprocess.run([*CEPHALO, "run", str(spec)], capture_output=True, text=True)
    assert second.returncode == 0, second.stderr
    state = json.loads((run.run_dir / "run.json").read_text())
    assert state["status"] == "completed" and state["resumed_from_epoch"] == epoch
    assert state["attempt"] == 2
    log = (run.run_dir / "run.log").read_text()
    assert f"resuming from epoch_{epoch}.pth" in log and f"resumed epoch: {epoch}," in log
    # the second attempt trained the epochs after the checkpoint, not from the first one
    scalars = scalar_logs(run.run_dir)
    assert len(scalars) == 2
    resumed = [json.loads(line) for line in scalars[1].read_text().splitlines()]
    validated = [entry["step"] for entry in resumed if MRE in entry]
    assert validated == list(range(epoch + 1, 13))
    metrics = json.loads((run.run_dir / "metrics.json").read_text())
    assert np.isfinite(metrics[MRE])
    assert (run.run_dir / "predictions" / "oof.npz").is_file()


def test_the_runner_reads_a_running_run_epoch_from_its_scalars(tmp_path):
    from cephalo.experiments.runner import last_epoch

    assert last_epoch(tmp_path) is None
    logs = tmp_path / "train" / "20261204_120000" / "vis_data"
    logs.mkdir(parents=True)
    entries = [{"loss": 1.0, "epoch": 1, "step": 1}, {"MRE": 3.0, "step": 1}]
    entries += [{"loss": 0.5, "epoch": 2, "step": 2}] * 200 + [{"MRE": 2.0, "step": 2}]
    (logs / "scalars.json").write_text("\n".join(json.dumps(e) for e in entries) + "\n")
    assert last_epoch(tmp_path) == 2


@pytest.mark.slow
def test_the_config_command_shows_what_a_run_trains_with(batch):
    """`cephalo config` resolves a run's config without training it: byte for byte the
    config.py the run dumped (runs that were not resumed)."""
    compared = 0
    for run in batch["experiment"].runs:
        state = json.loads((run.run_dir / "run.json").read_text())
        if run.variant == "broken" or "resumed_from_epoch" in state:
            continue
        fold = "full" if run.fold is None else str(run.fold)
        shown = subprocess.run(
            [*CEPHALO, "config", str(batch["spec"]), "--variant", run.variant, "--fold", fold],
            capture_output=True,
            text=True,
        )
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout == (run.run_dir / "config.py").read_text() + "\n"
        compared += 1
    assert compared


def test_the_config_command_needs_no_dataset(tmp_path):
    """A GPU recipe's config on a machine without the real release."""
    from click.testing import CliRunner

    from cephalo.cli import main

    spec = EXPERIMENTS / "rtmpose-m-512.yaml"
    out = tmp_path / "config.py"
    result = CliRunner().invoke(main, ["config", str(spec), "--fold", "full", "--out", str(out)])
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "widen_factor=0.75" in text and "max_epochs=200" in text
    assert "val_evaluator" not in text  # a full fit validates nothing
    bad = CliRunner().invoke(main, ["config", str(spec), "--fold", "first"])
    assert bad.exit_code == 2 and "a fold number or full" in bad.output


def test_the_workspace_writes_beside_experiments_into_outputs(tmp_path):
    """Specs in experiments/ -> outputs/ beside it; an exported spec in outputs/ belongs to
    the same workspace; a folder of another name, or experiments/ holding a registry (the
    layout before outputs/), keeps its outputs beside its specs."""
    from cephalo.workspace import Workspace

    specs = tmp_path / "checkout" / "experiments"
    specs.mkdir(parents=True)
    new = Workspace.of_spec(specs / "sweep.yaml")
    outputs = tmp_path / "checkout" / "outputs"
    assert new.registry == outputs / "registry.db"
    assert new.run_dir("sweep", "base/fold0") == outputs / "sweep" / "runs" / "base" / "fold0"
    assert new.exported_spec("tune") == outputs / "tune-best.yaml"
    exported = Workspace.of_spec(new.exported_spec("tune"))
    assert exported.registry == new.registry
    assert exported.outputs("tune-best") == outputs / "tune-best"
    assert (
        Workspace.of_spec(tmp_path / "mine" / "x.yaml").registry
        == tmp_path / "mine" / "registry.db"
    )
    (specs / "registry.db").write_bytes(b"")  # an earlier layout's registry
    assert Workspace.of_spec(specs / "sweep.yaml").outputs("sweep") == specs / "sweep"
