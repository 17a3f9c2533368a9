"""The ``cephalo`` group: the commands of no one stage (doctor, demo, notebook), the other
stages' modules named, and the one error handler.

Sub-commands import their modules lazily, so ``cephalo --help`` answers at once instead
of after importing torch and OpenMMLab.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from typing import Any

import click


class LazyGroup(click.Group):
    """A group whose sub-commands defined in other modules are imported when used, and the
    CLI's one error handler: the kit's own errors (:class:`cephalo.errors.CephaloError`)
    become one line and exit status 1; any other exception, a programming error, keeps its
    traceback."""

    def __init__(self, *args: Any, lazy: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy  # name -> "module:attribute"

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module, attribute = self.lazy[name].split(":")
            return getattr(importlib.import_module(module), attribute)
        return super().get_command(ctx, name)

    def invoke(self, ctx: click.Context) -> Any:
        from cephalo.errors import CephaloError

        try:
            return super().invoke(ctx)
        except CephaloError as error:
            raise click.ClickException(str(error)) from None


@click.group(
    cls=LazyGroup,
    lazy={
        "data": "cephalo.cli.data:data",
        "evaluate": "cephalo.cli.evaluate:evaluate_command",
        "run": "cephalo.cli.experiments:run_command",
        "config": "cephalo.cli.experiments:config_command",
        "leaderboard": "cephalo.cli.experiments:leaderboard_command",
        "tune": "cephalo.cli.tuning:tune_command",
        "dashboard": "cephalo.cli.tuning:dashboard_command",
        "ensemble": "cephalo.cli.ensemble:ensemble_command",
        "predict": "cephalo.cli.container:predict_command",
        "export": "cephalo.cli.container:export_command",
    },
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="cephalo")
def main() -> None:
    """Experiment kit for cephalometric landmark detection (CL-Detection 2023)."""
    from cephalo.logs import show_logs

    show_logs()


@main.command()
def doctor() -> None:
    """Check that the environment works: versions, device, MMCV ops, registries, kernel,
    checkpoint loading. Exits non-zero when a check fails."""
    from cephalo.doctor import run_checks

    raise SystemExit(0 if run_checks() else 1)


@main.command()
@click.option("--fast", is_flag=True, help="A toy-sized run (a few minutes; what the tests use).")
def demo(fast: bool) -> None:
    """A whole miniature competition on synthetic data, on a CPU: data, folds, a study,
    fold models, an ensemble, a submission and an HTML report."""
    from cephalo.demo import run_demo

    run_demo(fast=fast)


@main.command()
@click.argument("name")
@click.argument("output", type=click.Path(dir_okay=False))
@click.option(
    "-p",
    "--parameter",
    "parameters",
    type=(str, str),
    multiple=True,
    metavar="NAME VALUE",
    help="A parameter; the value is read as YAML (3, [1, 2], x).",
)
def notebook(name: str, output: str, parameters: tuple[tuple[str, str], ...]) -> None:
    """Execute the kit's notebook NAME (e.g. train, explore_data) into OUTPUT (.ipynb) with
    papermill on the cephalo kernel. Unknown parameter names are refused."""
    import yaml
    from nbclient.exceptions import DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    from cephalo.notebooks import describe_failure, execute

    values = {key: yaml.safe_load(value) for key, value in parameters}
    _stream_notebook_output()
    try:
        execute(name, output, values, log_output=True)
    except (PapermillExecutionError, DeadKernelError) as failure:
        where = f"; the executed notebook: {output}" if os.path.exists(output) else ""
        raise click.ClickException(f"{name} failed: {describe_failure(failure)}{where}") from None
    click.echo(f"executed: {output}")


def _stream_notebook_output() -> None:
    """Show what the notebook prints as it runs (a training run's epochs, losses, ETA and
    validation figures), each cell announced, on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    papermill_log = logging.getLogger("papermill")
    papermill_log.addHandler(handler)
    papermill_log.setLevel(logging.INFO)
    papermill_log.propagate = False
