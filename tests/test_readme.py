"""The README's recipe against the CLI: every `cephalo` command it shows parses (its
sub-command, options and choices exist), every spec it names exists or is written by an
earlier command, and every file path it points into the checkout is there. The cheap
commands (`--help`, `--dry-run` of a shipped spec) run for real, in a scratch checkout.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from cephalo.cli import main
from cephalo.paths import REPO_ROOT

README = (REPO_ROOT / "README.md").read_text()


def shell_lines() -> list[str]:
    """The lines of the README's bash blocks, continuations joined, heredoc bodies dropped."""
    lines: list[str] = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        block = re.sub(r"<<'(\w+)'\n.*?\n\1\n", "<<'HEREDOC'\n", block, flags=re.S)
        lines += [line.strip() for line in block.replace("\\\n", " ").splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def cephalo_commands() -> list[list[str]]:
    """Each `cephalo ...` command of the README, as its arguments after `cephalo`."""
    commands = []
    for line in shell_lines():
        words = shlex.split(line, comments=True)
        for i, word in enumerate(words):
            if word.endswith("bin/cephalo"):
                end = next((j for j in range(i, len(words)) if words[j] in ("&", "&&")), None)
                commands.append(words[i + 1 : end])
    return commands


def resolve(arguments: list[str]) -> tuple[click.Command, list[str], list[str]]:
    """(the click command, its name path, its own arguments) of a `cephalo` command line."""
    command: click.Command = main
    path: list[str] = []
    while isinstance(command, click.Group):
        name, arguments = arguments[0], arguments[1:]
        found = command.get_command(click.Context(command), name)
        assert found is not None, f"`cephalo {' '.join([*path, name])}` does not exist"
        command, path = found, [*path, name]
    return command, path, arguments


COMMANDS = cephalo_commands()


def test_the_recipe_is_found():
    names = {" ".join(resolve(c)[1]) for c in COMMANDS}
    assert {"doctor", "data synth", "data prepare", "notebook", "run", "tune", "leaderboard",
            "ensemble", "evaluate", "predict", "dashboard"} <= names  # fmt: skip


@pytest.mark.parametrize("arguments", COMMANDS, ids=lambda c: " ".join(c)[:60])
def test_every_command_parses(arguments):
    """Options, choices and argument counts as the CLI declares them (nothing runs)."""
    command, path, own = resolve(arguments)
    try:
        command.make_context(" ".join(["cephalo", *path]), list(own), resilient_parsing=False)
    except click.BadParameter as error:  # files made by earlier steps, or the user's own
        if "does not exist" not in error.format_message():
            pytest.fail(f"`cephalo {' '.join(arguments)}`: {error.format_message()}")
    except click.UsageError as error:
        pytest.fail(f"`cephalo {' '.join(arguments)}`: {error.format_message()}")


def test_every_spec_exists_or_is_written_before_it_is_used():
    written: set[str] = set()
    for line in shell_lines():
        written.update(re.findall(r"cat > (experiments/\S+\.yaml)", line))
        if "--export-best" in line:  # the exported experiment goes to outputs/
            (name,) = re.findall(r"experiments/([\w.-]+)\.yaml", line)
            written.add(f"outputs/{name}-best.yaml")
        for spec in re.findall(r"\b((?:experiments|outputs)/[\w.-]+\.yaml)\b", line):
            assert spec in written or (REPO_ROOT / spec).is_file(), f"{spec} ({line})"


def test_every_path_into_the_checkout_exists():
    roots = ("lib/", "tools/", "notebooks/", "requirements/", "benchmarks/", "tests/", ".ci/")
    named = set(re.findall(r"`([\w./-]+)`", README)) | {
        word for line in shell_lines() for word in shlex.split(line, comments=True)
    }
    outputs = ("benchmarks/results",)  # written by the kit, not in a fresh clone
    paths = [p for p in named if p.startswith(roots) and "*" not in p and not p.startswith(outputs)]
    assert paths
    missing = sorted(p for p in paths if not (REPO_ROOT / p).exists())
    assert missing == []
    # a module path without its folder is a path a user cannot open
    assert re.findall(r"`cephalo/[\w/]+\.py`", README) == []


@pytest.mark.parametrize("arguments", COMMANDS, ids=lambda c: " ".join(c)[:60])
def test_every_command_has_help(arguments):
    _, path, _ = resolve(arguments)
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output


def test_the_dry_runs_of_shipped_specs_run(dataset, tmp_path, monkeypatch):
    """`cephalo run SPEC --dry-run` for each CPU spec the README runs, in a scratch checkout
    whose synthetic dataset is the tests' small one."""
    import shutil

    import yaml

    dry_runs = [c for c in COMMANDS if c[0] == "run" and "--dry-run" in c]
    assert dry_runs
    (tmp_path / "experiments").mkdir()
    synthetic = tmp_path / "data" / "synthetic"
    shutil.copytree(dataset, synthetic / "prepared", ignore=shutil.ignore_patterns("cache"))
    shutil.copytree(dataset.parent / "raw", synthetic / "raw")
    monkeypatch.chdir(tmp_path)
    for arguments in dry_runs:
        spec = Path(next(a for a in arguments if a.endswith(".yaml")))
        settings = yaml.safe_load((REPO_ROOT / spec).read_text())
        settings["dataset"] = "../data/synthetic/prepared"  # the small one, not the default
        settings["folds"] = [f for f in settings.get("folds", [0]) if f in (0, 1, "full")]
        (tmp_path / spec).write_text(yaml.safe_dump(settings))
        result = CliRunner().invoke(main, arguments)
        assert result.exit_code == 0, (arguments, result.output)
        assert "pending" in result.output
