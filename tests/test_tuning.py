"""Tuning: specs, real Optuna studies whose trials are papermill runs (complete, pruned from
inside the notebook, failed), workers sharing a study on a journal file and on a real
PostgreSQL server, a worker killed mid-trial, the dashboard's API, and the export of the
best trial to an experiment spec."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import optuna
import pytest
import yaml

from cephalo.experiments import registry
from cephalo.experiments.spec import SpecError, load_experiment
from cephalo.notebooks import execute
from cephalo.tuning.spec import read_tune_spec
from cephalo.tuning.storage import StorageError, load_study, open_storage
from cephalo.tuning.study import suggest
from processes import alive, descendants

CEPHALO = [sys.executable, "-m", "cephalo.cli"]
TINY = dict(model="rtmpose-tiny", epochs=2, batch_size=4, num_workers=0, lr=5e-3, device="cpu")
SEARCH = dict(
    input_size={"choices": [[64, 64], [96, 96]]},
    simcc_split_ratio={"low": 1.5, "high": 3.0},
    sigma={"low": 2.0, "high": 6.0, "log": True},
)
ONE_WORKER_THREAD = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
State = optuna.trial.TrialState


def write_spec(folder: Path, name: str, dataset: Path, **settings) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    spec = dict(dataset=str(dataset), params=TINY, search=SEARCH, folds=[0], trials=2)
    spec.update(settings)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def tune(spec: Path, *args: str, env=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CEPHALO, "tune", str(spec), *args], capture_output=True, text=True, env=env
    )


# --- specs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(serach={}), r"serach: unknown name; did you mean 'search'"),
        (dict(search={"sigam": {"low": 1, "high": 2}}), r"'sigam' is not a training parameter"),
        (dict(params=dict(TINY, sigma=3)), r"'sigma' is also fixed in params"),
        (
            dict(params=dict(TINY, model="hrnet-tiny")),
            r"simcc_split_ratio applies to rtmpose models only",
        ),
        (dict(search={"sigma": {"low": 0, "high": 2, "log": True}}), r"log range needs low > 0"),
        (dict(search={"sigma": {"low": 3, "high": 2}}), r"must be below high"),
        (dict(objective="MSE"), r"objective"),
        (dict(enqueue=[{"lr": 0.1}]), r"enqueue: \['lr'\] are not searched"),
        (dict(search={"input_size": {"choices": [[60, 60]]}}), r"multiples of 32"),
    ],
)
def test_tuning_spec_errors_name_the_problem(settings, message, tmp_path):
    spec = write_spec(tmp_path, "bad", tmp_path, **settings)
    with pytest.raises(SpecError, match=message):
        read_tune_spec(spec)


def test_suggestions_become_training_parameters(tmp_path):
    spec = read_tune_spec(write_spec(tmp_path, "s", tmp_path))
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    seen = set()
    for _ in range(12):
        trial = study.ask()
        values = suggest(trial, spec)
        assert values["input_size"] in ([64, 64], [96, 96])
        assert 1.5 <= values["simcc_split_ratio"] <= 3.0 and 2.0 <= values["sigma"] <= 6.0
        seen.add(tuple(values["input_size"]))
        study.tell(trial, 1.0)
    assert seen == {(64, 64), (96, 96)}


def test_the_exported_best_takes_the_final_schedule_and_folds(dataset, tmp_path):
    from cephalo.tuning.tuner import export_best

    export = {"params": {"epochs": 9}, "folds": [1, "full"]}
    spec = write_spec(tmp_path, "final", dataset, export=export)
    study = optuna.create_study()
    trial_params = dict(TINY, input_size=[64, 64], sigma=3.0, simcc_split_ratio=2.0)
    study.add_trial(
        optuna.trial.create_trial(
            value=1.5,
            params={"sigma": 3.0},
            distributions={"sigma": optuna.distributions.FloatDistribution(2.0, 6.0, log=True)},
            user_attrs={"params": trial_params},
        )
    )
    experiment = load_experiment(export_best(study, spec))
    assert [run.name for run in experiment.runs] == ["base/fold1", "base/full"]
    assert experiment.runs[0].parameters["params"] == dict(trial_params, epochs=9)
    bad = write_spec(tmp_path, "bad", dataset, export={"params": {"epoch": 9}})
    with pytest.raises(SpecError, match=r"(?s)export: .*epoch: unknown name"):
        read_tune_spec(bad)


def test_unreachable_storage_is_named(tmp_path):
    port = _free_port()
    with pytest.raises(StorageError, match=rf"cannot open the study storage .*:{port}/db"):
        open_storage(f"postgresql+psycopg2://user:secret@127.0.0.1:{port}/db")
    try:
        open_storage(f"postgresql+psycopg2://user:secret@127.0.0.1:{port}/db")
    except StorageError as error:
        assert "secret" not in str(error)


# --- studies (slow: every trial is a papermill run) -----------------------------------------


@pytest.fixture(scope="module")
def study_with_a_crash(dataset, tmp_path_factory):
    """3 trials: the first (enqueued) crashes on a corrupt checkpoint, two complete."""
    folder = tmp_path_factory.mktemp("tune")
    broken = folder / "not-a-checkpoint.pth"
    broken.write_text("not a checkpoint")
    search = dict(SEARCH, pretrained={"choices": [None, str(broken)]})
    spec = write_spec(
        folder,
        "tiny",
        dataset,
        search=search,
        trials=3,
        sampler={"type": "random", "seed": 3},
        pruner={"type": "none"},
        enqueue=[{"pretrained": str(broken)}, {"pretrained": None}],
    )
    result = tune(spec, "--export-best")
    study = load_study(f"sqlite:///{folder / 'tiny' / 'study.db'}", "tiny")
    return dict(spec=spec, result=result, study=study, folder=folder)


@pytest.mark.slow
def test_study_completes_trials_with_the_three_parameters(study_with_a_crash):
    result, study = study_with_a_crash["result"], study_with_a_crash["study"]
    assert result.returncode == 0, result.stderr
    states = [t.state for t in study.trials]
    assert states == [State.FAIL, State.COMPLETE, State.COMPLETE]
    for trial in study.trials[1:]:
        assert {"input_size", "simcc_split_ratio", "sigma"} <= set(trial.params)
        assert trial.value > 0 and trial.user_attrs["fold0"] == trial.value
        run_dir = Path(trial.user_attrs["run_dirs"][0])
        assert json.loads((run_dir / "metrics.json").read_text())["MRE"] == trial.value
        params = json.loads((run_dir / "params.json").read_text())
        assert params["sigma"] == pytest.approx(trial.params["sigma"])
        assert trial.intermediate_values, "the notebook reported its validations"
    runs = registry.read_runs(study_with_a_crash["folder"] / "registry.db")
    assert sorted(zip(runs["trial"], runs["status"], strict=True)) == [
        (0, "failed"),
        (1, "completed"),
        (2, "completed"),
    ]


@pytest.mark.slow
def test_a_crashed_trial_fails_with_its_error_and_the_study_goes_on(study_with_a_crash):
    crashed = study_with_a_crash["study"].trials[0]
    assert crashed.state == State.FAIL
    assert "not-a-checkpoint.pth is not a checkpoint" in crashed.user_attrs["error"]
    printed = study_with_a_crash["result"].stdout
    assert "[1/3] trial 0 fail: " in printed and "best so far: none yet" in printed
    best = study_with_a_crash["study"].best_trial
    assert "[3/3] trial 2 complete" in printed
    assert f"best so far: {best.value:.4g} (trial {best.number})" in printed


@pytest.mark.slow
def test_tune_exits_non_zero_when_every_trial_fails(study_with_a_crash, dataset):
    folder = study_with_a_crash["folder"]
    broken = str(folder / "not-a-checkpoint.pth")
    spec = write_spec(
        folder, "all-fail", dataset, search=dict(SEARCH, pretrained={"choices": [broken]}), trials=1
    )
    result = tune(spec)
    assert result.returncode == 1
    assert "every trial of this run failed (1)" in result.stderr
    assert "not-a-checkpoint.pth is not a checkpoint" in result.stderr
    again = tune(spec)  # the study already holds its trial: nothing ran, nothing failed
    assert again.returncode == 0 and "already holds 1 of 1 trials" in again.stdout


@pytest.mark.slow
def test_best_trial_exports_to_an_experiment_spec(study_with_a_crash):
    study, spec = study_with_a_crash["study"], study_with_a_crash["spec"]
    exported = spec.with_name("tiny-best.yaml")
    assert f"wrote {exported}" in study_with_a_crash["result"].stdout
    experiment = load_experiment(exported)
    assert [run.name for run in experiment.runs] == ["base/fold0", "base/fold1"]
    assert experiment.runs[0].parameters["params"] == study.best_trial.user_attrs["params"]


@pytest.mark.slow
def test_tuning_notebook_shows_the_study(study_with_a_crash, tmp_path):
    output = tmp_path / "tuning.ipynb"
    execute("tuning", output, dict(spec=str(study_with_a_crash["spec"])))
    cells = json.loads(output.read_text())["cells"]
    images = [o for c in cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # history, intermediate values, importances (+ contour)


# --- workers ---------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_workers(spec: Path, storage: str, trials: int) -> list[subprocess.CompletedProcess]:
    workers = [
        subprocess.Popen(
            [*CEPHALO, "tune", str(spec), "--storage", storage, "--trials", str(trials)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ONE_WORKER_THREAD,
        )
        for _ in range(2)
    ]
    return [(w, *w.communicate(timeout=900)) for w in workers]


def _check_shared_study(study: optuna.Study, trials: int, state=State.COMPLETE) -> None:
    numbers = [t.number for t in study.trials]
    assert numbers == list(range(len(numbers)))  # distinct, none lost
    assert trials <= len(numbers) <= trials + 1  # concurrent finishes may overshoot by one
    assert all(t.state == state for t in study.trials)
    dirs = [t.user_attrs["run_dirs"][0] for t in study.trials]
    assert len(set(dirs)) == len(dirs)


@pytest.mark.slow
def test_two_workers_share_a_journal_file_and_the_pruner_stops_trials(dataset, tmp_path):
    """Two workers on a journal file, with a pruner that stops every trial at its first
    validation: each trial ends PRUNED (not FAILED), reported from inside the notebook."""
    spec = write_spec(
        tmp_path,
        "journal",
        dataset,
        params=dict(TINY, epochs=3),
        pruner={"type": "threshold", "upper": 0.001, "warmup_steps": 0},
    )
    storage = f"journal:{tmp_path / 'study.journal'}"
    for worker, _, err in _two_workers(spec, storage, trials=2):
        assert worker.returncode == 0, err
    study = load_study(storage, "journal")
    _check_shared_study(study, trials=2, state=State.PRUNED)
    for trial in study.trials:
        assert list(trial.intermediate_values) == [1]  # stopped at the first validation
        state = json.loads((Path(trial.user_attrs["run_dirs"][0]) / "run.json").read_text())
        assert state["status"] == "pruned" and "TrialPruned" in state["error"]


PASSWORD = "pw-" + os.urandom(8).hex()  # the throwaway server's, looked for in every file


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL server on 127.0.0.1 that asks for a password (Debian's package;
    .ci/run installs it); its URL holds the password, as a user's might."""
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not bins:
        pytest.skip("no PostgreSQL server installed (apt-get install postgresql; .ci/run does)")
    bin_dir = bins[-1].parent
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="cephalo-pg-"))
    (root / "pw").write_text(PASSWORD + "\n")
    if as_postgres:
        for path in (root, root / "pw"):
            shutil.chown(path, "postgres", "postgres")
    data, port = root / "data", _free_port()
    initdb = [bin_dir / "initdb", "-D", data, "-U", "cephalo", "-A", "scram-sha-256"]
    subprocess.run(
        [*as_postgres, *initdb, f"--pwfile={root / 'pw'}"], check=True, capture_output=True
    )
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1"
    start = [*as_postgres, bin_dir / "pg_ctl", "-D", data, "-l", root / "log", "-o", options]
    subprocess.run([*start, "-w", "start"], check=True, capture_output=True)
    try:
        subprocess.run(
            [bin_dir / "createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "cephalo", "optuna"],
            check=True,
            capture_output=True,
            env=dict(os.environ, PGPASSWORD=PASSWORD),
        )
        yield f"postgresql+psycopg2://cephalo:{PASSWORD}@127.0.0.1:{port}/optuna"
    finally:
        subprocess.run([*as_postgres, bin_dir / "pg_ctl", "-D", data, "-m", "fast", "stop"])
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_two_workers_share_a_postgresql_study(dataset, tmp_path, postgres):
    spec = write_spec(tmp_path, "postgres", dataset, pruner={"type": "none"})
    for worker, _, err in _two_workers(spec, postgres, trials=2):
        assert worker.returncode == 0, err
    _check_shared_study(load_study(postgres, "postgres"), trials=2)


@pytest.mark.slow
def test_the_storage_password_reaches_no_file(dataset, tmp_path, postgres):
    """A study on a server that asks for a password, given in the URL: the trials report to
    it from inside their notebooks, and no file under the experiments folder (run folders,
    notebooks, configs, logs, checkpoints, the registry) holds the password."""
    spec = write_spec(
        tmp_path / "experiments", "secret", dataset, trials=1, pruner={"type": "none"}
    )
    result = tune(spec, "--storage", postgres)
    assert result.returncode == 0, result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    (trial,) = load_study(postgres, "secret").trials
    assert trial.state == State.COMPLETE and trial.intermediate_values  # the hook got in
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert any(path.suffix == ".pth" for path in files)
    assert any(path.name == "registry.db" for path in files)
    leaks = [path for path in files if PASSWORD.encode() in path.read_bytes()]
    assert leaks == []
    state = json.loads((Path(trial.user_attrs["run_dirs"][0]) / "run.json").read_text())
    assert ":***@127.0.0.1" in state["parameters"]["trial"]["hook"]["storage"]


@pytest.mark.slow
def test_a_worker_killed_mid_trial_leaves_no_trial_running(dataset, tmp_path):
    """The trial of a killed worker is failed and retried with the same parameters; the
    retry's fold run resumes from the last checkpoint the lost one saved."""
    spec = write_spec(tmp_path, "killed", dataset, trials=2, params=dict(TINY, epochs=12))
    storage = f"journal:{tmp_path / 'study.journal'}"
    worker = subprocess.Popen([*CEPHALO, "tune", str(spec), "--storage", storage, "--trials", "1"])
    lost = tmp_path / "killed" / "trials" / "trial-0000" / "fold0"
    deadline = time.monotonic() + 300
    while not (lost / "train" / "last_checkpoint").is_file():
        assert time.monotonic() < deadline and worker.poll() is None, "no checkpoint was saved"
        time.sleep(0.2)
    kernel = descendants(worker.pid)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    deadline = time.monotonic() + 60  # the orphaned kernel stops within a second or so
    while any(alive(pid) for pid in kernel):
        assert time.monotonic() < deadline, "the killed worker's kernel kept running"
        time.sleep(0.2)
    assert load_study(storage, "killed").trials[0].state == State.RUNNING
    epoch = int(Path((lost / "train" / "last_checkpoint").read_text()).stem.split("_")[1])
    assert epoch < 12, "the trial finished before it could be killed"

    result = tune(spec, "--storage", storage, "--trials", "2")
    assert result.returncode == 0, result.stderr
    trials = load_study(storage, "killed").trials
    assert trials[0].state == State.FAIL  # the orphan, failed
    assert trials[1].state == State.COMPLETE  # its retry with the same parameters
    assert trials[1].params == trials[0].params
    retry = Path(trials[1].user_attrs["run_dirs"][0])
    assert retry == tmp_path / "killed" / "trials" / "trial-0001" / "fold0" and not lost.exists()
    state = json.loads((retry / "run.json").read_text())
    assert state["status"] == "completed" and state["resumed_from_epoch"] == epoch


@pytest.mark.slow
def test_dashboard_serves_the_study_on_localhost(study_with_a_crash):
    port = _free_port()
    server = subprocess.Popen(
        [*CEPHALO, "dashboard", str(study_with_a_crash["spec"]), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies") as reply:
                    studies = json.loads(reply.read())["study_summaries"]
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, "no dashboard"
                time.sleep(0.5)
        (study,) = studies
        assert study["study_name"] == "tiny"
        url = f"http://127.0.0.1:{port}/api/studies/{study['study_id']}?after=0"
        with urllib.request.urlopen(url) as reply:
            detail = json.loads(reply.read())
        assert [t["number"] for t in detail["trials"]] == [0, 1, 2]
        assert {t["state"] for t in detail["trials"]} == {"Fail", "Complete"}
    finally:
        server.terminate()
        server.wait(timeout=30)
