"""The ``cephalo`` command line: one entry point, one sub-command per step of the recipe.

Sub-commands import their modules lazily, so ``cephalo --help`` answers at once instead
of after importing torch and OpenMMLab.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Callable
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
        "evaluate": "cephalo.challenge.evaluate:evaluate_command",
        "run": "cephalo.experiments.commands:run_command",
        "config": "cephalo.experiments.commands:config_command",
        "leaderboard": "cephalo.experiments.commands:leaderboard_command",
        "tune": "cephalo.tuning.commands:tune_command",
        "dashboard": "cephalo.tuning.commands:dashboard_command",
        "ensemble": "cephalo.ensemble.commands:ensemble_command",
        "predict": "cephalo.challenge.container.commands:predict_command",
        "export": "cephalo.challenge.container.commands:export_command",
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


def _dataset_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options every ``prepare`` command shares: the output and how folds are made."""
    for option in reversed(
        [
            click.option(
                "--out",
                type=click.Path(file_okay=False),
                required=True,
                help="The prepared dataset folder to write.",
            ),
            click.option("--folds", type=click.IntRange(min=2), default=5, show_default=True),
            click.option(
                "--seed", type=int, default=2023, show_default=True, help="Fold assignment seed."
            ),
            click.option("--force", is_flag=True, help="Redo a dataset that is already prepared."),
        ]
    ):
        command = option(command)
    return command


@main.group()
def data() -> None:
    """Data: the synthetic release, and preparing a release for training."""


@data.command()
@click.option("--out", type=click.Path(file_okay=False), required=True, help="Output folder.")
@click.option("--n-images", type=click.IntRange(min=1), required=True, help="Training images.")
@click.option(
    "--n-test",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Test images (test_stack.mha + test-gt.json).",
)
@click.option(
    "--scale",
    type=click.FloatRange(min=0.01, max=1.0),
    default=1.0,
    show_default=True,
    help="Shrink factor; the spacing grows by 1/scale.",
)
@click.option("--seed", type=int, default=0, show_default=True)
def synth(out: str, n_images: int, n_test: int, scale: float, seed: int) -> None:
    """Write a synthetic CL-Detection 2023 release (train_stack.mha + train-gt.json)."""
    from cephalo.data.synth import synthesize

    written = synthesize(out, n_images, n_test=n_test, scale=scale, seed=seed, progress=True)
    for split, files in written.items():
        click.echo(f"{split}: {files.stack} {files.gt}")


@data.command()
@click.option(
    "--stack",
    type=click.Path(dir_okay=False),
    required=True,
    help="The release stack, e.g. train_stack.mha.",
)
@click.option(
    "--gt",
    type=click.Path(dir_okay=False),
    required=True,
    help="Its ground truth, e.g. train-gt.json.",
)
@click.option(
    "--groups",
    type=click.Path(dir_okay=False),
    default=None,
    help="A sidecar naming each slice's centre ({'images': [{'z': 1, 'centre': 'A'}, ...]}, "
    "e.g. train-meta.json) to stratify folds by; default: each image's spacing.",
)
@_dataset_options
def prepare(
    stack: str, gt: str, groups: str | None, out: str, folds: int, seed: int, force: bool
) -> None:
    """Crop, convert and annotate a release stack for training, with stratified folds."""
    from cephalo.data.prepare import prepare_release

    path = prepare_release(stack, gt, out, folds=folds, seed=seed, force=force, groups=groups)
    click.echo(f"prepared: {path}")


@data.command("prepare-isbi")
@click.option(
    "--root",
    type=click.Path(file_okay=False, exists=True),
    required=True,
    help="The ISBI 2015 folder (holding RawImage/ and AnnotationsByMD/).",
)
@click.option(
    "--subset",
    "subsets",
    type=click.Choice(["train", "test1", "test2"]),
    multiple=True,
    default=["train", "test1", "test2"],
    show_default=True,
)
@click.option(
    "--annotator",
    type=click.Choice(["mean", "senior", "junior"]),
    default="mean",
    show_default=True,
    help="Whose landmarks; mean averages both doctors.",
)
@_dataset_options
def prepare_isbi(
    root: str,
    out: str,
    subsets: tuple[str, ...],
    annotator: str,
    folds: int,
    seed: int,
    force: bool,
) -> None:
    """Convert the ISBI 2015 set (19 landmarks, 0.1 mm) into the same prepared format."""
    from cephalo.data.isbi import prepare_isbi

    path = prepare_isbi(
        root, out, subsets=subsets, annotator=annotator, folds=folds, seed=seed, force=force
    )
    click.echo(f"prepared: {path}")


if __name__ == "__main__":
    main()
